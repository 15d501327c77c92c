"""The evaluation engine: loss and accuracy of theta(c) = theta* + sum_i c_i d_i.

Coordinates are set absolutely from the device-resident origin and directions (never by accumulated
steps), on a BN-folded copy of the model (landscape.folding), so the checkpoint's model is never
modified. Each point: the mean loss (cross-entropy unless another is given) and accuracy (%) over all
images, eval mode, inference mode, images resident on the device in large batches (channels_last when 4-D).
A model that cannot be folded (landscape.folding.NotFoldable: torch.fx cannot trace it) is evaluated unfolded,
with the same results; ``folded`` says which ran.

Several grid points per forward: P parameter sets theta(c_1) ... theta(c_P) are stacked along a new
leading dimension and evaluated on the same image batch in one ``torch.func.vmap`` of
``torch.func.functional_call`` (folded or unfolded network alike); a list of points is cut into chunks of
P, the last one smaller. P = 1 is the per-point path (weights loaded in place, one plain forward). Activation
memory grows with P x batch_size.

No host sync per point: each point's loss and hit sums stay on the device, and ``points`` copies the sums of all
its points to the host once, at its end. So the host enqueues point i+1's weights (``set_point``, ordered after
point i's forward on the same stream) and its forward while the device still runs point i.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from landscape.directions import Direction
from landscape.folding import FoldedNetwork, NotFoldable
from training.errors import UserError

Loss = Callable[..., torch.Tensor]

# Points per vmapped forward by device type, the best measured by bench/landscape_speed.py; device types not listed
# (cuda: not measured yet) get 1. Idle 2-core CPU, ResNet-20, 256 images, 4 x 4 grid: P = 4 ran at 0.34x and
# P = 16 at 0.28x the per-point speed, so 1.
DEFAULT_POINTS_PER_FORWARD = {"cpu": 1}


def default_points_per_forward(device: torch.device) -> int:
    """DEFAULT_POINTS_PER_FORWARD of the device's type, else 1."""
    return DEFAULT_POINTS_PER_FORWARD.get(device.type, 1)


