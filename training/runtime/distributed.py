"""torch.distributed plumbing for ``torchrun`` (docs/reference.md "Training runs and checkpoints"): rank/world from the
environment, NCCL on
GPUs and gloo on CPUs, only rank 0 writes. Without torchrun everything degrades to one process.

On GPUs each rank binds ``cuda:LOCAL_RANK`` with ``torch.cuda.set_device`` *before* the process group exists and
passes it as ``device_id``, and barriers name that device, so no rank silently shares GPU 0 with rank 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device | None = None  # this rank's CUDA device (None on CPU / gloo)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def requested_world_size() -> int:
    """The number of processes torchrun started (WORLD_SIZE), 1 without torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group that torchrun describes in RANK / WORLD_SIZE / MASTER_ADDR."""
    if requested_world_size() <= 1:
        return DistInfo()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        if cuda:
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), device if cuda else None)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier(device_ids=[info.device.index] if info.device is not None else None)


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``t`` over ranks (in place; returns ``t``)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
