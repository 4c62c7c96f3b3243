"""The `persona-agent` command line (cli/main.py) and its batch-file analysis (cli/analyze.py)."""
