"""The paper's published values, each with its table, row and column (Park, Yoo, Kwak 2020,
arXiv:2009.04120). This is the only place published numbers are typed in; tables put our measured
values beside them, never in their place."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    table: int
    row: str  # the paper's row label
    column: str  # the paper's column label
    value: float


# Table 6: NASWOT score (Mellor et al. v1) of ResNet-56 on CIFAR-10, five models per method, mean and std.
# Our method names -> the paper's row labels.
TABLE6_ROWS: dict[str, str] = {
    "scratch": "Scratch",
    "cutmix": "CutMix",
    "label_kd": "Label",
    "feature_kd": "Feature",
    "cutmix_feature_kd": "Feat+CutMix",
}

TABLE6: dict[str, dict[str, Published]] = {
    method: {
        "mean": Published(6, row, "Score (mean)", mean),
        "std": Published(6, row, "Std", std),
    }
    for method, row, mean, std in (
        ("scratch", "Scratch", -143.96, 0.462),
        ("cutmix", "CutMix", -143.11, 0.616),
        ("label_kd", "Label", -142.22, 0.560),
        ("feature_kd", "Feature", -141.94, 0.353),
        ("cutmix_feature_kd", "Feat+CutMix", -141.34, 0.186),
    )
}
TABLE6_RUNS = 5  # models per method behind each Table 6 row
TABLE6_Z99 = 2.576  # Table 6's 99% interval: 2.576 * std / sqrt(n)

# Tables 7-8: filter-normalized loss surfaces (Li et al. 2018) of ResNet-56 at the end of each of the three
# LR steps (epochs 80, 120, 160). The paper gives pictures, no numbers. Which methods sit in which of the two
# tables is our reading of the paper: label-side methods in Table 7, feature-side methods in Table 8, each
# with Scratch as the reference row.
SURFACE_TABLES: dict[int, tuple[str, ...]] = {
    7: ("scratch", "cutmix", "label_kd"),
    8: ("scratch", "feature_kd", "cutmix_feature_kd"),
}
SURFACE_EPOCHS = (80, 120, 160)

METHOD_LABELS: dict[str, str] = {
    "scratch": "Scratch",
    "cutmix": "CutMix",
    "label_kd": "Label KD",
    "feature_kd": "Feature KD",
    "cutmix_label_kd": "CutMix + Label KD",
    "cutmix_feature_kd": "CutMix + Feature KD",
}
