"""The Tables 1-3 study (pruning x KD, CIFAR-100): plan and presets (plan), jobs (stage), tables (tables) and the
paper's surplus arithmetic (surplus)."""
