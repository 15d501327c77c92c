"""training.engine.prepare: one preparation for single and packed runs; the engine's modules and their faces."""
import ast
from pathlib import Path

import pytest

from training.cli.common import run_cli
from training.config import TrainConfig
from training.engine import fit as fit_module
from training.engine import packed as packed_module
from training.engine.prepare import prepare
from training.errors import UserError
from training.runtime.distributed import DistInfo
from training.store.files import sha256_file
from training.train import main

ENGINE = Path(fit_module.__file__).parent
TINY = ["--model", "resnet8", "--width", "4", "--device", "cpu", "--quiet", "--max-train-images", "64", "--epochs", "1"]


def test_prepare_loads_splits_teacher_and_its_sha(tiny_checkpoint):
    cfg = TrainConfig(method="label_kd", teacher=str(tiny_checkpoint), model="resnet8", width=4, max_train_images=64)
    p = prepare(cfg, DistInfo())
    assert len(p.train_set) == 64 and p.train_set.num_classes == 10 and len(p.test_set) > 0
    assert p.teacher is not None and not p.teacher.training and p.teacher_sha == sha256_file(tiny_checkpoint)
    assert p.init_sha is None and p.cfg == cfg
    with pytest.raises(UserError, match="--teacher"):
        prepare(TrainConfig(method="label_kd", model="resnet8", width=4), DistInfo())


@pytest.mark.parametrize("seeds", [[], ["--seeds", "0", "1"]])
def test_single_and_packed_runs_share_one_preparation(tmp_path, monkeypatch, capsys, seeds):
    calls = []

    def stop(cfg, dist):
        calls.append(cfg.method)
        raise UserError("prepared")

    monkeypatch.setattr(fit_module, "prepare", stop)
    monkeypatch.setattr(packed_module, "prepare", stop)
    out = tmp_path / ("r-s{seed}" if seeds else "r")
    assert run_cli(main, [*TINY, *seeds, "--out-dir", str(out)]) == 2
    assert calls == ["scratch"] and "prepared" in capsys.readouterr().err


def test_engine_rooms_have_one_job_and_no_private_cross_imports():
    modules = sorted(p for p in ENGINE.glob("*.py"))
    assert len(modules) <= 13
    for path in modules:
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.name} states its job in a docstring"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("training"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"
