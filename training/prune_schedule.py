"""``python -m training.prune_schedule --schedule S --kd label|feature --rule R (--remaining ... | --preset A|B)
--out-dir DIR [--teacher T]``: one pruning x KD schedule of the paper (Tables 1-3) as one resumable command:
initial training (scratch or KD; sparsity training for --rule slimming) -> pruning -> fine-tuning (plain or KD).
See training.engine.schedules for the phases and DIR's layout. Re-run the same command to resume.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from training.cli.common import (
    WIDTH,
    Parser,
    add_common_flags,
    finite_float,
    nonempty,
    nonnegative_int,
    positive_float,
    positive_int,
    run_cli,
)
from training.config import FINETUNE_RECIPE, RuntimeOptions, TrainConfig
from training.data.datasets import DATASETS, NORMALIZATIONS
from training.engine.schedules import SCHEDULES, ScheduleSpec, run_schedule
from training.log import log
from training.models.registry import MODELS
from training.models.resnet import SHORTCUTS
from training.prune import remaining_ratio
from training.pruning.rules import RULES

D = TrainConfig()


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m training.prune_schedule", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
               description="Run one pruning x KD schedule: DIR/initial (run directory), DIR/pruned.pt, DIR/finetune "
                           "(run directory), DIR/schedule.json. finetuned = scratch, plain fine-tuning; pre-distill = "
                           "KD "
                           "then plain fine-tuning; post-distill = scratch then KD fine-tuning; pre-post = KD in both; "
                           "self-distill = KD, then KD fine-tuning from the unpruned student of DIR/initial.")
    p.add_argument("--schedule", required=True, choices=list(SCHEDULES), help="which schedule (see above)")
    p.add_argument("--kd", default="label", choices=("label", "feature"), help="label KD (eq. 1) or feature KD (eq. 2)")
    p.add_argument("--rule", required=True, choices=list(RULES), help="; ".join(f"{k} = {v}" for k, v in RULES.items()))
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--remaining", type=remaining_ratio, nargs="+", metavar="R",
                       help="fraction kept, in (0, 1] (see python -m training.prune --help)")
    group.add_argument("--preset", choices=("A", "B"), help="l1 only: Li et al. 2017's pruned-A / pruned-B")
    p.add_argument("--skip", choices=("A", "B"), default=None,
                   help="l1 with --remaining: leave whole the layers Li et al.'s preset A / B skips (its skip list, "
                        "these ratios) [prune every block]")
    p.add_argument("--reuse-regressor", action="store_true",
                   help="--kd feature, pre-post / self-distill: start the fine-tuning's regressor R from the initial "
                        "phase's trained one when its shape fits [off: a fresh R, as the reference's pruning scripts "
                        "save the pruned network alone and Post-Distill has no R to reuse]")
    p.add_argument("--out-dir", type=nonempty, required=True, help="schedule directory (created; re-run to resume)")
    p.add_argument("--teacher", default=None,
                   help="orthokd checkpoint of the external teacher (every schedule but finetuned needs it)")
    p.add_argument("--model", default=D.model, choices=list(MODELS), help="architecture")
    p.add_argument("--width", type=WIDTH, default=D.width, help="ResNets: channels of the first stage")
    p.add_argument("--shortcut", default=D.shortcut, choices=SHORTCUTS, help="ResNets: stride-2 shortcut (see "
                                                                             "training.train)")
    p.add_argument("--dataset", default=D.dataset, choices=list(DATASETS), help="dataset (cifar100 for the paper's "
                                                                                "tables)")
    p.add_argument("--normalization", default=D.normalization, choices=NORMALIZATIONS, help="input mean/std preset")
    p.add_argument("--max-train-images", type=positive_int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=nonnegative_int, default=D.seed, help="seed of every phase")
    p.add_argument("--epochs", type=positive_int, default=D.epochs, help="initial training epochs")
    p.add_argument("--lr-milestones", type=positive_int, nargs="*", default=list(D.lr_milestones),
                   help="initial training: epochs after which the lr is multiplied by 0.1")
    p.add_argument("--lr", type=positive_float, default=D.lr, help="initial training: SGD learning rate")
    p.add_argument("--batch-size", type=positive_int, default=D.batch_size, help="batch size of every phase")
    p.add_argument("--finetune-epochs", type=positive_int, default=FINETUNE_RECIPE["epochs"], help="fine-tuning epochs")
    p.add_argument("--finetune-lr", type=positive_float, default=FINETUNE_RECIPE["lr"],
                   help="fine-tuning learning rate, constant (no decay)")
    p.add_argument("--slim-s", type=positive_float, default=None, metavar="S",
                   help="--rule slimming: sparsity s of the initial training (default: Liu et al. 2017's 1e-4 for "
                        "VGG, 1e-5 for ResNets and DenseNet)")
    p.add_argument("--kd-alpha", type=finite_float, default=D.kd_alpha, help="label KD: alpha of eq. (1), in [0, 1]")
    p.add_argument("--kd-temperature", type=positive_float, default=D.kd_temperature, help="label KD: temperature T")
    p.add_argument("--feature-beta", type=positive_float, default=D.feature_beta,
                   help="feature KD: beta of eq. (2); default per architecture (500 ResNets, 1500 VGG, 1000 DenseNet)")
    p.add_argument("--eval-batch-size", type=positive_int, default=D.eval_batch_size, help="images per forward when "
                                                                                           "evaluating")
    p.add_argument("--overwrite", action="store_true", help="start every phase again")
    add_common_flags(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    base = TrainConfig(model=a.model, width=a.width, shortcut=a.shortcut, dataset=a.dataset, data_dir=a.data_dir,
                       normalization=a.normalization, max_train_images=a.max_train_images, seed=a.seed,
                       epochs=a.epochs, lr_milestones=tuple(a.lr_milestones), lr=a.lr, batch_size=a.batch_size,
                       kd_alpha=a.kd_alpha, kd_temperature=a.kd_temperature, feature_beta=a.feature_beta,
                       eval_batch_size=a.eval_batch_size)
    spec = ScheduleSpec(a.schedule, a.kd, a.rule, tuple(a.remaining or ()), a.preset, a.teacher, base,
                        a.finetune_epochs, a.finetune_lr, a.slim_s, skip=a.skip, reuse_regressor=a.reuse_regressor)
    summary = run_schedule(spec, a.out_dir, RuntimeOptions(device=a.device, quiet=a.quiet), overwrite=a.overwrite)
    p = summary["pruning"]
    print(f"{a.schedule} ({a.kd} KD, {a.rule} {' '.join(f'{r:g}' for r in p['remaining'])}): "
          f"unpruned {summary['initial']['test_acc']:.2f}% -> fine-tuned {summary['finetune']['test_acc']:.2f}%, "
          f"params {p['params_before']:,} -> {p['params_after']:,}, MACs {p['macs_before']:,} -> {p['macs_after']:,}")
    log(f"done: {a.out_dir}/schedule.json", a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
