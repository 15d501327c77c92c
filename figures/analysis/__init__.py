"""figures.analysis."""
