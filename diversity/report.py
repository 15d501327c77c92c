"""Results of a scoring run: the Table-6-style lines for stdout and the JSON / CSV files."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Sequence

from diversity.config import ScoreConfig
from diversity.scoring import CheckpointScore
from diversity.stats import Summary
from training.checkpoint import atomic_write_text, provenance

HEADER = f"{'method':<20} {'n':>3} {'mean':>10} {'std':>7} {'ErrMargin':>9} {'99% (z)':>9} {'99% (t)':>9} {'Welch p':>9}"


def table_lines(summaries: Sequence[Summary]) -> list[str]:
    def f(v: float, w: int, d: int) -> str:
        return f"{'-':>{w}}" if math.isnan(v) else f"{v:>{w}.{d}f}"

    lines = [HEADER]
    for s in summaries:
        lines.append(f"{s.method:<20} {s.n:>3} {f(s.mean, 10, 3)} {f(s.std, 7, 3)} {f(s.err_margin, 9, 3)} "
                     f"{f(s.ci99_z, 9, 3)} {f(s.ci99_t, 9, 3)} {f(s.welch_p, 9, 4)}")
    return lines


def write_results(out_dir: Path, cfg: ScoreConfig, scores: Sequence[CheckpointScore], summaries: Sequence[Summary],
                  pairwise: list[dict] | None, device: str) -> list[Path]:
    """scores.json (everything), scores.csv (one row per checkpoint and batch), pairwise.csv if computed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    note = "Table 6 scale (NASWOT arXiv v1)" if cfg.score == "naswot" else "NASWOT v2 log-det: NOT comparable to Table 6"
    doc = {"config": cfg.to_json(), "note": note, "provenance": provenance(device),
           "summaries": [s.to_json() for s in summaries], "checkpoints": [s.to_json() for s in scores],
           "pairwise": pairwise}
    paths = [out_dir / "scores.json", out_dir / "scores.csv"]
    atomic_write_text(paths[0], json.dumps(doc, indent=2, allow_nan=True) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "run", "seed", "batch", "score", "score_kind", "bn_mode", "transform", "sha256", "path"])
    for s in scores:
        for b, v in enumerate(s.batch_scores):
            w.writerow([s.method, s.run, s.seed, b, f"{v:.6f}", cfg.score, cfg.bn_mode, cfg.transform, s.sha256, s.path])
    atomic_write_text(paths[1], buf.getvalue())
    if pairwise:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(pairwise[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(pairwise)
        paths.append(out_dir / "pairwise.csv")
        atomic_write_text(paths[-1], buf.getvalue())
    return paths
