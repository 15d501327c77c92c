"""One epoch of K runs of one method packed into one forward/backward per step (docs/reference.md "Training runs and
checkpoints").

The K runs' students are stacked with ``torch.func.stack_module_state`` (parameters and BatchNorm buffers get a
leading axis of size K) and run as one ``vmap`` of ``functional_call`` over the K batches; BatchNorm updates each
run's slice of the stacked running stats in place, as in its own run. The teacher runs once on all K*N images. Run
k's loss L_k is its own objective's formula (training.objectives) applied to run k's outputs, with run k's CutMix
lambda; the step back-propagates sum_k L_k, whose gradient with respect to run k's parameters is dL_k/dtheta_k.
SGD's update (momentum, weight decay) is elementwise, so one optimizer over the stacked (K, ...) tensors takes
the K runs' own steps. Between epochs the state lives in the runs' own modules and optimizers (``Pack.unpack``).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from training.data.augment import Targets
from training.data.batches import DeviceSplit, epoch_generators
from training.engine.graphs import GraphedStep
from training.engine.loop import EpochStats, EpochTally, autocast, non_finite_loss, training_batches
from training.engine.run import Run
from training.errors import UserError
from training.objectives import method_spec
from training.runtime.distributed import DistInfo


class _FeaturesAndLogits(nn.Module):
    """The student as one call returning (last feature map, logits), so one vmapped pass serves every objective."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.student.forward_features(x)
        return features, self.student.forward_head(features)


class _Replay(nn.Module):
    """Stands in for a network inside an objective and returns the outputs the packed pass already computed for
    the current run, so the objective's own loss formula is applied to them unchanged."""

    def __init__(self, feature_channels: int):
        super().__init__()
        self.feature_channels = feature_channels
        self.features: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits


