"""AutoAugment as the paper's random policy: torchvision's CIFAR-10 policy with grey fill, one sub-policy per image
drawn from (seed, epoch, image index), so batches do not depend on the worker count, the batching or the rank, a
resumed run equals an uninterrupted one, and the device streams (order, crops, flips, CutMix) are those of a plain
run. Bad input: unknown names, other image sizes, --seeds, --workers 0."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import AutoAugment, AutoAugmentPolicy

from training.config import RuntimeOptions, TrainConfig, with_defaults
from training.data.augment import random_crop_flip
from training.data.autoaugment import AutoAugmented, HostAutoAugment, stream_seed
from training.data.batches import DeviceSplit, epoch_generators
from training.data.datasets import load_split
from training.engine.fit import fit
from training.engine.loop import training_batches
from training.errors import UserError
from training.runtime.distributed import DistInfo
from training.store.checkpoint import load_checkpoint

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def train_set():
    return load_split("cifar10", "train", None, 96)


def _hwc(images: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())


def test_each_image_is_torchvision_autoaugment_seeded_by_its_key(train_set):
    """Item i of (seed 5, epoch 2) = torchvision AutoAugment(CIFAR10, fill 128) on the PIL image with the CPU
    generator seeded stream_seed(5, 2, 3, i); the global RNG is left as it was."""
    ds = AutoAugmented(_hwc(train_set.images))
    policy = AutoAugment(AutoAugmentPolicy.CIFAR10, fill=[128] * 3)
    before = torch.get_rng_state()
    got = [ds[(5, 2, i)] for i in range(16)]
    assert torch.equal(torch.get_rng_state(), before)
    for i in range(16):
        torch.manual_seed(stream_seed(5, 2, 3, i))
        want = np.array(policy(Image.fromarray(_hwc(train_set.images)[i])))
        assert torch.equal(got[i], torch.from_numpy(want).permute(2, 0, 1)), i
    assert sum(not torch.equal(g, x) for g, x in zip(got, train_set.images[:16])) >= 8  # most images change


def test_one_sub_policy_per_image_and_grey_fill(train_set):
    """The sub-policy index is drawn per image (many distinct ones in one batch, not one per batch), and pixels that
    geometric operations uncover are grey (128, 128, 128), which real images almost never hold exactly."""
    ids = set()
    for i in range(64):
        torch.manual_seed(stream_seed(0, 1, 3, i))
        ids.add(int(torch.randint(25, (1,))))  # AutoAugment.get_params' first draw: the sub-policy index
    assert len(ids) >= 15
    def grey(x):
        return (x == 128).all(0).sum().item()
    ds = AutoAugmented(_hwc(train_set.images))
    filled = sum(grey(ds[(0, e, i)]) > grey(train_set.images[i]) + 8 for e in (1, 2, 3) for i in range(len(train_set)))
    assert filled >= 20  # 46 with fill 128 on these images; 0 with fill 0


def test_batches_do_not_depend_on_workers_or_batching(train_set):
    """The same keys give the same images in 0 or 2 (persistent) workers, however batched, in any epoch's pass."""
    idx = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))
    inline, pool = HostAutoAugment(train_set.images, 0, CPU), HostAutoAugment(train_set.images, 2, CPU)
    one = torch.cat(list(inline.batches([idx[:40], idx[40:]], 3, 7)))
    other_epoch = torch.cat(list(pool.batches([idx], 3, 8)))  # the pool's first pass
    assert torch.equal(one, torch.cat(list(pool.batches([idx[:16], idx[16:64], idx[64:]], 3, 7))))  # its second
    other_seed = torch.cat(list(inline.batches([idx], 4, 7)))
    assert not torch.equal(one, other_epoch) and not torch.equal(one, other_seed)
    assert torch.equal(other_epoch, torch.cat(list(inline.batches([idx], 3, 8))))


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(model="resnet8", width=4, batch_size=40, seed=7, channels_last=False, **kw)


@pytest.mark.parametrize("method", ["scratch", "cutmix"])
def test_device_streams_unchanged_and_rank_shares(train_set, method):
    """With AutoAugment the epoch's order, crops, flips and CutMix draws are the plain run's, applied to the
    AutoAugmented images; under 2 ranks the shares of each step make up the single-process batch."""
    aug = DeviceSplit.from_imageset(train_set, CPU, "autoaugment", 0)
    cfg = _cfg(method=method, augment="autoaugment", cutmix_prob=1.0)
    plain = list(training_batches(aug, _cfg(method=method, cutmix_prob=1.0), epoch_generators(7, 3, CPU), DistInfo()))
    one = list(training_batches(aug, cfg, epoch_generators(7, 3, CPU), DistInfo()))
    ranks = [list(training_batches(aug, cfg, epoch_generators(7, 3, CPU), DistInfo(r, 2))) for r in range(2)]
    gens = epoch_generators(7, 3, CPU)
    perm = torch.randperm(len(train_set), generator=gens.order)
    host = HostAutoAugment(train_set.images, 0, CPU)
    for step, ((x, t), (xp, tp)) in enumerate(zip(one, plain)):
        assert torch.equal(t.a, tp.a) and torch.equal(t.b, tp.b) and t.lam == tp.lam
        assert not torch.equal(x, xp)
        shares = [r[step] for r in ranks]
        assert torch.equal(torch.cat([xs for xs, _ in shares]), x)
        if method == "scratch":  # recompute by hand: AutoAugment the batch's images, then the epoch's crop/flip draws
            b = perm[40 * step: 40 * step + 40]
            want = random_crop_flip(next(host.batches([b], 7, 3)), gens.augment)
            assert torch.equal(x, (want.float() / 255 - aug.mean.view(1, 3, 1, 1)) / aug.std.view(1, 3, 1, 1))


