"""One epoch of training and one evaluation pass (docs/reference.md "Training runs and checkpoints"), on data resident
on the device.

Randomness: each epoch draws from generators seeded by (seed, epoch) through numpy's SeedSequence, so an
epoch's data order, crops, flips, CutMix and AutoAugment draws do not depend on what ran before: a run resumed from
``last.pt`` follows the same stream as an uninterrupted one. The generators do not depend on the rank:
under torchrun every rank builds the same global batch and trains on its share of it, so W processes take
exactly the steps one process takes (the paper's recipe: global batch 64, one CutMix draw per global batch).
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.config import TrainConfig
from training.data.augment import Targets, cutmix, random_crop_flip
from training.data.autoaugment import HOST_CROPS
from training.data.batches import DeviceSplit, EpochGenerators, epoch_generators
from training.data.datasets import normalize
from training.engine.graphs import GraphedStep
from training.errors import UserError
from training.objectives import method_spec
from training.runtime.distributed import DistInfo, all_reduce_sum


def rank_share(x: torch.Tensor, t: Targets, dist: DistInfo) -> tuple[torch.Tensor, Targets]:
    """This rank's contiguous share of a global batch (shares differ by at most one image) and the loss weight
    W * n_local / n_global that makes DDP's gradient mean over ranks the global batch mean."""
    if not dist.enabled:
        return x, t
    n = x.shape[0]
    lo, hi = n * dist.rank // dist.world_size, n * (dist.rank + 1) // dist.world_size
    return x[lo:hi], Targets(t.a[lo:hi], t.b[lo:hi], t.lam, dist.world_size * (hi - lo) / n)


