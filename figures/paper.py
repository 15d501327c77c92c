"""The paper's published values and row names, each value with its table, row and column (Park, Yoo, Kwak
2020, arXiv:2009.04120). This is the only place published numbers are typed in; tables put our measured
values beside them, never in their place."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    table: int
    row: str  # the paper's row label
    column: str  # the paper's column label
    value: float  # as printed (same digits)
    note: str = ""  # a footnote when the printed value disagrees with the paper's own formula


# Table 6: NASWOT score (Mellor et al. v1) of ResNet-56 on CIFAR-10, five models per method.
# Our method names -> the paper's row labels, in the paper's row order.
TABLE6_ROWS: dict[str, str] = {
    "scratch": "Scratch",
    "cutmix": "CutMix",
    "label_kd": "Label",
    "feature_kd": "Feature",
    "cutmix_feature_kd": "Feat+CutMix",
}
TABLE6_RUNS = 5  # models per method behind each Table 6 row
TABLE6_Z99 = 2.576  # Table 6's 99% interval: 2.576 * ErrMargin, ErrMargin = std / sqrt(n)
TABLE6_COLUMNS = ("Score (mean)", "Std", "ErrMargin", "99%")

# (method, mean, std, ErrMargin, 99%). Mean, std and Feat+CutMix's 99% (0.239, where the formula gives 0.214) are
# the printed values; the other ErrMargin and 99% entries were typed as the paper's formula gives them to three
# decimals (std / sqrt(5), 2.576 * std / sqrt(5)) because no copy of the paper's table was at hand: check them
# against the PDF.
_TABLE6_PRINTED = (
    ("scratch", -143.96, 0.462, 0.207, 0.532),
    ("cutmix", -143.11, 0.616, 0.275, 0.710),
    ("label_kd", -142.22, 0.560, 0.250, 0.645),
    ("feature_kd", -141.94, 0.353, 0.158, 0.407),
    ("cutmix_feature_kd", -141.34, 0.186, 0.083, 0.239),
)


def recomputed_half_width(std: float, n: int = TABLE6_RUNS) -> float:
    """Table 6's formula for the 99% half-width: 2.576 * std / sqrt(n)."""
    return TABLE6_Z99 * std / math.sqrt(n)


def _table6_row(method: str, mean: float, std: float, err: float, ci: float) -> dict[str, Published]:
    row = TABLE6_ROWS[method]
    formula = round(recomputed_half_width(std), 3)
    note = "" if math.isclose(formula, ci) else (
        f"the paper prints {ci:.3f}; 2.576 x {std:.3f} / sqrt({TABLE6_RUNS}) = {formula:.3f}")
    return {"mean": Published(6, row, "Score (mean)", mean), "std": Published(6, row, "Std", std),
            "err_margin": Published(6, row, "ErrMargin", err), "ci99": Published(6, row, "99%", ci, note)}


TABLE6: dict[str, dict[str, Published]] = {m: _table6_row(m, *vals) for m, *vals in _TABLE6_PRINTED}

# Tables 7-8: filter-normalized loss surfaces (Li et al. 2018) of ResNet-56 at the end of each of the three
# LR steps (epochs 80, 120, 160). The paper gives pictures, no numbers. Rows: our method names -> the paper's
# row labels, in the paper's order (Table 7 calls Label KD "Distill").
SURFACE_TABLES: dict[int, dict[str, str]] = {
    7: {"scratch": "Scratch", "cutmix": "CutMix", "label_kd": "Distill"},
    8: {"scratch": "Scratch", "cutmix": "CutMix", "label_kd": "Label KD", "feature_kd": "Feature KD",
        "cutmix_feature_kd": "CutMix+Feature KD"},
}

# Tables 1-3: pruning x KD on CIFAR-100 (DESIGN §11). Each table's networks and pruning settings in the paper's order,
# and its rows (the first pruned row is Finetuned in the Baseline column and Pre-Distill in the KD columns).
@dataclass(frozen=True)
class PruneSetting:
    network: str  # the paper's label of the network
    model: str  # our architecture (training.models.MODELS)
    rule: str  # training.prune_ckpt.RULES
    remaining: tuple[float, ...]  # remaining ratios as the paper gives them (per stage for l1)

    @property
    def label(self) -> str:
        """The paper's name of the setting, e.g. "ResNet-56 40/70/90%"."""
        return f"{self.network} {'/'.join(f'{100 * r:g}' for r in self.remaining)}%"