def test_resume_equals_uninterrupted_with_other_worker_counts(tmp_path):
    cfg = TrainConfig(model="resnet8", width=4, epochs=2, lr_milestones=(1,), max_train_images=96, batch_size=32,
                      augment="autoaugment", method="cutmix")
    fit(cfg, tmp_path / "full", RuntimeOptions(device="cpu", quiet=True, workers=2))  # 2 epochs, the same workers
    fit(cfg, tmp_path / "cut", RuntimeOptions(device="cpu", quiet=True, workers=0, stop_after_epoch=1))
    fit(cfg, tmp_path / "cut", RuntimeOptions(device="cpu", quiet=True, workers=1))
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in ("full", "cut"))
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["method"]["augmentation"] == {"augment": "autoaugment", "cutmix": True}
    assert json.loads((tmp_path / "full" / "config.json").read_text())["augment"] == "autoaugment"


def test_old_config_records_load_as_no_autoaugment_without_nesterov():
    old = {k: v for k, v in TrainConfig().to_json().items() if k not in ("augment", "nesterov")}
    assert TrainConfig.from_json(old) == TrainConfig()
    assert with_defaults(old)["augment"] == "none" and with_defaults(old)["nesterov"] is False


def test_library_refusals():
    with pytest.raises(UserError, match="32x32") as e:
        HostAutoAugment(torch.zeros(4, 3, 24, 24, dtype=torch.uint8), 0, CPU)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="none, autoaugment"):
        TrainConfig(augment="randaugment")
    plain = DeviceSplit.from_imageset(load_split("cifar10", "train", None, 8), CPU)
    with pytest.raises(UserError, match="from_imageset"):
        next(training_batches(plain, _cfg(augment="autoaugment"), epoch_generators(0, 1, CPU), DistInfo()))
    with pytest.raises(UserError, match="--workers"):
        RuntimeOptions(workers=-1)
    host = HostAutoAugment(load_split("cifar10", "train", None, 8).images, 0, CPU)
    first = host.batches([torch.arange(4), torch.arange(4, 8)], 0, 1)
    next(first)
    with pytest.raises(UserError, match="one epoch at a time"):
        next(host.batches([torch.arange(8)], 0, 2))
    first.close()
    assert next(host.batches([torch.arange(8)], 0, 2)).shape == (8, 3, 32, 32)


def _cli(args):
    r = subprocess.run([sys.executable, "-m", "training.train", "--model", "resnet8", "--width", "4", "--device", "cpu",
                        "--quiet", "--epochs", "1", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.parametrize("extra,needle", [
    (["--augment", "randaugment"], "(choose from 'none', 'autoaugment', 'autoaugment-cutout')"),
    (["--augment", "autoaugment", "--workers", "0"], "--workers"),
    (["--augment", "autoaugment", "--workers", "nan"], "--workers"),
    (["--augment", "autoaugment", "--seeds", "0", "1"], "--seeds does not take --augment"),
])
def test_cli_refusals_one_line_exit_2(tmp_path, extra, needle):
    out = tmp_path / ("r{seed}" if "--seeds" in extra else "r")
    rc, stdout, err = _cli(["--out-dir", str(out), *extra])
    assert rc == 2 and stdout == "" and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert needle in err and not any(tmp_path.iterdir())


def test_cli_refuses_images_of_another_size(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "test"):  # 24x24 crops of real CIFAR images
        real = load_split("cifar10", split, None, 16).images[:, :, :24, :24].permute(0, 2, 3, 1).numpy()
        np.savez(data / f"small-{split}.npz", images=real, labels=rng.integers(0, 10, 16))
    rc, _, err = _cli(["--dataset", "npz", "--data-dir", str(data), "--augment", "autoaugment", "--out-dir",
                       str(tmp_path / "r")])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "32" in err and not (tmp_path / "r").exists(), err


def test_torchrun_two_ranks_train_the_single_process_steps(tmp_path):
    """Two gloo ranks, each AutoAugmenting the global batch in its own worker, take the single process's steps."""
    import socket

    args = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "64", "--lr",
            "0.001", "--epochs", "1", "--eval-batch-size", "500", "--augment", "autoaugment", "--workers", "1"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        str(port), "-m", "training.train", *args, "--out-dir", str(tmp_path / "ddp")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    from training.train import main

    assert main([*args, "--out-dir", str(tmp_path / "one")]) == 0
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in ("one", "ddp"))
    assert a["step"] == b["step"] == 1
    assert a["metrics"]["train_loss"] == pytest.approx(b["metrics"]["train_loss"], rel=1e-5)
    for k, v in a["model"].items():  # float rounding of the all-reduced BatchNorm statistics: ~2e-6
        if v.is_floating_point():
            torch.testing.assert_close(b["model"][k], v, atol=1e-5, rtol=1e-4, msg=lambda m, k=k: f"{k}: {m}")
