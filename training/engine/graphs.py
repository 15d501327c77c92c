"""The training step replayed as one CUDA graph (``--cuda-graphs``, docs/reference.md "Training runs and checkpoints"
"Numerics and speed").

A ResNet-56 step at batch 64 is about 560 kernel launches; eager, the host issues them more slowly than an H100
runs them. ``GraphedStep`` captures forward, backward and the optimizer step once (``torch.cuda.graph``) and then
replays them with one launch per step. Outside the captured region stay: the batch's augmentation and its random
draws, the copy of the batch into the graph's static input buffers, the metric sums and every host read.

What the capture needs, and how it is met:
- fixed shapes: the first batch of the epoch fixes them; a batch of another shape (the epoch's last, smaller
  one) runs eagerly;
- no host value that changes between steps inside the graph: CutMix's lambda enters as a float32 device tensor
  (``Targets.lam``), and with a tensor lambda ``mixed_cross_entropy`` always takes the mixed formula, which at
  lambda = 1 (and b = a) equals plain cross-entropy bitwise; lambda = 1 - area/1024 is exact in float32 for 32x32
  images. The learning rate is a float the optimizer hands to its fused kernel: it changes only between epochs,
  and each epoch captures a new graph;
- warm-up: the first ``warmup`` full batches of the epoch run eagerly on a side stream (cuDNN autotuning, lazy
  initialisation, momentum buffers), PyTorch's whole-network capture recipe; autocast runs without its weight
  cache (``cache_enabled=False``), as capture requires.

Where nothing is captured (a CPU), ``GraphedStep`` still copies each batch into the static buffers and passes the
tensor lambda, so the tests compare this very path with the plain eager step.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from training.data.augment import Targets

Batch = tuple[torch.Tensor, Targets]
StepFn = Callable[[Sequence[Batch]], tuple[torch.Tensor, ...]]


class GraphedStep:
    """``step_fn(batches)`` (one optimizer step over one batch per packed run; returns device tensors) run from
    static buffers: replayed as a CUDA graph when ``capture``, else eagerly. Build one per epoch."""

    def __init__(self, step_fn: StepFn, capture: bool, mixes: bool, warmup: int = 3):
        self.step_fn, self.capture, self.mixes, self.warmup = step_fn, capture, mixes, warmup
        self.static: list[Batch] | None = None
        self.shapes: list[tuple[torch.Size, ...]] | None = None
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: tuple[torch.Tensor, ...] = ()
        self.eager_calls = 0

    def _load(self, batches: Sequence[Batch]) -> None:
        """Copy ``batches`` into the static buffers (allocated by the first call)."""
        if self.static is None:
            self.static = [(x.clone(), Targets(t.a.clone(), t.b.clone(),
                                               torch.tensor(t.lam, dtype=torch.float32, device=x.device)
                                               if self.mixes else t.lam, t.weight)) for x, t in batches]
            return
        for (sx, st), (x, t) in zip(self.static, batches):
            sx.copy_(x)
            st.a.copy_(t.a)
            st.b.copy_(t.b)
            if self.mixes:
                st.lam.fill_(t.lam)  # a kernel argument, no host sync

    def __call__(self, batches: Sequence[Batch]) -> tuple[torch.Tensor, ...]:
        shapes = [(x.shape, t.a.shape) for x, t in batches]
        if self.shapes is None:
            self.shapes = shapes
        if shapes != self.shapes:
            return self.step_fn(batches)  # the epoch's last, smaller batch
        self._load(batches)
        if not self.capture:
            return self.step_fn(self.static)
        if self.eager_calls < self.warmup:
            self.eager_calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step_fn(self.static)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: a DataLoader pin-memory thread (--augment autoaugment) may call CUDA during the capture
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.outputs = self.step_fn(self.static)
        self.graph.replay()  # capturing records the kernels without running them: the captured step runs here
        return self.outputs
