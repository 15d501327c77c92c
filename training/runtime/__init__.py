"""Where and how a process computes: the device (device), torchrun's process group (distributed), BatchNorm over the
global batch (syncbn), TF32 / cuDNN / determinism (backends), CPU threads per process (threads), and the packages
only the full study needs (optional)."""
