"""GPU-correct by construction, checked on the CPU (docs/reference.md "Training runs and checkpoints"): each torchrun
rank binds its own GPU
before the process group exists, TF32 is an explicit recorded choice, --compile reaches every network entry point
feature KD uses, and normalization constants live on the device."""
import json

import pytest
import torch
import torch.distributed as dist

from training.data.augment import Targets
from training.data.batches import DeviceSplit
from training.data.datasets import load_split
from training.errors import UserError
from training.models.registry import build_model
from training.models.wrap import compile_model
from training.objectives import FeatureKD
from training.runtime import distributed
from training.runtime.backends import configure_backends
from training.runtime.device import resolve_device
from training.train import main


def test_each_rank_binds_its_gpu_before_the_process_group(monkeypatch):
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append(("init", kw)))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    info = distributed.init_distributed(torch.device("cuda:1"))
    assert calls == [("set_device", torch.device("cuda:1")),
                     ("init", {"backend": "nccl", "device_id": torch.device("cuda:1")})]
    assert info.device == torch.device("cuda:1")
    barriers = []
    monkeypatch.setattr(dist, "barrier", lambda **kw: barriers.append(kw))
    distributed.barrier(info)
    assert barriers == [{"device_ids": [1]}]


def test_torchrun_ranks_take_cuda_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_device("cuda") == torch.device("cuda:3")
    assert resolve_device("auto") == torch.device("cuda:3")
    assert resolve_device("cuda:3") == torch.device("cuda:3")
    with pytest.raises(UserError, match="several ranks on one GPU"):
        resolve_device("cuda:0")


def test_tf32_is_set_explicitly_and_recorded(tmp_path):
    configure_backends(tf32=True, deterministic=False)
    assert torch.backends.cudnn.conv.fp32_precision == "tf32" and torch.backends.cudnn.benchmark
    configure_backends(tf32=False, deterministic=False)
    assert torch.backends.cudnn.conv.fp32_precision == "ieee" == torch.backends.cuda.matmul.fp32_precision
    args = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "64",
            "--epochs", "1"]
    assert main([*args, "--tf32", "--out-dir", str(tmp_path / "a")]) == 0
    assert main([*args, "--out-dir", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in "ab")
    assert (a["tf32"], b["tf32"], a["world_size"], a["sync_bn"]) == (True, False, 1, True)


def test_compile_covers_feature_kd_entry_points():
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10, width=4), build_model("resnet8", 10, width=4)
    kd = FeatureKD(student, teacher, beta=500.0)
    x = load_split("cifar10", "train", None, 8).normalized()
    t = Targets(torch.zeros(8, dtype=torch.long), torch.zeros(8, dtype=torch.long), 1.0)
    eager = kd(x, t)
    torch._dynamo.reset()
    counters.clear()
    compile_model(student, backend="eager")
    compile_model(teacher, backend="eager")
    compiled = kd(x, t)
    # student forward_features + forward_head and teacher forward_features were each captured by dynamo
    assert counters["stats"]["unique_graphs"] >= 3
    torch.testing.assert_close(compiled.loss, eager.loss)
    assert not any(k.startswith("_orig_mod") for k in student.state_dict())


def test_normalization_constants_live_on_the_device():
    s = DeviceSplit.from_imageset(load_split("cifar10", "test", None, 4), torch.device("cpu"))
    assert isinstance(s.mean, torch.Tensor) and s.mean.device == s.images.device and s.mean.shape == (3,)


def test_ieee_fp32_block_restores_and_mixes_with_configure_backends():
    """The NASWOT scorer switches TF32 off inside a study process that configured the backends first; torch
    refuses to mix its legacy allow_tf32 flags with the precision API, so both use the same API."""
    from training.runtime.backends import ieee_fp32

    configure_backends(tf32=True, deterministic=False)
    with ieee_fp32():
        assert torch.backends.cudnn.conv.fp32_precision == "ieee" == torch.backends.cuda.matmul.fp32_precision
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    configure_backends(tf32=False, deterministic=False)
