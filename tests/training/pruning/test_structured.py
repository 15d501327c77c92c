"""Pruning operations: L1-norm filters (Li et al. 2017), network slimming (Liu et al. 2017) and weight-level
magnitude pruning (Han et al. 2015), checked against the function they must compute on real images and against
the reference code's rules and Li et al.'s published reductions."""
import math

import pytest
import torch
from torch import nn

from training.data.datasets import load_split
from training.errors import UserError
from training.models.registry import build_model
from training.models.slimming import ChannelSelect
from training.pruning.structured import (
    add_slimming_subgradient,
    count_params_macs,
    l1_filter_prune,
    l1_preset,
    network_slimming_prune,
    prunable_bns,
    slimming_keep_counts,
)
from training.pruning.weights import (
    conv_sparsity,
    finalize_weight_masks,
    magnitude_prune,
    restore_weight_masks,
    weight_masks,
)
from training.store.checkpoint import load_model, save_checkpoint


@pytest.fixture(scope="module")
def data():
    s = load_split("cifar10", "train", None, 32)
    return s.normalized(), s.labels


def _trained_like(name, x, **kwargs):
    """A seeded model with non-trivial BN statistics and affine parameters (a few train-mode forwards)."""
    torch.manual_seed(0)
    model = build_model(name, 10, **kwargs)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.05, 1.0)
            m.bias.data.uniform_(-0.2, 0.2)
    with torch.no_grad():
        for _ in range(3):
            model(x)
    return model.eval(), {"name": name, "num_classes": 10, **kwargs}


def _rebuilds(pruned, arch):
    kwargs = {k: v for k, v in arch.items() if k not in ("name", "num_classes")}
    build_model(arch["name"], arch["num_classes"], **kwargs).load_state_dict(pruned.state_dict())  # strict


@pytest.mark.parametrize("shortcut", ["pad", "conv"])
def test_l1_pruned_output_equals_unpruned_with_channels_zeroed(shortcut, data):
    x, _ = data
    model, arch = _trained_like("resnet14", x, width=8, shortcut=shortcut)
    pruned, new_arch = l1_filter_prune(model, arch, (0.5, 0.75, 0.25), skip=(4,))  # layer 4 = block 1's conv1
    assert new_arch["block_widths"] == [4, 8, 12, 12, 8, 8]
    _rebuilds(pruned, new_arch)
    zeroed = build_model("resnet14", 10, width=8, shortcut=shortcut)
    zeroed.load_state_dict(model.state_dict())
    for b, (blk, new) in enumerate(zip(zeroed.blocks, pruned.blocks)):
        l1 = blk.conv1.weight.abs().sum((1, 2, 3))
        kept = torch.argsort(l1, descending=True)[: new.conv1.out_channels].sort().values
        torch.testing.assert_close(new.conv1.weight, blk.conv1.weight[kept], rtol=0, atol=0)
        dropped = torch.ones(len(l1), dtype=torch.bool)
        dropped[kept] = False
        assert dropped.sum() == (0 if b == 1 else len(l1) - new.conv1.out_channels)
        if dropped.any():
            assert l1[kept].min() >= l1[dropped].max()  # the lowest-L1 filters went
        with torch.no_grad():
            blk.conv2.weight[:, dropped] = 0
    zeroed.eval()
    with torch.no_grad():
        full, out = model(x), pruned(x)
        torch.testing.assert_close(out, zeroed(x), rtol=1e-4, atol=1e-5)
    assert (full - out).abs().max() > 1e-3  # pruning did change the function


# Li et al. 2017 Table 2: (model, preset) -> published % reductions of parameters and FLOPs
LI_PUBLISHED = {("resnet56", "A"): (9.4, 10.4), ("resnet56", "B"): (13.7, 27.6),
                ("resnet110", "A"): (2.3, 15.9), ("resnet110", "B"): (32.4, 38.6)}


