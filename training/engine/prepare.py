"""What a run needs before its first step, the same for a single run and for packed runs: the checked config, the
data splits, the teacher with its sha256 and the resolved ``--init`` (``prepare``), then its run directories
refused, locked and started (``claimed_run_dirs``)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from training.config import TrainConfig
from training.data.datasets import ImageSet, load_split
from training.engine.init import prepare_init
from training.engine.run import check_config, load_teacher
from training.log import log
from training.runtime.distributed import DistInfo
from training.store.lock import exclusive_lock
from training.store.rundir import check_run_dir, start_run_dir


@dataclass(frozen=True)
class Prepared:
    """The inputs of a run: ``cfg`` with ``--init`` resolved, the splits, the teacher (None without one) with its
    sha256, and the sha256 of the ``--init`` checkpoint (None without one)."""
    cfg: TrainConfig
    train_set: ImageSet
    test_set: ImageSet
    teacher: nn.Module | None
    teacher_sha: str | None
    init_sha: str | None


def prepare(cfg: TrainConfig, dist: DistInfo) -> Prepared:
    """Check ``cfg`` (training.engine.run.check_config), load the train and test splits, the teacher (refused when
    it was trained on another dataset or predicts another number of classes) and resolve ``--init``."""
    check_config(cfg, dist)
    train_set = load_split(cfg.dataset, "train", cfg.data_dir, cfg.max_train_images, cfg.normalization)
    test_set = load_split(cfg.dataset, "test", cfg.data_dir, normalization=cfg.normalization)
    teacher, teacher_sha = (
        load_teacher(cfg.teacher, train_set.num_classes, cfg.dataset) if cfg.teacher else (None, None)
    )
    cfg, init_sha = prepare_init(cfg, train_set.num_classes)
    return Prepared(cfg, train_set, test_set, teacher, teacher_sha, init_sha)


@contextlib.contextmanager
def claimed_run_dirs(cfg: TrainConfig, dirs: Sequence[Path], records: Sequence[dict[str, Any]], overwrite: bool,
                     quiet: bool, is_main: bool = True) -> Iterator[list[str]]:
    """Every directory checked against its config.json record before anything is created or locked (a refusal
    leaves them untouched), a note on ``--lr-milestones`` past ``--epochs``; then, on the main process, each
    directory created and locked for the whole ``with`` block, checked again (nobody else changes it now) and
    started. Yields each directory's decision (``check_run_dir``: "resume" or a fresh start)."""
    decisions = [check_run_dir(d, rec, overwrite) for d, rec in zip(dirs, records)]
    late = [e for e in cfg.lr_milestones if e >= cfg.epochs]
    if late:
        log(f"note: --lr-milestones {late} lie at or past --epochs {cfg.epochs} and do not apply in this run", quiet)
    with contextlib.ExitStack() as locks:
        if is_main:
            for d in dirs:
                d.mkdir(parents=True, exist_ok=True)
                locks.enter_context(exclusive_lock(d, f"run directory {d}"))
            decisions = [check_run_dir(d, rec, overwrite) for d, rec in zip(dirs, records)]
            for d, rec, decision in zip(dirs, records, decisions):
                start_run_dir(d, rec, decision)
        yield decisions
