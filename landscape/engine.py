"""The evaluation engine: loss and accuracy of theta(c) = theta* + sum_i c_i d_i.

Coordinates are set absolutely from the device-resident origin and directions (never by accumulated
steps), on a BN-folded copy of the model (landscape.folding), so the checkpoint's model is never
modified. Each point: mean cross-entropy and accuracy (%) over all images, eval mode, inference mode,
images resident on the device in large channels_last batches.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from landscape.directions import Direction
from landscape.folding import FoldedNetwork


class SurfaceEngine:
    def __init__(self, model: nn.Module, directions: Sequence[Direction], images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device, batch_size: int | None = None, bf16: bool = False, fold_bn: bool = True):
        """The origin theta* is the model's own floating-point state (parameters and BN statistics)."""
        model = copy.deepcopy(model).eval()
        # A copy: the unfolded network below loads each point into the model's own tensors, which must not
        # be the origin's storage (on the CPU .to(device) returns the same tensor, not a copy).
        state = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
        # CPUs are fastest with cache-sized batches, GPUs with large ones (measured in bench/landscape_speed.py).
        self.device, self.bf16 = device, bf16
        self.batch_size = batch_size or (128 if device.type == "cpu" else 2048)
        self.origin = {k: v.to(device) for k, v in state.items()}
        self.current = {k: v.clone() for k, v in self.origin.items()}
        self.directions = [{k: v.to(device, self.origin[k].dtype) for k, v in d.items()} for d in directions]
        self.moving = sorted(set().union(*(d.keys() for d in self.directions))) if self.directions else []
        self.images = images.to(device).contiguous(memory_format=torch.channels_last)
        self.labels = labels.to(device)
        if fold_bn:
            self.net = FoldedNetwork(model).to(device)
            self._load = self.net.load
        else:
            self.net = model.to(device).to(memory_format=torch.channels_last).requires_grad_(False)
            tensors = {**dict(self.net.named_parameters()), **dict(self.net.named_buffers())}
            self._load = lambda st: [tensors[k].copy_(v) for k, v in st.items()]

    @torch.no_grad()
    def set_point(self, coords: Sequence[float]) -> None:
        for name in self.moving:
            cur = self.current[name]
            cur.copy_(self.origin[name])
            for c, d in zip(coords, self.directions):
                if name in d and c != 0.0:
                    cur.add_(d[name], alpha=float(c))
        self._load(self.current)

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, float]:
        """(mean cross-entropy, accuracy %) of the current point over all images."""
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        amp = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext())
        for s in range(0, self.images.shape[0], self.batch_size):
            x, y = self.images[s : s + self.batch_size], self.labels[s : s + self.batch_size]
            with amp:
                logits = self.net(x)
            logits = logits.float()
            total[0] += F.cross_entropy(logits, y, reduction="sum").double()
            total[1] += (logits.argmax(1) == y).sum()
        n = self.images.shape[0]
        return total[0].item() / n, 100.0 * total[1].item() / n

    def point(self, coords: Sequence[float]) -> tuple[float, float]:
        self.set_point(coords)
        return self.evaluate()
