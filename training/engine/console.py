"""What a run shows on the console (stderr): the banner before the first epoch, one progress bar over the whole
run counted in training images (its rate is img/s, its ETA the run's), and one line per finished epoch."""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from training.config import TrainConfig


def banner(cfg: TrainConfig, description: str, n_train: int, n_test: int, steps: int, device, runs: str = "",
           processes: str = "", extras: str = "") -> str:
    """The line that opens a run: method, model, data, epochs x steps, device, precision; ``runs`` (packed runs),
    ``processes`` (processes and threads) and ``extras`` (host augmentation) are set by the caller."""
    return (f"{cfg.method} {cfg.model} on {description}: {runs}{n_train} train / {n_test} test images, "
            f"{cfg.epochs} epochs x {steps} steps, device {device}{processes}, {'TF32' if cfg.tf32 else 'IEEE fp32'}"
            f"{' + bf16 autocast' if cfg.amp_bf16 else ''}{extras}")


def progress_bar(total_images: int, done_images: int, quiet: bool, desc: str):
    """One tqdm bar over ``total_images`` training images, ``done_images`` of them done (a resume)."""
    from tqdm.auto import tqdm

    return tqdm(total=total_images, initial=done_images, unit="img", unit_scale=True, file=sys.stderr, disable=quiet,
                dynamic_ncols=True, desc=desc)


class EpochProgress:
    """The ``on_step`` of one epoch of a single run: advances ``bar`` by each step's images times the processes
    and every 25th step of the epoch shows the epoch, the lr and the running statistics."""

    def __init__(self, bar, epoch: int, lr: float, world_size: int, quiet: bool):
        self.bar, self.epoch, self.lr, self.world_size, self.quiet = bar, epoch, lr, world_size, quiet
        self.steps = 0

    def __call__(self, n: int, stats: Callable[[], dict[str, float]]) -> None:
        self.bar.update(n * self.world_size)
        self.steps += 1
        if not self.quiet and self.steps % 25 == 0:
            self.bar.set_postfix(epoch=self.epoch, lr=f"{self.lr:g}", **{k: f"{v:.3f}" for k, v in stats().items()})


def epoch_line(row: dict[str, Any], epochs: int, who: str = "") -> str:
    """The line of a finished epoch, from its metrics row; ``who`` names the run ("seed 1 ") among packed runs."""
    return (f"{who}epoch {row['epoch']}/{epochs} lr {row['lr']:g} train loss {row['train_loss']:.4f} "
            f"acc {row['train_acc']:.2f}% | test loss {row['test_loss']:.4f} acc {row['test_acc']:.2f}% | "
            f"{row['images_per_s']:.0f} img/s")
