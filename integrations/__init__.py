"""Adapters for the frameworks our users already run (each an optional extra; none imports the backend)."""
