"""What an epoch of a run leaves behind, written by the main process: its metrics.jsonl line, its milestone (or
``--save-every``) checkpoint, ``last.pt`` and, with ``--tensorboard``, its scalars."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import RuntimeOptions
from training.engine.run import RNG_NOTE, Run
from training.runtime.distributed import DistInfo
from training.runtime.optional import require
from training.store.checkpoint import save_checkpoint
from training.store.rundir import LAST, milestone_name, write_metrics


def open_tensorboard(out_dir: Path, opts: RuntimeOptions, dist: DistInfo):
    """A ``SummaryWriter`` on ``out_dir/tb`` with ``--tensorboard`` on the main process, else None."""
    if not (opts.tensorboard and dist.is_main):
        return None
    tensorboard = require("torch.utils.tensorboard", "tensorboard", "--tensorboard")
    return tensorboard.SummaryWriter(str(out_dir / "tb"))


def publish_epoch(run: Run, out_dir: Path, row: dict[str, Any], rows: list[dict[str, Any]], opts: RuntimeOptions,
                  writer=None) -> None:
    """Append ``row`` (training.engine.run.end_epoch's, with ``best_test_acc`` = max test_acc over ``rows``) to
    ``rows`` and write metrics.jsonl first, then the milestone checkpoint (the last epoch before each lr decay, the
    final one, every ``--save-every``-th), then last.pt, then the row's scalars to ``writer``: a crash in between
    leaves a state that resume repairs (metrics lines past last.pt's epoch are dropped on resume)."""
    rows.append(row)
    row["best_test_acc"] = max(r["test_acc"] for r in rows)  # the reference trainers' number, beside the last epoch's
    write_metrics(out_dir, rows)
    metrics = {k: row[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc", "best_test_acc")}
    state = run.state(metrics, {"scheme": RNG_NOTE, "seed": run.cfg.seed})
    if run.epoch in set(run.cfg.milestone_epochs()) or opts.keeps(run.epoch):
        save_checkpoint(state, out_dir / milestone_name(run.epoch))
    save_checkpoint(state, out_dir / LAST)
    if writer is not None:
        for key, value in row.items():
            writer.add_scalar(key, value, run.epoch)