PRUNING_TABLES: dict[int, tuple[PruneSetting, ...]] = {
    1: (PruneSetting("ResNet-56", "resnet56", "l1", (0.4, 0.7, 0.9)),
        PruneSetting("ResNet-56", "resnet56", "l1", (0.5, 0.6, 0.7)),
        PruneSetting("ResNet-110", "resnet110", "l1", (0.8, 0.8, 0.8)),
        PruneSetting("ResNet-110", "resnet110", "l1", (0.5, 0.6, 0.7))),
    2: (PruneSetting("VGG-19", "vgg19", "slimming", (0.5,)),
        PruneSetting("ResNet-56", "resnet56", "slimming", (0.5,)),
        PruneSetting("DenseNet-40", "densenet40", "slimming", (0.3,))),
    3: (PruneSetting("ResNet-110", "resnet110", "weight", (0.4,)),),
}
PRUNING_TITLES: dict[int, str] = {1: "L1-norm filter pruning (Li et al. 2017)",
                                  2: "Network Slimming (Liu et al. 2017)",
                                  3: "weight-level magnitude pruning (Han et al. 2015)"}
PRUNING_ROWS: tuple[str, ...] = ("Unpruned", "Finetuned / Pre-Distill", "Post-Distill", "Pre-Post", "Self-Distill",
                                 "Surplus")
PRUNING_KD_COLUMNS: dict[str, str] = {"label": "Label KD", "feature": "Feature KD"}

# Published cells, keyed (table, setting label, row, kd). Only the surplus of Table 1's ResNet-56 40/70/90% with label
# KD (0.71, as issue 11 quotes the paper) is typed: no copy of the paper's Tables 1-3 was at hand offline, so the
# other cells are left blank rather than guessed; add them here from the PDF.
PRUNING_PUBLISHED: dict[tuple[int, str, str, str], Published] = {
    (1, "ResNet-56 40/70/90%", "Surplus", "label"): Published(1, "Surplus", "ResNet-56 40/70/90% Label", 0.71,
                                                             "quoted in issue 11; not checked against the PDF"),
}


# Tables 4-5: augmentation x KD on CIFAR-100 (DESIGN §12): the augmentation at the teacher and/or the student, label
# and feature KD. The network of each table is not typed in this project's copy of the paper: Table 5 uses the
# network of the CutMix paper's numbers it quotes (PyramidNet-200, alpha 240), Table 4 the PyramidNet-110 (alpha 64)
# whose feature-KD beta the appendix gives; the teacher is the student's architecture (DESIGN §4.6). Check both.
@dataclass(frozen=True)
class AugmentSetting:
    network: str  # the paper's label of the network
    model: str  # our architecture (training.models.MODELS)
    augment: str  # "autoaugment" (Self-Augment, Table 4) or "cutmix" (Cross-Augment, Table 5)


AUGMENT_TABLES: dict[int, AugmentSetting] = {
    4: AugmentSetting("PyramidNet-110 (alpha 64)", "pyramidnet110_a64", "autoaugment"),
    5: AugmentSetting("PyramidNet-200 (alpha 240)", "pyramidnet200_a240", "cutmix"),
}
AUGMENT_NAMES: dict[str, str] = {"autoaugment": "AutoAugment", "cutmix": "CutMix"}
# Yun et al. 2019 (CutMix), Table 3: PyramidNet-200 (alpha 240) on CIFAR-100, top-1 error 16.45 (baseline) and 14.47
# (CutMix; mean over three runs of each run's best epoch), printed beside Table 5 as accuracy = 100 - error.
CUTMIX_PAPER: dict[str, Published] = {
    "scratch": Published(5, "Scratch", "CutMix paper", 100 - 16.45, "Yun et al. 2019, Table 3: best-epoch error"),
    "augment": Published(5, "CutMix", "CutMix paper", 100 - 14.47, "Yun et al. 2019, Table 3: best-epoch error"),
}
