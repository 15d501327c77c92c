"""Hessian numbers of one milestone checkpoint for Tables 7-8 (landscape.sharpness.checkpoint_sharpness on the
first N training images, loaded as the checkpoint was trained), cached beside its surface so that the two tables
sharing a row compute it once."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from landscape.sharpness import checkpoint_sharpness
from training.store.files import atomic_write_text, sha256_file


@dataclass(frozen=True)
class HessianSettings:
    images: int = 512  # first N training images behind every number of a row
    rel_se: float = 0.02  # Hutch++ stops once its standard error <= rel_se * |trace| ...
    min_samples: int = 10  # ... after at least this many probes ...
    max_samples: int = 2000  # ... or at this many (then the row says "not converged")
    sketch: int = 40  # Hutch++ sketch size k (0 = plain Hutchinson)
    max_iters: int = 100  # Lanczos cap for lambda_max (Hessian-vector products)
    seed: int = 0  # seed of the Lanczos start vector and of the probes

    def describe(self) -> str:
        return (f"lambda_max by Lanczos (at most {self.max_iters} Hessian-vector products), trace by Hutch++ "
                f"(sketch {self.sketch}) until its standard error is <= {self.rel_se:g} x |trace| (at least "
                f"{self.min_samples}, at most {self.max_samples} probes)")


def hessian_cache(surface: Path) -> Path:
    """Where the Hessian numbers of a surface's checkpoint are cached: beside its store, as SURFACE.hessian.json."""
    return surface.with_suffix(".hessian.json")


def hessian_numbers(ckpt_path: Path, settings: HessianSettings, device: torch.device, cache: Path) -> dict[str, Any]:
    """checkpoint_sharpness of ``ckpt_path`` on its first ``settings.images`` training images: centre loss, lambda_max
    with its iterations and convergence, the trace with its standard error; read from ``cache`` when that was
    computed from the same checkpoint bytes and settings, else computed and written there."""
    key = {"checkpoint_sha256": sha256_file(ckpt_path), **asdict(settings)}
    if cache.is_file():
        try:
            doc = json.loads(cache.read_text())
            if doc.get("key") == key:
                return doc["report"]
        except (ValueError, KeyError):
            pass  # a damaged cache is recomputed
    report, _ = checkpoint_sharpness(ckpt_path, settings.images, device=device,
                                     **{k: v for k, v in asdict(settings).items() if k != "images"})
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps({"key": key, "report": report}, indent=2, default=float) + "\n")
    return report
