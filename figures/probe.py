"""Throughput probe for the study's ETA: a few timed training steps and forward passes of the study's
model on the chosen device (seconds, not a benchmark; bench/ holds the benchmarks)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.models import build_model, training_kwargs


@dataclass(frozen=True)
class Rates:
    train_images_per_s: float  # forward + backward + SGD step, batch 64
    forward_images_per_s: float  # inference, batch 500


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
