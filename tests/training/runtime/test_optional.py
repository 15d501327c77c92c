"""The study-only packages (torch_pruning, submitit, tensorboard) are imported only where used: without them the
training, surface, NASWOT and GPU-check paths import, and each feature that needs one says one line naming
``pip install 'orthokd[study]'``."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.errors import UserError
from training.runtime.distributed import DistInfo
from training.runtime.optional import STUDY_EXTRA, require

REPO = Path(__file__).resolve().parents[3]
STUDY_ONLY = ("torch_pruning", "submitit", "tensorboard")


def test_core_modules_import_without_the_study_packages():
    # None in sys.modules makes every import of that package fail as if it were not installed
    code = ("import sys\n"
            f"for m in {STUDY_ONLY!r}: sys.modules[m] = None\n"
            f"sys.path.insert(0, {str(REPO / 'bench')!r})\n"
            "import training.train, training.engine.packed, training.prune, landscape.plot, diversity.score, "
            "figures.study\n"
            "import gpu_check\n"
            "print('ok')\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


def test_missing_torch_pruning_is_one_line(monkeypatch):
    from training.models.registry import build_model
    from training.pruning.structured import prune_channels

    monkeypatch.setitem(sys.modules, "torch_pruning", None)
    model = build_model("resnet8", 10, width=4)
    with pytest.raises(UserError, match=r"torch_pruning, which is not installed: pip install 'orthokd\[study\]'"):
        prune_channels(model, {"name": "resnet8", "num_classes": 10, "width": 4}, {"blocks.0.bn1": [0]})


def test_missing_tensorboard_is_one_line(monkeypatch, tmp_path):
    from training.config import RuntimeOptions
    from training.engine.publish import open_tensorboard

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    with pytest.raises(UserError, match=r"--tensorboard needs the package tensorboard.*orthokd\[study\]"):
        open_tensorboard(tmp_path, RuntimeOptions(tensorboard=True), DistInfo())


def test_missing_submitit_is_one_line(monkeypatch, tmp_path):
    from figures.executor import ExecutorSettings, make_executor

    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(UserError, match=r"--executor local needs the package submitit.*orthokd\[study\]"):
        make_executor(ExecutorSettings("local", tmp_path))


def test_other_import_failures_are_not_hidden(monkeypatch):
    assert require("torch", "torch", "x") is torch
    with pytest.raises(ModuleNotFoundError):  # a module of another package: a bug, not a missing extra
        require("no_such_module_orthokd", "torch_pruning", "x")
    assert "orthokd[study]" in STUDY_EXTRA
