"""training.cli.common."""
