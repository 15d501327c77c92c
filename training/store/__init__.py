"""training.store."""
