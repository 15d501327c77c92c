"""Results of a scoring run: the Table-6-style lines for stdout and the JSON / CSV files, each naming what was
scored (model and width, dataset, training images, epochs, teacher) and on which images."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diversity.config import BN_CAPTION, ScoreConfig
from diversity.scoring import CheckpointScore
from diversity.stats import Summary
from training.store.files import atomic_write_text, provenance, strict_json
from training.store.poolable import describe_config, table_config

HEADER = (
    f"{'method':<20} {'n':>3} {'mean':>10} {'std':>7} {'ErrMargin':>9} {'99% (z)':>9} {'99% (t)':>9} {'Welch p':>9}"
)

# Per-row CSV columns taken from each checkpoint's pooled config (diversity.scoring.pooled_config).
CONFIG_COLUMNS = ("model", "width", "dataset", "data_dir", "normalization", "train_images", "epochs",
                  "checkpoint_epoch", "teacher_sha256")


def table_lines(summaries: Sequence[Summary]) -> list[str]:
    def f(v: float, w: int, d: int) -> str:
        return f"{'-':>{w}}" if math.isnan(v) else f"{v:>{w}.{d}f}"

    lines = [HEADER]
    for s in summaries:
        lines.append(f"{s.method:<20} {s.n:>3} {f(s.mean, 10, 3)} {f(s.std, 7, 3)} {f(s.err_margin, 9, 3)} "
                     f"{f(s.ci99_z, 9, 3)} {f(s.ci99_t, 9, 3)} {f(s.welch_p, 9, 4)}")
    return lines


def training_columns(config: dict[str, Any]) -> dict[str, Any]:
    """CONFIG_COLUMNS of one pooled config, '' where it does not say."""
    return {k: "" if config.get(k) is None else config[k] for k in CONFIG_COLUMNS}


def scored_images(cfg: ScoreConfig, config: dict[str, Any]) -> dict[str, Any]:
    """The images every checkpoint was scored on: batches x batch_size from one split, drawn with one seed."""
    return {"dataset": cfg.dataset or config.get("dataset", "cifar10"),
            "data_dir": cfg.data_dir if cfg.data_dir is not None else config.get("data_dir"),
            "normalization": config.get("normalization", "cifar"), "split": cfg.split,
            "batch_size": cfg.batch_size, "batches": cfg.batches, "images": cfg.batch_size * cfg.batches,
            "seed": cfg.seed, "transform": cfg.transform, "batch_mode": cfg.batch_mode}


def caption(cfg: ScoreConfig, scores: Sequence[CheckpointScore]) -> str:
    """One line: the runs' training setup (training.store.poolable.describe_config) and the scored images."""
    first = scores[0].config
    trained = (f"model {first['model']}" if first.get("external")  # diversity.score --model: no training record
               else describe_config(table_config([s.config for s in scores])))
    im = scored_images(cfg, scores[0].config)
    where = im["data_dir"] or "embedded subset"
    batches = ("batches shared by every checkpoint" if cfg.batch_mode == "shared"
               else "batches drawn per checkpoint from (seed, its weights' sha256)")
    return (f"{trained}; scored on {im['batches']} x {im['batch_size']} = {im['images']} {im['split']} images of "
            f"{im['dataset']} ({where}, normalization {im['normalization']}, draw seed {im['seed']}, {batches}, "
            f"transform {im['transform']}, {BN_CAPTION[cfg.bn_mode]})")


def write_results(out_dir: Path, cfg: ScoreConfig, scores: Sequence[CheckpointScore], summaries: Sequence[Summary],
                  pairwise: list[dict] | None, device: str) -> list[Path]:
    """scores.json (everything), scores.csv (one row per checkpoint and batch), pairwise.csv if computed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    note = (
        "Table 6 scale (NASWOT arXiv v1)" if cfg.score == "naswot" else "NASWOT v2 log-det: NOT comparable to Table 6"
    )
    im = scored_images(cfg, scores[0].config)
    doc = {"caption": caption(cfg, scores), "config": cfg.to_json(), "images": im, "note": note,
           "provenance": provenance(device), "summaries": [s.to_json() for s in summaries],
           "checkpoints": [s.to_json() for s in scores], "pairwise": pairwise}
    paths = [out_dir / "scores.json", out_dir / "scores.csv"]
    atomic_write_text(paths[0], strict_json(doc, indent=2) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "method", "run", "seed", "batch", "score", "score_kind", "bn_mode", "transform", *CONFIG_COLUMNS,
            "scored_dataset", "scored_split", "scored_images", "batch_size", "batches", "draw_seed", "sha256", "path",
        ]
    )
    for s in scores:
        for b, v in enumerate(s.batch_scores):
            w.writerow([s.method, s.run, s.seed, b, f"{v:.6f}", cfg.score, cfg.bn_mode, cfg.transform,
                        *training_columns(s.config).values(), im["dataset"], im["split"], im["images"],
                        im["batch_size"], im["batches"], im["seed"], s.sha256, s.path])
    atomic_write_text(paths[1], buf.getvalue())
    if pairwise:
        setup = training_columns(table_config([s.config for s in scores]))
        setup["table_teacher_sha256"] = setup.pop("teacher_sha256")  # the KD rows' teacher, named for the whole table
        rows = [{**r, **setup} for r in pairwise]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        paths.append(out_dir / "pairwise.csv")
        atomic_write_text(paths[-1], buf.getvalue())
    return paths