@pytest.mark.parametrize("name", ["resnet56", "resnet110"])
def test_li_presets_reproduce_published_reductions(name):
    """Li et al. 2017 Table 2 with the zero-padding shortcut of the reference l1-norm-pruning ResNet (the paper's
    8.5e5-parameter ResNet-56); FLOPs there = conv+FC multiply-accumulates (1.25e8 for ResNet-56). Tolerance 0.1
    percentage point, the published rounding (ours: 56-A 9.34/10.40, 56-B 13.75/27.56, 110-A 2.28/15.86,
    110-B 32.38/38.66)."""
    torch.manual_seed(0)
    model = build_model(name, 10)
    arch = {"name": name, "num_classes": 10}
    p0, m0 = count_params_macs(model)
    if name == "resnet56":
        assert p0 == 853_018 and round(m0 / 1e8, 2) == 1.25
    for preset in "AB":
        dp, dm = LI_PUBLISHED[(name, preset)]
        ratios, skip = l1_preset(name, preset)
        pruned, _ = l1_filter_prune(model, arch, ratios, skip)
        p1, m1 = count_params_macs(pruned)
        assert abs(100 * (1 - p1 / p0) - dp) <= 0.1, preset
        assert abs(100 * (1 - m1 / m0) - dm) <= 0.1, preset


def _reference_counts(gammas, percent):
    """Re-derived from network-slimming's vggprune.py: sort all |gamma|, thre = y[int(total * percent)],
    a channel survives iff |gamma| > thre."""
    y = sorted(abs(float(v)) for g in gammas for v in g.detach())
    thre = y[int(len(y) * percent)]
    return [sum(abs(float(v)) > thre for v in g.detach()) for g in gammas]


@pytest.mark.parametrize("name,kwargs,remaining,percent", [
    ("resnet14", {"width": 8}, 0.5, 0.5),
    ("vgg19", {"cfg": [8, 8, "M", 12, "M", 16, "M", 16, "M", 16]}, 0.5, 0.5),
    ("densenet40", {"depth": 10, "growth": 4}, 0.3, 0.7),
])
def test_slimming_threshold_matches_reference_and_pruning_equals_zeroed_bn(name, kwargs, remaining, percent, data):
    x, _ = data
    model, arch = _trained_like(name, x, **kwargs)
    bns = prunable_bns(model)
    expected = _reference_counts([bn.weight for _, bn in bns], percent)
    masks = slimming_keep_counts([bn.weight for _, bn in bns], remaining)
    assert [int(m.sum()) for m in masks] == expected
    pruned, new_arch = network_slimming_prune(model, arch, remaining)
    _rebuilds(pruned, new_arch)
    assert [bn.num_features for _, bn in prunable_bns(pruned)] == expected
    with torch.no_grad():  # the reference's own check: gamma and beta of the dropped channels set to zero
        for (_, bn), keep in zip(bns, masks):
            bn.weight.mul_(keep)
            bn.bias.mul_(keep)
        torch.testing.assert_close(pruned(x), model(x), rtol=1e-4, atol=1e-5)


def test_slimming_hand_example_and_empty_layer_guard():
    gammas = [torch.tensor([0.1, -0.5, 0.9]), torch.tensor([0.2, 0.3])]
    # sorted |gamma| = .1 .2 .3 .5 .9; keep |gamma| > y[int(5 * (1 - remaining))]
    assert [int(m.sum()) for m in slimming_keep_counts(gammas, 0.6)] == [2, 0]  # threshold y[2] = .3
    assert [int(m.sum()) for m in slimming_keep_counts(gammas, 0.8)] == [2, 1]  # y[1] = .2 (1 - 0.8 float-safe)
    assert [int(m.sum()) for m in slimming_keep_counts(gammas, 1.0)] == [3, 2]
    model = build_model("resnet8", 10, width=4)
    with torch.no_grad():
        model.blocks[0].bn1.weight.fill_(1e-3)
    with pytest.raises(UserError, match=r"empty layer blocks\.0\.bn1"):
        network_slimming_prune(model, {"name": "resnet8", "num_classes": 10, "width": 4}, 0.5)


def test_sparsity_subgradient_only_on_prunable_gammas(data):
    x, y = data
    model = build_model("resnet8", 10, width=4)
    with torch.no_grad():
        model.blocks[1].bn1.weight[0] = -0.5
    nn.functional.cross_entropy(model(x[:8]), y[:8]).backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    add_slimming_subgradient(model, 1e-4)
    for n, p in model.named_parameters():
        prunable = n.startswith("blocks.") and ".bn1.weight" in n
        expected = before[n] + 1e-4 * torch.sign(p.detach()) if prunable else before[n]
        torch.testing.assert_close(p.grad, expected, rtol=0, atol=0)
    assert model.blocks[1].bn1.weight.grad[0] == before["blocks.1.bn1.weight"][0] - 1e-4


