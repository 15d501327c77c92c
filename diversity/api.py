"""``diversity.score_models({name: [model, ...]}, images)``: Table 6 for any classifiers.

Every model is scored (diversity.naswot.score_batches: NASWOT v1 by default, on a copy whose normalization layers
use batch statistics while Dropout and the rest stay in eval mode, TF32 off) on the same fixed batches of ``images`` (a
paired design): ``batches`` disjoint batches of ``batch_size``
drawn once with ``seed`` (diversity.batches.fixed_batches); a model's score is its mean over the batches. Each
group gets Table 6's statistics (diversity.stats: mean, std with ddof 1, ErrMargin = std / sqrt(n), the 99%
half-width 2.576 ErrMargin, the Student-t half-width and Welch's p against ``reference``). score_model_files scores
the weights files of one external model the same way, as ``python -m diversity.score --model`` does.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from diversity.batches import fixed_batches
from diversity.config import ScoreConfig
from diversity.naswot import score_batches, scoring_inputs
from diversity.report import table_lines
from diversity.scoring import CheckpointScore
from diversity.stats import Summary, summarize_groups
from training.errors import UserError
from training.external.data import images_for_model
from training.external.model_output import check_model_inputs
from training.external.models import model_from_flags
from training.runtime.device import resolve_device
from training.store.files import sha256_file


@dataclass
class ScoreTable:
    summaries: list[Summary]  # one row per group, in the order given
    batch_scores: dict[str, list[list[float]]]  # group -> model -> the score of each batch

    @property
    def scores(self) -> dict[str, list[float]]:
        """group -> each model's score (its mean over the batches)."""
        return {g: [sum(b) / len(b) for b in models] for g, models in self.batch_scores.items()}

    def lines(self) -> list[str]:
        """The table as diversity.score prints it."""
        return table_lines(self.summaries)

    def __str__(self) -> str:
        return "\n".join(self.lines())


def score_models(models: Mapping[str, Sequence[nn.Module]], images: Any, *, batch_size: int | None = None,
                 batches: int | None = None, seed: int = 0, bn_mode: str = "train", k: float = 1e-5,
                 score: str = "naswot", reference: str | None = None,
                 device: torch.device | str | None = None, max_images: int | None = None,
                 output_key: str = "logits") -> ScoreTable:
    """The scores and Table 6 statistics of each group of ``models`` (module docstring). batch_size None:
    min(128, N) (Table 6 used 128); batches None: as many whole batches as the images hold. reference: the group
    the Welch tests compare with ["scratch" when there is one, else the first]. device None: cuda when
    available, else cpu. images, max_images and output_key as for diversity.naswot. Bad input raises UserError (a
    ValueError)."""
    if not models or any(len(ms) == 0 for ms in models.values()):
        raise UserError("score_models needs {name: [model, ...]} with at least one model per name")
    x = scoring_inputs(images, max_images)
    models = {g: [check_model_inputs(m, x, output_key=output_key) for m in ms] for g, ms in models.items()}
    batch_size = batch_size or min(128, len(x))
    batches = batches or len(x) // batch_size
    if batch_size < 2 or batches < 1:
        raise UserError(f"{len(x)} images give no batch of at least 2 (batch_size {batch_size}); pass more images")
    dev = torch.device(device) if device is not None else resolve_device("auto")
    fixed = [b.to(dev) for b in fixed_batches(x, batch_size, batches, seed)]
    per_batch = {g: [score_batches(m, fixed, score, bn_mode, k) for m in ms] for g, ms in models.items()}
    table = ScoreTable([], per_batch)
    reference = reference or ("scratch" if "scratch" in models else next(iter(models)))
    table.summaries = summarize_groups(table.scores, reference)
    return table


def score_model_files(spec: str, files: Sequence[str], cfg: ScoreConfig, device: torch.device, *,
                      model_kwargs: dict[str, Any] | None = None, group: str | None = None, resize: int | None = None,
                      crop: int | None = None, mean: Sequence[float] | None = None,
                      std: Sequence[float] | None = None) -> tuple[list[CheckpointScore], list[Summary]]:
    """Any classifier (``spec``: torchvision:NAME, timm:NAME or package.module:factory, built with ``model_kwargs``):
    each weights file of ``files`` (none: one model as the factory initializes it, seeded by ``cfg.seed``) scored by
    score_models on ``cfg.dataset``'s images, prepared by ``cfg.transform`` or ``resize`` / ``crop`` / ``mean`` /
    ``std``; one row named ``group`` [``spec``]. Returns (scores, summaries) as checkpoints give them."""
    # An image folder can be far larger than the batches: load only batch_size x batches images, spread over it.
    n = cfg.batch_size * cfg.batches if cfg.dataset == "imagefolder" else None
    data = images_for_model(cfg.dataset, cfg.split, cfg.data_dir, n, cfg.transform, resize, crop, mean, std)
    weights: list[str | None] = list(files) or [None]
    models = []
    for w in weights:
        torch.manual_seed(cfg.seed)
        models.append(model_from_flags(spec, model_kwargs, w, data.images[:2], data.num_classes))
    group = group or spec
    table = score_models({group: models}, data.images, batch_size=cfg.batch_size, batches=cfg.batches, seed=cfg.seed,
                         bn_mode=cfg.bn_mode, k=cfg.k, score=cfg.score, device=device)
    config = {"external": True, "model": spec, "model_kwargs": model_kwargs, "dataset": cfg.dataset or "cifar10",
              "data_dir": cfg.data_dir, "normalization": cfg.transform if cfg.transform != "none"
              else "--resize/--crop/--mean/--std" if resize or crop or mean else "the dataset's"}
    scores = [CheckpointScore(group, w or "factory initialization", w or "", sha256_file(w) if w else "",
                              None if w else cfg.seed, {"name": spec, **(model_kwargs or {})}, config, b)
              for w, b in zip(weights, table.batch_scores[group])]
    return scores, table.summaries
