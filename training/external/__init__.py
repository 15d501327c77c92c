"""training.external.models."""
