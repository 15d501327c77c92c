"""What the claims (figures.report.catalogue) read: per-seed accuracies of Tables 1-5 from the run directories (through
the
tables' own readers, which refuse mixed configurations), the per-run NASWOT scores of Table 6 (scores.json), and the
surfaces of Tables 7-8 with their Hessian numbers. A table whose runs or outputs are missing raises Missing, and its
claims become "not run"; nothing is computed here, only read."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from figures.analysis.hessian import hessian_cache
from figures.analysis.surfaces import surface_run
from figures.analysis.table6 import pooled_runs
from figures.augment.plan import AugmentStudySpec, matrix, student_run
from figures.augment.tables import read_block
from figures.jobs import run_finished
from figures.paper import PRUNING_TABLES
from figures.pruning.plan import PruneStudySpec, schedule_cells, schedule_run
from figures.pruning.tables import read_summaries
from landscape.record import Surface, load_surface
from training.engine.schedules import SUMMARY
from training.errors import UserError
from training.store.poolable import check_table
from training.store.rundir import read_config


class Missing(Exception):
    """The runs or outputs a claim needs are not there; the message says which."""


# Tables 1-3: (table, the paper's setting label, row of figures.paper.PRUNING_ROWS, "baseline" | "label" | "feature")
# -> test accuracy per seed, the keys of figures.paper.PRUNING_PUBLISHED.
PruneCells = dict[tuple[int, str, str, str], np.ndarray]
# Tables 4-5: (table, the paper's network) -> {(kd, student_aug, teacher_aug): test accuracy per seed}.
AugmentBlocks = dict[tuple[int, str], dict[tuple[str | None, bool, bool], np.ndarray]]

_SCHEDULE_ROWS = {"pre-distill": "Finetuned / Pre-Distill", "post-distill": "Post-Distill", "pre-post": "Pre-Post",
                  "self-distill": "Self-Distill"}


def prune_cells(spec: PruneStudySpec, root: Path, table: int) -> PruneCells:
    """Every accuracy of Table ``table`` per seed; Missing when a schedule of some seed has not finished."""
    out: PruneCells = {}
    for paper, setting in zip(PRUNING_TABLES[table], spec.settings(table)):
        for schedule, kd in schedule_cells(spec):
            for seed in spec.seeds:
                path = schedule_run(root, setting, schedule, kd, seed) / SUMMARY
                if not path.is_file():
                    raise Missing(f"Table {table}: {path} is missing (python -m figures.study --tables {table})")
        cells = read_summaries(spec, root, setting, table)
        ft = cells[("finetuned", spec.kds[0])]
        key = (table, paper.label)
        out[(*key, "Unpruned", "baseline")] = np.array([s["initial"]["test_acc"] for s in ft])
        out[(*key, "Finetuned / Pre-Distill", "baseline")] = np.array([s["finetune"]["test_acc"] for s in ft])
        for kd in spec.kds:
            out[(*key, "Unpruned", kd)] = np.array([s["initial"]["test_acc"] for s in cells[("pre-distill", kd)]])
            for schedule, row in _SCHEDULE_ROWS.items():
                out[(*key, row, kd)] = np.array([s["finetune"]["test_acc"] for s in cells[(schedule, kd)]])
    return out


def augment_blocks(spec: AugmentStudySpec, root: Path, table: int) -> AugmentBlocks:
    """Every student's accuracy per seed, per network of Table ``table``; Missing when a run has not finished."""
    out: AugmentBlocks = {}
    for setting in spec.settings(table):
        for kd, student_aug, teacher_aug in matrix(spec):
            for seed in spec.seeds:
                run = student_run(root, setting, kd, student_aug, teacher_aug, seed)
                if not run_finished(run, spec.epochs):
                    raise Missing(f"Table {table}: {run} is missing or unfinished (python -m figures.study --tables "
                                  f"{table})")
        acc = read_block(table, setting, root, spec)
        out[(table, setting.network)] = {cell: np.array([float(a) for a in v]) for cell, v in acc.items()}
    return out


def study_json(path: Path, remake: str) -> Any:
    """A JSON file the study wrote; a damaged one (truncated, not JSON, or not the layout asked for) is one UserError
    naming ``remake``, the command that writes it again."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path} cannot be read ({type(e).__name__}); delete it and re-run {remake}") from None


def naswot_scores(runs_dir: Path, tables_dir: Path) -> dict[str, list[float]]:
    """Table 6's score of every run per method (the mean over its shared batches), from TABLES_DIR/scores.json; the
    runs behind it checked poolable into one table, as Table 6 checks them."""
    path = tables_dir / "scores.json"
    if not path.is_file():
        raise Missing(f"Table 6: {path} is missing (python -m figures.study --tables 6)")
    pooled_runs(runs_dir, None, 1)
    out: dict[str, list[float]] = {}
    doc = study_json(path, "python -m figures.study --tables 6")
    try:
        for c in doc["checkpoints"]:
            out.setdefault(c["method"], []).append(float(c["score"]))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path} is not Table 6's scores file; delete it and re-run python -m figures.study --tables 6"
                        ) from None
    return out


@dataclass(frozen=True)
class SurfacePoint:
    """One method's surface at one milestone of one seed, with the Hessian numbers computed beside it (or None)."""

    surface: Surface
    hessian: dict | None


_SURFACE_NAME = re.compile(r"^(?P<method>.+)-s(?P<seed>\d+)_e(?P<epoch>\d+)\.npz$")


def surfaces(runs_dir: Path) -> dict[tuple[str, int, int], SurfacePoint]:
    """Every finished surface under RUNS_DIR/surfaces/, keyed (method, seed, epoch); the runs of each seed checked
    poolable into one table (the Tables 7-8 check). Missing when there is none."""
    out: dict[tuple[str, int, int], SurfacePoint] = {}
    for path in sorted((runs_dir / "surfaces").glob("*.npz")):
        m = _SURFACE_NAME.match(path.name)
        if not m:
            continue
        s = load_surface(path)
        if not s.done:
            continue
        cache = hessian_cache(path)
        hessian = study_json(cache, "python -m figures.study --tables 7 8").get("report") if cache.is_file() else None
        out[(m["method"], int(m["seed"]), int(m["epoch"]))] = SurfacePoint(s, hessian)
    if not out:
        raise Missing(f"Tables 7-8: no finished surface under {runs_dir / 'surfaces'} (python -m figures.study "
                      "--tables 7 8)")
    for seed in sorted({k[1] for k in out}):
        methods = sorted({k[0] for k in out if k[1] == seed})
        check_table({m: [(run.name, read_config(run, required=True))] for m in methods
                     for run in [surface_run(runs_dir, m, seed)[0]]})
    return out
