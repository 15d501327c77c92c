"""Runs pooled into one table: refuse mixed setups, and name the setup in every caption, JSON and CSV."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from training.errors import UserError
from training.pooling import check_poolable, describe_config
from training.rundir import CONFIG

Labelled = tuple[str, dict[str, Any]]  # (run name, its config.json)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{path} is missing or not valid JSON; re-run the run's training command or move "
                        f"{run_dir} out of the runs folder") from None


def check_table(rows: Mapping[str, Sequence[Labelled]]) -> None:
    """Every row's runs differ only in their seed; every run of the table shares all but the method's own keys
    (and the KD rows one teacher). A mismatch is one UserError naming the key and two runs."""
    for runs in rows.values():
        check_poolable(list(runs), scope="row")
    check_poolable([r for runs in rows.values() for r in runs], scope="table")


def setup_line(cfg: dict[str, Any], images: int | None = None) -> str:
    """describe_config's line (model and width, dataset and path, training images, epochs, teacher sha256),
    plus the teacher's path when the run had one."""
    line = describe_config(cfg, images)
    return f"{line} ({cfg['teacher']})" if cfg.get("teacher") else line


def table_setup(rows: Mapping[str, Sequence[Labelled]], images: int | None = None) -> str:
    """One caption line for a whole table: the setup of a distilled run when there is one (it names the
    teacher the KD rows share), else of the first run."""
    cfgs = [cfg for runs in rows.values() for _, cfg in runs]
    taught = [c for c in cfgs if c.get("teacher_sha256")]
    return "Runs: " + setup_line((taught or cfgs)[0], images) + ("; teacher for the distilled rows only" if taught else "")
