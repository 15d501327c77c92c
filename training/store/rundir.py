"""The run directory (docs/reference.md "Training runs and checkpoints"): config.json (written once; equality decides
resume), metrics.jsonl
(one JSON object per epoch, rewritten atomically), last.pt, milestone checkpoints ckpt_eXXX.pt, and the
``.lock`` file of the process that trains in it (training.store.lock); and the discovery of the finished runs
under a runs folder, grouped by method (what Table 6 and the analyses read)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from training.config import TrainConfig, with_defaults
from training.errors import UserError
from training.store.files import atomic_write_text
from training.store.lock import in_use, lock_holder, lock_path

CONFIG = "config.json"
METRICS = "metrics.jsonl"
LAST = "last.pt"


def milestone_name(epoch: int) -> str:
    return f"ckpt_e{epoch:03d}.pt"


def run_files(out_dir: Path) -> list[Path]:
    """Everything a training run writes into its directory."""
    names = [out_dir / CONFIG, out_dir / METRICS, out_dir / LAST, out_dir / "tb"]
    return [p for p in names if p.exists()] + sorted(out_dir.glob("ckpt_e*.pt"))


@overload
def read_config(run_dir: Path, required: Literal[True]) -> dict[str, Any]: ...
@overload
def read_config(run_dir: Path, required: bool = False) -> dict[str, Any] | None: ...
def read_config(run_dir: Path, required: bool = False) -> dict[str, Any] | None:
    """``run_dir``'s config.json. A missing file means a fresh directory (None) unless ``required``, where it is
    an error as an unreadable file always is: a finished run the figures read has one."""
    path = run_dir / CONFIG
    if not required and not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        fix = (f"re-run the run's training command or move {run_dir} out of the runs folder" if required else
               "fix or delete it, or pass --overwrite")
        raise UserError(f"{path} is {'missing or ' if required else ''}not valid JSON; {fix}") from None


def check_run_dir(out_dir: Path, config: dict[str, Any], overwrite: bool) -> str:
    """Decide what to do with ``out_dir`` without touching it: 'fresh', 'resume' or 'overwrite'.

    A directory holding another config, or other files, is refused unless ``overwrite``. A key missing from
    the stored config.json (written before the key existed) counts as its TrainConfig default."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out-dir {out_dir} is a file, not a directory; choose another --out-dir")
    lock_name = lock_path(out_dir).name
    if not out_dir.exists() or all(p.name == lock_name for p in out_dir.iterdir()):
        return "fresh"
    if overwrite:
        return "overwrite"
    old = read_config(out_dir)
    if old is None:
        raise _refusal(out_dir, f"--out-dir {out_dir} exists and is not an orthokd run directory; choose a new "
                                "--out-dir "
                                "or pass --overwrite")
    old = with_defaults(old)
    if old != config:
        keys = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        if keys == ["world_size"]:
            raise _refusal(out_dir, f"{out_dir} was trained by {old['world_size']} process(es), this is "
                                    f"{config['world_size']}; resume it under the same count (torchrun "
                                    f"--nproc_per_node {old['world_size']}, or no torchrun for 1), or use another "
                                    "--out-dir")
        if keys == ["packed"]:
            raise _refusal(out_dir, f"{out_dir} was trained {_packing(old, stored=True)}, this run is "
                                    f"{_packing(config)}; resume "
                                    "it the same way (packed runs round differently from single ones), or use another "
                                    "--out-dir")
        raise _refusal(out_dir, f"{out_dir} holds a run with a different config (differs in: {', '.join(keys)}); use "
                                "another --out-dir, re-run with the same flags to resume, or pass --overwrite to start "
                                "again")
    return "resume" if (out_dir / LAST).is_file() else "fresh"


def _refusal(out_dir: Path, message: str) -> UserError:
    """The refusal of ``out_dir``: ``message``, unless another process holds the directory's lock; then that it is in
    use by that process (what it holds so far may be half-written: the holder, not its state, is the verdict)."""
    holder = lock_holder(out_dir)
    return in_use(f"run directory {out_dir}", holder) if holder is not None else UserError(message)


def _packing(record: dict[str, Any], stored: bool = False) -> str:
    """How the run of ``record`` is trained. A ``stored`` record without the key is a single run, or a packed run
    written before packing was recorded (the two cannot be told apart), and the words say both."""
    if "packed" in record:
        return f"packed with {record['packed']} seed(s) in one process (--seeds)"
    return "as a single run (--seed)" + (", or packed by an orthokd that did not record packing yet" if stored else "")


def start_run_dir(out_dir: Path, config: dict[str, Any], decision: str) -> None:
    """Create the directory and write config.json; with 'overwrite' first delete the old run's files."""
    if decision == "overwrite":
        for p in run_files(out_dir):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    if decision != "resume":
        atomic_write_text(out_dir / CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_metrics(out_dir: Path, up_to_epoch: int) -> list[dict[str, Any]]:
    """The metrics lines of epochs <= ``up_to_epoch`` (later lines belong to an interrupted epoch)."""
    path = out_dir / METRICS
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["epoch"] <= up_to_epoch]


def final_test_acc(out_dir: Path, epochs: int) -> float | None:
    """Test accuracy (%) after epoch ``epochs`` of the run in ``out_dir``, None while it has fewer epochs."""
    rows = read_metrics(out_dir, epochs)
    return rows[-1]["test_acc"] if len(rows) == epochs else None


def last_and_best_test_acc(out_dir: Path, epochs: int) -> tuple[float, float] | None:
    """(test accuracy after epoch ``epochs``, the highest over epochs 1..``epochs``) in % of the run in ``out_dir``,
    from one read of its metrics; None while it has fewer epochs. The best is what the reference trainers report
    (rethinking-network-pruning's ``best_prec1``, CutMix-PyTorch's ``best_err1``)."""
    rows = read_metrics(out_dir, epochs)
    return (rows[-1]["test_acc"], max(r["test_acc"] for r in rows)) if len(rows) == epochs else None


def best_test_acc(out_dir: Path, epochs: int) -> float | None:
    """The highest test accuracy (%) over epochs 1..``epochs`` of the run in ``out_dir``, None while it has fewer
    epochs; ``final_test_acc`` is the last epoch's."""
    accs = last_and_best_test_acc(out_dir, epochs)
    return None if accs is None else accs[1]


def write_metrics(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(out_dir / METRICS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


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
        raise UserError(f"--runs-dir {runs_dir} does not exist; train runs first (python -m training.train --out-dir "
                        f"{runs_dir}/NAME)")
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


def config_beside(checkpoint: Path) -> dict:
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
