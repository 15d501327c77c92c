"""orthokd diversity: NAS-without-training Jacobian-correlation scores (Table 6) and pairwise model diversity."""
