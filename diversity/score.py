"""python -m diversity.score: NASWOT scores of trained models, Table 6 style.

With no checkpoint arguments it scores the final checkpoint (or --milestone E) of every run directory under
--runs-dir, grouped by the method in each run's config.json, and requires --runs runs per method. Runs of one
method must agree on every training setting but the seed, and all methods on everything but their own
settings. stdout: one row per method (n, mean, std, ErrMargin, 99% half-widths with z = 2.576 as Table 6 and
with Student t, Welch p against scratch). --out DIR: scores.json, scores.csv, scores.png (and pairwise.csv).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch

from diversity.config import BN_MODES, SCORES, TRANSFORMS, ScoreConfig
from diversity.pairwise import method_matrix, model_outputs
from diversity.plot import plot_scores
from diversity.report import caption, table_lines, write_results
from diversity.runs import RunCheckpoint, discover_runs, require_runs
from diversity.scoring import load_all, score_checkpoints
from diversity.stats import summarize_groups
from training.checkpoint import load_checkpoint
from training.cli import (Parser, add_common_flags, log, nonnegative_int, positive_float, positive_int, resolve_device,
                          run_cli)
from training.data import checkpoint_split
from training.errors import UserError
from training.methods import METHODS

D = ScoreConfig()
PAPER_RUNS = 5  # Table 6: five models per method
METHOD_ORDER = {m: i for i, m in enumerate(METHODS)}  # scratch first, as Table 6


def build_parser() -> Parser:
    p = Parser(prog="python -m diversity.score", description=__doc__.split("\n\n")[0],
               epilog="Example: python -m diversity.score --runs 5 --runs-dir runs/ --out out/table6")
    p.add_argument("checkpoints", nargs="*", help="checkpoints to score (default: discover run directories in --runs-dir)")
    p.add_argument("--runs", type=positive_int, default=None,
                   help=f"runs required per method ({PAPER_RUNS} when discovering run directories, 1 for explicit checkpoints)")
    p.add_argument("--runs-dir", default="runs", help="folder of run directories (each with config.json) [runs]")
    p.add_argument("--milestone", type=positive_int, default=None, help="score ckpt_eXXX.pt of this epoch instead of the final one")
    p.add_argument("--score", choices=SCORES, default=D.score,
                   help="naswot = NASWOT arXiv v1 Jacobian correlation (Table 6); naswot-v2 = ICML ReLU-code log-det "
                        "(not comparable to Table 6)")
    p.add_argument("--batch-size", type=positive_int, default=D.batch_size,
                   help=f"images per batch N, at least 2 [{D.batch_size}]")
    p.add_argument("--batches", type=positive_int, default=D.batches,
                   help=f"fixed batches per checkpoint, shared by all; the score is their mean [{D.batches}]")
    p.add_argument("--seed", type=nonnegative_int, default=D.seed, help=f"seed of the batch draw [{D.seed}]")
    p.add_argument("--split", choices=("train", "test"), default=D.split, help=f"split the images come from [{D.split}]")
    p.add_argument("--transform", choices=TRANSFORMS, default=D.transform,
                   help="none = normalized images; v1 = NASWOT's pad-4 random crop + flip (seeded) [none]")
    p.add_argument("--bn-mode", choices=BN_MODES, default=D.bn_mode,
                   help="train = BatchNorm batch statistics as in NASWOT's harness (on a copy); eval = exact "
                        "per-image gradients [train]")
    p.add_argument("--k", type=positive_float, default=D.k,
                   help=f"regulariser k of the v1 score -sum(log(v + k) + 1/(v + k)) [{D.k}]")
    p.add_argument("--dataset", default=None, help="score on this dataset instead of the one in the checkpoints")
    p.add_argument("--pairwise", action="store_true",
                   help="also write method x method disagreement, symmetric KL and linear CKA on the test split")
    p.add_argument("--pairwise-images", type=positive_int, default=1000,
                   help="test images used by --pairwise, at least 2 [1000]")
    p.add_argument("--out", default=None, help="folder for scores.json, scores.csv, scores.png (and pairwise.csv)")
    p.add_argument("--overwrite", action="store_true", help="replace existing results in --out")
    add_common_flags(p)
    return p


def explicit_items(paths: Sequence[str]) -> list[RunCheckpoint]:
    items = []
    for p in paths:
        ck = load_checkpoint(p)
        items.append(RunCheckpoint(ck["method"]["name"], None, Path(p), ck["config"].get("seed")))
    return items


def pairwise_rows(loaded, cfg: ScoreConfig, n_images: int, device: torch.device) -> list[dict]:
    """method_matrix on the first n_images of the test split (checkpoint_split: normalized as trained)."""
    images = checkpoint_split(loaded[0][1]["config"], "test", n_images, cfg.dataset, cfg.data_dir)
    x = images.normalized(device)
    outputs: dict[str, list] = {}
    for it, _ck, model in loaded:
        try:
            outputs.setdefault(it.method, []).append(model_outputs(model.to(device), x))
        except UserError as e:
            raise UserError(f"{it.path}: {e}") from None
    return [{**r, "split": "test", "images": len(images)} for r in method_matrix(outputs)]


def prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse an --out that cannot take the results before any work starts."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder (it is created if missing)")
    if (out / "scores.json").exists() and not overwrite:
        raise UserError(f"{out / 'scores.json'} exists; pass --overwrite to replace it or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create --out {out} ({e.strerror or e}); choose a writable folder") from None


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.batch_size < 2:
        raise UserError(f"--batch-size {a.batch_size} is too small: a correlation needs at least 2 images per batch")
    if a.pairwise and a.pairwise_images < 2:
        raise UserError(f"--pairwise-images {a.pairwise_images} is too small: CKA needs at least 2 images")
    cfg = ScoreConfig(score=a.score, batch_size=a.batch_size, batches=a.batches, seed=a.seed, split=a.split,
                      transform=a.transform, bn_mode=a.bn_mode, k=a.k, dataset=a.dataset, data_dir=a.data_dir)
    out = Path(a.out) if a.out else None
    if out is not None:
        prepare_out(out, a.overwrite)
    if a.checkpoints and a.milestone is not None:
        raise UserError("--milestone picks checkpoints in --runs-dir; with checkpoint arguments pass the "
                        "ckpt_eXXX.pt files of that epoch instead")
    if a.checkpoints:
        items = explicit_items(a.checkpoints)
        runs = a.runs or 1
    else:
        items = [i for group in discover_runs(Path(a.runs_dir), a.milestone).values() for i in group]
        runs = a.runs or PAPER_RUNS
    items.sort(key=lambda it: (METHOD_ORDER.get(it.method, len(METHOD_ORDER)), it.method))
    groups: dict[str, list[RunCheckpoint]] = {}
    for it in items:
        groups.setdefault(it.method, []).append(it)
    require_runs(groups, runs)
    device = resolve_device(a.device)
    loaded = load_all(items)
    log(f"scoring {len(items)} checkpoints of {len(groups)} methods on {cfg.batches} batch(es) of {cfg.batch_size} "
        f"({cfg.score}, bn-mode {cfg.bn_mode}, transform {cfg.transform}) on {device}", a.quiet)
    scores = score_checkpoints(loaded, cfg, device, a.quiet)
    per_run = {m: [s.score for s in scores if s.method == m] for m in groups}
    summaries = summarize_groups(per_run)
    kind = "NASWOT v1 (Table 6 scale)" if cfg.score == "naswot" else "NASWOT v2 log-det (not comparable to Table 6)"
    print(f"# {kind}; {caption(cfg, scores)}")
    print("\n".join(table_lines(summaries)))
    pairwise = pairwise_rows(loaded, cfg, a.pairwise_images, device) if a.pairwise else None
    if pairwise:
        print(f"\n# pairwise ({pairwise[0]['images']} test images): method_a method_b pairs disagreement sym_kl cka")
        for r in pairwise:
            print(f"{r['method_a']:<20} {r['method_b']:<20} {r['pairs']:>3} {r['disagreement']:.4f} {r['sym_kl']:.4f} {r['cka']:.4f}")
    if out is not None:
        try:
            paths = write_results(out, cfg, scores, summaries, pairwise, str(device))
            plot_scores(per_run, summaries, out / "scores.png", kind)
        except OSError as e:
            raise UserError(f"cannot write the results to --out {out} ({e.strerror or e}); free space or choose "
                            "another --out") from None
        log("wrote " + ", ".join(str(p) for p in [*paths, out / "scores.png"]), a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
