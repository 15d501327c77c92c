"""Per-epoch randomness and torchrun shares: every epoch draws a new order and new crops, the same
(seed, epoch) draws the same ones, and the ranks of one step split exactly the batch one process trains on."""
import pytest
import torch

from training.config import TrainConfig
from training.data.batches import DeviceSplit, epoch_generators
from training.data.datasets import load_split
from training.engine.loop import steps_per_epoch, training_batches
from training.runtime.distributed import DistInfo

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split() -> DeviceSplit:
    return DeviceSplit.from_imageset(load_split("cifar10", "train", None, 96), CPU)


def _epoch(split: DeviceSplit, seed: int, epoch: int, method: str = "scratch"):
    """All normalized batches and labels of one epoch, as one tensor each."""
    cfg = TrainConfig(model="resnet8", batch_size=32, seed=seed, method=method, channels_last=False)
    gens = epoch_generators(seed, epoch, CPU)
    xs, ys = zip(*[(x, t.a) for x, t in training_batches(split, cfg, gens, DistInfo())])
    return torch.cat(xs), torch.cat(ys)


def _order(seed: int, epoch: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=epoch_generators(seed, epoch, CPU).order)


def test_epochs_differ_in_order_and_crops(split):
    x1, y1 = _epoch(split, 0, 1)
    x2, y2 = _epoch(split, 0, 2)
    o1, o2 = _order(0, 1, len(split)), _order(0, 2, len(split))
    assert sorted(o1.tolist()) == sorted(o2.tolist()) == list(range(len(split)))  # each a permutation
    assert not torch.equal(o1, o2)
    assert torch.equal(y1, split.labels[o1]) and torch.equal(y2, split.labels[o2])  # batches follow the order
    # Same images, re-aligned to the same source index: the crops/flips still differ between epochs.
    inv1, inv2 = torch.argsort(o1), torch.argsort(o2)
    same_image_diff = (x1[inv1] - x2[inv2]).flatten(1).abs().amax(1) > 0
    assert same_image_diff.float().mean() > 0.5


def test_same_seed_and_epoch_draw_the_same(split):
    a, b = _epoch(split, 3, 2, "cutmix"), _epoch(split, 3, 2, "cutmix")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = _epoch(split, 4, 2, "cutmix")
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("method", ["scratch", "cutmix"])
def test_rank_shares_make_up_the_single_process_batch(split, world, method):
    """Every rank draws the same global batch (order, crops, flips, CutMix box and partners) and keeps its
    contiguous share; the shares of one step, in rank order, are the single-process batch, and the loss weights
    make DDP's mean over ranks the global mean. 96 images in batches of 40: 40, 40, 16."""
    cfg = TrainConfig(model="resnet8", batch_size=40, seed=7, method=method, channels_last=False, cutmix_prob=1.0)
    one = list(training_batches(split, cfg, epoch_generators(7, 3, CPU), DistInfo()))
    ranks = [list(training_batches(split, cfg, epoch_generators(7, 3, CPU), DistInfo(r, world))) for r in range(world)]
    assert len(one) == steps_per_epoch(len(split), 40, world) == 3 and all(len(r) == 3 for r in ranks)
    for step, (x, t) in enumerate(one):
        shares = [r[step] for r in ranks]
        assert torch.equal(torch.cat([xs for xs, _ in shares]), x)
        assert torch.equal(torch.cat([ts.a for _, ts in shares]), t.a)
        assert torch.equal(torch.cat([ts.b for _, ts in shares]), t.b)
        assert all(ts.lam == t.lam for _, ts in shares)
        # (1/W) sum_r weight_r * mean over rank r = mean over the global batch (here of the labels)
        ddp_mean = sum(ts.weight * ts.a.double().mean() for _, ts in shares) / world
        assert ddp_mean.item() == pytest.approx(t.a.double().mean().item())
    if method == "cutmix":
        assert any(not torch.equal(t.a, t.b) for _, t in one)  # partners drawn over the global batch


def test_a_last_batch_smaller_than_the_world_is_dropped():
    assert steps_per_epoch(97, 32, 2) == 3 and steps_per_epoch(97, 32, 1) == 4
    assert steps_per_epoch(65, 32, 2) == 2 and steps_per_epoch(65, 32, 1) == 3
