"""Find run directories under a runs folder and group their checkpoints by method."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training.config import TrainConfig
from training.errors import UserError
from training.store.rundir import CONFIG, milestone_name


@dataclass(frozen=True)
class RunCheckpoint:
    method: str
    run_dir: Path | None  # None for a checkpoint given on the command line
    path: Path
    seed: int | None


def final_checkpoint(run_dir: Path, config: dict, milestone: int | None) -> Path:
    """``ckpt_eXXX.pt`` of the milestone asked for, else of the run's last epoch."""
    return run_dir / milestone_name(milestone if milestone is not None else int(config["epochs"]))


def discover_runs(runs_dir: Path, milestone: int | None = None) -> dict[str, list[RunCheckpoint]]:
    """Every sub-directory with a config.json, grouped by its ``method``; a run without the wanted
    checkpoint is an error naming it (an unfinished run would silently shrink n)."""
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UserError(f"--runs-dir {runs_dir} is a file; pass the folder that holds the run directories")
    if not runs_dir.is_dir():
        raise UserError(f"--runs-dir {runs_dir} does not exist; train runs first (python -m training.train --out-dir {runs_dir}/NAME)")
    groups: dict[str, list[RunCheckpoint]] = {}
    for cfg_path in sorted(runs_dir.glob(f"*/{CONFIG}")):
        try:
            cfg = json.loads(cfg_path.read_text())
            method = cfg["method"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{cfg_path} is not an orthokd run config; remove it or fix it") from None
        run_dir = cfg_path.parent
        ckpt = final_checkpoint(run_dir, cfg, milestone)
        if not ckpt.is_file():
            planned = TrainConfig.from_json(cfg).milestone_epochs()
            if milestone is not None and milestone not in planned:
                raise UserError(f"run {run_dir} has no milestone {milestone}: its milestones are epochs "
                                f"{', '.join(map(str, planned))}; pass one of them to --milestone")
            raise UserError(f"run {run_dir} has no {ckpt.name} (unfinished); finish it by re-running its training "
                            f"command, or move it out of {runs_dir}")
        groups.setdefault(method, []).append(RunCheckpoint(method, run_dir, ckpt, cfg.get("seed")))
    if not groups:
        raise UserError(f"no run directories (*/config.json) under {runs_dir}; train runs first or pass checkpoints")
    return groups


def run_record(checkpoint: Path) -> dict:
    """The config.json of the run directory holding ``checkpoint`` ({} when it has none): it adds what the
    checkpoint's own config lacks (teacher_sha256, train_images)."""
    path = checkpoint.parent / CONFIG
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        raise UserError(f"{path} beside {checkpoint.name} is not a run config (JSON object); fix it, or score a copy "
                        "of the checkpoint from another folder")
    return record


def require_runs(groups: dict[str, list[RunCheckpoint]], runs: int) -> None:
    for method, items in groups.items():
        if len(items) < runs:
            names = ", ".join(str(i.run_dir.name if i.run_dir else i.path) for i in items)
            raise UserError(f"method {method} has {len(items)} run(s) ({names}) but --runs {runs} asks for {runs}; "
                            "train more seeds or lower --runs")
