"""The paper's published values and row names, each value with its table, row and column (Park, Yoo, Kwak
2020, arXiv:2009.04120). This is the only place published numbers are typed in; tables put our measured
values beside them, never in their place."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    table: int
    row: str  # the paper's row label
    column: str  # the paper's column label
    value: float  # as printed (same digits)
    note: str = ""  # a footnote when the printed value disagrees with the paper's own arithmetic (figures.paper.NOTES)
    gain: float | None = None  # the gain printed with the value: in parentheses (Tables 1-3), in Section 5's text (4-5)
    digits: int = 2  # decimals as printed

    def text(self) -> str:
        """The cell as the paper prints it: '73.76 (+2.53)' (the gain only where one is printed)."""
        gain = "" if self.gain is None else f" ({self.gain:+.{self.digits}f})"
        return f"{self.value:.{self.digits}f}{gain}"


# Where the paper's own arithmetic disagrees with a printed number, keyed (table, row, column) as in Published. A
# test recomputes every printed gain, surplus, sum, ErrMargin and 99% interval from the printed cells and checks
# that exactly these numbers disagree (beyond the rounding of the printed digits).
NOTES: dict[tuple[int, str, str], str] = {
    (4, "PyramidNet-200 (alpha 300), Section 5 text", "sum of gains, Label"):
        "Section 5 prints 2.24; its own gains give 1.76 + 0.50 = 2.26",
    (4, "PyramidNet-200 (alpha 300), Section 5 text", "sum of gains, Feature"):
        "Section 5 prints 2.73; its own gains give 1.76 + 0.99 = 2.75",
    (5, "PyramidNet-200 (alpha 240), Section 5 text", "reported CutMix - ours"):
        "Section 5 says 0.67% worse; the printed cells give 85.53 - 84.87 = 0.66",
    (6, "Feature", "ErrMargin"): "0.353 / sqrt(5) = 0.1579 rounds to 0.158; the printed 0.157 needs std <= 0.3522 "
                                 "(the printed 99%, 0.406, fits std 0.3524)",
    (6, "Feat+CutMix", "ErrMargin"): "0.186 / sqrt(5) = 0.083; the printed 0.092 fits std 0.206 (or n = 4: "
                                     "0.186 / 2 = 0.093)",
    (6, "Feat+CutMix", "99%"): "2.576 x 0.186 / sqrt(5) = 0.214; the printed 0.239 fits std 0.207 (or n = 4: 0.240)",
}


def published(table: int, row: str, column: str, value: float, gain: float | None = None,
              digits: int = 2) -> Published:
    """A printed number with its note from NOTES, if any."""
    return Published(table, row, column, value, NOTES.get((table, row, column), ""), gain, digits)


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

# (method, mean, std, ErrMargin, 99%) as printed. ErrMargin = std / sqrt(5) and 99% = 2.576 x ErrMargin hold to
# the rounding of the printed digits except in the cells NOTES names.
_TABLE6_PRINTED = (
    ("scratch", -143.96, 0.462, 0.207, 0.532),
    ("cutmix", -143.11, 0.616, 0.275, 0.709),
    ("label_kd", -142.22, 0.560, 0.250, 0.645),
    ("feature_kd", -141.94, 0.353, 0.157, 0.406),
    ("cutmix_feature_kd", -141.34, 0.186, 0.092, 0.239),
)


def _table6_row(method: str, mean: float, std: float, err: float, ci: float) -> dict[str, Published]:
    row = TABLE6_ROWS[method]
    return {"mean": published(6, row, "Score (mean)", mean), "std": published(6, row, "Std", std, digits=3),
            "err_margin": published(6, row, "ErrMargin", err, digits=3),
            "ci99": published(6, row, "99%", ci, digits=3)}


TABLE6: dict[str, dict[str, Published]] = {m: _table6_row(m, *vals) for m, *vals in _TABLE6_PRINTED}


# Tables 7-8: filter-normalized loss surfaces (Li et al. 2018) of ResNet-56 at the end of each of the three
# LR steps (epochs 80, 120, 160). The paper gives pictures, no numbers. Rows: our method names -> the paper's
# row labels, in the paper's order (Table 7 calls Label KD "Distill").
SURFACE_TABLES: dict[int, dict[str, str]] = {
    7: {"scratch": "Scratch", "cutmix": "CutMix", "label_kd": "Distill"},
    8: {"scratch": "Scratch", "cutmix": "CutMix", "label_kd": "Label KD", "feature_kd": "Feature KD",
        "cutmix_feature_kd": "CutMix+Feature KD"},
}

# Tables 1-3: pruning x KD on CIFAR-100 (docs/reference.md "Pruning as the reference code ran it"). Each table's
# networks and pruning settings in the paper's order,
# and its rows (the first pruned row is Finetuned in the Baseline column and Pre-Distill in the KD columns).
@dataclass(frozen=True)
class PruneSetting:
    network: str  # the paper's label of the network
    model: str  # our architecture (training.models.MODELS)
    rule: str  # training.pruning.rules.RULES
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
KD_COLUMNS: dict[str, str] = {"label": "Label KD", "feature": "Feature KD"}  # Tables 1-5: the KD column of each --kd

# Tables 1-3 as printed, per setting: the Scratch row (Unpruned, Finetuned) and the Label and Feature rows (Unpruned,
# Pre-Distill, Post-Distill, Pre-Post, Self-Distill, Surplus); (value, gain) where the paper prints a gain in
# parentheses (Unpruned: over Unpruned Scratch; Self-Distill: over Finetuned Scratch). Every printed gain and surplus
# agrees with the printed cells (checked by a test).
_PRUNING_PRINTED: dict[tuple[int, str], tuple[tuple, ...]] = {
    (1, "ResNet-56 40/70/90%"): ((71.23, 70.06), ((73.76, 2.53), 72.05, 71.37, 73.24, (73.30, 3.24), 0.71),
                                 ((73.60, 2.37), 71.27, 70.93, 72.44, (72.81, 2.75), 0.38)),
    (1, "ResNet-56 50/60/70%"): ((71.23, 68.55), (73.76, 70.58, 70.49, 72.51, (72.58, 4.03), 1.50),
                                 (73.60, 69.97, 69.83, 71.76, (71.81, 3.26), 0.89)),
    (1, "ResNet-110 80/80/80%"): ((72.76, 71.71), ((74.82, 2.06), 72.68, 72.28, 74.25, (74.40, 2.69), 0.63),
                                  ((74.98, 2.22), 73.06, 72.41, 74.15, (74.47, 2.76), 0.54)),
    (1, "ResNet-110 50/60/70%"): ((72.76, 70.60), (74.82, 72.43, 71.71, 73.71, (73.97, 3.37), 1.31),
                                  (74.98, 71.98, 71.26, 73.42, (73.71, 3.11), 0.89)),
    (2, "VGG-19 50%"): ((72.03, 72.30), ((73.84, 1.81), 73.63, 72.36, 73.80, (73.91, 1.61), -0.20),
                        ((73.89, 1.86), 73.06, 72.41, 73.91, (74.21, 1.91), 0.05)),
    (2, "ResNet-56 50%"): ((73.07, 72.45), ((74.52, 1.45), 74.32, 73.25, 74.39, (74.78, 2.33), 0.88),
                           ((74.63, 1.56), 73.89, 73.62, 74.37, (74.54, 2.09), 0.53)),
    (2, "DenseNet-40 30%"): ((73.14, 72.30), ((74.96, 1.82), 74.32, 73.64, 74.59, (74.31, 2.01), 0.19),
                             ((74.19, 1.05), 74.17, 73.81, 74.40, (74.43, 2.13), 1.08)),
    (3, "ResNet-110 40%"): ((72.82, 72.02), ((75.01, 2.19), 73.38, 73.27, 75.08, (74.85, 2.83), 0.64),
                            ((74.41, 1.59), 73.08, 73.29, 74.02, (74.20, 2.18), 0.59)),
}
PRUNING_TRAIN_TYPES: dict[str, str] = {"baseline": "Scratch", "label": "Label", "feature": "Feature"}  # paper's rows


def _pruning_published() -> dict[tuple[int, str, str, str], Published]:
    out = {}
    for (table, setting), printed in _PRUNING_PRINTED.items():
        for column, cells in zip(PRUNING_TRAIN_TYPES, printed):
            for row, cell in zip(PRUNING_ROWS, cells):
                value, gain = cell if isinstance(cell, tuple) else (cell, None)
                out[(table, setting, row, column)] = published(
                    table, f"{setting} {PRUNING_TRAIN_TYPES[column]}", row, value, gain)
    return out


# Every printed cell of Tables 1-3, keyed (table, setting label, row of PRUNING_ROWS, "baseline" | "label" | "feature").
PRUNING_PUBLISHED: dict[tuple[int, str, str, str], Published] = _pruning_published()


# Tables 4-5: augmentation x KD on CIFAR-100 (docs/reference.md "Tables 4-5: augmentation × KD"): the augmentation at
# the teacher and/or the student, label
# and feature KD. Table 4 is "Pyramid-200-300" (PyramidNet-200, alpha 300: the depth-alpha pattern of Table 5's
# labels, and CutMix-PyTorch's default alpha); Table 5 has two blocks, "Pyramid-110-64" and "Pyramid-200-240". The
# teacher is the student's architecture (docs/reference.md "Objectives"; the paper does not say).
@dataclass(frozen=True)
class AugmentSetting:
    network: str  # the paper's network, e.g. "PyramidNet-200 (alpha 300)" for its "Pyramid-200-300"
    model: str  # our architecture (training.models.MODELS)
    augment: str  # "autoaugment" (Self-Augment, Table 4) or "cutmix" (Cross-Augment, Table 5)


AUGMENT_TABLES: dict[int, tuple[AugmentSetting, ...]] = {
    4: (AugmentSetting("PyramidNet-200 (alpha 300)", "pyramidnet200_a300", "autoaugment"),),
    5: (AugmentSetting("PyramidNet-110 (alpha 64)", "pyramidnet110_a64", "cutmix"),
        AugmentSetting("PyramidNet-200 (alpha 240)", "pyramidnet200_a240", "cutmix")),
}
AUGMENT_NAMES: dict[str, str] = {"autoaugment": "AutoAugment", "cutmix": "CutMix"}

# Tables 4-5 as printed, per network: Scratch, the augmentation alone, then label KD and feature KD with the
# augmentation at (teacher, student) = (no, no), (no, yes), (yes, no), (yes, yes). Table 5's caption says "test
# classification error (%)", but its values are accuracies (they rise with CutMix, and 83.55 / 85.53 = 100 - the CutMix
# paper's 16.45 / 14.47 errors).
_AUGMENT_PRINTED: dict[tuple[int, str], tuple] = {
    (4, "PyramidNet-200 (alpha 300)"): (83.46, 85.22, (83.96, 86.84, 85.32, 87.27), (84.45, 86.18, 86.49, 86.61)),
    (5, "PyramidNet-110 (alpha 64)"): (80.27, 82.09, (81.92, 82.31, 82.40, 83.72), (81.25, 83.19, 83.13, 83.35)),
    (5, "PyramidNet-200 (alpha 240)"): (83.41, 84.87, (84.34, 85.43, 83.52, 86.39), (84.56, 86.08, 85.53, 86.31)),
}
# Section 5's text per network: the gains over Scratch of the augmentation alone, of label and feature KD (no/no), of
# label and feature KD with the augmentation at both (yes/yes), and the "sums of each gain" (augmentation + KD).
_AUGMENT_TEXT: dict[tuple[int, str], tuple] = {
    (4, "PyramidNet-200 (alpha 300)"): (1.76, (0.50, 0.99), (3.81, 3.15), (2.24, 2.73)),
    (5, "PyramidNet-110 (alpha 64)"): (1.82, (1.65, 0.98), (3.45, 3.08), (3.47, 2.80)),
    (5, "PyramidNet-200 (alpha 240)"): (1.46, (0.93, 1.15), (2.98, 2.90), (2.39, 2.61)),
}
# The values Table 5 marks * ("the network's reported score on the corresponding paper"): Yun et al. 2019 (CutMix),
# 100 - top-1 error, each run's best epoch; PyramidNet-110: 19.85 / 17.97, PyramidNet-200: 16.45 / 14.47.
_AUGMENT_REPORTED: dict[tuple[int, str], tuple[float, float]] = {
    (5, "PyramidNet-110 (alpha 64)"): (80.15, 82.03),
    (5, "PyramidNet-200 (alpha 240)"): (83.55, 85.53),
}
# Section 5: "For PyramidNet-200-240, we were unable to reproduce the reported result ..., achieving 0.67% worse".
AUGMENT_REPRODUCTION_GAP = published(5, "PyramidNet-200 (alpha 240), Section 5 text", "reported CutMix - ours", 0.67)

Cell = tuple[str | None, bool, bool]  # (KD "label" | "feature" | None, augmentation at the student, at the teacher)
AUGMENT_KDS: dict[str, str] = {"label": "Label", "feature": "Feature"}  # the paper's columns


def _augment_published(table: int, network: str) -> dict[Cell | str, Published]:
    scratch, aug, *kd_cells = _AUGMENT_PRINTED[(table, network)]
    aug_gain, kd_gains, both_gains, sums = _AUGMENT_TEXT[(table, network)]
    name = AUGMENT_NAMES[next(s.augment for s in AUGMENT_TABLES[table] if s.network == network)]
    yes_no = {False: "no", True: "yes"}
    out: dict[Cell | str, Published] = {
        (None, False, False): published(table, f"{network}, Scratch", "ours", scratch),
        (None, True, False): published(table, f"{network}, {name}", "ours", aug, aug_gain)}
    for k, (kd, column) in enumerate(AUGMENT_KDS.items()):
        for i, (teacher, student) in enumerate(((False, False), (False, True), (True, False), (True, True))):
            gain = {(False, False): kd_gains[k], (True, True): both_gains[k]}.get((teacher, student))
            out[(kd, student, teacher)] = published(
                table, f"{network}, {name} teacher {yes_no[teacher]} / student {yes_no[student]}", column,
                kd_cells[k][i], gain)
        out[f"sum {kd}"] = published(table, f"{network}, Section 5 text", f"sum of gains, {column}", sums[k])
    if (table, network) in _AUGMENT_REPORTED:
        for key, value in zip(("reported scratch", "reported augment"), _AUGMENT_REPORTED[(table, network)]):
            row = f"{network}, {'Scratch' if key == 'reported scratch' else name}"
            out[key] = published(table, row, "reported*", value)
    return out


# Every printed number of Tables 4-5, per (table, network): the cells keyed by Cell, the text's "sum of each gain" by
# "sum label" / "sum feature", Table 5's starred values by "reported scratch" / "reported augment".
AUGMENT_PUBLISHED: dict[tuple[int, str], dict[Cell | str, Published]] = {
    key: _augment_published(*key) for key in _AUGMENT_PRINTED}
TABLE5_CAPTION_NOTE = ("the paper's caption of Table 5 says test classification error (%), but its values are "
                       "accuracies: they rise with CutMix, and 83.55 / 85.53 are 100 - the CutMix paper's errors")


def all_published() -> list[Published]:
    """Every number of Tables 1-6 (and of Section 5's text on Tables 4-5) this module holds."""
    return [*PRUNING_PUBLISHED.values(), *(p for cells in AUGMENT_PUBLISHED.values() for p in cells.values()),
            AUGMENT_REPRODUCTION_GAP, *(p for row in TABLE6.values() for p in row.values())]
