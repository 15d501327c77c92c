"""Helpers shared by every CLI module (docs/reference.md §9): exit codes, device choice, common flags.

Exit 0 = ok, 2 = user error (one line on stderr that names the fix), 1 = bug (traceback kept).
"""
from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from typing import Callable, Sequence

import torch

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


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main``; a ``UserError``, a fixable I/O failure (full disk, read-only or forbidden output, a file in
    the way) or a closed stdout becomes one ``error: ...`` line on stderr and exit code 2, never a traceback.
    Outputs are written atomically (training.checkpoint.atomic_write), so a failed write leaves no partial file."""
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
    except KeyboardInterrupt:
        print("interrupted; finished results are kept and a re-run resumes", file=sys.stderr)
        return 130


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' = cuda (this rank's LOCAL_RANK under torchrun) if available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        local = os.environ.get("LOCAL_RANK")
        if name == "cuda" and local is not None:
            name = f"cuda:{int(local)}"
        elif local is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1 and name != f"cuda:{int(local)}":
            raise UserError(f"--device {name} under torchrun would put several ranks on one GPU; pass --device cuda "
                            "(each rank then takes cuda:LOCAL_RANK)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None


def add_common_flags(p: argparse.ArgumentParser, *, data: bool = True) -> None:
    """Flags that mean the same thing in every command (docs/reference.md §9)."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available) [auto]")
    p.add_argument("--quiet", action="store_true", help="no progress bars or logs on stderr")
    if data:
        p.add_argument("--data-dir", default=None,
                       help="dataset folder: torchvision's CIFAR-10/100 layout, or a folder of *-train.npz/*-test.npz "
                            "files for --dataset npz; omitted = the embedded CIFAR-10 subset in training/embedded/cifar10-mini")


def _number(kind: type, check: Callable[[float], bool], need: str) -> Callable[[str], float]:
    """An argparse ``type=`` that parses ``kind`` and rejects NaN/inf and values failing ``check``, so a bad
    flag is one ``error:`` line and exit 2 before any work starts."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {need}")
        return value

    parse.__name__ = f"{kind.__name__} ({need})"
    return parse


positive_int = _number(int, lambda v: v > 0, "a positive integer")
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
finite_float = _number(float, lambda v: True, "finite")
positive_float = _number(float, lambda v: v > 0, "a positive number")
nonnegative_float = _number(float, lambda v: v >= 0, "a number >= 0")


def log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)
