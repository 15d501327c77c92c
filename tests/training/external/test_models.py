"""training.external.models / training.external.data: model specs, weights files of every common layout, the logits
check, and evaluation data from tensors, loaders, datasets and image folders."""
import argparse
import sys

import numpy as np
import pytest
import torch
from torch import nn

from training.cli.model_flags import json_object
from training.data.datasets import load_split
from training.errors import CheckpointError, UserError
from training.external.data import as_tensors, load_images, make_transform
from training.external.models import build_model, check_logits, load_weights, read_state_dict


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def wrapped(state):
    return {
        "plain": state,
        "ddp": {"module." + k: v for k, v in state.items()},
        "compiled": {"_orig_mod." + k: v for k, v in state.items()},
        "compiled_ddp": {"module._orig_mod." + k: v for k, v in state.items()},
        # timm's train.py: state_dict plus args (an argparse.Namespace) and more
        "timm": {"epoch": 3, "arch": "x", "state_dict": state, "args": argparse.Namespace(lr=0.1), "version": 2},
        # torchvision's references/classification: model, optimizer, args
        "torchvision": {"model": {"module." + k: v for k, v in state.items()}, "optimizer": {"state": {}},
                        "args": argparse.Namespace(model="resnet18"), "epoch": 5},
        "model_state_dict": {"model_state_dict": state, "epoch": 1},
    }


@pytest.mark.parametrize("style", list(wrapped({})))
def test_every_weights_layout_loads(style, tmp_path):
    source = tiny()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)
    torch.save(wrapped(source.state_dict())[style], tmp_path / "w.pt")
    target = load_weights(tiny(), tmp_path / "w.pt")
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), (style, k)


def test_weights_that_do_not_fit_or_are_not_weights(tmp_path):
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "other.pt")
    with pytest.raises(UserError, match=r"does not fit .*Missing key\(s\).*, \.\.\. \(\d+ in all\)"):
        load_weights(tiny(), tmp_path / "other.pt", "tiny")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(UserError, match="holds no state_dict"):
        read_state_dict(tmp_path / "list.pt")
    torch.save(tiny(), tmp_path / "pickled_module.pt")  # a whole pickled module is refused by weights_only
    with pytest.raises(UserError, match="weights_only=True"):
        read_state_dict(tmp_path / "pickled_module.pt")
    with pytest.raises(UserError, match="not found"):
        read_state_dict(tmp_path / "missing.pt")
    state = tiny().state_dict()
    state["5.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="non-finite"):
        load_weights(tiny(), tmp_path / "nan.pt")


def test_model_specs(monkeypatch):
    assert isinstance(build_model("torch.nn:Linear", {"in_features": 4, "out_features": 3}), nn.Linear)
    assert build_model("torchvision:resnet18", {"num_classes": 7}).fc.out_features == 7
    for spec, kwargs, needle in [("resnet18", None, "use torchvision:NAME"),
                                 ("torchvision:nosuchnet", None, "torchvision has no model"),
                                 ("torch.nn:Linear", {"bogus": 1}, "does not take --model-kwargs"),
                                 ("collections:OrderedDict", None, "not a torch.nn.Module"),
                                 ("torch.nn:NoSuchThing", None, "has no callable"),
                                 ("no_such_package_xyz:f", None, "cannot import")]:
        with pytest.raises(UserError, match=needle):
            build_model(spec, kwargs)
    monkeypatch.setitem(sys.modules, "timm", None)  # timm missing, whatever this machine has
    with pytest.raises(UserError, match="pip install timm"):
        build_model("timm:resnet18")


def test_logits_check():
    x = torch.randn(2, 3, 8, 8)
    check_logits(tiny(), x, 10)
    for model, needle in [(tiny(), r"returns \(2, 10\) .* \(2, 5\)"), (nn.Conv2d(3, 10, 3), r"returns \(2, 10, 6, 6\)"),
                          (nn.Linear(5, 10), "fails on inputs of shape")]:
        with pytest.raises(UserError, match=needle):
            check_logits(model, x, 5 if needle.startswith("returns \\(2, 10\\) ") else 10)
    model = tiny().train()
    check_logits(model, x, 10)
    assert model.training  # the caller's mode is restored


def test_json_object():
    assert json_object('{"num_classes": 3}') == {"num_classes": 3}
    for bad in ("[1]", "{bad", "3"):
        with pytest.raises(argparse.ArgumentTypeError):
            json_object(bad)


def test_as_tensors_takes_pairs_loaders_and_datasets():
    data = load_split("cifar10", "train", None, 40)
    x, y = data.normalized(), data.labels
    ds = torch.utils.data.TensorDataset(x, y)
    spread = torch.from_numpy(np.linspace(0, 39, 30).round().astype(int))  # a dataset: spread evenly, as the CLIs
    for source, idx in (((x, y), slice(30)), (ds, spread), (torch.utils.data.DataLoader(ds, batch_size=7), slice(30))):
        got_x, got_y, _ = as_tensors(source, max_images=30)
        assert torch.equal(got_x, x[idx]) and torch.equal(got_y, y[idx])
    with pytest.raises(UserError, match="integer class labels"):
        as_tensors((x, y.float()))
    with pytest.raises(UserError, match="image tensor, label"):
        as_tensors([("not a tensor", 1)] * 2)


def test_explicit_transform_and_imagefolder_spread(tmp_path):
    from PIL import Image

    data = load_split("cifar10", "test", None, 12)
    for i, img in enumerate(data.images):
        folder = tmp_path / "train" / f"c{i // 4}"  # 3 classes x 4 images, listed class by class
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:02d}.png")
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    t = make_transform(resize=40, crop=36, mean=mean, std=std)
    got = load_images("imagefolder", "train", str(tmp_path), 3, t)
    assert got.labels.tolist() == [0, 1, 2] and got.num_classes == 3  # spread over the classes, not a prefix
    assert got.images.shape == (3, 3, 36, 36)
    import torchvision.transforms.functional as TF

    pil = Image.open(tmp_path / "train" / "c0" / "00.png").convert("RGB")
    first = TF.to_tensor(TF.center_crop(TF.resize(pil, 40), 36))  # torchvision's classic PIL pipeline
    expected = (first - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    torch.testing.assert_close(got.images[0], expected, rtol=1e-5, atol=1e-5)
    cifar = load_images("cifar10", "test", None, 12, None)  # no transform: the dataset's own normalization
    torch.testing.assert_close(cifar.images, data.normalized())
    assert make_transform() is None
    with pytest.raises(UserError, match="go together"):
        make_transform(mean=mean)
    with pytest.raises(UserError, match="leave out"):
        make_transform("torchvision:ResNet18_Weights.IMAGENET1K_V1", resize=3)
    with pytest.raises(UserError, match="no weights"):
        make_transform("torchvision:NoSuch_Weights.X")


def test_timm_specs_go_through_timm_create_model(monkeypatch):
    import types

    made = []
    fake = types.SimpleNamespace(
        is_model=lambda name: name == "tiny_net",
        create_model=lambda name, **kw: made.append((name, kw)) or nn.Linear(2, kw["num_classes"]),
    )
    monkeypatch.setitem(sys.modules, "timm", fake)  # timm's API as its documentation gives it
    assert build_model("timm:tiny_net", {"num_classes": 3}).out_features == 3 and made == [
        ("tiny_net", {"num_classes": 3})
    ]
    with pytest.raises(UserError, match="timm has no model 'other'"):
        build_model("timm:other")