class SurfaceEngine:
    def __init__(self, model: nn.Module, directions: Sequence[Direction], images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device, batch_size: int | None = None, bf16: bool = False, fold_bn: bool = True,
                 points_per_forward: int | None = None, loss: Loss = F.cross_entropy):
        """The origin theta* is the model's own floating-point state (parameters and BN statistics).
        ``points_per_forward``: P grid points per vmapped forward (None: ``default_points_per_forward``).
        ``loss(logits, labels, reduction="none")`` gives one loss per image, as torch.nn.functional's losses do."""
        if points_per_forward is not None and points_per_forward < 1:
            raise UserError(f"--points-per-forward {points_per_forward}: use a positive number of grid points")
        model = copy.deepcopy(model).eval()
        # A copy: the unfolded network below loads each point into the model's own tensors, which must not
        # be the origin's storage (on the CPU .to(device) returns the same tensor, not a copy).
        state = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
        # CPUs are fastest with cache-sized batches, GPUs with large ones (measured in bench/landscape_speed.py).
        self.device, self.bf16 = device, bf16
        self.batch_size = batch_size or (128 if device.type == "cpu" else 2048)
        self.points_per_forward = points_per_forward or default_points_per_forward(device)
        self.origin = {k: v.to(device) for k, v in state.items()}
        self.current = {k: v.clone() for k, v in self.origin.items()}
        self.directions = [{k: v.to(device, self.origin[k].dtype) for k, v in d.items()} for d in directions]
        self.moving = sorted(set().union(*(d.keys() for d in self.directions))) if self.directions else []
        self.images = images.to(device)
        if self.images.dim() == 4:
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.labels = labels.to(device)
        self.loss = loss
        self.folded = fold_bn
        if fold_bn:
            try:
                self.net = FoldedNetwork(model).to(device)
            except NotFoldable:
                self.folded = False
        if self.folded:
            self._load, self._module, self._params_of = self.net.load, self.net.net, self.net.fold
        else:
            self.net = model.to(device).to(memory_format=torch.channels_last).requires_grad_(False)
            tensors = {**dict(self.net.named_parameters()), **dict(self.net.named_buffers())}
            self._load = lambda st: [tensors[k].copy_(v) for k, v in st.items()]
            self._module, self._params_of = self.net, lambda st: st

    @torch.no_grad()
    def set_point(self, coords: Sequence[float]) -> None:
        for name in self.moving:
            cur = self.current[name]
            cur.copy_(self.origin[name])
            for c, d in zip(coords, self.directions):
                if name in d and c != 0.0:
                    cur.add_(d[name], alpha=float(c))
        self._load(self.current)

    def stacked_state(self, coords: Sequence[Sequence[float]]) -> dict[str, torch.Tensor]:
        """theta(c_p) = theta* + sum_i c_p,i d_i for p = 1..P, each tensor with a leading dimension P
        (tensors that do not move are expanded views of the origin, no copy)."""
        c = torch.as_tensor(coords, dtype=torch.float64).to(self.device)
        out = {}
        for name, o in self.origin.items():
            t = o.expand(c.shape[0], *o.shape)
            for i, d in enumerate(self.directions):
                if name in d:
                    t = t + c[:, i].to(o.dtype).view(-1, *[1] * o.dim()) * d[name]
            out[name] = t
        return out

    def _sums(self, forward: Callable[[torch.Tensor], torch.Tensor], count: int) -> torch.Tensor:
        """(2, count) device tensor: the summed loss and the hits of ``count`` points over all images;
        ``forward(x)`` returns the points' logits (count, batch, classes)."""
        total = torch.zeros(2, count, dtype=torch.float64, device=self.device)
        amp = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext())
        for s in range(0, self.images.shape[0], self.batch_size):
            x, y = self.images[s : s + self.batch_size], self.labels[s : s + self.batch_size]
            with amp:
                logits = forward(x)
            logits = logits.float()
            ce = self.loss(logits.flatten(0, 1), y.repeat(count), reduction="none").view(count, -1)
            total[0] += ce.sum(1).double()
            total[1] += (logits.argmax(2) == y).sum(1)
        return total

    def _results(self, sums: torch.Tensor) -> list[tuple[float, float]]:
        """(mean loss, accuracy %) per column of ``_sums`` output: the one device-to-host copy."""
        n = self.images.shape[0]
        return [(loss / n, 100.0 * hits / n) for loss, hits in sums.T.tolist()]

    @torch.inference_mode()
    def _current_sums(self) -> torch.Tensor:
        return self._sums(lambda x: self.net(x)[None], 1)

    def evaluate(self) -> tuple[float, float]:
        """(mean loss, accuracy %) of the current point over all images."""
        return self._results(self._current_sums())[0]

    def point(self, coords: Sequence[float]) -> tuple[float, float]:
        self.set_point(coords)
        return self.evaluate()

    def evaluate_many(self, coords: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
        """(mean loss, accuracy %) of each point of ``coords``, all in one vmapped forward per batch."""
        return self._results(self._many_sums(coords))

    @torch.inference_mode()
    def _many_sums(self, coords: Sequence[Sequence[float]]) -> torch.Tensor:
        params = self._params_of(self.stacked_state(coords))
        many = vmap(lambda p, x: functional_call(self._module, p, (x,)), in_dims=(0, None))
        with warnings.catch_warnings():
            # On channels_last inputs adaptive_avg_pool2d hits vmap's per-point fallback for as_strided_ and
            # warns on every call; it is the one cheap op (an 8x8 mean) that runs P times instead of once.
            warnings.filterwarnings("ignore", "There is a performance drop", UserWarning)
            return self._sums(lambda x: many(params, x), len(coords))

    def points(self, coords: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
        """(loss, accuracy %) of each point, ``points_per_forward`` points per forward (the last chunk smaller);
        one host copy for all of them, at the end."""
        if not len(coords):
            return []
        p = self.points_per_forward
        if p == 1:
            sums = [self._point_sums(c) for c in coords]
        else:
            sums = [self._many_sums(coords[s : s + p]) for s in range(0, len(coords), p)]
        return self._results(torch.cat(sums, dim=1))

    def _point_sums(self, coords: Sequence[float]) -> torch.Tensor:
        self.set_point(coords)
        return self._current_sums()
