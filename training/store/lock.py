"""An exclusive lock on a run directory or a surface store, so two processes never write one result.

``fcntl.flock`` on a ``.lock`` file beside the guarded path: the kernel releases it when the holder exits,
even after kill -9, so a stale lock never blocks a re-run. The file records the holder (pid, host, UTC start time,
command) for the error message of the process that is refused.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from training.errors import UserError


def lock_path(guarded: Path) -> Path:
    """``run_dir/.lock`` for a directory, ``.NAME.lock`` beside a file."""
    guarded = Path(guarded)
    return guarded / ".lock" if guarded.is_dir() else guarded.with_name(f".{guarded.name}.lock")


def _me() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def in_use(what: str, holder: str) -> UserError:
    """The one line for a ``what`` that another process holds."""
    return UserError(f"{what} is in use by {holder}; wait for it to finish (or stop it), then re-run")


def lock_holder(guarded: Path) -> str | None:
    """What another process's lock on ``guarded`` records (pid, host, start time, command), or None when nobody else
    holds it. Creates nothing, so a command can name the holder before it decides anything about ``guarded``."""
    path = lock_path(guarded)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file (or none readable): nobody can hold it
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            return None if holder.startswith(_me() + " ") else holder  # this process's own lock
        return None
    finally:
        os.close(fd)  # closing releases a shared lock taken above


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
            raise in_use(what, os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process") from None
        os.ftruncate(fd, 0)
        since = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        os.pwrite(fd, f"{_me()} since {since} UTC ({' '.join(sys.argv)[:200]})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
