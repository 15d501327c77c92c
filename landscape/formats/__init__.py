"""landscape.formats."""
