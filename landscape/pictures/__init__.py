"""landscape.pictures."""
