"""Helpers of bench/gpu_check.py: run the project's CLIs as subprocesses (what users run), detect which flags
they have, read run directories, and record each measurement as ok / skipped / failed."""
from __future__ import annotations

import importlib
import json
import math
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from training.rundir import read_metrics

REPO = Path(__file__).resolve().parent.parent
FULL_EPOCH = 50_000  # CIFAR-10 training images: every timed epoch is extrapolated to this size


class Skip(Exception):
    """A measurement that cannot run here (a flag the CLI lacks, an input that failed); the message says why."""


class CliFailed(Exception):
    """A CLI exited non-zero; the message is its stderr's last line."""


def help_flags(module: str) -> set[str]:
    """The ``--flags`` in ``python -m MODULE --help`` (the parser's own help text, without a subprocess)."""
    text = importlib.import_module(module).build_parser().format_help()
    return set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", text))


@dataclass
class Cli:
    """Runs ``python -m MODULE ARGS`` from the repository root; each command's output goes to ``logs/NAME.log``."""

    logs: Path
    quiet: bool = False

    def run(self, name: str, module: str, args: list[str]) -> tuple[float, str]:
        """(wall-clock seconds, stdout); raises CliFailed with the last stderr line on a non-zero exit."""
        cmd = [sys.executable, "-m", module, *map(str, args)]
        if not self.quiet:
            print(f"[gpu_check] {name}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs / f"{name}.log").write_text(f"$ {shlex.join(cmd)}\n# exit {p.returncode}, {wall:.1f} s\n"
                                               f"## stdout\n{p.stdout}\n## stderr\n{p.stderr}")
        if p.returncode != 0:
            lines = [ln for ln in p.stderr.splitlines() if ln.strip()] or [f"exit code {p.returncode}, no stderr"]
            raise CliFailed(f"{module} (exit {p.returncode}): {lines[-1].strip()[:300]}")
        return wall, p.stdout


def run_dirs(out: Path, seeds: list[int] | None) -> list[Path]:
    """The run directories one training command wrote: OUT, or OUT/s{seed} for each packed seed."""
    return [out] if seeds is None else [out / f"s{s}" for s in seeds]


def last_epoch(run_dir: Path) -> tuple[dict[str, Any], int]:
    """(the last metrics.jsonl row, the number of training images of the run) of a finished run directory."""
    rows = read_metrics(run_dir, 10**9)
    if not rows:
        raise Skip(f"{run_dir} has no metrics.jsonl rows")
    return rows[-1], int(json.loads((run_dir / "config.json").read_text())["train_images"])


def epoch_timing(out: Path, seeds: list[int] | None) -> dict[str, float]:
    """Seconds of the last (warm) epoch, extrapolated to a 50,000-image epoch: s50k = seconds x 50000 / N, with
    N the run's training images; for packed seeds, the slowest seed's seconds (they share each step)."""
    lasts = [last_epoch(d) for d in run_dirs(out, seeds)]
    seconds = max(row["seconds"] for row, _ in lasts)
    n = lasts[0][1]
    return {"timed_images_per_run": n, "timed_epoch_s": seconds, "runs": len(lasts),
            "images_per_s": n * len(lasts) / seconds, "seconds_per_epoch_50k": seconds * FULL_EPOCH / n}


def measure(results: dict[str, dict], name: str, fn: Callable[[], dict[str, Any]]) -> None:
    """results[name] = {"status": "ok", **fn()}, or "skipped" / "failed" with a one-line "reason"."""
    try:
        results[name] = {"status": "ok", **fn()}
    except Skip as e:
        results[name] = {"status": "skipped", "reason": str(e)}
    except CliFailed as e:
        results[name] = {"status": "failed", "reason": str(e)}
    except Exception as e:  # a bug in this script must not hide the other measurements
        results[name] = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    r = results[name]
    print(f"[gpu_check] {name}: {r['status']}" + (f" ({r['reason']})" if "reason" in r else ""),
          file=sys.stderr, flush=True)


def need(results: dict[str, dict], name: str, key: str) -> float:
    """A finite number of an ok measurement, or Skip naming what it needs."""
    r = results.get(name, {})
    if r.get("status") != "ok" or not isinstance(r.get(key), (int, float)) or not math.isfinite(r[key]):
        raise Skip(f"needs {name} ({r.get('status', 'not run')})")
    return float(r[key])
