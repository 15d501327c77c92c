"""orthokd figures: the paper's tables and figures regenerated from run directories."""
from orthokd import check_packages

check_packages("training", "landscape", "diversity")
