"""The Python API as a library user meets it: real functions with real signatures and
__all__ at the package faces, one ValueError line for each bad input, NASWOT without dropout noise, inputs of every
kind naswot's siblings take, mapping outputs through ``output_key``, ``max_images`` spread over a dataset, and
scores.json as strict JSON."""
from __future__ import annotations

import inspect
import json

import pytest
import torch
from torch import nn

import diversity
import landscape
from training.errors import UserError


def small_net(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Dropout(dropout),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5))


class DictNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = small_net()

    def forward(self, x):
        return {"logits": self.body(x), "features": x.mean()}


def batch(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 5


def test_faces_are_functions_with_signatures_and_all():
    import landscape.plot
    from diversity.naswot import naswot_v1  # noqa: F401  documented submodule imports keep working
    from landscape.sharpness import sharpness_report  # noqa: F401

    assert set(landscape.__all__) == {"surface", "sharpness", "Surface"} <= set(dir(landscape))
    assert set(diversity.__all__) == {"naswot", "score_models", "ScoreTable"} <= set(dir(diversity))
    for f in (landscape.surface, landscape.sharpness, diversity.naswot, diversity.score_models):
        assert inspect.isfunction(f), f
        params = inspect.signature(f).parameters
        assert {"model", "models"} & set(params) and "output_key" in params and "max_images" in params
    assert issubclass(UserError, ValueError)


def test_naswot_train_mode_leaves_dropout_off():
    x, _ = batch(12)
    noisy = small_net(dropout=0.5)
    scores = [diversity.naswot(noisy, x) for _ in range(3)]
    assert max(scores) - min(scores) < 1e-9 * abs(scores[0])
    plain = small_net(dropout=0.0)  # same weights (same seed), no dropout layer at work
    assert scores[0] == pytest.approx(diversity.naswot(plain, x), rel=1e-9)
    assert scores[0] != pytest.approx(diversity.naswot(plain, x, bn_mode="eval"), rel=1e-6)  # BN statistics differ
    assert noisy.training and not any(m.training is False for m in noisy.modules())  # the model is unchanged


def test_naswot_takes_what_surface_takes_and_mapping_outputs():
    x, y = batch(10)
    model = small_net()
    expected = diversity.naswot(model, x)
    dataset = torch.utils.data.TensorDataset(x, y)
    assert diversity.naswot(model, (x, y)) == pytest.approx(expected, rel=1e-9)
    assert diversity.naswot(model, torch.utils.data.DataLoader(dataset, batch_size=4)) == pytest.approx(
        expected, rel=1e-9
    )
    assert diversity.naswot(model, dataset) == pytest.approx(expected, rel=1e-9)
    wrapped = DictNet()
    wrapped.body.load_state_dict(model.state_dict())
    assert diversity.naswot(wrapped, x) == pytest.approx(expected, rel=1e-9)
    s = landscape.surface(wrapped, (x, y), steps=3, device="cpu")
    own = nn.functional.cross_entropy(model.eval()(x), y).item()
    assert s.loss[s.centre_index()] == pytest.approx(own, rel=1e-5)
    table = diversity.score_models({"a": [wrapped], "b": [model]}, x, batch_size=5, batches=2)
    assert table.scores["a"][0] == pytest.approx(table.scores["b"][0], rel=1e-9)


def test_max_images_spreads_over_a_dataset():
    x = torch.randn(40, 3, 8, 8)
    y = torch.arange(40) // 10  # class by class, as an ImageFolder lists its images
    s = landscape.surface(small_net(), torch.utils.data.TensorDataset(x, y), steps=1, max_images=8, device="cpu")
    assert "(8 images)" in s.meta["data"]
    from training.external.data import as_tensors
    assert sorted(set(as_tensors(torch.utils.data.TensorDataset(x, y), 8)[1].tolist())) == [0, 1, 2, 3]


class Vectors(nn.Module):  # tabular data: no image layout
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 5)

    def forward(self, x):
        return self.fc(x)


class NeedsSize(nn.Module):
    def forward(self, x):
        assert x.shape[-1] == 16, f"Input width ({x.shape[-1]}) doesn't match model (16)."
        return x.flatten(1)[:, :5]


@pytest.mark.parametrize("call, fragment", [
    (lambda: diversity.naswot(DictNet(), batch()[0], output_key="scores"),
     "mapping with keys ['features', 'logits'] but no 'scores'; pass output_key="),
    (lambda: landscape.surface(DictNet(), batch(), steps=1, output_key="out"), "but no 'out'; pass output_key="),
    (lambda: landscape.sharpness(DictNet(), batch(), output_key="out"), "but no 'out'; pass output_key="),
    (lambda: diversity.naswot(NeedsSize(), batch()[0]),
     "the model fails on inputs of shape (2, 3, 8, 8) (AssertionError: Input width (8) doesn't match model (16).)"),
    (lambda: landscape.surface(NeedsSize(), batch(), steps=1), "fails on inputs of shape (2, 3, 8, 8)"),
    (lambda: diversity.naswot(small_net(), torch.randn(1, 3, 8, 8)), "at least 2 inputs"),
    (lambda: landscape.surface(small_net(), (batch()[0], torch.arange(10)), steps=1),
     "the labels reach class 9 but the model gives 5 logits"),
    (lambda: diversity.naswot(nn.Identity(), batch()[0]),
     "the model returns (2, 3, 8, 8) for 2 inputs; the analyses need logits of shape (2, classes)"),
])
def test_each_bad_input_is_one_value_error_line(call, fragment):
    with pytest.raises(ValueError) as e:
        call()
    assert isinstance(e.value, UserError) and "\n" not in str(e.value) and fragment in str(e.value), str(e.value)


def test_naswot_on_vectors():
    score = diversity.naswot(Vectors(), torch.randn(6, 20), bn_mode="eval")
    assert score < -6.0


def test_json_outputs_are_strict():
    from training.store.files import strict_json

    text = strict_json({"std": float("nan"), "rows": [{"p": float("inf")}, (1.5, -float("inf"))], "n": 3})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in strict JSON")) == {
        "std": None, "rows": [{"p": None}, [1.5, None]], "n": 3}