def training_batches(data: DeviceSplit, cfg: TrainConfig, gens: EpochGenerators, dist: DistInfo
                     ) -> Iterator[tuple[torch.Tensor, Targets]]:
    """One epoch in batches of ``cfg.batch_size`` (the last one smaller): the epoch's permutation cut into
    consecutive global batches, each augmented whole (with ``cfg.augment="autoaugment"`` first AutoAugment per image
    on the host, then per-image pad-crop + flip; with ``"autoaugment-cutout"`` crop, flip, policy and Cutout all on
    the host; then CutMix over the global batch when the method has it),
    normalized, then cut to this rank's share (``rank_share``). Every image is used once per epoch. Under torchrun a
    last batch with fewer images than ranks is dropped (no rank may be empty)."""
    use_cutmix = method_spec(cfg.method).cutmix
    perm = torch.randperm(len(data), generator=gens.order, device=data.images.device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    n = perm.shape[0]
    starts = [s for s in range(0, n, cfg.batch_size) if min(cfg.batch_size, n - s) >= dist.world_size]
    if cfg.augment == "none":
        sources = (data.images[perm[s : s + cfg.batch_size]] for s in starts)
    elif data.host is None:
        raise UserError(f"--augment {cfg.augment} needs the split's host copy: build it with "
                        f"DeviceSplit.from_imageset(..., augment={cfg.augment!r})")
    else:
        host_perm = perm.cpu()  # one device-to-host copy per epoch: the DataLoader's batches of indices
        sources = data.host.batches([host_perm[s : s + cfg.batch_size] for s in starts], gens.seed, gens.epoch)
    for images, start in zip(sources, starts):  # sources first: its end releases the AutoAugment workers at once
        b = perm[start : start + cfg.batch_size]
        # autoaugment-cutout cropped and flipped on the host, before the policy (DeepVoltaire's order)
        x = images if cfg.augment in HOST_CROPS else random_crop_flip(images, gens.augment)
        y = data.labels[b]
        if use_cutmix:
            x, targets = cutmix(x, y, gens.host, gens.augment, cfg.cutmix_prob, cfg.cutmix_beta)
        else:
            targets = Targets(y, y, 1.0)
        x, targets = rank_share(x, targets, dist)
        yield normalize(x, data.mean, data.std).contiguous(memory_format=memory_format), targets


def steps_per_epoch(n_images: int, batch_size: int, world_size: int) -> int:
    """Optimizer steps in one epoch of ``training_batches``."""
    full, rest = divmod(n_images, batch_size)
    return full + (1 if rest >= world_size else 0)


def autocast(device: torch.device, enabled: bool, cache: bool = True):
    """bf16 autocast on CUDA when ``enabled``; ``cache=False`` drops its per-context weight-cast cache, which a
    CUDA graph capture requires (training.engine.graphs)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


@dataclass
class EpochStats:
    loss: float
    acc: float  # %, CutMix batches count lam * [pred == a] + (1 - lam) * [pred == b]
    images: int
    seconds: float
    steps: int


class EpochTally:
    """The running sums of an epoch of K runs (K = 1 for a single run), on the device (no host sync per step):
    per run sum_i n_i * loss_i (float64), its correct predictions (CutMix batches count
    lam * [pred == a] + (1 - lam) * [pred == b]) and the first step with a non-finite loss (-1: none yet)."""

    def __init__(self, k: int, device: torch.device):
        self.loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
        self.correct = torch.zeros(k, device=device, dtype=torch.float64)
        self.first_bad = torch.full((k,), -1, device=device, dtype=torch.int64)
        self.seen = self.steps = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: Sequence[Targets]) -> int:
        """Count one step: the K runs' float32 losses (K,), logits (K, N, classes) and targets; returns N."""
        self.first_bad = torch.where((self.first_bad < 0) & ~torch.isfinite(loss), self.steps, self.first_bad)
        pred = logits.argmax(2)
        n = pred.shape[1]
        self.loss_sum += loss.double() * n
        for j, t in enumerate(targets):
            self.correct[j] += t.lam * (pred[j] == t.a).sum() + (1.0 - t.lam) * (pred[j] == t.b).sum()
        self.seen += n
        self.steps += 1
        return n


def non_finite_loss(epoch: int, step: int | str, who: str = "") -> UserError:
    """The error of an epoch whose loss went non-finite at ``step``; ``who`` names the run (packed runs)."""
    return UserError(f"non-finite loss at epoch {epoch} step {step}{who}; stopped without saving epoch {epoch}, "
                     "earlier checkpoints are kept. Lower --lr, check the teacher and the data, or drop --bf16")


def sgd_step(objective: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, bf16: bool,
             after_backward: Callable[[], None] | None = None, cache: bool = True
             ) -> Callable[[list[tuple[torch.Tensor, Targets]]], tuple[torch.Tensor, torch.Tensor]]:
    """One SGD step of ``objective`` on the single batch ``[(x, t)]``: forward (bf16 autocast when ``bf16``),
    backward of the loss (times ``t.weight`` under torchrun), ``after_backward``, ``optimizer.step()``. Returns the
    detached loss and logits, on the device: no host sync (training.engine.graphs captures exactly this)."""
    def step(batches: list[tuple[torch.Tensor, Targets]]) -> tuple[torch.Tensor, torch.Tensor]:
        (x, t), = batches
        with autocast(device, bf16, cache):
            res = objective(x, t)
        optimizer.zero_grad(set_to_none=True)
        (res.loss * t.weight if t.weight != 1.0 else res.loss).backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()
        return res.loss.detach(), res.logits.detach()
    return step


def train_one_epoch(objective: nn.Module, optimizer: torch.optim.Optimizer, data: DeviceSplit, cfg: TrainConfig,
                    epoch: int, dist: DistInfo, device: torch.device,
                    on_step: Callable[[int, Callable[[], dict]], None] | None = None,
                    after_backward: Callable[[], None] | None = None) -> EpochStats:
    """SGD over one epoch (``sgd_step`` per batch; with ``cfg.cuda_graphs`` replayed as a CUDA graph on a GPU,
    training.engine.graphs). Loss sums stay on the device (no host sync per step); a non-finite loss is
    detected at the end of the epoch and raised naming the first bad step. ``after_backward`` runs between
    ``backward()`` and ``optimizer.step()`` (network slimming's s*sign(gamma) gradient term)."""
    objective.train()
    gens = epoch_generators(cfg.seed, epoch, device)
    step = sgd_step(objective, optimizer, device, cfg.amp_bf16, after_backward, cache=not cfg.cuda_graphs)
    if cfg.cuda_graphs:
        step = GraphedStep(step, capture=device.type == "cuda", mixes=method_spec(cfg.method).cutmix)
    tally = EpochTally(1, device)
    start = time.perf_counter()
    for x, t in training_batches(data, cfg, gens, dist):
        loss, logits = step([(x, t)])
        n = tally.add(loss.float().reshape(1), logits.unsqueeze(0), [t])
        if on_step is not None:
            on_step(n, lambda: {"loss": tally.loss_sum.item() / tally.seen,
                                "acc": 100.0 * tally.correct.item() / tally.seen})
    seen = torch.tensor(float(tally.seen), device=device, dtype=torch.float64)
    totals = all_reduce_sum(torch.stack([tally.loss_sum[0], tally.correct[0], seen]), dist)
    any_bad = all_reduce_sum((tally.first_bad >= 0).to(torch.float64).reshape(1), dist).item() > 0
    if any_bad:
        raise non_finite_loss(epoch, int(tally.first_bad) if int(tally.first_bad) >= 0 else "(on another rank)")
    total = totals[2].item()
    return EpochStats(totals[0].item() / total, 100.0 * totals[1].item() / total, int(total),
                      time.perf_counter() - start, tally.steps)


@torch.inference_mode()
def evaluate(model: nn.Module, data: DeviceSplit, dist: DistInfo, batch_size: int = 1000,
             channels_last: bool = True, bf16: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) over the un-augmented split, model in eval mode.
    Under torchrun each rank takes a contiguous share and the sums are all-reduced."""
    was_training = model.training
    model.eval()
    device = data.images.device
    n = len(data)
    lo, hi = n * dist.rank // dist.world_size, n * (dist.rank + 1) // dist.world_size
    sums = torch.zeros(3, device=device, dtype=torch.float64)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for s in range(lo, hi, batch_size):
        e = min(s + batch_size, hi)
        x = normalize(data.images[s:e], data.mean, data.std).contiguous(memory_format=memory_format)
        y = data.labels[s:e]
        with autocast(device, bf16):
            logits = model(x).float()
        sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
        sums[1] += (logits.argmax(1) == y).sum()
        sums[2] += e - s
    all_reduce_sum(sums, dist)
    model.train(was_training)
    return sums[0].item() / sums[2].item(), 100.0 * sums[1].item() / sums[2].item()
