"""Throughput probe for the study's ETA: a few timed training steps and forward passes of the study's
model on the chosen device (seconds, not a benchmark; bench/ holds the benchmarks)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from training.models.registry import build_model, training_kwargs
from training.store.files import atomic_write_text

PROBE_CACHE = "probe.json"  # in the study's --out-dir: the measured rates, reused when the study is run again


@dataclass(frozen=True)
class Rates:
    train_images_per_s: float  # forward + backward + SGD step, batch 64
    forward_images_per_s: float  # inference, batch 500


def cached_rates(path: Path, key: str, measure: Callable[[], Rates]) -> Rates:
    """The rates stored under ``key`` in the JSON file ``path``, else ``measure()``, stored there (atomically) for the
    next run; an entry or a file that cannot be read is measured again, not trusted."""
    try:
        cache = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        cache = {}
    cache = cache if isinstance(cache, dict) else {}
    try:
        return Rates(**cache[key])
    except (KeyError, TypeError):  # not measured yet, or another layout
        pass
    rates = measure()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({**cache, key: asdict(rates)}, indent=2, sort_keys=True) + "\n")
    return rates


def epoch_seconds(rates: Rates, n_train: int, n_test: int, teacher: bool = False) -> float:
    """Estimated seconds of one epoch: the training steps (x1.4 with a KD teacher, whose forward costs about a third
    of a step) and the test evaluation."""
    return n_train / rates.train_images_per_s * (1.4 if teacher else 1.0) + n_test / rates.forward_images_per_s


def _timed(fn, device: torch.device, repeats: int) -> float:
    fn()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / repeats


def probe(model_name: str, width: int, device: torch.device) -> Rates:
    torch.manual_seed(0)
    model = build_model(model_name, 10, **training_kwargs(model_name, width))
    model = model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x = torch.randn(64, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(64, dtype=torch.long, device=device)

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    xb = torch.randn(500, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)

    def forward():
        with torch.inference_mode():
            model.eval()(xb)
        model.train()

    return Rates(64 / _timed(train_step, device, 5), 500 / _timed(forward, device, 3))
