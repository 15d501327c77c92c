"""DDP keeps the paper's recipe (docs/reference.md "Training runs and checkpoints"): two gloo processes train exactly
the steps one process
trains -- global batch 64 split over the ranks, BatchNorm over the global batch, one CutMix draw per global batch
with partners drawn over it, the last (uneven) batch weighted by its share -- and a run is never resumed under
another process count."""
import socket
import subprocess
import sys

import pytest
import torch

from training.store.checkpoint import load_checkpoint
from training.train import main

# 85 images = batches of 64 and 21: the last is split 10 / 11 over two ranks, so the loss weights matter.
# lr 0.001 keeps float rounding below the 1e-6 tolerance: a tiny network at initialisation amplifies it, and at
# lr 0.01 one process on 1 vs 2 threads already differs by 6e-6 (DDP vs one process: 1.7e-6), at 0.001 by 2.4e-7.
BASE = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "85", "--lr", "0.001",
        "--epochs", "1", "--eval-batch-size", "500"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), "-m", "training.train", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _tensors(ckpt: dict) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v for k, v in ckpt["model"].items()}
    out.update({f"aux.{m}.{k}": v for m, st in ckpt["aux"].items() for k, v in st.items()})
    out.update({f"momentum.{i}": s["momentum_buffer"] for i, s in ckpt["optimizer"]["state"].items()})
    return out


@pytest.mark.parametrize("method,extra", [
    ("scratch", []),
    ("cutmix", ["--cutmix-prob", "1"]),  # every batch mixed, so the test sees the global draw
    ("feature_kd", []),
])
def test_two_processes_equal_one(tmp_path, tiny_checkpoint, method, extra):
    args = [*BASE, "--method", method, *extra]
    if method == "feature_kd":
        args += ["--teacher", str(tiny_checkpoint)]
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main([*args, "--out-dir", str(single)]) == 0
    r = _torchrun([*args, "--out-dir", str(ddp)])
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = load_checkpoint(single / "last.pt"), load_checkpoint(ddp / "last.pt")
    assert a["step"] == b["step"] == 2
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys() and any(k.startswith("momentum.") for k in ta)
    moved = 0
    for k in ta:
        if k.startswith("momentum."):
            # The gradients of the first layers at initialisation are sums of cancelling terms: one process on 1 vs
            # 2 threads already gives momentum buffers 2e-3 apart (relative norm; DDP vs one process: 2.9e-3), so
            # momentum is compared by norm; the weights it moved are compared elementwise to 1e-6.
            assert (tb[k] - ta[k]).norm() <= 1e-2 * ta[k].norm(), k
        elif ta[k].is_floating_point():
            torch.testing.assert_close(tb[k], ta[k], atol=1e-6, rtol=1e-5, msg=lambda m, k=k: f"{k}: {m}")
            moved += 1
        else:
            assert torch.equal(ta[k], tb[k]), k  # num_batches_tracked: 2 global batches
    assert moved > 20
    assert a["metrics"]["train_loss"] == pytest.approx(b["metrics"]["train_loss"], rel=1e-5)
    assert a["metrics"]["test_acc"] == pytest.approx(b["metrics"]["test_acc"])
    if method == "scratch":  # the same directory under another process count is refused, naming both counts
        r = _torchrun([*args, "--out-dir", str(single), "--epochs", "1"])
        assert r.returncode != 0 and "trained by 1 process(es), this is 2" in r.stderr, r.stderr[-1000:]


def test_without_sync_bn_the_ranks_differ_from_one_process(tmp_path):
    """The control: per-rank BatchNorm statistics (--no-sync-bn) change the step, so the test above can fail."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert main([*BASE, "--out-dir", str(single)]) == 0
    r = _torchrun([*BASE, "--no-sync-bn", "--out-dir", str(ddp)])
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = load_checkpoint(single / "last.pt")["model"], load_checkpoint(ddp / "last.pt")["model"]
    assert max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point()) > 1e-4
