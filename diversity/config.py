"""Defaults of a scoring run."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ScoreConfig:
    score: str = "naswot"  # "naswot" = arXiv v1 Jacobian correlation (Table 6); "naswot-v2" = ICML ReLU-code logdet
    batch_size: int = 128  # images per batch N; Table 6's values (score <= -N, -143.96 ... -141.34) imply N = 128
    batches: int = 5  # fixed batches per checkpoint, drawn once and shared by every checkpoint (paired design);
    # 5 as the study (figures.plan) scores Table 6
    seed: int = 0  # seed of the batch draw (and of the v1 transform)
    split: str = "train"  # images come from this split, as in NASWOT
    transform: str = "none"  # "none" = normalized, un-augmented; "v1" = NASWOT's random crop (pad 4) + flip
    bn_mode: str = "train"  # "train" = NASWOT harness: BN batch statistics, Dropout etc. off, on a copy; "eval" = exact per-image gradients
    k: float = 1e-5  # NASWOT eval_score's regulariser: score = -sum(log(v + k) + 1 / (v + k))
    dataset: str | None = None  # None = the dataset recorded in each checkpoint's config
    data_dir: str | None = None  # None = the data_dir recorded in each checkpoint's config

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SCORES = ("naswot", "naswot-v2")
TRANSFORMS = ("none", "v1")
BN_MODES = ("train", "eval")
# What each mode does, as captions say it.
BN_CAPTION = {"train": "BN on batch statistics, Dropout off", "eval": "eval mode"}
