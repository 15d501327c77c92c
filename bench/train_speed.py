"""Training throughput: orthokd's step vs a torchvision-reference-style loop, timed in the same run.

ours:      data resident on the device, per-sample pad-crop + flip as one gather on uint8 batches,
           normalization on the device, channels_last (training.engine.loop.training_batches + the scratch
           objective + SGD, exactly what training.train runs).
reference: torchvision references/classification style: a Dataset of PIL images with per-image
           RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize in DataLoader
           workers, NCHW model, the same SGD and cross-entropy.
Same model, batch size, optimizer and loss. The sides take turns window by window (A B A B ..., bench/timing.py):
``--repeats`` windows of ``--steps`` steps each after a warm-up window; the median images/s of a side's windows is
printed, and the host load before and after. Last line: speedup_vs_reference: X.XX

With ``--augment autoaugment`` it instead times orthokd's step with AutoAugment (the paper's random policy, per
image in ``--workers`` DataLoader processes, training.data.autoaugment) against the same step on the plain device
pipeline,
and the host AutoAugment alone (images/s the workers deliver, no training step).
Last line: autoaugment_vs_plain: X.XX

With ``--pack K`` it instead times K seeds of scratch training packed into one vmapped forward/backward
(training.engine.packed_step, what ``training.train --seeds`` runs) against the same K runs stepped one after another
(training.engine.run.Run + the single-run step, i.e. K sequential runs), both counting the images of all K runs.
Last line: packed_speedup_vs_sequential: X.XX
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from timing import interleaved, print_load

from training.cli.common import Parser, positive_int
from training.config import TrainConfig
from training.data.autoaugment import AUGMENTS
from training.data.batches import DeviceSplit, epoch_generators
from training.data.datasets import load_split
from training.engine.loop import training_batches
from training.engine.packed_step import Pack
from training.engine.run import Run
from training.models.registry import build_model
from training.objectives import CrossEntropy
from training.runtime.device import resolve_device
from training.runtime.distributed import DistInfo


class PILDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does: HWC uint8 array -> PIL image -> transform."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_windows(sides: dict, steps: int, repeats: int, images: int, device) -> dict[str, list[float]]:
    """Images/s of each side's windows of ``steps`` steps (``images`` per step), the sides taking turns window by
    window after one warm-up window each (bench/timing.py)."""
    def window(it):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            next(it)
        sync(device)
        return steps * images / (time.perf_counter() - t0)

    return interleaved({name: (lambda it=it: window(it)) for name, it in sides.items()}, repeats)


def ours(cfg: TrainConfig, train, device, workers: int = 0):
    torch.manual_seed(0)
    obj = CrossEntropy(build_model(cfg.model, 10)).to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(obj.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-4, fused=device.type == "cuda")
    data = DeviceSplit.from_imageset(train, device, cfg.augment, workers)
    epoch = 0
    while True:
        epoch += 1
        for x, t in training_batches(data, cfg, epoch_generators(0, epoch, device), DistInfo()):
            res = obj(x, t)
            opt.zero_grad(set_to_none=True)
            res.loss.backward()
            opt.step()
            yield


def reference(cfg: TrainConfig, train, device, workers: int):
    torch.manual_seed(0)
    model = build_model(cfg.model, 10).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-4)
    tf = T.Compose(
        [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(train.mean, train.std)]
    )
    ds = PILDataset(train.images.permute(0, 2, 3, 1).numpy(), train.labels.numpy(), tf)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )
    while True:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            yield


def host_autoaugment(cfg: TrainConfig, train, device, workers: int):
    """The AutoAugmented batches alone, as training_batches asks for them (one yield = one batch on the device)."""
    host = DeviceSplit.from_imageset(train, device, cfg.augment, workers).host
    epoch = 0
    while True:
        epoch += 1
        order = torch.randperm(len(train), generator=epoch_generators(0, epoch, torch.device("cpu")).order)
        yield from host.batches(list(order.split(cfg.batch_size))[: len(train) // cfg.batch_size], 0, epoch)


def _runs_and_streams(cfg: TrainConfig, train, device, k: int):
    """K scratch runs (seeds 0..K-1) as training.train builds them, and a function giving their epoch streams."""
    runs = [Run(dataclasses.replace(cfg, seed=s), 10, None, None, device, DistInfo()) for s in range(k)]
    data = DeviceSplit.from_imageset(train, device)
    def streams(epoch):
        return [training_batches(data, r.cfg, epoch_generators(r.cfg.seed, epoch, device), DistInfo())
                                 for r in runs]
    return runs, streams


def sequential(cfg: TrainConfig, train, device, k: int):
    """K runs, each taking its own single-run step in turn (train_one_epoch's step); one yield = K steps."""
    runs, streams = _runs_and_streams(cfg, train, device, k)
    for r in runs:
        r.objective.train()
    epoch = 0
    while True:
        epoch += 1
        for batches in zip(*streams(epoch)):
            for r, (x, t) in zip(runs, batches):
                res = r.objective(x, t)
                r.optimizer.zero_grad(set_to_none=True)
                res.loss.backward()
                r.optimizer.step()
            yield


def packed(cfg: TrainConfig, train, device, k: int):
    """The same K runs in one packed step (one vmapped forward/backward); one yield = one packed step."""
    runs, streams = _runs_and_streams(cfg, train, device, k)
    pack = Pack(runs)
    epoch = 0
    while True:
        epoch += 1
        for batches in zip(*streams(epoch)):
            pack.step(batches, device)
            yield


def main(argv=None) -> int:
    p = Parser(
        prog="python bench/train_speed.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="resnet56", help="architecture (same for both sides)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (paper: 64)")
    p.add_argument("--steps", type=int, default=20, help="steps per timed window")
    p.add_argument("--repeats", type=int, default=5, help="timed windows per side (median reported)")
    p.add_argument("--workers", type=int, default=2,
                   help="DataLoader workers of the reference loop, and of AutoAugment with --augment autoaugment")
    p.add_argument("--augment", choices=AUGMENTS, default="none",
                   help="autoaugment or autoaugment-cutout: time the step with that per-image host pipeline against "
                        "the plain device pipeline")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--quick", action="store_true", help="resnet20, 3 windows of 8 steps: about a minute on 2 CPU cores")
    p.add_argument("--pack", type=positive_int, default=None, metavar="K",
                   help="time K seeds packed in one vmapped step against the same K runs stepped sequentially "
                        "(instead of the reference comparison)")
    a = p.parse_args(argv)
    if a.quick:
        a.model, a.steps, a.repeats = "resnet20", 8, 3
    device = resolve_device(a.device)
    torch.set_num_threads(torch.get_num_threads())
    cfg = TrainConfig(model=a.model, batch_size=a.batch_size)
    train = load_split("cifar10", "train")
    print(f"model {a.model}, batch {a.batch_size}, device {device}, threads {torch.get_num_threads()}, "
          f"{a.repeats} windows x {a.steps} steps per side, interleaved", file=sys.stderr)
    print_load("before")
    try:
        return _compare(a, cfg, train, device)
    finally:
        print_load("after")


def _line(name: str, rates: list[float]) -> float:
    med = statistics.median(rates)
    print(f"{name}_images_per_s: {med:.1f}  (windows: {', '.join(f'{r:.0f}' for r in rates)})")
    return med


def _compare(a, cfg: TrainConfig, train, device) -> int:
    if a.augment != "none":
        aa = dataclasses.replace(cfg, augment=a.augment)
        host = f"autoaugment_host_only_{a.workers}_workers"
        r = time_windows({"plain": ours(cfg, train, device), host: host_autoaugment(aa, train, device, a.workers),
                          f"autoaugment_{a.workers}_workers": ours(aa, train, device, a.workers)},
                         a.steps, a.repeats, a.batch_size, device)
        med = {name: _line(name, rates) for name, rates in r.items()}
        print(f"autoaugment_vs_plain: {med[f'autoaugment_{a.workers}_workers'] / med['plain']:.2f}")
        return 0
    if a.pack is not None:
        r = time_windows({f"sequential_{a.pack}_runs": sequential(cfg, train, device, a.pack),
                          f"packed_{a.pack}_runs": packed(cfg, train, device, a.pack)},
                         a.steps, a.repeats, a.pack * a.batch_size, device)
        med = [_line(name, rates) for name, rates in r.items()]
        print(f"packed_speedup_vs_sequential: {med[1] / med[0]:.2f}")
        return 0
    r = time_windows({"reference": reference(cfg, train, device, a.workers), "orthokd": ours(cfg, train, device)},
                     a.steps, a.repeats, a.batch_size, device)
    med = [_line(name, rates) for name, rates in r.items()]
    print(f"speedup_vs_reference: {med[1] / med[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
