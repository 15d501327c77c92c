"""Options for reference-exact reproduction (--shortcut, --normalization), --save-every, and old run directories."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.config import TrainConfig
from training.data.datasets import checkpoint_split, load_split
from training.errors import UserError
from training.models.registry import build_model
from training.models.resnet import PadShortcut
from training.store.checkpoint import load_checkpoint, load_model
from training.store.poolable import describe_config
from training.train import main

TINY = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "128"]


def rethinking_downsample(x: torch.Tensor, planes: int) -> torch.Tensor:
    """rethinking-network-pruning's ``downsample_basic_block``: AvgPool2d(2, 2), then ``torch.cat`` of
    ``x.data`` (no autograd history) with zero channels up to ``planes``."""
    x = torch.nn.AvgPool2d(2, 2)(x)
    zero_pads = torch.zeros(x.size(0), planes - x.size(1), x.size(2), x.size(3))
    return torch.cat([x.data, zero_pads], dim=1)


def _downsampling_shortcuts(model) -> list[PadShortcut]:
    return [b.shortcut for b in model.blocks if isinstance(b.shortcut, PadShortcut)]


def test_pad_detached_matches_the_reference_and_passes_no_gradient(real_batch_u8):
    x = real_batch_u8[0][:4].float() / 255.0
    torch.manual_seed(0)
    detached = build_model("resnet14", 10, width=4, shortcut="pad-detached")
    pad = build_model("resnet14", 10, width=4, shortcut="pad")
    pad.load_state_dict(detached.state_dict())
    assert len(_downsampling_shortcuts(detached)) == 2  # the two stride-2 blocks, nothing else
    for sc_d, sc_p, c_in in zip(_downsampling_shortcuts(detached), _downsampling_shortcuts(pad), (4, 8)):
        c_out = 2 * c_in
        f = torch.randn(4, c_in, 16, 16, requires_grad=True)
        ref = rethinking_downsample(f, c_out)
        out_d, out_p = sc_d(f), sc_p(f)
        assert torch.equal(out_d, ref) and torch.equal(out_p, ref)
        assert not out_d.requires_grad and not ref.requires_grad  # no path back to the input
        (g,) = torch.autograd.grad(out_p.sum(), f)
        assert torch.allclose(g, torch.full_like(g, 0.25))  # pad: the 2x2 average's adjoint, 1/4 per pixel
    # Whole network: same outputs, different gradients below the first downsampling block.
    for m in (detached, pad):
        m.train()
    out_d, out_p = detached(x), pad(x)
    assert torch.allclose(out_d, out_p)
    out_d.logsumexp(1).sum().backward()
    out_p.logsumexp(1).sum().backward()
    assert not torch.allclose(detached.conv1.weight.grad, pad.conv1.weight.grad)
    assert torch.equal(detached.fc.weight.grad, pad.fc.weight.grad)  # above both shortcuts: identical


def test_pad_detached_training_is_not_pad_training(tmp_path):
    runs = {}
    for shortcut in ("pad", "pad-detached"):
        out = tmp_path / shortcut
        assert main([*TINY, "--epochs", "1", "--shortcut", shortcut, "--out-dir", str(out)]) == 0
        runs[shortcut] = load_checkpoint(out / "last.pt")["model"]
    assert not torch.equal(runs["pad"]["conv1.weight"], runs["pad-detached"]["conv1.weight"])


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main([*TINY, "--epochs", "1", "--shortcut", "pad-detached", "--normalization", "rethinking",
                 "--out-dir", str(out)]) == 0
    return out


def test_options_recorded_rebuilt_and_captioned(reference_run):
    model, ck = load_model(reference_run / "last.pt")
    assert ck["arch"]["shortcut"] == "pad-detached"
    assert ck["config"]["shortcut"] == "pad-detached" and ck["config"]["normalization"] == "rethinking"
    cfg = json.loads((reference_run / "config.json").read_text())
    assert cfg["shortcut"] == "pad-detached" and cfg["normalization"] == "rethinking"
    assert [s.detach for s in _downsampling_shortcuts(model)] == [True, True]
    test = checkpoint_split(ck["config"], "test", 8)
    assert test.std == (0.2023, 0.1994, 0.2010) and test.mean == (0.4914, 0.4822, 0.4465)
    caption = describe_config(cfg)
    assert "shortcut pad-detached" in caption and "normalization rethinking" in caption


def test_rethinking_normalization_is_what_training_evaluated_with(reference_run):
    """The test loss stored by training equals a naive evaluation on (x/255 - mean)/std with the reference
    code's std 0.2023/0.1994/0.2010, and not the one with the true CIFAR std."""
    model, ck = load_model(reference_run / "last.pt")
    test = load_split("cifar10", "test")
    x = test.images.double().numpy() / 255.0
    mean = np.array([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)

    def loss_with(std):
        xn = torch.from_numpy((x - mean) / np.array(std).reshape(1, 3, 1, 1)).float()
        with torch.no_grad():
            return F.cross_entropy(model(xn), test.labels).item()

    stored = ck["metrics"]["test_loss"]
    assert stored == pytest.approx(loss_with((0.2023, 0.1994, 0.2010)), rel=1e-4)
    assert stored != pytest.approx(loss_with((0.2470, 0.2435, 0.2616)), rel=1e-3)


def test_defaults_unchanged_and_old_configs_load():
    d = TrainConfig()
    assert (d.shortcut, d.normalization) == ("pad", "cifar")
    old = {k: v for k, v in d.to_json().items() if k not in ("shortcut", "normalization")}
    assert TrainConfig.from_json(old) == d
    assert build_model("resnet8", 10, width=4).blocks[1].shortcut.detach is False


def test_run_directory_from_before_the_new_keys_resumes(tmp_path):
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "2", "--lr-milestones", "1", "--out-dir", str(out)]
    assert main([*args, "--stop-after-epoch", "1"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    old = {k: v for k, v in cfg.items() if k not in ("shortcut", "normalization")}
    (out / "config.json").write_text(json.dumps(old))
    assert main(args) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2
    with pytest.raises(UserError, match="shortcut"):  # a real difference is still refused
        main([*args, "--shortcut", "conv", "--epochs", "2"])


def test_save_every_keeps_extra_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "5", "--lr-milestones", "3", "--save-every", "2", "--out-dir", str(out)]
    assert main([*args, "--stop-after-epoch", "3"]) == 0
    assert main(args) == 0
    names = sorted(p.name for p in out.glob("ckpt_e*.pt"))
    assert names == ["ckpt_e002.pt", "ckpt_e003.pt", "ckpt_e004.pt", "ckpt_e005.pt"]
    for n in names:
        assert load_checkpoint(out / n)["epoch"] == int(n[6:9])
    assert TrainConfig.from_json(json.loads((out / "config.json").read_text())).milestone_epochs() == [3, 5]
    assert "save_every" not in json.loads((out / "config.json").read_text())  # a file option, not a result
