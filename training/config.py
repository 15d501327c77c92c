"""Every default of a training run, in one frozen dataclass (DESIGN §1, §5).

Field comments give meaning, unit and source. The CLI maps flags onto these fields; library code
never sees an ``argparse.Namespace``. ``config.json`` of a run directory is ``dataclasses.asdict`` of
this object, and equality of that dict decides whether a re-run resumes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    method: str = "scratch"  # objective name, a key of training.methods.METHODS (DESIGN §4)
    model: str = "resnet56"  # architecture, a key of training.models.MODELS (DESIGN §3)
    width: int = 16  # channels of the first stage; 16 is He et al. 2016 (stages 16/32/64)
    dataset: str = "cifar10"  # a key of training.data.DATASETS (DESIGN §2)
    data_dir: str | None = None  # None = the embedded CIFAR-10 subset shipped in data/cifar10-mini
    max_train_images: int | None = None  # keep only the first N training images (the npz rows are shuffled)
    teacher: str | None = None  # path of an orthokd checkpoint; required by the KD methods (DESIGN §4.6)
    seed: int = 0  # seeds model init, data order, augmentation and CutMix draws
    epochs: int = 160  # rethinking-network-pruning CIFAR recipe (DESIGN §5)
    lr_milestones: tuple[int, ...] = (80, 120)  # lr x gamma after these epochs (1-based, inclusive)
    lr_gamma: float = 0.1  # multiplicative lr decay at each milestone
    batch_size: int = 64  # global batch (split evenly over torchrun ranks); paper recipe
    lr: float = 0.1  # SGD learning rate; paper recipe
    momentum: float = 0.9  # SGD momentum; paper recipe
    weight_decay: float = 1e-4  # L2 on every parameter, as the reference code; paper recipe
    kd_alpha: float = 0.9  # eq. (1) weight of the KL term (DESIGN §4.3)
    kd_temperature: float = 4.0  # eq. (1) temperature T (DESIGN §4.3)
    feature_beta: float | None = None  # eq. (2) beta; None = per-architecture default (500 for ResNets, §4.4)
    cutmix_prob: float = 0.5  # probability a batch is CutMix-ed (CutMix-PyTorch CIFAR setting, §4.2)
    cutmix_beta: float = 1.0  # lambda ~ Beta(beta, beta) (CutMix-PyTorch CIFAR setting, §4.2)
    eval_batch_size: int = 1000  # images per forward at test time; does not change results
    amp_bf16: bool = False  # bf16 autocast for forward passes (CUDA only); off = exact fp32 recipe
    channels_last: bool = True  # memory format of activations; same math, faster convolutions
    compile: bool = False  # torch.compile the training objective

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in config.json and in every checkpoint (tuples become lists)."""
        d = asdict(self)
        d["lr_milestones"] = list(self.lr_milestones)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["lr_milestones"] = tuple(d.get("lr_milestones", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def milestone_epochs(self) -> list[int]:
        """Epochs that get a ``ckpt_eXXX.pt``: the last epoch before each decay, and the final one."""
        return sorted({e for e in self.lr_milestones if 0 < e < self.epochs} | {self.epochs})


# Runtime options that do not change the result; they are not part of config.json.
@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "auto"  # auto = cuda if available, else cpu
    quiet: bool = False  # no progress bar
    tensorboard: bool = False  # write TensorBoard scalars under OUT_DIR/tb
    stop_after_epoch: int | None = None  # stop cleanly after this epoch (time-sliced jobs); a re-run resumes
