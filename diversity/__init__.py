"""orthokd diversity: NAS-without-training Jacobian-correlation scores (DESIGN §7, Table 6)."""
