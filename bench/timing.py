"""How every bench/ script times a comparison: the sides take turns (A B A B ..., after one untimed warm-up
round), each reports the median of at least ``MIN_ROUNDS`` rounds, and the host load it ran under is printed.

Timing all of one side and then the other lets a change of machine load land on one side only: on a busy host
bench/train_speed.py once reported 3.07x where the same comparison, interleaved, gave 1.39x.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

MIN_ROUNDS = 3


def load_note() -> str:
    """The 1/5/15-minute load averages and the core count (os.getloadavg; 'n/a' where the OS has none)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return f"load average n/a on {os.cpu_count()} cores"
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def print_load(when: str) -> None:
    print(f"{when}: {load_note()}", file=sys.stderr, flush=True)


def interleaved(sides: dict[str, Callable[[], float | None]], rounds: int, warmup: int = 1,
                sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Per side, the values of ``rounds`` timed rounds (at least MIN_ROUNDS) after ``warmup`` untimed ones, the
    sides called in turn within every round. A side returns its own measurement (e.g. images/s) or None, when
    its wall-clock seconds (``sync`` before and after: a GPU's queue drained) are the value."""
    rounds = max(rounds, MIN_ROUNDS)
    values: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(warmup + rounds):
        for name, fn in sides.items():
            sync()
            t0 = time.perf_counter()
            got = fn()
            sync()
            if r >= warmup:
                values[name].append(time.perf_counter() - t0 if got is None else got)
    return values


def medians(values: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(v) for name, v in values.items()}
