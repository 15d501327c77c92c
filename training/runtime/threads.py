"""Intra-op threads per process: the host's cores divided among the processes that share them.

PyTorch gives every process as many intra-op threads as the machine has cores. Several processes on one host
(DataLoader workers beside the training process, torchrun ranks) then ask for cores x processes threads, and on a busy
host the threads collapse: the demo trained at 38 img/s with the default
threads and 830 img/s with one thread per process. So each process takes its share:

    threads = max(1, budget // (1 + helpers)),  budget = OMP_NUM_THREADS if set, else cores // LOCAL_WORLD_SIZE,

where ``helpers`` counts the processes working beside it (training.engine.fit: its AutoAugment DataLoader workers, each
of
which PyTorch runs with one thread, count as one, whatever their number: the thread count changes CPU rounding, and a
run resumed with another --workers must stay bitwise), cores are the CPUs this process may run on
(``os.sched_getaffinity``), and LOCAL_WORLD_SIZE is torchrun's processes on this host. Processes that a driver starts
side by side (``figures.study --executor local --max-parallel K``) get ``OMP_NUM_THREADS = cores // K`` in their
environment (``concurrent_environment``), which ``thread_share`` then reads as their budget.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _omp_threads() -> int | None:
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return n if n >= 1 else None


def thread_share(helpers: int = 0) -> int:
    """This process's intra-op threads when it runs beside ``helpers`` busy worker processes (module docstring)."""
    budget = _omp_threads() or max(1, cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)))
    return max(1, budget // (1 + max(0, helpers)))


def concurrent_environment(processes: int) -> dict[str, str]:
    """The environment variables of one of ``processes`` jobs started side by side on this host: ``OMP_NUM_THREADS``
    = max(1, cores // processes), so that together they ask for the host's cores and no more; nothing for a single
    process (it keeps PyTorch's default and its CPU rounding) or when the user set ``OMP_NUM_THREADS``."""
    if processes <= 1 or _omp_threads() is not None:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, cores() // processes))}


@contextlib.contextmanager
def divided_threads(helpers: int = 0) -> Iterator[int]:
    """``torch.set_num_threads(thread_share(helpers))`` for the block (the count is yielded, to be recorded); the
    previous count is restored afterwards."""
    before = torch.get_num_threads()
    n = thread_share(helpers)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
