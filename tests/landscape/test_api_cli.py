"""python -m landscape.plot --model: a thin layer over landscape.surface for models from outside orthokd."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import landscape
from landscape.plot import main
from landscape.record import load_surface
from training.cli.common import run_cli
from training.data.datasets import load_split

HERE = Path(__file__).resolve().parent
SMALL = ["--model", "test_api_models:small_net", "--device", "cpu", "--quiet"]


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))  # test_api_models importable as package.module:factory


def test_factory_model_cli_equals_the_api(on_path, tmp_path):
    from test_api_models import small_net

    assert main([*SMALL, "--model-kwargs", '{"width": 5}', "--steps", "3", "--max-images", "40",
                 "--out", str(tmp_path / "s.vtk")]) == 0
    s = load_surface(tmp_path / "s.npz")
    data = load_split("cifar10", "train", None, 40)
    api = landscape.surface(small_net(width=5), (data.normalized(), data.labels), steps=3, device="cpu")
    np.testing.assert_allclose(s.loss, api.loss, rtol=1e-6)
    assert s.meta["model"] == 'test_api_models:small_net {"width": 5}' and (tmp_path / "s.vtk").exists()


def test_torchvision_model_with_weights_file(tmp_path):
    torch.manual_seed(4)
    model = torchvision.models.resnet18(num_classes=10).eval()  # weights saved from a compiled DDP model
    torch.save({"state_dict": {"module._orig_mod." + k: v for k, v in model.state_dict().items()}}, tmp_path / "w.pt")
    assert main(["--model", "torchvision:resnet18", "--model-kwargs", '{"num_classes": 10}', "--weights",
                 str(tmp_path / "w.pt"), "--steps", "1", "--xrange", "0", "0", "--yrange", "0", "0",
                 "--max-images", "16", "--out", str(tmp_path / "s.npz"), "--device", "cpu", "--quiet"]) == 0
    data = load_split("cifar10", "train", None, 16)
    with torch.no_grad():
        expected = F.cross_entropy(model(data.normalized()), data.labels).item()
    assert load_surface(tmp_path / "s.npz").loss[0, 0] == pytest.approx(expected, rel=1e-5)


def test_imagefolder_with_the_weights_transforms(tmp_path):
    from PIL import Image

    data = load_split("cifar10", "test", None, 6)
    for i, (img, label) in enumerate(zip(data.images, data.labels)):
        folder = tmp_path / "imgs" / f"class{int(label) % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    assert main(["--model", "torchvision:resnet18", "--model-kwargs", '{"num_classes": 2}', "--weights",
                 str(tmp_path / "w.pt"), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "imgs"),
                 "--transform", "torchvision:ResNet18_Weights.IMAGENET1K_V1", "--steps", "1", "--xrange", "0", "0",
                 "--yrange", "0", "0", "--out", str(tmp_path / "s.npz"), "--device", "cpu", "--quiet"]) == 0
    ds = torchvision.datasets.ImageFolder(str(tmp_path / "imgs"))
    t = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()  # resize 256, crop 224, ImageNet mean/std
    x = torch.stack([t(img) for img, _ in ds])
    assert x.shape[-1] == 224
    with torch.no_grad():
        expected = F.cross_entropy(model(x), torch.tensor(ds.targets)).item()
    s = load_surface(tmp_path / "s.npz")
    assert s.loss[0, 0] == pytest.approx(expected, rel=1e-5) and "(6 images)" in s.meta["data"]


def run(argv, capsys) -> tuple[int, str]:
    rc = run_cli(main, argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("extra, needle", [
    (["--model", "test_api_models:pooled_net"], "returns (2, 10, 30, 30) for 2 inputs"),
    (["--model", "torchvision:resnet18"], "returns (2, 1000)"),
    (["--model", "test_api_models:small_net", "--weights", "WRONG"], "does not fit test_api_models:small_net"),
    (["--model", "test_api_models:nothing"], "has no callable 'nothing'"),
    (["--model", "timm:resnet18"], "pip install timm"),
    (["--model", "resnet18"], "use torchvision:NAME"),
    (["--weights", "w.pt"], "--weights applies to --model only"),
    ([], "give an orthokd CHECKPOINT or --model"),
    (["--model", "test_api_models:small_net", "--trajectory", "runs"], "--trajectory and --interpolate need"),
    (["--model", "test_api_models:small_net", "--dataset", "imagefolder", "--data-dir", "."], "needs the model's input "
                                                                                              "transform"),
    (["--model", "test_api_models:small_net", "--mean", "0.5", "0.5", "0.5"], "--mean and --std go together"),
])
def test_bad_models_and_flags_are_one_line_exit_2(extra, needle, on_path, tmp_path, capsys, monkeypatch):
    import sys

    from test_api_models import small_net

    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed, whatever the machine has
    wrong = tmp_path / "wrong.pt"
    torch.save(small_net(width=4).state_dict(), wrong)  # the factory's default width is 6
    argv = [str(wrong) if a == "WRONG" else a for a in extra]
    rc, err = run([*argv, "--steps", "1", "--xrange", "0", "0", "--yrange", "0", "0", "--max-images", "8",
                   "--out", str(tmp_path / "s.npz"), "--device", "cpu", "--quiet"], capsys)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "s.npz").exists()


@pytest.mark.parametrize("flag, value", [("--resize", "0"), ("--crop", "-3"), ("--std", "nan"), ("--mean", "inf"),
                                         ("--model-kwargs", "[1]"), ("--model-kwargs", "{bad")])
def test_bad_numbers_are_refused_by_the_parser(flag, value, tmp_path, capsys):
    n = 3 if flag in ("--mean", "--std") else 1
    with pytest.raises(SystemExit) as e:
        main(["--model", "torchvision:resnet18", flag, *[value] * n, "--out", str(tmp_path / "s.npz")])
    assert e.value.code == 2 and flag in capsys.readouterr().err


def test_the_cli_module_exposes_only_its_parser_and_main():
    """Its helpers take the argparse Namespace, so they are CLI-private; the library is landscape's other modules."""
    import inspect

    import landscape.plot as cli

    public = {n for n, f in vars(cli).items() if inspect.isfunction(f) and f.__module__ == cli.__name__
              and not n.startswith("_")}
    assert public == {"build_parser", "main"}
