"""``python -m training.train``: train one CIFAR network with one method (docs/reference.md "Objectives", "Training runs
and checkpoints", "Errors and outputs").

Every default is the paper's recipe (TrainConfig). Re-running the same command resumes from last.pt.
Under ``torchrun --nproc_per_node K -m training.train ...`` it trains with DistributedDataParallel.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from training.cli.common import (
    WIDTH,
    WORKERS,
    Parser,
    add_common_flags,
    finite_float,
    nonempty,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    run_cli,
)
from training.config import RECIPES, RuntimeOptions, TrainConfig
from training.data.autoaugment import AUGMENTS
from training.data.datasets import DATASETS, NORMALIZATIONS
from training.engine.fit import fit
from training.engine.packed import fit_seeds
from training.log import log
from training.models.registry import MODELS
from training.models.resnet import SHORTCUTS
from training.objectives import METHODS

D = TrainConfig()


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m training.train",
        description="Train a CIFAR ResNet with scratch / CutMix / label KD / feature KD (paper recipe by default). "
                    "Writes OUT_DIR/config.json, metrics.jsonl, last.pt and ckpt_eXXX.pt at the last epoch before "
                    "each LR decay and at the final epoch (and every --save-every epochs). Re-run the same command to "
                    "resume; "
                    "one run directory takes one process at a time.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--method", default=D.method, choices=list(METHODS),
                   help="objective: " + "; ".join(f"{k} = {v.description}" for k, v in METHODS.items()))
    p.add_argument("--model", default=D.model, choices=list(MODELS),
                   help="architecture: CIFAR ResNet-6n+2, vgg19, densenet40, or a PyramidNet (bottleneck, "
                        "CutMix-PyTorch "
                        "definitions; pyramidnet_tiny for demos)")
    p.add_argument("--width", type=WIDTH, default=D.width, help="channels of the first stage (16 = paper)")
    p.add_argument("--shortcut", default=D.shortcut, choices=SHORTCUTS,
                   help="shortcut of the two stride-2 blocks: pad = 2x2 average pool + zero channels with gradient; "
                        "pad-detached = the same without gradient (rethinking-network-pruning); conv = 1x1 conv + BN "
                        "(Li et al.'s trainer)")
    p.add_argument("--dataset", default=D.dataset, choices=list(DATASETS),
                   help="cifar10/cifar100 in torchvision's on-disk format under --data-dir, or npz = a --data-dir with "
                        "one "
                        "*-train.npz and one *-test.npz (uint8 images N x 32 x 32 x 3, int64 labels)")
    p.add_argument("--normalization", default=D.normalization, choices=NORMALIZATIONS,
                   help="input mean/std: cifar = the dataset's true statistics; rethinking = std 0.2023/0.1994/0.2010 "
                        "as in rethinking-network-pruning; cutmix = CutMix-PyTorch's (125.3, 123.0, 113.9)/255, "
                        "(63.0, 62.1, 66.7)/255 for both CIFARs; recorded in the checkpoint, so analyses normalize "
                        "alike")
    p.add_argument("--out-dir", type=nonempty, required=True, help="run directory (created; resumed when it holds the "
                                                                   "same config)")
    p.add_argument(
        "--teacher", default=D.teacher, help="orthokd checkpoint of the teacher (required by the KD methods)"
    )
    # No defaults here, so main can tell a given --seed from none next to --seeds; unset --seed means D.seed.
    p.add_argument("--seed", type=nonnegative_int, default=argparse.SUPPRESS,
                   help=f"seed of init, data order, augmentation and CutMix (default: {D.seed})")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", default=argparse.SUPPRESS, metavar="SEED",
                   help="train one run per seed, all in this one process with one forward/backward per step "
                        "(torch.func.vmap); --out-dir must contain {seed} (e.g. runs/scratch-s{seed}); each run's "
                        "directory is a normal run directory. Not with --seed, --compile or under torchrun")
    p.add_argument("--epochs", type=positive_int, default=D.epochs, help="training epochs")
    p.add_argument("--lr-milestones", type=positive_int, nargs="*", default=list(D.lr_milestones),
                   help="increasing epochs after which the lr is multiplied by --lr-gamma; each also gets a "
                        "ckpt_eXXX.pt; milestones at or past --epochs never apply")
    p.add_argument("--lr-gamma", type=positive_float, default=D.lr_gamma, help="lr decay factor at each milestone")
    p.add_argument("--batch-size", type=positive_int, default=D.batch_size, help="global batch size (split over "
                                                                                 "torchrun ranks)")
    p.add_argument("--lr", type=positive_float, default=D.lr, help="SGD learning rate")
    p.add_argument("--momentum", type=nonnegative_float, default=D.momentum, help="SGD momentum, in [0, 1)")
    p.add_argument("--weight-decay", type=nonnegative_float, default=D.weight_decay, help="SGD weight decay (all "
                                                                                          "parameters)")
    p.add_argument("--kd-alpha", type=finite_float, default=D.kd_alpha,
                   help="label KD: weight alpha of the KL term, eq. (1), in [0, 1]")
    p.add_argument("--kd-temperature", type=positive_float, default=D.kd_temperature, help="label KD: temperature T, "
                                                                                           "eq. (1)")
    p.add_argument("--feature-beta", type=nonnegative_float, default=D.feature_beta,
                   help="feature KD: beta of eq. (2); default per architecture (500 for ResNets)")
    p.add_argument("--cutmix-prob", type=finite_float, default=D.cutmix_prob,
                   help="CutMix: probability a batch is mixed, in [0, 1]")
    p.add_argument(
        "--cutmix-beta", type=positive_float, default=D.cutmix_beta, help="CutMix: lambda ~ Beta(beta, beta)"
    )
    p.add_argument("--max-train-images", type=positive_int, default=D.max_train_images,
                   help="use only the first N training images (for quick runs)")
    p.add_argument("--eval-batch-size", type=positive_int, default=D.eval_batch_size, help="images per forward when "
                                                                                           "evaluating")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA (faster; not the exact fp32 recipe)")
    p.add_argument("--no-channels-last", action="store_true", help="keep NCHW activations (channels_last is faster)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the student and the teacher (forward, and the feature entry points feature KD "
                        "uses)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="replay each epoch's training step (forward, backward, SGD) as one CUDA graph: one launch per "
                        "step instead of hundreds; same math (the epoch's smaller last batch runs eagerly); single and "
                        "--seeds runs, not under torchrun; on a CPU the step runs eagerly (recorded)")
    p.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=D.tf32,
                   help="TF32 convolutions and matmuls on CUDA (faster on Ampere+; recorded in config.json). --no-tf32 "
                        "= "
                        "IEEE fp32; PyTorch itself would use TF32 for convolutions unless told")
    p.add_argument("--no-sync-bn", action="store_true",
                   help="under torchrun, keep per-process BatchNorm statistics (default: SyncBatchNorm over the global "
                        "batch, so W processes take the steps one process takes; recorded)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic GPU kernels and no cuDNN autotuning: a resumed GPU run then equals an "
                        "uninterrupted "
                        "one bitwise (slower); without it GPU runs agree to float tolerance (CPU runs are always "
                        "bitwise)")
    p.add_argument("--init", default=D.init, metavar="CKPT",
                   help="start from this orthokd checkpoint's architecture and weights (e.g. a pruned network from "
                        "python -m training.prune) instead of a random init; --model/--width/--shortcut must match its "
                        "arch; its sha256 is recorded")
    p.add_argument("--keep-zeros", action="store_true",
                   help="hold every zero conv weight of --init at exactly 0 through training (weight masks); automatic "
                        "when --init is weight-pruned (--rule weight)")
    p.add_argument("--slim-s", type=nonnegative_float, default=D.slim_s, metavar="S",
                   help="network-slimming sparsity training: s*sign(gamma) added to every prunable BN gamma gradient "
                        "after backward; 0 = off. Liu et al. 2017 use 1e-4 for VGG, 1e-5 for ResNets and DenseNet")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=D.nesterov,
                   help="Nesterov momentum in SGD (recorded in config.json; on in --recipe pyramidnet)")
    p.add_argument("--augment", default=D.augment, choices=AUGMENTS,
                   help="per-image host augmentation, in --workers DataLoader processes, recorded in config.json: "
                        "none; autoaugment = torchvision AutoAugment(CIFAR10 policy, grey fill 128), one sub-policy "
                        "drawn per image (the paper's random policy), then the usual pad-crop and flip; "
                        "autoaugment-cutout = DeepVoltaire's CIFAR pipeline: crop (pad 4, grey 128), flip, the same "
                        "policy, then Cutout 16x16 (the Tables 4-5 study's default) [none]")
    p.add_argument("--workers", type=WORKERS, default=RuntimeOptions().workers,
                   help="DataLoader worker processes of --augment autoaugment*; default min(8, CPU cores); does not "
                        "change the result (under torchrun each rank starts its own: about cores / ranks each)")
    p.add_argument("--recipe", choices=list(RECIPES), default="paper",
                   help="defaults of the recipe flags: paper = the 160-epoch training recipe; finetune = the pruning "
                        "study's fine-tuning (--epochs 40 --lr 0.001, no --lr-milestones (constant lr), "
                        "--batch-size 64 --momentum 0.9 --weight-decay 1e-4); pyramidnet = CutMix-PyTorch's CIFAR "
                        "PyramidNet recipe (--epochs 300 --lr 0.25 --nesterov --lr-milestones 150 225 --lr-gamma 0.1 "
                        "--batch-size 64 --momentum 0.9 --weight-decay 1e-4); flags given explicitly still win")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run in --out-dir and start again")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars to OUT_DIR/tb")
    p.add_argument("--stop-after-epoch", type=positive_int, default=None,
                   help="stop cleanly after this epoch (for time-limited jobs); re-run the command to continue")
    p.add_argument("--save-every", type=nonnegative_int, default=RuntimeOptions.save_every, metavar="K",
                   help="also keep ckpt_eXXX.pt every K epochs, e.g. for loss-surface trajectories with more than "
                        "three points; 0 = only the milestone checkpoints")
    add_common_flags(p)
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        method=a.method, model=a.model, width=a.width, dataset=a.dataset, data_dir=a.data_dir,
        max_train_images=a.max_train_images, teacher=a.teacher, seed=a.seed, epochs=a.epochs,
        lr_milestones=tuple(a.lr_milestones), lr_gamma=a.lr_gamma, batch_size=a.batch_size, lr=a.lr,
        momentum=a.momentum, weight_decay=a.weight_decay, kd_alpha=a.kd_alpha, kd_temperature=a.kd_temperature,
        feature_beta=a.feature_beta, cutmix_prob=a.cutmix_prob, cutmix_beta=a.cutmix_beta,
        eval_batch_size=a.eval_batch_size, amp_bf16=a.bf16, channels_last=not a.no_channels_last, compile=a.compile,
        shortcut=a.shortcut, normalization=a.normalization, tf32=a.tf32, sync_bn=not a.no_sync_bn,
        init=a.init, keep_zeros=a.keep_zeros, slim_s=a.slim_s, nesterov=a.nesterov, augment=a.augment,
        cuda_graphs=a.cuda_graphs,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags with ``--recipe``'s values as defaults: parsed once to read ``--recipe``, then again with its
    values set as defaults, so flags given explicitly still override the recipe."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if RECIPES[args.recipe]:
        parser.set_defaults(**{k: list(v) if isinstance(v, tuple) else v for k, v in RECIPES[args.recipe].items()})
        args = parser.parse_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    opts = RuntimeOptions(device=args.device, quiet=args.quiet, tensorboard=args.tensorboard,
                          stop_after_epoch=args.stop_after_epoch, save_every=args.save_every,
                          deterministic=args.deterministic, workers=args.workers)
    if hasattr(args, "seeds"):
        if hasattr(args, "seed"):
            build_parser().error("--seed and --seeds exclude each other: pass the seeds to --seeds only")
        if args.init or args.keep_zeros or args.slim_s:  # the packed trainer has no masks or sparsity hook
            build_parser().error("--seeds does not take --init, --keep-zeros or --slim-s; run one command per seed")
        if args.augment != "none":  # the packed trainer builds its split without the AutoAugment workers
            build_parser().error(f"--seeds does not take --augment {args.augment}; run one command per seed")
        args.seed = D.seed
        for last in fit_seeds(config_from_args(args), args.seeds, args.out_dir, opts, overwrite=args.overwrite):
            log(f"done: {last}", args.quiet)
        return 0
    args.seed = getattr(args, "seed", D.seed)
    last = fit(config_from_args(args), args.out_dir, opts, overwrite=args.overwrite)
    log(f"done: {last}", args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
