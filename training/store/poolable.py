"""Which runs may be pooled: into one table row (seeds of one method) or into one table (several methods).

A row of Table 6 or a panel row of Tables 7-8 averages or compares runs, so they must differ only in their
seed; a table compares methods, so its runs must share everything that is not the method itself
(architecture and width, data, image count, schedule and recipe, and one teacher for the KD methods).
Anything else is refused with one line that names the key and two runs that disagree on it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from training.config import with_defaults
from training.errors import UserError
from training.models.registry import MODELS

# config.json keys that never change a result (speed, bookkeeping, the process count of a DDP run, which takes the
# same steps as one process) or that name a file whose sha256 is compared.
IGNORED = frozenset({"seed", "eval_batch_size", "channels_last", "compile", "teacher", "world_size"})
# Keys that belong to a method: they may differ between the rows of one table.
METHOD_KEYS = frozenset({"method", "kd_alpha", "kd_temperature", "feature_beta", "cutmix_prob", "cutmix_beta",
                         "teacher_sha256"})


def _differing_key(a: dict[str, Any], b: dict[str, Any], skip: frozenset[str]) -> str | None:
    for key in sorted((set(a) | set(b)) - skip):
        if a.get(key) != b.get(key):
            return key
    return None


def check_poolable(runs: Sequence[tuple[str, dict[str, Any]]], scope: str = "row") -> None:
    """``runs`` = (label, config.json dict) pairs. ``scope="row"``: every key but the seed must agree.
    ``scope="table"``: every key but the seed and the method's own keys; KD runs must share one teacher sha256."""
    if scope not in ("row", "table"):
        raise ValueError(f"scope must be 'row' or 'table', got {scope!r}")
    skip = IGNORED if scope == "row" else IGNORED | METHOD_KEYS
    if not runs:
        return
    runs = [(label, with_defaults(cfg)) for label, cfg in runs]  # keys added after a run was trained
    first_label, first = runs[0]
    for label, cfg in runs[1:]:
        key = _differing_key(first, cfg, skip)
        if key is not None:
            raise UserError(f"runs {first_label} and {label} differ in {key} ({first.get(key)!r} vs {cfg.get(key)!r}); "
                            f"they cannot be pooled into one {'row' if scope == 'row' else 'table'}: "
                            "retrain one of them with matching flags or put them under different --runs-dir")
    if scope == "table":
        taught = [(label, cfg) for label, cfg in runs if cfg.get("teacher_sha256")]
        for label, cfg in taught[1:]:
            if cfg["teacher_sha256"] != taught[0][1]["teacher_sha256"]:
                raise UserError(f"runs {taught[0][0]} and {label} differ in teacher_sha256 (distilled from different "
                                "teachers); one table needs one teacher: retrain with the same --teacher")


def check_table(rows: Mapping[str, Sequence[tuple[str, dict[str, Any]]]]) -> None:
    """``rows`` = {row name: [(label, config), ...]}: every row's runs may be pooled into one row
    (``check_poolable`` scope "row"), and all runs of all rows into one table (scope "table")."""
    for runs in rows.values():
        check_poolable(list(runs), scope="row")
    check_poolable([r for runs in rows.values() for r in runs], scope="table")


def table_config(configs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The config that speaks for a whole table in a caption: runs of one table agree on all but the method's
    keys, so it is the first that names a teacher (check_table makes that the table's one teacher), else the first."""
    return next((c for c in configs if c.get("teacher_sha256")), configs[0])


def describe_config(cfg: dict[str, Any], images: int | None = None) -> str:
    """One caption line naming what a result was computed from: model and width, dataset and its path,
    training images, epochs and LR steps, teacher."""
    teacher = cfg.get("teacher_sha256")
    data = cfg.get("dataset", "?") + (f" ({cfg['data_dir']})" if cfg.get("data_dir") else " (embedded 5,000-image "
                                                                                          "subset)")
    n = cfg.get("train_images")
    spec = MODELS.get(str(cfg.get("model")))
    flags = spec.flags if spec else ()  # the kwargs --width / --shortcut set: the ResNets' only
    parts = [f"{cfg.get('model', '?')}" + (f" width {cfg.get('width', '?')}" if "width" in flags else ""),
             f"{data}, {n if n is not None else '?'} training images",
             f"{cfg.get('epochs', '?')} epochs, LR x{cfg.get('lr_gamma', 0.1)} after {cfg.get('lr_milestones', [])}"]
    for key, label in (("shortcut", "shortcut"), ("normalization", "normalization")):
        if cfg.get(key) and (key in flags or key != "shortcut"):
            parts.append(f"{label} {cfg[key]}")
    if images is not None:
        parts.append(f"{images} images per evaluation")
    parts.append(f"teacher sha256 {teacher[:12]}" if teacher else "no teacher")
    return "; ".join(parts)
