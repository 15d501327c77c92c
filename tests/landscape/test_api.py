"""landscape.surface / landscape.sharpness on models that are not ours, against independent computations."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import landscape
from landscape.engine import SurfaceEngine
from landscape.formats.li_h5 import read_li_h5
from training.data.datasets import load_split
from training.errors import UserError

from .test_api_models import calibrated, li_directions, naive_loss, small_net


@pytest.fixture(scope="module")
def images():
    data = load_split("cifar10", "train", None, 96)
    return data.normalized(), data.labels


def own_loss(model, x, y, loss=F.cross_entropy) -> float:
    """The model's loss in eval mode (its own mode restored)."""
    was = model.training
    with torch.no_grad():
        out = float(loss(model.eval()(x), y))
    model.train(was)
    return out


def check_against_naive(model, s, x, y, loss=F.cross_entropy):
    """Li's directions (drawn here independently) are the surface's; the centre is the model's own loss; the
    off-centre points (three at most) equal a hand-perturbed copy."""
    dirs = li_directions(model)
    for mine, theirs in zip(s.directions, dirs):
        for name in theirs:
            torch.testing.assert_close(mine[name], theirs[name], rtol=1e-5, atol=1e-7)
    assert s.loss[s.centre_index()] == pytest.approx(own_loss(model, x, y, loss), rel=1e-5)
    centre = s.centre_index()
    for i, j in [ij for ij in [(0, 0), (len(s.xcoords) - 1, 0), (0, len(s.ycoords) - 1)] if ij != centre]:
        coords = (s.xcoords[i], s.ycoords[j])
        assert s.loss[i, j] == pytest.approx(naive_loss(model, dirs, coords, x, y, loss), rel=1e-4), coords
    assert np.ptp(s.loss) > 0.01  # the points moved


@pytest.mark.parametrize("factory", ["torchvision_resnet18", "small_net"])
def test_surface_of_foreign_models_matches_naive_and_restores_model(factory, images):
    x, y = images
    torch.manual_seed(0)
    if factory == "torchvision_resnet18":  # 11 M parameters: 2 x 2 points from the centre, on 48 images
        model, x, y, grid = torchvision.models.resnet18(num_classes=10), x[:48], y[:48], dict(steps=2, xrange=(0, 0.5))
    else:
        model, grid = small_net(), dict(steps=3, xrange=(-0.5, 0.5))
    model = calibrated(model, x)
    model.train()  # the caller's mode must survive
    before = {k: v.clone() for k, v in model.state_dict().items()}
    s = landscape.surface(model, (x, y), yrange=grid["xrange"], device="cpu", **grid)
    assert s.loss.shape == (grid["steps"],) * 2 and s.done and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    check_against_naive(model, s, x, y)


def test_dataloader_dataset_and_tensors_give_one_surface(images):
    x, y = images
    model = calibrated(small_net(), x)
    pair = landscape.surface(model, (x, y), steps=3, yrange=None, device="cpu")
    ds = torch.utils.data.TensorDataset(x, y)
    loader = landscape.surface(
        model, torch.utils.data.DataLoader(ds, batch_size=17), steps=3, yrange=None, device="cpu"
    )
    dataset = landscape.surface(model, ds, steps=3, yrange=None, device="cpu", max_images=50)
    assert pair.is_1d and pair.loss.shape == (3,)
    np.testing.assert_array_equal(pair.loss, loader.loss)
    assert dataset.meta["data"].endswith("(50 images)")
    spread = np.linspace(0, len(x) - 1, 50).round().astype(int)  # a dataset's max_images spread over it, as the CLI
    assert dataset.loss[1] == pytest.approx(own_loss(model, x[spread], y[spread]), rel=1e-5)


