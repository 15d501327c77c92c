"""An exclusive lock on a run directory or a surface store, so two processes never write one result.

``fcntl.flock`` on a ``.lock`` file beside the guarded path: the kernel releases it when the holder exits,
even after kill -9, so a stale lock never blocks a re-run. The file records the holder (host, pid, command)
for the error message of the process that is refused.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from training.errors import UserError


def lock_path(guarded: Path) -> Path:
    """``run_dir/.lock`` for a directory, ``.NAME.lock`` beside a file."""
    guarded = Path(guarded)
    return guarded / ".lock" if guarded.is_dir() else guarded.with_name(f".{guarded.name}.lock")


@contextlib.contextmanager
def exclusive_lock(guarded: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``guarded`` for the block; if another process holds it, raise one
    ``UserError`` line naming that process (``what`` says what is locked, e.g. "run directory runs/x")."""
    path = lock_path(guarded)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise UserError(f"{what} is in use by {holder}; wait for it to finish (or stop it), then re-run") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} ({' '.join(sys.argv)[:200]})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
