"""BatchNorm over the global batch under torchrun (docs/reference.md "Training runs and checkpoints"): SyncBatchNorm on
GPUs, and its CPU
counterpart for gloo runs.

torch.nn.SyncBatchNorm is the library's way and is used on CUDA; it refuses CPU tensors, so CPU (gloo) runs --
and the 2-process tests that check DDP equals one process -- use ``GlooSyncBatchNorm``, a BatchNorm2d whose
training-mode statistics are reduced over every rank with a differentiable all_reduce."""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn


class GlooSyncBatchNorm(nn.BatchNorm2d):
    """Training mode: with the counts n_r and sums over (N, H, W) of x and x^2 of every rank r reduced,
    mean = sum x / n, var = sum x^2 / n - mean^2 (n = sum n_r), y = (x - mean) / sqrt(var + eps) * gamma + beta;
    running statistics move by ``momentum`` towards mean and the unbiased var * n / (n - 1), as BatchNorm2d.
    Gradients flow through the reduction (its backward all-reduces them), as in SyncBatchNorm. Eval mode and a
    single process are plain BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        xd = x.double()  # sums in float64: E[x^2] - E[x]^2 loses digits in float32
        stats = torch.cat([xd.sum((0, 2, 3)), (xd * xd).sum((0, 2, 3)), xd.new_full((1,), x.numel() / c)])
        with warnings.catch_warnings():  # its suggested successor has no autograd formula; this one does
            warnings.simplefilter("ignore", FutureWarning)
            stats = dist_fn.all_reduce(stats)
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c : 2 * c] / n - mean * mean
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.to(self.running_mean.dtype), alpha=m)
            self.running_var.mul_(1 - m).add_((var * n / (n - 1)).to(self.running_var.dtype), alpha=m)
        scale = (torch.rsqrt(var + self.eps) * self.weight.double()).view(1, c, 1, 1)
        return ((xd - mean.view(1, c, 1, 1)) * scale + self.bias.double().view(1, c, 1, 1)).to(x.dtype)


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm2d of ``model`` as a global-batch BatchNorm: torch's SyncBatchNorm on CUDA,
    ``GlooSyncBatchNorm`` on the CPU. State-dict keys are unchanged, so checkpoints stay plain BatchNorm2d."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlooSyncBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            setattr(model, name, new)
        else:
            convert_sync_batchnorm(child, device)
    return model
