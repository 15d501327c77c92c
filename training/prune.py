"""``python -m training.prune CKPT --rule l1|slimming|weight --remaining R [R R] | --preset A|B --out PRUNED.pt``:
prune a trained checkpoint into a schema-v1 checkpoint of the smaller network (docs/reference.md "Pruning as the
reference code ran it"; training.pruning.rules).

Fine-tune it with ``python -m training.train --init PRUNED.pt --recipe finetune --model ... --out-dir ...``.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from training.cli.common import Parser, number_flag, output_file, run_cli
from training.errors import UserError
from training.pruning.rules import RULES, describe, prune_checkpoint
from training.store.checkpoint import save_checkpoint

remaining_ratio = number_flag(float, lambda v: 0.0 < v <= 1.0, "a remaining ratio in (0, 1]")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m training.prune",
               description="Prune a trained orthokd checkpoint; the output's arch rebuilds the pruned network, so "
                           "training (--init), landscape and diversity load it like any checkpoint.")
    p.add_argument("checkpoint", metavar="CKPT", help="orthokd checkpoint to prune (e.g. RUN/last.pt)")
    p.add_argument("--rule", required=True, choices=list(RULES), help="; ".join(f"{k} = {v}" for k, v in RULES.items()))
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--remaining", type=remaining_ratio, nargs="+", metavar="R",
                       help="fraction kept, in (0, 1]: l1 = one ratio for all stages or three per-stage ratios "
                            "(Table 1: 0.4 0.7 0.9, 0.5 0.6 0.7, 0.8 0.8 0.8); slimming = the global channel "
                            "fraction (Table 2: 0.5 VGG-19 / ResNet-56, 0.3 DenseNet-40); weight = the global conv "
                            "weight fraction (Table 3: 0.4)")
    group.add_argument("--preset", choices=("A", "B"),
                       help="l1 only: Li et al. 2017's pruned-A / pruned-B ratios and skipped layers (ResNet-56/110)")
    p.add_argument("--skip", choices=("A", "B"), default=None,
                   help="l1 with --remaining: leave whole the layers Li et al.'s preset A / B skips (its skip list, "
                        "your ratios; figures.study's Table 1 uses B's) [prune every block]")
    p.add_argument("--out", type=output_file, required=True, metavar="PRUNED.pt", help="output checkpoint (written "
                                                                                       "atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out (refused otherwise)")
    p.add_argument("--force", action="store_true",
                   help="write the pruned network even when a conv or linear layer is left without a single weight "
                        "(refused otherwise, e.g. --rule weight --remaining 1e-9)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if Path(args.out).resolve() == Path(args.checkpoint).resolve():
        raise UserError("--out is the checkpoint being pruned; choose another output path")
    if Path(args.out).exists() and not args.overwrite:
        raise UserError(f"--out {args.out} exists; pass --overwrite to replace it, or choose another output path")
    ckpt = prune_checkpoint(args.checkpoint, args.rule, args.remaining or (), args.preset, args.skip, args.force)
    save_checkpoint(ckpt, args.out)
    for line in describe(ckpt["pruning"]):
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
