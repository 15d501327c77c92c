"""orthokd figures: the paper's tables and figures regenerated from run directories."""
