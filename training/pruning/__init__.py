"""training.pruning."""
