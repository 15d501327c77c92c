"""Every default of a training run, in one frozen dataclass (docs/reference.md "Layout", "Training runs and
checkpoints").

Field comments give meaning, unit and source. The CLI maps flags onto these fields; library code
never sees an ``argparse.Namespace``. ``config.json`` of a run directory is ``dataclasses.asdict`` of
this object, and equality of that dict decides whether a re-run resumes. Constructing a config with a
value no run can use (a batch of 0, a NaN learning rate, alpha outside [0, 1], ...) raises ``UserError``
naming the flag, so the library refuses what the CLI refuses.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from training.data.autoaugment import AUGMENTS
from training.data.datasets import NORMALIZATIONS
from training.errors import UserError
from training.models.resnet import SHORTCUTS

# The largest integer any flag takes: torch and numpy seed, index and size with signed 64-bit integers (seeds: 0..
# 2**63-1 for torch.manual_seed and SeedSequence alike), so a larger value would overflow inside a library.
INT_MAX = 2 ** 63 - 1


# field -> (test, what the value must be); the flag is the field name with dashes.
_CHECKS: dict[str, tuple[Any, str]] = {
    "width": (lambda v: v >= 1, "a positive integer"),
    "max_train_images": (lambda v: v is None or v >= 1, "a positive integer"),
    "seed": (lambda v: 0 <= v <= INT_MAX, "a seed in 0..2**63-1"),
    "epochs": (lambda v: v >= 1, "a positive integer"),
    "lr_gamma": (lambda v: v > 0, "a positive number"),
    "batch_size": (lambda v: v >= 1, "a positive integer"),
    "lr": (lambda v: v > 0, "a positive number"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "kd_alpha": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "kd_temperature": (lambda v: v > 0, "a positive number"),
    "feature_beta": (lambda v: v is None or v >= 0, "a number >= 0"),
    "cutmix_prob": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "cutmix_beta": (lambda v: v > 0, "a positive number"),
    "eval_batch_size": (lambda v: v >= 1, "a positive integer"),
    "slim_s": (lambda v: v >= 0, "a number >= 0 (0 = no sparsity training)"),
    "shortcut": (lambda v: v in SHORTCUTS, "one of " + ", ".join(SHORTCUTS)),
    "normalization": (lambda v: v in NORMALIZATIONS, "one of " + ", ".join(NORMALIZATIONS)),
    "augment": (lambda v: v in AUGMENTS, "one of " + ", ".join(AUGMENTS)),
}


@dataclass(frozen=True)
class TrainConfig:
    method: str = "scratch"  # objective name, a key of training.objectives.METHODS (docs/reference.md "Objectives")
    model: str = "resnet56"  # architecture, a key of training.models.MODELS (docs/reference.md "Models")
    width: int = 16  # channels of the first stage; 16 is He et al. 2016 (stages 16/32/64)
    dataset: str = "cifar10"  # a key of training.data.DATASETS (docs/reference.md "Data")
    data_dir: str | None = None  # None = the embedded CIFAR-10 subset shipped in training/data/embedded/cifar10-mini
    max_train_images: int | None = None  # keep only the first N training images (the npz rows are shuffled)
    # path of an orthokd checkpoint; required by the KD methods (docs/reference.md "Objectives")
    teacher: str | None = None
    seed: int = 0  # seeds model init, data order, augmentation and CutMix draws
    epochs: int = 160  # rethinking-network-pruning CIFAR recipe (docs/reference.md "Training runs and checkpoints")
    lr_milestones: tuple[int, ...] = (80, 120)  # lr x gamma after these epochs (1-based, inclusive)
    lr_gamma: float = 0.1  # multiplicative lr decay at each milestone
    batch_size: int = 64  # global batch (split evenly over torchrun ranks); paper recipe
    lr: float = 0.1  # SGD learning rate; paper recipe
    momentum: float = 0.9  # SGD momentum; paper recipe
    weight_decay: float = 1e-4  # L2 on every parameter, as the reference code; paper recipe
    kd_alpha: float = 0.9  # eq. (1) weight of the KL term (docs/reference.md "Objectives")
    kd_temperature: float = 4.0  # eq. (1) temperature T (docs/reference.md "Objectives")
    # eq. (2) beta; None = per-architecture default (500 for ResNets; docs/reference.md "Objectives")
    feature_beta: float | None = None
    # probability a batch is CutMix-ed (CutMix-PyTorch CIFAR setting; docs/reference.md "Objectives")
    cutmix_prob: float = 0.5
    cutmix_beta: float = 1.0  # lambda ~ Beta(beta, beta) (CutMix-PyTorch CIFAR setting; docs/reference.md "Objectives")
    eval_batch_size: int = 1000  # images per forward at test time; does not change results
    amp_bf16: bool = False  # bf16 autocast for forward passes (CUDA only); off = exact fp32 recipe
    channels_last: bool = True  # memory format of activations; same math, faster convolutions
    compile: bool = False  # torch.compile the training objective
    # Added after the first release; defaults keep older config.json files meaning what they meant.
    # stride-2 shortcut: pad (grad flows), pad-detached (rethinking-network-pruning), conv (1x1, Li)
    shortcut: str = "pad"
    # mean/std preset: cifar (true CIFAR std), rethinking (std 0.2023/0.1994/0.2010) or cutmix (CutMix-PyTorch's)
    normalization: str = "cifar"
    # TF32 convolutions/matmuls on CUDA (PyTorch's default for convs); off = IEEE fp32 (docs/reference.md "Training runs
    # and checkpoints")
    tf32: bool = False
    sync_bn: bool = True  # under torchrun: BatchNorm statistics over the global batch (SyncBatchNorm), as one process
    # Pruning x KD (docs/reference.md "Pruning as the reference code ran it"); defaults = an ordinary run from random
    # init.
    init: str | None = None  # start from this orthokd checkpoint's arch and weights (e.g. a pruned network)
    keep_zeros: bool = False  # keep every zero conv weight of --init at zero (torch.nn.utils.prune masks, Han et al.)
    slim_s: float = 0.0  # network-slimming sparsity s: grad(gamma) += s*sign(gamma) after backward (Liu et al. 2017)
    # feature KD: start R from this orthokd checkpoint's aux regressor (e.g. the initial phase's; shapes must match)
    regressor_init: str | None = None  # None = a fresh random 1x1 conv (docs/reference.md "Objectives")
    # Augmentation x KD (docs/reference.md "Tables 4-5: augmentation × KD"); defaults = the ResNet recipe without
    # AutoAugment.
    nesterov: bool = False  # Nesterov momentum in SGD (CutMix-PyTorch's PyramidNet recipe uses it)
    # per-image host augmentation: none | autoaugment (CIFAR-10 policy, then the device's pad-crop/flip) |
    # autoaugment-cutout (DeepVoltaire's pipeline: grey-padded crop, flip, policy, Cutout 16x16, all on the host)
    augment: str = "none"
    cuda_graphs: bool = False  # replay each epoch's training step as one CUDA graph (training.engine.graphs); same math

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{f.name.replace('_', '-')} {value} is not a finite number; pass a finite value")
            if f.name in _CHECKS and not _CHECKS[f.name][0](value):
                raise UserError(f"--{f.name.replace('_', '-')} {value!r} must be {_CHECKS[f.name][1]}")
        if self.nesterov and self.momentum == 0:
            raise UserError("--nesterov needs a positive --momentum (Nesterov momentum with momentum 0 is undefined)")
        if self.keep_zeros and not self.init:
            raise UserError("--keep-zeros keeps the zero weights of --init; pass --init CKPT (a weight-pruned "
                            "checkpoint)")
        m = self.lr_milestones
        if any(e < 1 for e in m) or any(a >= b for a, b in zip(m, m[1:])):
            raise UserError(f"--lr-milestones {' '.join(map(str, m))} must be increasing epochs >= 1 "
                            "(milestones at or past --epochs never apply)")

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in config.json and in every checkpoint (tuples become lists)."""
        d = asdict(self)
        d["lr_milestones"] = list(self.lr_milestones)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        d["lr_milestones"] = tuple(d.get("lr_milestones", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def milestone_epochs(self) -> list[int]:
        """Epochs that get a ``ckpt_eXXX.pt`` (module-level milestone_epochs)."""
        return milestone_epochs(self.lr_milestones, self.epochs)


def milestone_epochs(lr_milestones: Sequence[int], epochs: int) -> list[int]:
    """Epochs that get a ``ckpt_eXXX.pt`` (and a loss surface in Tables 7-8): the last epoch before each LR decay,
    ``{e in lr_milestones: 0 < e < epochs}``, and the final one, ``epochs``; sorted."""
    return sorted({e for e in lr_milestones if 0 < e < epochs} | {epochs})


# The fine-tuning recipe of the pruning study (rethinking-network-pruning, docs/reference.md "Pruning as the reference
# code ran it"): 40 epochs at a constant
# lr 0.001 (no decay), batch 64, momentum 0.9, weight decay 1e-4.
FINETUNE_RECIPE: dict[str, Any] = {"epochs": 40, "lr": 0.001, "lr_milestones": (), "batch_size": 64,
                                   "momentum": 0.9, "weight_decay": 1e-4}

# CutMix-PyTorch's CIFAR PyramidNet recipe (docs/reference.md "Tables 4-5: augmentation × KD"): 300 epochs, batch 64,
# SGD lr 0.25 with Nesterov momentum 0.9,
# weight decay 1e-4, lr x0.1 after epochs 150 and 225 (its ``lr * 0.1**(epoch // 150) * 0.1**(epoch // 225)``).
PYRAMIDNET_RECIPE: dict[str, Any] = {"epochs": 300, "lr": 0.25, "lr_milestones": (150, 225), "lr_gamma": 0.1,
                                     "batch_size": 64, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True}

# ``--recipe NAME``: the TrainConfig values a recipe sets (flags given explicitly still win); paper = the defaults.
RECIPES: dict[str, dict[str, Any]] = {"paper": {}, "finetune": FINETUNE_RECIPE, "pyramidnet": PYRAMIDNET_RECIPE}


def with_defaults(record: dict[str, Any]) -> dict[str, Any]:
    """A stored config.json record with every TrainConfig key it lacks (written before the key existed) at its
    default, so an older run compares equal to a new one made with the same flags. Records written before
    ``world_size`` was recorded come from one process."""
    return {**TrainConfig().to_json(), "world_size": 1, **record}


# Runtime options that do not change the result; they are not part of config.json.
@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "auto"  # auto = cuda if available, else cpu
    quiet: bool = False  # no progress bar
    tensorboard: bool = False  # write TensorBoard scalars under OUT_DIR/tb
    stop_after_epoch: int | None = None  # stop cleanly after this epoch (time-sliced jobs); a re-run resumes
    save_every: int = 0  # also keep ckpt_eXXX.pt every this many epochs (loss-surface trajectories); 0 = off
    deterministic: bool = False  # deterministic GPU kernels, no cuDNN autotuning: bitwise-repeatable on a GPU, slower
    # DataLoader worker processes of the host augmentation (--augment autoaugment); 0 = in the training process
    workers: int = field(default_factory=lambda: min(8, os.cpu_count() or 1))

    def __post_init__(self) -> None:
        if self.save_every < 0:
            raise UserError(f"--save-every {self.save_every} must be >= 0 (0 = only the milestone checkpoints)")
        if self.workers < 0:
            raise UserError(f"--workers {self.workers} must be a positive integer")
        if self.stop_after_epoch is not None and self.stop_after_epoch < 1:
            raise UserError(f"--stop-after-epoch {self.stop_after_epoch} must be a positive integer")

    def keeps(self, epoch: int) -> bool:
        """Whether ``--save-every`` asks for a ``ckpt_eXXX.pt`` of ``epoch`` (every K-th epoch)."""
        return self.save_every > 0 and epoch % self.save_every == 0
