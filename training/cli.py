"""Helpers shared by every CLI module (DESIGN §9): exit codes, device choice, common flags.

Exit 0 = ok, 2 = user error (one line on stderr that names the fix), 1 = bug (traceback kept).
"""
from __future__ import annotations

import argparse
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


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main``; a ``UserError`` becomes one ``error: ...`` line on stderr and exit code 2."""
    try:
        return main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
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
        if name == "cuda" and "LOCAL_RANK" in os.environ:
            name = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown --device {name!r}; use auto, cpu, cuda or cuda:N") from None


def add_common_flags(p: argparse.ArgumentParser, *, data: bool = True) -> None:
    """Flags that mean the same thing in every command (DESIGN §9)."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available) [auto]")
    p.add_argument("--quiet", action="store_true", help="no progress bars or logs on stderr")
    if data:
        p.add_argument("--data-dir", default=None,
                       help="dataset folder: torchvision's CIFAR-10/100 layout, or a folder of *-train.npz/*-test.npz "
                            "files for --dataset npz; omitted = the embedded CIFAR-10 subset in data/cifar10-mini")


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
