"""Helpers shared by every CLI module (docs/reference.md "Errors and outputs"): exit codes, device choice, common flags.

Exit 0 = ok, 2 = user error (one line on stderr that names the fix), 1 = bug (traceback kept).
"""
from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from collections.abc import Callable, Sequence

import torch

from training.config import INT_MAX
from training.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse with the project's error contract: one ``error: ...`` line naming the fix, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


# errno -> the fix named when writing an output fails with it.
_IO_FIXES = {
    errno.ENOSPC: "free disk space or choose an output location on another disk",
    errno.EDQUOT: "free space in your quota or choose an output location on another disk",
    errno.EFBIG: "choose an output location on a file system that takes larger files",
    errno.EROFS: "choose an output location on a writable file system",
    errno.EACCES: "check its permissions, or choose an output location you may write to",
    errno.EPERM: "check its permissions, or choose an output location you may write to",
    errno.ENOTDIR: "a parent of that path is a file, not a directory; choose another output location",
    errno.EISDIR: "that path is a directory; choose a file name for the output",
    errno.EEXIST: "a file is in the way of that directory; choose another output location",
    errno.ENAMETOOLONG: "choose a shorter output path",
    errno.ENOENT: "check the path (a folder on it does not exist and cannot be created there)",
}
_WRITE_ONLY = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def io_error_message(e: OSError) -> str | None:
    """One line naming what could not be written and the fix, for the I/O failures a user can fix
    (full disk, read-only or forbidden location, a file where a directory should be); None otherwise."""
    fix = _IO_FIXES.get(e.errno)
    if fix is None:
        return None
    verb = "write" if e.errno in _WRITE_ONLY else "access"  # EACCES, ENOTDIR, ... also happen when reading
    where = f" {e.filename}" if e.filename is not None else ""
    return f"cannot {verb}{where}: {e.strerror or os.strerror(e.errno)}; {fix}"


_ALLOC_FAILURES = ("can't allocate memory", "not enough memory", "out of memory")  # torch's CPU / CUDA allocators


def memory_error_message(e: BaseException) -> str | None:
    """One line for an allocation that failed (numpy's MemoryError, torch's CPU allocator RuntimeError, CUDA's
    OutOfMemoryError): the sizes asked for more memory than there is; None for any other error."""
    text = str(e)
    if not (isinstance(e, (MemoryError, torch.OutOfMemoryError)) or any(m in text for m in _ALLOC_FAILURES)):
        return None
    asked = next((part.strip() for part in text.replace(". ", "\n").splitlines()
                  if "allocate" in part and any(ch.isdigit() for ch in part)), "")
    return (f"out of memory{f' ({asked[:120]})' if asked else ''}; lower the sizes (--batch-size, --width, "
            "--max-images, --steps, ...) or use a machine with more memory")


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main``; a ``UserError``, a fixable I/O failure (full disk, read-only or forbidden output, a file in
    the way), an allocation larger than the memory or a closed stdout becomes one ``error: ...`` line on stderr and
    exit code 2, never a traceback.
    Outputs are written atomically (training.store.checkpoint.atomic_write), so a failed write leaves no partial
    file."""
    try:
        rc = main(argv)
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed stdout shows here, not in the interpreter's exit
        return rc
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Reader of stdout went away (e.g. "| head"). Point stdout at /dev/null so the interpreter's final
        # flush does not raise again, then say so once.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("error: stdout was closed before all results were written (broken pipe); "
              "redirect the output to a file or read it to the end", file=sys.stderr)
        return 2
    except OSError as e:
        msg = io_error_message(e)
        if msg is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:  # torch.OutOfMemoryError is a RuntimeError
        msg = memory_error_message(e)
        if msg is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished results are kept and a re-run resumes", file=sys.stderr)
        return 130


def add_common_flags(p: argparse.ArgumentParser, *, data: bool = True) -> None:
    """Flags that mean the same thing in every command (docs/reference.md "Errors and outputs")."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available) [auto]")
    p.add_argument("--quiet", action="store_true", help="no progress bars or logs on stderr")
    if data:
        p.add_argument("--data-dir", type=nonempty, default=None,
                       help="dataset folder: torchvision's CIFAR-10/100 layout, or a folder of *-train.npz/*-test.npz "
                            "files for --dataset npz; omitted = the embedded CIFAR-10 subset in "
                            "training/data/embedded/cifar10-mini")


def number_flag(kind: type, check: Callable[[float], bool], need: str) -> Callable[[str], float]:
    """An argparse ``type=`` that parses ``kind`` and rejects NaN/inf, integers beyond ``INT_MAX`` and values failing
    ``check``, so a bad flag is one ``error:`` line and exit 2 before any work starts."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if kind is int and abs(value) > INT_MAX:
            raise argparse.ArgumentTypeError(f"{text!r} is too large (at most 2**63-1 = {INT_MAX})")
        if not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {need}")
        return value

    parse.__name__ = f"{kind.__name__} ({need})"
    return parse


def bounded_int(hi: int, what: str) -> Callable[[str], int]:
    """An argparse ``type=`` for an integer in [1, hi], ``what`` naming it (e.g. a width, whose tensors grow with
    it)."""
    return number_flag(int, lambda v: 1 <= v <= hi, f"a positive integer up to {hi:,} ({what})")


def nonempty(text: str) -> str:
    """argparse ``type=`` of a path or name: an empty value is refused (as a path it would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def output_file(text: str) -> str:
    """argparse ``type=`` of a file to write: not empty and not an existing directory."""
    if os.path.isdir(nonempty(text)):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; give a file name")
    return text


positive_int = number_flag(int, lambda v: v > 0, "a positive integer")
nonnegative_int = number_flag(int, lambda v: v >= 0, "an integer >= 0")
# Sizes whose tensors or processes grow with the value: a declared range instead of an allocation that fails later.
WIDTH = bounded_int(1024, "channels of the first stage")
WORKERS = bounded_int(256, "worker processes")
GRID_STEPS = bounded_int(10_000, "grid points per axis")  # Li et al. use 51
PIXELS = bounded_int(16_384, "a size in pixels")
SEED_COUNT = bounded_int(1000, "seeds")
finite_float = number_flag(float, lambda v: True, "finite")
positive_float = number_flag(float, lambda v: v > 0, "a positive number")
nonnegative_float = number_flag(float, lambda v: v >= 0, "a number >= 0")