class Pack:
    """The stacked state of ``runs`` (all of one config but the seed, all at the same epoch) and its optimizer."""

    def __init__(self, runs: Sequence[Run]):
        self.runs, self.cfg = list(runs), runs[0].cfg
        for r in self.runs:
            r.objective.train()
        self.nets = [_FeaturesAndLogits(r.student) for r in self.runs]
        self.auxes = [nn.ModuleDict(r.objective.aux_modules()) for r in self.runs]
        self.params, self.buffers = stack_module_state(self.nets)
        self.aux_params, _ = stack_module_state(self.auxes)
        # The loss of run k: the runs' objective around stand-ins that replay run k's outputs (and the teacher's).
        self.objective = self.runs[0].objective
        self.replays = {name: _Replay(getattr(net, "feature_channels", 0))
                        for name, net in self.objective.networks().items()}
        self.loss_of = self.objective.around(**self.replays)
        self.optimizer = self._optimizer()

    def _pairs(self, k: int) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """(run k's own parameter, its stacked tensor) for every trainable parameter."""
        own = [*self.nets[k].named_parameters(), *self.auxes[k].named_parameters()]
        stacked = {**self.params, **self.aux_params}
        return [(p, stacked[n]) for n, p in own]

    def _optimizer(self) -> torch.optim.Optimizer:
        """The runs' optimizer class and hyperparameters (per param group) over the stacked tensors, with the
        runs' momentum buffers stacked in."""
        first = self.runs[0].optimizer
        group_of = {id(p): i for i, g in enumerate(first.param_groups) for p in g["params"]}
        pairs = self._pairs(0)
        groups = [{**{key: g[key] for key in first.defaults},
                   "params": [s for p, s in pairs if group_of[id(p)] == i]} for i, g in enumerate(first.param_groups)]
        opt = type(first)(groups)
        per_run = [self._pairs(k) for k in range(len(self.runs))]
        for j, (_, stacked) in enumerate(pairs):
            bufs = [r.optimizer.state.get(per_run[k][j][0], {}).get("momentum_buffer") for k, r in enumerate(self.runs)]
            if all(b is not None for b in bufs):
                opt.state[stacked]["momentum_buffer"] = torch.stack(bufs)
            elif any(b is not None for b in bufs):
                raise UserError("the packed runs are at different optimizer states; resume them one by one")
        return opt

    @torch.no_grad()
    def unpack(self) -> None:
        """Write the stacked parameters, BatchNorm buffers and momentum back into each run's own modules and
        optimizer (in the run's own memory format), so ``Run.state`` saves a single-run checkpoint."""
        for k, r in enumerate(self.runs):
            for own, stacked in self._pairs(k):
                own.copy_(stacked[k])
                buf = self.optimizer.state.get(stacked, {}).get("momentum_buffer")
                if buf is not None:
                    r.optimizer.state[own]["momentum_buffer"] = torch.empty_like(own).copy_(buf[k])
            for n, b in self.nets[k].named_buffers():
                b.copy_(self.buffers[n][k])

    def _teacher_outputs(self, xs: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """The teacher on all K*N images at once (``Objective.teacher_targets``: its logits or feature maps), split
        per run; None without a teacher."""
        if "teacher" not in self.replays:
            return None
        k = xs.shape[0]
        flat = xs.flatten(0, 1)
        if self.cfg.channels_last:
            flat = flat.contiguous(memory_format=torch.channels_last)
        return self.objective.teacher_targets(flat).unflatten(0, (k, -1)).unbind(0)

    def step(self, batches: Sequence[tuple[torch.Tensor, Targets]], device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step of every run on its own batch; returns the K losses (float32) and the (K, N, classes) logits."""
        xs = torch.stack([x for x, _ in batches]).contiguous()
        with autocast(device, self.cfg.amp_bf16, not self.cfg.cuda_graphs), warnings.catch_warnings():
            # vmap has no batching rule for the in-place as_strided_ inside adaptive_avg_pool2d on channels_last maps,
            # so that one small op runs per run (fallback); the convolutions are batched.
            warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet implemented")
            features, logits = vmap(lambda p, b, x: functional_call(self.nets[0], (p, b), (x,)))(
                self.params, self.buffers, xs)
            teacher = self._teacher_outputs(xs)
            losses = []
            for k, (x, t) in enumerate(batches):
                self.replays["student"].features, self.replays["student"].logits = features[k], logits[k]
                if teacher is not None:
                    self.replays["teacher"].features = self.replays["teacher"].logits = teacher[k]
                losses.append(functional_call(self.loss_of, {n: v[k] for n, v in self.aux_params.items()}, (x, t)).loss)
            loss = torch.stack(losses)
        self.optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.optimizer.step()
        return loss.detach().float(), logits.detach()


def train_packed_epoch(runs: Sequence[Run], data: DeviceSplit, epoch: int, device: torch.device,
                       on_step: Callable[[int], None] | None = None) -> list[EpochStats]:
    """Epoch ``epoch`` of every run in ``runs``, packed. Run k's batches are exactly those its single run draws:
    ``training_batches(data, cfg_k, epoch_generators(seed_k, epoch, device), DistInfo())``. Per-run statistics as
    ``train_one_epoch``: mean loss, accuracy (CutMix batches count lam*[pred = a] + (1-lam)*[pred = b]); a
    non-finite loss of any run is raised at the end of the epoch, naming its seed and first bad step. With
    ``cuda_graphs`` the packed step is replayed as one CUDA graph on a GPU (training.engine.graphs)."""
    pack = Pack(runs)
    k = len(runs)
    def step(batches):
        return pack.step(batches, device)
    if pack.cfg.cuda_graphs:
        step = GraphedStep(step, capture=device.type == "cuda", mixes=method_spec(pack.cfg.method).cutmix)
    streams = [training_batches(data, r.cfg, epoch_generators(r.cfg.seed, epoch, device), DistInfo()) for r in runs]
    tally = EpochTally(k, device)
    start = time.perf_counter()
    for batches in zip(*streams):
        loss, logits = step(batches)
        n = tally.add(loss, logits, [t for _, t in batches])
        if on_step is not None:
            on_step(n * k)
    pack.unpack()
    bad = [(r.cfg.seed, int(s)) for r, s in zip(runs, tally.first_bad.tolist()) if s >= 0]
    if bad:
        seed, step = bad[0]
        raise non_finite_loss(epoch, step, who=f" of seed {seed}")
    seconds = time.perf_counter() - start
    sums, hits, seen = tally.loss_sum.tolist(), tally.correct.tolist(), tally.seen
    return [EpochStats(sums[j] / seen, 100.0 * hits[j] / seen, seen, seconds, tally.steps) for j in range(k)]
