"""figures.augment."""
