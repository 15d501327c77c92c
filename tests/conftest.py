"""Shared fixtures: tiny real checkpoints trained on real CIFAR-10 images (the embedded subset)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory) -> Path:
    """A finished training run: resnet8 of width 4, scratch, 3 epochs (milestones 1, 2) on 512 embedded
    CIFAR-10 images. Holds config.json, metrics.jsonl, last.pt, ckpt_e001.pt, ckpt_e002.pt, ckpt_e003.pt."""
    from training.train import main

    out = tmp_path_factory.mktemp("runs") / "scratch-s0"
    rc = main(["--method", "scratch", "--model", "resnet8", "--width", "4", "--epochs", "3",
               "--lr-milestones", "1", "2", "--max-train-images", "512", "--out-dir", str(out),
               "--device", "cpu", "--quiet", "--batch-size", "64"])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run_dir: Path) -> Path:
    """The final milestone checkpoint of ``tiny_run_dir`` (a real orthokd schema-v1 checkpoint)."""
    return tiny_run_dir / "ckpt_e003.pt"
