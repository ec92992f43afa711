"""The ways in: the command line (and, later, the local web UI)."""
