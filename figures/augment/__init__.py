"""The Tables 4-5 study (augmentation x KD, CIFAR-100): plan and presets (plan), jobs (stage) and tables (tables)."""
