"""Score checkpoints on shared fixed batches (DESIGN §7.1-§7.2)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Sequence

import torch

from diversity.batches import draw_batches
from diversity.config import ScoreConfig
from diversity.naswot import naswot_v1, naswot_v2, scoring_copy
from diversity.runs import RunCheckpoint
from training.checkpoint import load_model, sha256_file
from training.data import load_split
from training.errors import UserError


@dataclass
class CheckpointScore:
    method: str
    run: str  # run directory name, or the checkpoint path
    path: str
    sha256: str
    seed: int | None
    arch: dict
    batch_scores: list[float] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Mean over the shared batches: the checkpoint's score."""
        return sum(self.batch_scores) / len(self.batch_scores)

    def to_json(self) -> dict:
        return {"method": self.method, "run": self.run, "path": self.path, "sha256": self.sha256, "seed": self.seed,
                "arch": self.arch, "score": self.score, "batch_scores": self.batch_scores}


def _data_key(ckpt: dict, cfg: ScoreConfig) -> tuple[str, str | None]:
    c = ckpt["config"]
    return (cfg.dataset or c.get("dataset", "cifar10"), cfg.data_dir if cfg.data_dir is not None else c.get("data_dir"))


def check_consistent(loaded: Sequence[tuple[RunCheckpoint, dict]], cfg: ScoreConfig) -> tuple[str, str | None]:
    """One architecture and one dataset per method, and one dataset overall (the batches are shared)."""
    per_method: dict[str, tuple] = {}
    for item, ck in loaded:
        key = (tuple(sorted(ck["arch"].items())), _data_key(ck, cfg))
        first = per_method.setdefault(item.method, key)
        if key != first:
            what = "architectures" if key[0] != first[0] else "datasets"
            raise UserError(f"method {item.method} mixes {what} ({dict(first[0]) if what == 'architectures' else first[1]} "
                            f"vs {dict(key[0]) if what == 'architectures' else key[1]} in {item.path}); score them separately")
    datasets = {k[1] for k in per_method.values()}
    if len(datasets) > 1:
        raise UserError(f"the checkpoints come from different datasets {sorted(map(str, datasets))}; the shared batches "
                        "need one: pass --dataset/--data-dir to score all on the same images")
    return datasets.pop()


Loaded = tuple[RunCheckpoint, dict, torch.nn.Module]


def load_all(items: Sequence[RunCheckpoint]) -> list[Loaded]:
    """(item, checkpoint dict, model) for each item; a bad file is one CheckpointError line."""
    out = []
    for it in items:
        model, ckpt = load_model(it.path)
        out.append((it, ckpt, model))
    return out


def score_checkpoints(loaded: Sequence[Loaded], cfg: ScoreConfig, device: torch.device,
                      quiet: bool = False) -> list[CheckpointScore]:
    """Every checkpoint scored on the same ``cfg.batches`` batches; TF32 is switched off for the duration."""
    from tqdm.auto import tqdm

    dataset, data_dir = check_consistent([(it, ck) for it, ck, _ in loaded], cfg)
    images = load_split(dataset, cfg.split, data_dir)
    batches = [b.to(device) for b in draw_batches(images, cfg.batch_size, cfg.batches, cfg.seed, cfg.transform)]
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    results = []
    try:
        bar = tqdm(total=len(loaded) * len(batches), desc="score", unit="batch", file=sys.stderr, disable=quiet)
        for it, ck, model in loaded:
            res = CheckpointScore(it.method, it.run_dir.name if it.run_dir else str(it.path), str(it.path),
                                  sha256_file(it.path), it.seed, dict(ck["arch"]))
            # One copy per checkpoint: in train mode BN normalizes with each batch's own statistics, so the
            # running statistics the copy accumulates never reach an output; the checkpoint's stay untouched.
            m = scoring_copy(model, cfg.bn_mode).to(device)
            for x in batches:
                res.batch_scores.append(naswot_v1(m, x, cfg.k) if cfg.score == "naswot" else naswot_v2(m, x))
                bar.update(1)
            results.append(res)
        bar.close()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return results
