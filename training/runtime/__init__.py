"""training.runtime."""
