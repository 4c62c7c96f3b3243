"""Training code for the models we ship (run with `persona-agent train ...`)."""
