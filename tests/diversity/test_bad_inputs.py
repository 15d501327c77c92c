"""Every bad input to diversity.score: exit 2, one line on stderr naming the flag or the fix, nothing on
stdout, and results already in --out untouched. Runs refused for pooling are included."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from diversity.naswot import batch_jacobian, correlation_eigenvalues, naswot_v1
from diversity.score import main
from training.cli.common import run_cli
from training.errors import UserError
from training.models.registry import build_model
from training.store.checkpoint import save_checkpoint

from .conftest import edit_config

SENTINEL = '{"earlier": "results"}\n'


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = run_cli(main, argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def rewrite_checkpoint(path: Path, dst: Path | None = None, arch: dict | None = None, state=None, **config) -> Path:
    """Re-save a checkpoint with changed arch / weights / config keys (and its run's config.json alike)."""
    ck = torch.load(path, weights_only=True)
    if arch:
        ck["arch"] = {**ck["arch"], **arch}
        a = dict(ck["arch"])
        torch.manual_seed(0)
        ck["model"] = build_model(a.pop("name"), a.pop("num_classes"), **a).state_dict()
    if state:
        state(ck["model"])
    ck["config"].update(config)
    dst = dst or path
    save_checkpoint({k: v for k, v in ck.items() if k not in ("format", "version")}, dst)
    if (dst.parent / "config.json").is_file() and config:
        edit_config(dst.parent, **config)
    return dst


def _nan_weight(state: dict) -> None:
    state["conv1.weight"][0, 0, 0, 0] = float("nan")


@pytest.fixture
def bad(runs_dir, tiny_checkpoint, tmp_path):
    """Paths the cases refer to by name."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.json").write_text(SENTINEL)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    return {"RUNS": str(runs_dir), "CKPT": str(tiny_checkpoint), "OUT": str(out), "FILE": str(a_file),
            "MISSING": str(tmp_path / "no_such_dir"), "NAN": str(tmp_path / "nan.pt"), "TMP": tmp_path}


CASES = {
    # id: (argv, text the one line must contain)
    "nan-weights": (["NAN"], "non-finite"),
    "batches-0": (["CKPT", "--batches", "0"], "--batches"),
    "batches-negative": (["CKPT", "--batches", "-1"], "--batches"),
    "batches-nan": (["CKPT", "--batches", "nan"], "--batches"),
    "batches-more-than-the-split": (["CKPT", "--batches", "40"], "lower --batches or --batch-size"),
    "batch-size-0": (["CKPT", "--batch-size", "0"], "--batch-size"),
    "batch-size-1": (["CKPT", "--batch-size", "1"], "--batch-size"),
    "batch-size-negative": (["CKPT", "--batch-size", "-8"], "--batch-size"),
    "k-0": (["CKPT", "--k", "0"], "--k"),
    "k-negative": (["CKPT", "--k", "-1"], "--k"),
    "k-nan": (["CKPT", "--k", "nan"], "--k"),
    "k-inf": (["CKPT", "--k", "inf"], "--k"),
    "seed-negative": (["CKPT", "--seed", "-1"], "--seed"),
    "pairwise-images-0": (["CKPT", "--pairwise", "--pairwise-images", "0"], "--pairwise-images"),
    "pairwise-images-1": (["CKPT", "--pairwise", "--pairwise-images", "1"], "--pairwise-images"),
    "milestone-absent": (["--runs-dir", "RUNS", "--runs", "2", "--milestone", "7"], "pass one of them to --milestone"),
    "milestone-0": (["--runs-dir", "RUNS", "--runs", "2", "--milestone", "0"], "--milestone"),
    "milestone-with-checkpoints": (["CKPT", "--milestone", "1"], "--milestone"),
    "runs-0": (["--runs-dir", "RUNS", "--runs", "0"], "--runs"),
    "runs-negative": (["--runs-dir", "RUNS", "--runs", "-2"], "--runs"),
    "runs-more-than-trained": (["--runs-dir", "RUNS", "--runs", "3"], "train more seeds or lower --runs"),
    "runs-dir-missing": (["--runs-dir", "MISSING"], "--runs-dir"),
    "runs-dir-is-a-file": (["--runs-dir", "FILE"], "--runs-dir"),
    "out-is-a-file": (["CKPT", "--out", "FILE"], "--out"),
    "out-exists": (["CKPT", "--out", "OUT"], "--overwrite"),
    "config-json-not-an-object": (["BESIDE_BAD_CONFIG"], "is not a run config"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_2(case, bad, capsys):
    argv, needle = CASES[case]
    if case == "nan-weights":
        rewrite_checkpoint(Path(bad["CKPT"]), Path(bad["NAN"]), state=_nan_weight)
    if case == "config-json-not-an-object":
        run = bad["TMP"] / "run"
        run.mkdir()
        (run / "config.json").write_text("[1, 2]")
        bad["BESIDE_BAD_CONFIG"] = str(rewrite_checkpoint(Path(bad["CKPT"]), run / "ckpt_e003.pt"))
    argv = [bad.get(a, a) for a in argv]
    if "--out" not in argv:
        argv += ["--out", bad["OUT"], "--overwrite"]  # earlier results must survive the refusal
    rc, out, err = cli([*argv, "--quiet", "--device", "cpu"], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and out == "" and len(lines) == 1, (rc, out, err)
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
    assert (Path(bad["OUT"]) / "scores.json").read_text() == SENTINEL
    assert Path(bad["FILE"]).read_text() == "not a folder\n"


def test_full_disk_is_one_line(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import diversity.report

    def full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(diversity.report, "atomic_write_text", full)
    rc, out, err = cli([str(tiny_checkpoint), "--batches", "1", "--batch-size", "16", "--out", str(tmp_path / "o"),
                        "--quiet", "--device", "cpu"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "No space left on device" in err and "--out" in err


# Pooling: runs grouped into one row must differ only in their seed; rows of one table only in the method's keys.

def _widen(run: Path, width: int) -> None:
    rewrite_checkpoint(run / "ckpt_e001.pt", arch={"width": width}, width=width)


@pytest.mark.parametrize("scope,widened,pair", [
    ("row", ["scratch-s1"], "runs scratch-s0 and scratch-s1 differ in arch"),
    ("table", ["label_kd-s0", "label_kd-s1"], "runs scratch-s0 and label_kd-s0 differ in arch"),
])
def test_runs_dir_of_two_widths_is_refused(scope, widened, pair, copy_runs, capsys):
    runs = copy_runs()
    for name in widened:
        _widen(runs / name, 8)
    rc, out, err = cli(["--runs-dir", str(runs), "--runs", "2", "--quiet", "--device", "cpu", "--batch-size", "16"],
                       capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert pair in err and "'width': 4" in err and "'width': 8" in err and f"one {scope}" in err


def test_table_of_two_schedules_is_refused(copy_runs, capsys):
    runs = copy_runs()
    for name in ("label_kd-s0", "label_kd-s1"):
        rewrite_checkpoint(runs / name / "ckpt_e001.pt", lr=0.05)
    rc, _, err = cli(["--runs-dir", str(runs), "--runs", "2", "--quiet", "--device", "cpu"], capsys)
    assert rc == 2 and "scratch-s0 and label_kd-s0 differ in lr (0.1 vs 0.05)" in err


def test_explicit_checkpoints_are_pooled_by_their_own_config(runs_dir, tmp_path, capsys):
    # Checkpoints outside any run directory: only the checkpoint's config and arch can tell them apart.
    a = rewrite_checkpoint(runs_dir / "scratch-s0" / "ckpt_e001.pt", tmp_path / "a.pt")
    b = rewrite_checkpoint(runs_dir / "scratch-s1" / "ckpt_e001.pt", tmp_path / "b.pt", arch={"width": 8}, width=8)
    rc, out, err = cli([str(a), str(b), "--quiet", "--device", "cpu", "--batch-size", "16"], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"runs {a} and {b} differ in arch" in err
    c = rewrite_checkpoint(runs_dir / "label_kd-s0" / "ckpt_e001.pt", tmp_path / "c.pt", epochs=2)
    rc, _, err = cli([str(a), str(c), "--quiet", "--device", "cpu", "--batch-size", "16"], capsys)
    assert rc == 2 and f"runs {a} and {c} differ in epochs (1 vs 2)" in err and "one table" in err


# The numerics behind a finite checkpoint: NaN/inf must become one UserError, never numpy's LinAlgError.

class Overflow(nn.Module):
    """Finite weights, but its logits' input gradient overflows float32 (3e38 * 10 = inf)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), 3e38))

    def forward(self, x):
        return x.flatten(1)[:, :10] * self.scale * 10.0


def test_overflowing_jacobian_of_a_finite_model_is_a_user_error():
    model = Overflow()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(UserError, match="NaN or inf"):
        batch_jacobian(model, torch.randn(4, 3, 32, 32))
    with pytest.raises(UserError, match="NaN or inf"):
        naswot_v1(model, torch.randn(4, 3, 32, 32))


@pytest.mark.parametrize("poison", [np.nan, np.inf])
def test_non_finite_jacobian_is_a_user_error(poison):
    j = np.random.default_rng(0).standard_normal((8, 50))
    j[3, 7] = poison
    with pytest.raises(UserError, match="NaN or inf"):
        correlation_eigenvalues(j)


def test_correlation_overflow_is_a_user_error():
    # Finite entries whose squares overflow float64: corrcoef returns NaN, which eigvalsh would turn into
    # LinAlgError (or silent garbage).
    j = np.random.default_rng(1).standard_normal((8, 50)) * 1e200
    with pytest.raises(UserError, match="overflowed"):
        correlation_eigenvalues(j)
