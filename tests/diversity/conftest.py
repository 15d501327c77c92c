import json
import shutil
from pathlib import Path

import pytest

from training.train import main as train_main

TINY = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "256",
        "--epochs", "1", "--lr-milestones"]


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    """Two methods x two seeds of real (1-epoch, 256-image) tiny runs."""
    root = tmp_path_factory.mktemp("div_runs")
    for method in ("scratch", "label_kd"):
        for seed in (0, 1):
            extra = ["--teacher", str(tiny_checkpoint)] if method == "label_kd" else []
            assert train_main([*TINY, "--method", method, "--seed", str(seed), "--out-dir",
                               str(root / f"{method}-s{seed}"), *extra]) == 0
    return root


@pytest.fixture
def copy_runs(runs_dir, tmp_path):
    def make(names=None) -> Path:
        dst = tmp_path / "runs"
        for d in sorted(runs_dir.iterdir()):
            if names is None or d.name in names:
                shutil.copytree(d, dst / d.name)
        return dst

    return make


def edit_config(run: Path, **changes) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg.update(changes)
    (run / "config.json").write_text(json.dumps(cfg))
