"""orthokd figures: the paper's Tables 1-8 regenerated from run directories, one folder per study (pruning/ for
Tables 1-3, augment/ for Tables 4-5, analysis/ for Tables 6-8), the shared table writer, cells and printed paper
numbers, and the jobs and executors of ``python -m figures.study``."""
from orthokd import check_packages

check_packages("training", "landscape", "diversity")
