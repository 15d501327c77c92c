"""orthokd training: models, data, objectives, loop and checkpoints (docs/reference.md §2-§5)."""
