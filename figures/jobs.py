"""A resumable list of jobs with cost estimates: print the plan and an ETA, skip what is done, show
overall progress weighted by cost (DESIGN §8, issue: the whole study in one resumable command)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

from training.cli import log


@dataclass
class Job:
    stage: str  # "train", "surface", "score", "tables"
    name: str  # what it produces, for the plan and the progress bar
    cost: float  # estimated seconds on this machine (from a throughput probe)
    done: Callable[[], bool]  # True when its outputs are complete (then it is skipped)
    run: Callable[[], None]


def format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def run_jobs(jobs: list[Job], quiet: bool = False, dry_run: bool = False) -> int:
    """Run the jobs that are not done, in order; returns how many ran."""
    from tqdm.auto import tqdm

    todo = [j for j in jobs if not j.done()]
    by_stage: dict[str, list[Job]] = {}
    for j in todo:
        by_stage.setdefault(j.stage, []).append(j)
    log(f"study: {len(jobs)} jobs, {len(jobs) - len(todo)} already done, {len(todo)} to run", quiet)
    for stage, js in by_stage.items():
        log(f"  {stage:8s} {len(js):3d} jobs, about {format_seconds(sum(j.cost for j in js))}"
            f"  ({', '.join(j.name for j in js[:4])}{', ...' if len(js) > 4 else ''})", quiet)
    log(f"  ETA {format_seconds(sum(j.cost for j in todo))} (estimated from a throughput probe)", quiet)
    if dry_run:
        return 0
    bar = tqdm(total=round(sum(j.cost for j in todo), 1), unit="s(est)", file=sys.stderr, disable=quiet,
               desc="study", dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} est. s [{elapsed}<{remaining}]")
    start = time.perf_counter()
    try:
        for j in todo:
            bar.set_postfix_str(f"{j.stage}: {j.name}")
            j.run()
            bar.update(round(j.cost, 1))
    finally:
        bar.close()
    log(f"study: ran {len(todo)} jobs in {format_seconds(time.perf_counter() - start)}", quiet)
    return len(todo)
