"""Face perception: detection + facial expression over the shared labels."""
