"""orthokd training: models, data, objectives, loop and checkpoints (DESIGN §2-§5)."""