def test_custom_loss_and_given_directions(images):
    x, y = images
    model = calibrated(small_net(), x)
    smooth = lambda logits, labels, reduction="mean": F.cross_entropy(logits, labels, reduction=reduction,  # noqa: E731
                                                                       label_smoothing=0.2)
    s = landscape.surface(model, (x, y), loss=smooth, steps=3, directions=li_directions(model), device="cpu")
    assert s.meta["kind"] == "given" and "loss" in s.meta
    check_against_naive(model, s, x, y, smooth)


def test_store_resumes_and_save_writes_every_format(images, tmp_path, monkeypatch):
    x, y = images
    model = calibrated(small_net(), x)
    store = tmp_path / "s.npz"
    first = landscape.surface(model, (x, y), steps=3, device="cpu", store=store)
    monkeypatch.setattr(SurfaceEngine, "_point_sums", lambda self, c: pytest.fail("a stored point was recomputed"))
    again = landscape.surface(model, (x, y), steps=3, device="cpu", store=store)
    np.testing.assert_array_equal(first.loss, again.loss)
    monkeypatch.undo()
    with pytest.raises(UserError, match="different surface"):
        landscape.surface(model, (x, y), steps=3, device="cpu", store=store, dir_seed=5)
    written = first.save(tmp_path / "s.vtk")
    assert (tmp_path / "s.vtk") in written and all(p.exists() for p in written)
    h5 = first.save(tmp_path / "li.h5")
    np.testing.assert_allclose(read_li_h5(h5[0]).loss, first.loss)
    assert first.contour(tmp_path / "c.png").stat().st_size > 1000
    with pytest.raises(UserError, match="unknown suffix"):
        first.save(tmp_path / "s.txt")
    reused = landscape.surface(model, (x, y), steps=3, device="cpu", directions=store, dir_seed=9)  # seed unused
    np.testing.assert_array_equal(reused.loss, first.loss)
    curve = landscape.surface(model, (x, y), steps=3, yrange=None, device="cpu")
    assert curve.render(tmp_path / "curve.png").stat().st_size > 1000
    with pytest.raises(UserError, match="no contour map"):
        curve.contour(tmp_path / "c1.png")


def test_surface_is_the_record_with_its_writers(images):
    import dataclasses

    from landscape import api, record

    x, y = images
    s = landscape.surface(small_net(), (x[:8], y[:8]), steps=1, device="cpu")
    assert type(s) is api.Surface and landscape.Surface is api.Surface and issubclass(api.Surface, record.Surface)
    assert all(callable(getattr(s, m)) for m in ("save", "render", "contour"))
    assert not any(hasattr(record.Surface, m) for m in ("save", "render", "contour"))  # the record has no writers
    fields = ["xcoords", "ycoords", "loss", "acc", "meta", "directions", "computed"]
    assert (
        [f.name for f in dataclasses.fields(api.Surface)]
        == [f.name for f in dataclasses.fields(record.Surface)]
        == fields
    )
    plain = record.Surface(**{f: getattr(s, f) for f in fields})
    assert api.Surface.of(plain).loss is s.loss and s.done and s.centre_index() == (0, 0)


def test_sharpness_api_on_a_foreign_model(images):
    x, y = images
    model = calibrated(small_net(), x).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = landscape.sharpness(model, (x, y), max_images=32, device="cpu", rel_se=0.5, min_samples=2, max_samples=4,
                            sketch=0, max_iters=4)
    assert r["images"] == 32 and r["centre_loss"] == pytest.approx(own_loss(model, x[:32], y[:32]), rel=1e-5)
    assert r["lambda_max"] > 0 and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_api_inputs_are_one_line_errors(images):
    x, y = images
    model = small_net()
    with pytest.raises(UserError, match="needs 2 direction"):
        landscape.surface(model, (x, y), steps=3, directions=li_directions(model, count=1), device="cpu")
    with pytest.raises(UserError, match="integer class labels"):
        landscape.surface(model, (x, y[:10]), steps=3, device="cpu")
    with pytest.raises(UserError, match="reversed"):
        landscape.surface(model, (x, y), steps=3, xrange=(1, -1), device="cpu")
