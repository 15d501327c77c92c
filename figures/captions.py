"""The setup of runs pooled into one table, named in every caption, JSON and CSV (the pooling check itself is
training.store.poolable.check_table)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from training.errors import UserError
from training.store.poolable import describe_config, table_config
from training.store.rundir import CONFIG

Labelled = tuple[str, dict[str, Any]]  # (run name, its config.json)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CONFIG
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{path} is missing or not valid JSON; re-run the run's training command or move "
                        f"{run_dir} out of the runs folder") from None


def setup_line(cfg: dict[str, Any], images: int | None = None) -> str:
    """describe_config's line (model and width, dataset and path, training images, epochs, teacher sha256),
    plus the teacher's path when the run had one."""
    line = describe_config(cfg, images)
    return f"{line} ({cfg['teacher']})" if cfg.get("teacher") else line


def table_setup(rows: Mapping[str, Sequence[Labelled]], images: int | None = None) -> str:
    """One caption line for a whole table: the setup of a distilled run when there is one (it names the
    teacher the KD rows share), else of the first run."""
    cfg = table_config([cfg for runs in rows.values() for _, cfg in runs])
    taught = cfg.get("teacher_sha256")
    return "Runs: " + setup_line(cfg, images) + ("; teacher for the distilled rows only" if taught else "")
