"""--engine loss-landscapes: the loss-landscapes library, its zig-zag walk undone, gives the
same Li surface as orthokd's engine on the same directions, on a non-square, asymmetric grid."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import landscape
from landscape.compute import EngineOptions
from training.errors import UserError


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def test_loss_landscapes_engine_equals_ours(tmp_path):
    model = tiny()
    model.train()(torch.randn(16, 3, 6, 6))  # BN running statistics of its own, which both engines keep fixed
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 3, 6, 6, generator=g), torch.arange(20) % 3
    kw = dict(steps=(4, 3), xrange=(-1.0, 0.5), yrange=(-0.5, 1.0), device="cpu")
    ours = landscape.surface(model, (x, y), **kw)
    theirs = landscape.surface(
        model,
        (x, y),
        directions=ours.directions,
        options=EngineOptions(engine="loss-landscapes"),
        store=tmp_path / "ll.npz",
        **kw,
    )
    assert theirs.loss.shape == ours.loss.shape == (4, 3)
    np.testing.assert_allclose(theirs.loss, ours.loss, rtol=1e-5)
    np.testing.assert_allclose(theirs.acc, ours.acc)
    assert theirs.meta["engine"].startswith("loss-landscapes ") and (tmp_path / "ll.npz").exists()
    assert np.ptp(ours.loss, axis=1).min() > 1e-4  # loss varies along y: an uncorrected walk would not match
    with pytest.raises(UserError, match="recomputes every point: pass --overwrite"):
        landscape.surface(model, (x, y), directions=ours.directions, options=EngineOptions(engine="loss-landscapes"),
                          store=tmp_path / "ll.npz", **kw)


def test_loss_landscapes_engine_refuses_curves():
    with pytest.raises(UserError, match="2-D surfaces only"):
        landscape.surface(tiny(), (torch.randn(4, 3, 6, 6), torch.arange(4) % 3), steps=3, yrange=None,
                          options=EngineOptions(engine="loss-landscapes"), device="cpu")
