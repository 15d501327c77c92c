"""Score checkpoints on shared fixed batches, after checking that the runs may be pooled; the checkpoints named one
by one (explicit_items) and the method x method comparisons of the loaded ones (pairwise_rows)."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from diversity.batches import draw_batches, model_seed
from diversity.config import ScoreConfig
from diversity.naswot import score_batches
from diversity.pairwise import method_matrix, model_outputs
from training.data.datasets import ImageSet, checkpoint_split
from training.errors import UserError
from training.store.checkpoint import content_sha256, load_checkpoint, load_model
from training.store.files import sha256_file
from training.store.poolable import check_table
from training.store.rundir import RunCheckpoint, config_beside


@dataclass
class CheckpointScore:
    method: str
    run: str  # run directory name, or the checkpoint path
    path: str
    sha256: str  # of the file
    seed: int | None
    arch: dict
    config: dict  # pooled_config of the checkpoint: what the model was trained with
    batch_scores: list[float] = field(default_factory=list)
    weights_sha256: str = ""  # training.store.checkpoint.content_sha256: what --batch-mode per-model draws from

    @property
    def score(self) -> float:
        """Mean over the shared batches: the checkpoint's score."""
        return sum(self.batch_scores) / len(self.batch_scores)

    def to_json(self) -> dict:
        return {"method": self.method, "run": self.run, "path": self.path, "sha256": self.sha256, "seed": self.seed,
                "arch": self.arch, "config": self.config, "score": self.score, "batch_scores": self.batch_scores,
                "weights_sha256": self.weights_sha256}


Loaded = tuple[RunCheckpoint, dict, torch.nn.Module]


def load_all(items: Sequence[RunCheckpoint]) -> list[Loaded]:
    """(item, checkpoint dict, model) for each item; a bad file is one CheckpointError line."""
    out = []
    for it in items:
        model, ckpt = load_model(it.path)
        out.append((it, ckpt, model))
    return out


def explicit_items(paths: Sequence[str]) -> list[RunCheckpoint]:
    """Checkpoints named one by one (no run directory): each grouped by the method its checkpoint records."""
    items = []
    for p in paths:
        ck = load_checkpoint(p)
        items.append(RunCheckpoint(ck["method"]["name"], None, Path(p), ck["config"].get("seed")))
    return items


def label(item: RunCheckpoint) -> str:
    return item.run_dir.name if item.run_dir else str(item.path)


def pooled_config(item: RunCheckpoint, ckpt: dict) -> dict[str, Any]:
    """What a checkpoint was trained with: its run's config.json (if beside it), overridden by the checkpoint's
    own config, plus its architecture, teacher sha256 and epoch. Pooled runs must agree on all of it but the seed."""
    return {**config_beside(item.path), **ckpt["config"], "arch": dict(ckpt["arch"]),
            "teacher_sha256": ckpt["method"].get("teacher_sha256"), "checkpoint_epoch": ckpt["epoch"]}


def pooled_configs(loaded: Sequence[Loaded]) -> list[dict[str, Any]]:
    """pooled_config of every checkpoint, after checking that the runs of each method may form one row and all
    rows one table (training.store.poolable.check_table)."""
    configs = [pooled_config(it, ck) for it, ck, _ in loaded]
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (it, _, _), config in zip(loaded, configs):
        rows.setdefault(it.method, []).append((label(it), config))
    check_table(rows)
    return configs


def scoring_images(cfg: ScoreConfig, config: dict) -> ImageSet:
    """The split the batches come from, normalized as the checkpoints were trained (training.data.checkpoint_split),
    with --dataset / --data-dir overriding the checkpoint's data."""
    return checkpoint_split(config, cfg.split, dataset=cfg.dataset, data_dir=cfg.data_dir)


def score_checkpoints(loaded: Sequence[Loaded], cfg: ScoreConfig, device: torch.device,
                      quiet: bool = False) -> list[CheckpointScore]:
    """Every checkpoint scored on ``cfg.batches`` batches (diversity.naswot.score_batches: TF32 off): the same
    batches for all (``cfg.batch_mode`` shared) or its own, drawn from ``model_seed`` (per-model)."""
    from tqdm.auto import tqdm

    configs = pooled_configs(loaded)
    images = scoring_images(cfg, loaded[0][1]["config"])

    def draw(seed: int) -> list[torch.Tensor]:
        return [b.to(device) for b in draw_batches(images, cfg.batch_size, cfg.batches, seed, cfg.transform)]

    shared = draw(cfg.seed) if cfg.batch_mode == "shared" else None
    results = []
    bar = tqdm(total=len(loaded) * cfg.batches, desc="score", unit="batch", file=sys.stderr, disable=quiet)
    for (it, ck, model), config in zip(loaded, configs):
        res = CheckpointScore(it.method, label(it), str(it.path), sha256_file(it.path), it.seed, dict(ck["arch"]),
                              config, weights_sha256=ck.get("content_sha256") or content_sha256(ck))
        batches = shared if shared is not None else draw(model_seed(cfg.seed, res.weights_sha256))
        # One copy per checkpoint: in train mode BN normalizes with each batch's own statistics, so the
        # running statistics the copy accumulates never reach an output; the checkpoint's stay untouched.
        try:
            res.batch_scores = score_batches(model, batches, cfg.score, cfg.bn_mode, cfg.k)
        except UserError as e:
            raise UserError(f"{it.path}: {e}") from None
        bar.update(len(batches))
        results.append(res)
    bar.close()
    return results


def pairwise_rows(loaded: Sequence[Loaded], cfg: ScoreConfig, n_images: int, device: torch.device) -> list[dict]:
    """method_matrix on the first n_images of the test split (checkpoint_split: normalized as trained)."""
    images = checkpoint_split(loaded[0][1]["config"], "test", n_images, cfg.dataset, cfg.data_dir)
    x = images.normalized(device)
    outputs: dict[str, list] = {}
    for it, _ck, model in loaded:
        try:
            outputs.setdefault(it.method, []).append(model_outputs(model.to(device), x))
        except UserError as e:
            raise UserError(f"{it.path}: {e}") from None
    return [{**r, "split": "test", "images": len(images)} for r in method_matrix(outputs)]
