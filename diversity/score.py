"""python -m diversity.score: NASWOT scores of trained models, Table 6 style.

With no checkpoint arguments it scores the final checkpoint (or --milestone E) of every run directory under
--runs-dir, grouped by the method in each run's config.json, and requires --runs runs per method. Runs of one
method must agree on every training setting but the seed, and all methods on everything but their own
settings. stdout: one row per method (n, mean, std, ErrMargin, 99% half-widths with z = 2.576 as Table 6 and
with Student t, Welch p against scratch). --out DIR: scores.json, scores.csv, scores.png (and pairwise.csv).

Any other classifier: --model torchvision:NAME | timm:NAME | package.module:factory (with --model-kwargs JSON);
the arguments are then weights files of that model, one row of models (--group names it; no files: one model
as its factory initializes it, seeded by --seed), scored by diversity.score_models on --dataset cifar10/cifar100/
npz/imagefolder images (--transform torchvision:WEIGHTS or --resize/--crop/--mean/--std give the model's inputs).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from diversity.api import score_model_files
from diversity.config import BATCH_MODES, BN_MODES, SCORES, TRANSFORMS, ScoreConfig
from diversity.report import caption, table_lines, write_results
from diversity.score_figure import plot_scores
from diversity.scoring import CheckpointScore, explicit_items, load_all, pairwise_rows, score_checkpoints
from diversity.stats import summarize_groups
from training.cli.common import (
    Parser,
    add_common_flags,
    nonempty,
    nonnegative_int,
    positive_float,
    positive_int,
    run_cli,
)
from training.cli.model_flags import add_model_flags, refuse_model_flags_without_model
from training.errors import UserError
from training.log import log
from training.objectives import METHODS
from training.runtime.device import resolve_device
from training.store.rundir import RunCheckpoint, discover_runs, require_runs

D = ScoreConfig()
PAPER_RUNS = 5  # Table 6: five models per method
METHOD_ORDER = {m: i for i, m in enumerate(METHODS)}  # scratch first, as Table 6


def build_parser() -> Parser:
    p = Parser(prog="python -m diversity.score", description=__doc__.split("\n\n")[0],
               epilog="Example: python -m diversity.score --runs 5 --runs-dir runs/ --out out/table6")
    p.add_argument("checkpoints", nargs="*",
                   help="checkpoints to score (default: discover run directories in --runs-dir); with --model: "
                        "weights files of that model")
    p.add_argument("--runs", type=positive_int, default=None,
                   help=f"runs required per method ({PAPER_RUNS} when discovering run directories, 1 for explicit "
                        "checkpoints)")
    p.add_argument("--runs-dir", type=nonempty, default="runs", help="folder of run directories (each with "
                                                                     "config.json) [runs]")
    p.add_argument("--milestone", type=positive_int, default=None, help="score ckpt_eXXX.pt of this epoch instead of "
                                                                        "the final one")
    p.add_argument("--score", choices=SCORES, default=D.score,
                   help="naswot = NASWOT arXiv v1 Jacobian correlation (Table 6); naswot-v2 = ICML ReLU-code log-det "
                        "(not comparable to Table 6)")
    p.add_argument("--batch-size", type=positive_int, default=D.batch_size,
                   help=f"images per batch N, at least 2 [{D.batch_size}]")
    p.add_argument("--batches", type=positive_int, default=D.batches,
                   help=f"batches per checkpoint (shared by all unless --batch-mode per-model); the score is their "
                        f"mean [{D.batches}]")
    p.add_argument("--batch-mode", choices=BATCH_MODES, default=D.batch_mode,
                   help="shared = every checkpoint scored on the same batches (paired design); per-model = each "
                        "checkpoint on batches of its own, drawn from (--seed, its weights' sha256), as NASWOT's "
                        "harness scores "
                        "each network on one random batch (with --batches 1) [shared]")
    p.add_argument("--seed", type=nonnegative_int, default=D.seed, help=f"seed of the batch draw [{D.seed}]")
    p.add_argument(
        "--split", choices=("train", "test"), default=D.split, help=f"split the images come from [{D.split}]"
    )
    p.add_argument("--transform", type=transform_choice, default=D.transform, metavar="{none,v1,torchvision:WEIGHTS}",
                   help="none = normalized images; v1 = NASWOT's pad-4 random crop + flip (seeded); with --model "
                        "also torchvision:WEIGHTS = those weights' inference transforms [none]")
    p.add_argument("--bn-mode", choices=BN_MODES, default=D.bn_mode,
                   help="train = normalization layers (BatchNorm) use the batch's statistics as in NASWOT's "
                        "harness, every other layer (Dropout included) stays in eval mode, on a copy; eval = every "
                        "layer in eval mode, exact per-image gradients [train]")
    p.add_argument("--k", type=positive_float, default=D.k,
                   help=f"regulariser k of the v1 score -sum(log(v + k) + 1/(v + k)) [{D.k}]")
    p.add_argument("--dataset", type=nonempty, default=None,
                   help="score on this dataset instead of the one in the checkpoints; with --model: cifar10, cifar100, "
                        "npz or imagefolder [cifar10]")
    p.add_argument("--pairwise", action="store_true",
                   help="also write method x method disagreement, symmetric KL and linear CKA on the test split")
    p.add_argument("--pairwise-images", type=positive_int, default=1000,
                   help="test images used by --pairwise, at least 2 [1000]")
    p.add_argument("--out", type=nonempty, default=None, help="folder for scores.json, scores.csv, scores.png (and "
                                                              "pairwise.csv)")
    p.add_argument("--overwrite", action="store_true", help="replace existing results in --out")
    p.add_argument("--group", default=None, help="with --model: the row name of its models [the --model spec]")
    add_model_flags(p, weights=False, transform=False)
    add_common_flags(p)
    return p


def transform_choice(text: str) -> str:
    """argparse type of --transform: none, v1 or torchvision:WEIGHTS."""
    if text in TRANSFORMS or text.startswith("torchvision:"):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use {', '.join(TRANSFORMS)} or torchvision:WEIGHTS")


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
    cfg = ScoreConfig(score=a.score, batch_size=a.batch_size, batches=a.batches, batch_mode=a.batch_mode, seed=a.seed,
                      split=a.split,
                      transform=a.transform, bn_mode=a.bn_mode, k=a.k, dataset=a.dataset, data_dir=a.data_dir)
    refuse_model_flags_without_model(vars(a))
    out = Path(a.out) if a.out else None
    if out is not None:
        prepare_out(out, a.overwrite)
    if a.model is not None:
        if a.pairwise or a.milestone is not None or a.transform == "v1" or cfg.batch_mode != "shared":
            raise UserError("--pairwise, --milestone, --transform v1 and --batch-mode per-model need orthokd "
                            "checkpoints; leave them out with --model")
        if len(a.checkpoints or [None]) < (a.runs or 1):
            raise UserError(f"--runs {a.runs} asks for {a.runs} models but {len(a.checkpoints)} weights file(s) were "
                            "given")
        device = resolve_device(a.device)
        scores, summaries = score_model_files(a.model, a.checkpoints, cfg, device, model_kwargs=a.model_kwargs,
                                              group=a.group, resize=a.resize, crop=a.crop, mean=a.mean, std=a.std)
        return report(a, cfg, scores, summaries, None, device, out)
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
        f"({cfg.score}, bn-mode {cfg.bn_mode}, batch-mode {cfg.batch_mode}, transform {cfg.transform}) on {device}",
        a.quiet)
    scores = score_checkpoints(loaded, cfg, device, a.quiet)
    summaries = summarize_groups({m: [s.score for s in scores if s.method == m] for m in groups})
    pairwise = pairwise_rows(loaded, cfg, a.pairwise_images, device) if a.pairwise else None
    return report(a, cfg, scores, summaries, pairwise, device, out)


def report(a, cfg: ScoreConfig, scores: list[CheckpointScore], summaries: list, pairwise: list[dict] | None,
           device: torch.device, out: Path | None) -> int:
    """Print the table (and pairwise rows); with --out write scores.json, scores.csv, scores.png."""
    per_run = {s.method: [x.score for x in scores if x.method == s.method] for s in summaries}
    kind = "NASWOT v1 (Table 6 scale)" if cfg.score == "naswot" else "NASWOT v2 log-det (not comparable to Table 6)"
    print(f"# {kind}; {caption(cfg, scores)}")
    print("\n".join(table_lines(summaries)))
    if pairwise:
        print(f"\n# pairwise ({pairwise[0]['images']} test images): method_a method_b pairs disagreement sym_kl cka")
        for r in pairwise:
            print(f"{r['method_a']:<20} {r['method_b']:<20} {r['pairs']:>3} {r['disagreement']:.4f} {r['sym_kl']:.4f} "
                  f"{r['cka']:.4f}")
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
