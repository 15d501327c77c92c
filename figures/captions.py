"""The setup of runs pooled into one table, named in every caption, JSON and CSV (the pooling check itself is
training.store.poolable.check_table)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from training.store.poolable import describe_config, table_config

Labelled = tuple[str, dict[str, Any]]  # (run name, its config.json)


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
