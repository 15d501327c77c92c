"""What a run leaves on disk: atomic file writes, sha256 and provenance (files), the checkpoint schema v1
(checkpoint), run directories and their discovery (rundir), the lock of a run or a surface store (lock), and which
runs may be pooled into one table row or table (poolable)."""