def test_weight_level_masks_survive_sgd_and_checkpointing(data):
    x, y = data
    torch.manual_seed(0)
    model = build_model("resnet8", 10, width=4)
    arch = {"name": "resnet8", "num_classes": 10, "width": 4}
    pruned, new_arch = magnitude_prune(model, arch, 0.4)
    assert new_arch == arch
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    total = sum(c.weight.numel() for c in convs)
    assert conv_sparsity(pruned) == int(total * 0.6) / total
    masks = weight_masks(pruned)
    kept = torch.cat([c.weight.abs()[masks[n]] for n, c in model.named_modules() if n in masks])
    gone = torch.cat([c.weight.abs()[~masks[n]] for n, c in model.named_modules() if n in masks])
    assert kept.min() >= gone.max()  # one global magnitude threshold
    torch.testing.assert_close(pruned.fc.weight, model.fc.weight, rtol=0, atol=0)  # Linear untouched

    def sgd(net, steps):
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        for i in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[8 * i: 8 * i + 8]), y[8 * i: 8 * i + 8]).backward()
            opt.step()

    start = {n: m.weight.detach().clone() for n, m in pruned.named_modules() if n in masks}
    sgd(pruned, 3)
    for n, m in pruned.named_modules():
        if n in masks:
            assert bool((m.weight[~masks[n]] == 0).all()), n
    assert any(not torch.equal(m.weight[masks[n]], start[n][masks[n]])
               for n, m in pruned.named_modules() if n in masks)  # the kept weights did train
    state = finalize_weight_masks(pruned).state_dict()
    assert set(state) == set(model.state_dict())  # plain weights: loads as any checkpoint
    reloaded = build_model("resnet8", 10, width=4)
    reloaded.load_state_dict(state)
    restore_weight_masks(reloaded)
    assert {n: torch.equal(m, masks[n]) for n, m in weight_masks(reloaded).items()} == {n: True for n in masks}
    sgd(reloaded, 2)
    assert conv_sparsity(reloaded) == int(total * 0.6) / total


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5, math.nan])
def test_bad_ratios_are_refused(ratio):
    model = build_model("resnet8", 10, width=4)
    arch = {"name": "resnet8", "num_classes": 10, "width": 4}
    with pytest.raises(UserError, match=r"in \(0, 1\]"):
        l1_filter_prune(model, arch, (ratio, 0.5, 0.5))
    with pytest.raises(UserError, match=r"in \(0, 1\]"):
        network_slimming_prune(model, arch, ratio)
    with pytest.raises(UserError, match=r"in \(0, 1\]"):
        magnitude_prune(model, arch, ratio)


def test_architectures_without_a_rule_are_refused():
    vgg = build_model("vgg19", 10, cfg=[4, "M", 4, "M", 4, "M", 4, "M", 4])
    with pytest.raises(UserError, match="ResNets only"):
        l1_filter_prune(vgg, {"name": "vgg19", "num_classes": 10}, (0.5, 0.5, 0.5))
    with pytest.raises(UserError, match="no structured pruning rule"):
        network_slimming_prune(nn.Sequential(nn.Conv2d(3, 4, 3)), {"name": "x", "num_classes": 10}, 0.5)
    with pytest.raises(UserError, match="no L1-norm preset 'C'"):
        l1_preset("resnet56", "C")
    with pytest.raises(UserError, match="keeps no filter"):
        l1_filter_prune(build_model("resnet8", 10, width=4), {"name": "resnet8", "num_classes": 10, "width": 4},
                        (0.1, 0.5, 0.5))
    with pytest.raises(UserError, match="sparsity s must be a positive"):
        add_slimming_subgradient(build_model("resnet8", 10, width=4), 0.0)


def test_pruned_checkpoint_reloads_through_load_model(tmp_path, data):
    """A slimmed DenseNet (cfg + ChannelSelect index buffers) in a schema-v1 checkpoint loads like any other."""
    x, _ = data
    model, arch = _trained_like("densenet40", x, depth=10, growth=4)
    pruned, new_arch = network_slimming_prune(model, arch, 0.5)
    ckpt = {"format": "orthokd.checkpoint", "version": 1, "arch": new_arch, "model": pruned.state_dict(),
            "method": {"name": "scratch"}, "epoch": 0, "config": {}}
    save_checkpoint(ckpt, tmp_path / "pruned.pt")
    loaded, _ = load_model(tmp_path / "pruned.pt")
    assert any(m.index.numel() < m.channels for m in loaded.modules() if isinstance(m, ChannelSelect))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), pruned.eval()(x), rtol=0, atol=0)
