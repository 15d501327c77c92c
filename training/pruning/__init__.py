"""Pruning as the reference code ran it (docs/reference.md "Pruning as the reference code ran it"): L1-norm filters
and network slimming (structured), weight magnitude (weights), and a trained checkpoint into a pruned one (rules)."""
