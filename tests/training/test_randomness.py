"""Per-epoch randomness and torchrun shards: every epoch draws a new order and new crops, the same
(seed, epoch) draws the same ones, and the ranks of one epoch split the data without overlap."""
import pytest
import torch

from training.config import TrainConfig
from training.distributed import DistInfo
from training.loop import DeviceSplit, epoch_generators, shard_indices, training_batches
from training.data import load_split

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split() -> DeviceSplit:
    return DeviceSplit.from_imageset(load_split("cifar10", "train", None, 96), CPU)


def _epoch(split: DeviceSplit, seed: int, epoch: int, method: str = "scratch"):
    """All normalized batches and labels of one epoch, as one tensor each."""
    cfg = TrainConfig(model="resnet8", batch_size=32, seed=seed, method=method, channels_last=False)
    gens = epoch_generators(seed, epoch, 0, CPU)
    xs, ys = zip(*[(x, t.a) for x, t in training_batches(split, cfg, gens, DistInfo())])
    return torch.cat(xs), torch.cat(ys)


def _order(seed: int, epoch: int, n: int, rank: int = 0, world: int = 1) -> torch.Tensor:
    return shard_indices(n, epoch_generators(seed, epoch, rank, CPU), DistInfo(rank, world), CPU)


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


@pytest.mark.parametrize("world,n", [(2, 96), (2, 97), (3, 100), (3, 96)])
def test_torchrun_shards_are_disjoint_and_cover_every_index(world, n):
    shards = [_order(5, 1, n, rank, world) for rank in range(world)]
    per_rank = -(-n // world)
    assert all(len(s) == per_rank for s in shards)
    flat = torch.cat(shards).tolist()
    assert set(flat) == set(range(n))  # together: every index
    pad = per_rank * world - n
    counts = torch.bincount(torch.tensor(flat), minlength=n)
    assert int((counts == 2).sum()) == pad and int((counts > 2).sum()) == 0  # only the wrap-around repeats
    # Without the wrap-around padding the ranks are disjoint: the repeated indices are the permutation's first ones.
    full = torch.randperm(n, generator=epoch_generators(5, 1, 0, CPU).order)
    assert set(torch.nonzero(counts == 2).flatten().tolist()) == set(full[:pad].tolist())
    for r in range(world):
        for q in range(r + 1, world):
            overlap = set(shards[r].tolist()) & set(shards[q].tolist())
            assert overlap <= set(full[:pad].tolist())
