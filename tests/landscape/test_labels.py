"""3-D titles and metadata of a --model surface name its --model-kwargs."""
from __future__ import annotations

import sys
import types

from torch import nn

from landscape.labels import surface_title
from landscape.plot import main
from landscape.record import load_surface


class Net(nn.Module):
    def __init__(self, width: int = 4, num_classes: int = 10):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, width), nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.fc(x)


def test_title_names_model_kwargs(tmp_path, monkeypatch):
    module = types.ModuleType("title_models")
    module.build = Net
    monkeypatch.setitem(sys.modules, "title_models", module)
    out = tmp_path / "s.npz"
    assert main(["--model", "title_models:build", "--model-kwargs", '{"width": 6}', "--out", str(out), "--steps", "2",
                 "--max-images", "8", "--resize", "8", "--quiet", "--device", "cpu"]) == 0
    title = surface_title(load_surface(out).meta)
    assert title.startswith('title_models:build {"width": 6}; 2x2 grid'), title
