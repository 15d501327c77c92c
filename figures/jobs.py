"""A resumable list of jobs with cost estimates: print the plan and an ETA, skip what is done, show
overall progress weighted by cost. A job that writes several files is done only when its manifest (the
list of those files, written after all of them) exists and every file it lists exists."""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.log import log
from training.store.files import atomic_write_text
from training.store.rundir import milestone_name


@dataclass
class Job:
    stage: str  # "teacher", "train", "surface", "score", "tables"
    name: str  # what it produces, for the plan and the progress bar
    cost: float  # estimated seconds on this machine (from a throughput probe)
    done: Callable[[], bool]  # True when its outputs are complete (then it is skipped)
    run: Callable[[], None]


def run_finished(run_dir: Path, epochs: int) -> bool:
    """A training run is finished when its final milestone checkpoint (ckpt_eEPOCHS.pt) exists."""
    return (run_dir / milestone_name(epochs)).is_file()


def manifest_path(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}.manifest.json"


def write_manifest(manifest: Path, files: Sequence[Path]) -> None:
    """Record ``files`` (paths relative to the manifest's folder); call it only after all of them are written."""
    rel = sorted({str(Path(f).relative_to(manifest.parent)) for f in files})
    atomic_write_text(manifest, json.dumps({"files": rel}, indent=2) + "\n")


def outputs_complete(manifest: Path) -> bool:
    """True when ``manifest`` exists and every file it lists exists."""
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all((manifest.parent / f).is_file() for f in files)


def with_manifest(manifest: Path, build: Callable[[], list[Path]]) -> list[Path]:
    """Remove ``manifest``, run ``build`` (which returns the files it wrote), then write the manifest: a build
    killed half-way leaves no manifest, so the job is not done and a re-run redoes it."""
    manifest.unlink(missing_ok=True)
    files = build()
    write_manifest(manifest, files)
    return [*files, manifest]


def table_job(figs: Path, table: int, cost: float, make: Callable[[], list[Path]], stage: str = "tables") -> Job:
    """The job that writes Table ``table``'s files under ``figs`` with ``make`` behind its manifest (with_manifest);
    done when the manifest and every file it lists exist."""
    manifest = manifest_path(figs, f"table{table}")
    return Job(stage, f"table{table}", cost, lambda: outputs_complete(manifest), lambda: with_manifest(manifest, make))


def format_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


Runner = Callable[[list[Job], Callable[[Job], None]], None]  # runs the jobs, calling its second argument after each


def run_in_order(todo: list[Job], finished: Callable[[Job], None]) -> None:
    """The sequential runner: every job in this process, in order."""
    for j in todo:
        j.run()
        finished(j)


def run_jobs(jobs: list[Job], quiet: bool = False, dry_run: bool = False, runner: Runner = run_in_order) -> int:
    """Print the plan and the ETA, then hand the jobs that are not done to ``runner`` (in order, in this process,
    by default); returns how many ran."""
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
    bar = tqdm(total=sum(j.cost for j in todo), unit="s(est)", file=sys.stderr, disable=quiet,
               desc="study", dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} est. s "
                                                            "[{elapsed}<{remaining}]")
    start = time.perf_counter()

    def finished(j: Job) -> None:
        bar.set_postfix_str(f"{j.stage}: {j.name}")
        bar.update(j.cost)  # unrounded: tqdm drops its total once n passes it by 0.5

    try:
        runner(todo, finished)
    finally:
        bar.close()
    log(f"study: ran {len(todo)} jobs in {format_seconds(time.perf_counter() - start)}", quiet)
    return len(todo)
