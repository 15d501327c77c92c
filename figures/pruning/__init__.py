"""figures.pruning."""
