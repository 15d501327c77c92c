"""The setup of runs pooled into one table, named in every caption, JSON and CSV (the pooling check itself is
training.store.poolable.check_table), and the refusal of full-size tables from runs on the embedded subset."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.errors import UserError
from training.store.poolable import describe_config, table_config

Labelled = tuple[str, dict[str, Any]]  # (run name, its config.json)


def refuse_embedded_subset(configs: Mapping[Path, dict[str, Any]]) -> None:
    """Full-size tables from runs trained on the embedded subset (config.json ``data_dir`` null) would be a silent
    toy result: the first such run of ``configs`` (run directory -> its config.json) is one UserError."""
    for run_dir, cfg in configs.items():
        if cfg.get("data_dir") is None:
            raise UserError(f"run {run_dir} was trained on the embedded 5,000-image subset, not the real dataset; "
                            "full-size tables need runs trained with --data-dir (for demo runs pass --preset demo)")


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
