"""Numeric backend settings of a run (docs/reference.md "Training runs and checkpoints"): TF32 on or off explicitly,
cuDNN autotuning,
deterministic algorithms.

PyTorch's own default runs fp32 convolutions in TF32 on Ampere and newer GPUs, so an "fp32" run would silently
be a TF32 run; here TF32 is a recorded config key (``TrainConfig.tf32``, off by default = IEEE fp32) and is set
for both convolutions and matmuls before any work. It has no effect on CPUs.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


def configure_backends(tf32: bool, deterministic: bool) -> None:
    """TF32 for cuDNN convolutions and cuBLAS matmuls iff ``tf32``; cuDNN autotuning (``benchmark``) unless
    ``deterministic``, which instead asks for deterministic kernels (bitwise-repeatable GPU runs, slower)."""
    precision = "tf32" if tf32 else "ieee"
    torch.backends.cudnn.conv.fp32_precision = precision
    torch.backends.cuda.matmul.fp32_precision = precision
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
    torch.use_deterministic_algorithms(deterministic)


@contextlib.contextmanager
def backend_settings(tf32: bool, benchmark: bool | None = None) -> Iterator[None]:
    """TF32 (``tf32``) or IEEE fp32 convolutions and matmuls inside the block, and cuDNN autotuning on or off
    (``benchmark``; None leaves it), the previous settings restored after it. Uses the same (new) precision API as
    ``configure_backends``: torch refuses a mix of it and ``allow_tf32``."""
    conv, matmul, cudnn = torch.backends.cudnn.conv, torch.backends.cuda.matmul, torch.backends.cudnn
    before = (conv.fp32_precision, matmul.fp32_precision, cudnn.benchmark)
    conv.fp32_precision = matmul.fp32_precision = "tf32" if tf32 else "ieee"
    if benchmark is not None:
        cudnn.benchmark = benchmark
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision, cudnn.benchmark = before


def ieee_fp32() -> contextlib.AbstractContextManager[None]:
    """IEEE fp32 convolutions and matmuls (no TF32) inside the block, the previous setting restored after it."""
    return backend_settings(tf32=False)
