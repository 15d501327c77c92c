"""Table 6 statistics, run discovery, the CLI, its outputs and its bad inputs."""
import csv
import io
import json
import subprocess
import sys

import pytest
import torch

from diversity.score import main
from diversity.stats import summarize, summarize_groups
from training.store.files import sha256_file
from training.store.rundir import discover_runs

from .conftest import edit_config


def test_table6_scratch_errmargin_and_interval():
    # Table 6: Scratch std 0.462 over n = 5 -> ErrMargin 0.207, 99% interval 0.532.
    scores = [-143.96 + d for d in (-0.5, 0.3, 0.6, -0.2, -0.2)]
    s = summarize("scratch", scores)
    k = 0.462 / s.std
    assert s.err_margin * k == pytest.approx(0.207, abs=5e-4)
    assert s.ci99_z * k == pytest.approx(0.532, abs=5e-4)
    assert s.ci99_t / s.err_margin == pytest.approx(4.604, abs=1e-3)
    assert s.std == pytest.approx(torch.tensor(scores, dtype=torch.float64).std().item())


def test_welch_p_against_scratch():
    from scipy import stats

    a, b = [1.0, 1.2, 0.9, 1.1, 1.0], [2.0, 2.3, 1.9, 2.2, 2.1]
    rows = summarize_groups({"scratch": a, "label_kd": b})
    assert rows[1].welch_p == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert rows[1].welch_p < 1e-3 and rows[0].welch_p != rows[0].welch_p  # NaN for the reference


def test_discover_groups_by_method(runs_dir):
    groups = discover_runs(runs_dir)
    assert sorted(groups) == ["label_kd", "scratch"]
    assert sorted(i.seed for i in groups["scratch"]) == [0, 1]
    assert all(i.path.name == "ckpt_e001.pt" for g in groups.values() for i in g)


def test_cli_scores_and_writes_outputs(runs_dir, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["--runs-dir", str(runs_dir), "--runs", "2", "--batch-size", "32", "--batches", "2",
                 "--out", str(out), "--pairwise", "--pairwise-images", "100", "--quiet"]) == 0
    stdout = capsys.readouterr().out
    rows = [ln.split() for ln in stdout.splitlines() if ln.startswith(("scratch ", "label_kd "))]
    assert [r[0] for r in rows[:2]] == ["scratch", "label_kd"] and rows[0][1] == "2"
    doc = json.loads((out / "scores.json").read_text())
    assert doc["config"]["bn_mode"] == "train" and len(doc["checkpoints"]) == 4
    assert all(len(c["batch_scores"]) == 2 and c["score"] <= -32 for c in doc["checkpoints"])
    csv_lines = (out / "scores.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 4 * 2 and "bn_mode" in csv_lines[0]
    assert (out / "scores.png").stat().st_size > 5000 and (out / "pairwise.csv").is_file()
    # Every file names what was scored: model and width, dataset, images (batches x size, split, seed), epochs, teacher.
    teacher = sha256_file(tiny_checkpoint)
    assert doc["caption"].startswith("resnet8 width 4; cifar10 (embedded")
    for text in ("256 training images", "1 epochs", f"teacher sha256 {teacher[:12]}", "2 x 32 = 64 train images",
                 "draw seed 0"):
        assert text in doc["caption"], text
    assert doc["images"]["images"] == 64 and doc["images"]["split"] == "train"
    rows = list(csv.DictReader(io.StringIO((out / "scores.csv").read_text())))
    assert {
        (
            r["model"], r["width"], r["dataset"], r["epochs"], r["train_images"], r["scored_images"],
            r["scored_split"], r["draw_seed"],
        )
        for r in rows
    } == {("resnet8", "4", "cifar10", "1", "256", "64", "train", "0")}
    assert {r["method"]: r["teacher_sha256"] for r in rows} == {"scratch": "", "label_kd": teacher}
    pw_rows = list(csv.DictReader(io.StringIO((out / "pairwise.csv").read_text())))
    assert {(r["model"], r["width"], r["dataset"], r["epochs"], r["images"], r["split"], r["table_teacher_sha256"])
            for r in pw_rows} == {("resnet8", "4", "cifar10", "1", "100", "test", teacher)}
    pw = {(r["method_a"], r["method_b"]): r for r in doc["pairwise"]}
    assert 0 <= pw[("scratch", "label_kd")]["disagreement"] <= 1 and 0 < pw[("scratch", "scratch")]["cka"] <= 1
    # Same fixed batches for every checkpoint: re-scoring one checkpoint alone gives its numbers again.
    one = doc["checkpoints"][0]
    assert main([one["path"], "--batch-size", "32", "--batches", "2", "--quiet"]) == 0
    assert f"{one['score']:.3f}" in capsys.readouterr().out


def _cli(*args):
    r = subprocess.run([sys.executable, "-m", "diversity.score", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def test_fewer_runs_than_asked(runs_dir):
    rc, out, err = _cli("--runs-dir", str(runs_dir), "--runs", "5", "--quiet")
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "method scratch has 2 run(s) (scratch-s0, scratch-s1)" in err and "--runs 5" in err


def test_mixed_architecture_in_a_method(copy_runs):
    runs = copy_runs()
    ck = torch.load(runs / "scratch-s1" / "ckpt_e001.pt", weights_only=True)
    from training.models.registry import build_model
    from training.store.checkpoint import save_checkpoint

    ck["arch"] = {"name": "resnet14", "num_classes": 10, "width": 4}
    ck["model"] = build_model("resnet14", 10, width=4).state_dict()
    save_checkpoint(
        {k: v for k, v in ck.items() if k not in ("format", "version")}, runs / "scratch-s1" / "ckpt_e001.pt"
    )
    rc, _, err = _cli("--runs-dir", str(runs), "--runs", "2", "--quiet", "--batch-size", "16")
    assert rc == 2 and "scratch-s0 and scratch-s1 differ in arch" in err and len(err.strip().splitlines()) == 1


def test_mixed_dataset_in_a_method(copy_runs):
    runs = copy_runs()
    edit_config(runs / "scratch-s1")  # config.json only drives discovery; the checkpoint's config is what counts
    ck = torch.load(runs / "scratch-s1" / "ckpt_e001.pt", weights_only=True)
    ck["config"]["data_dir"] = "/elsewhere"
    torch.save(ck, runs / "scratch-s1" / "ckpt_e001.pt")
    rc, _, err = _cli("--runs-dir", str(runs), "--runs", "2", "--quiet", "--batch-size", "16")
    assert rc == 2 and "scratch-s0 and scratch-s1 differ in data_dir" in err and "/elsewhere" in err


def test_missing_and_corrupt_checkpoints(copy_runs, tmp_path):
    runs = copy_runs()
    (runs / "label_kd-s1" / "ckpt_e001.pt").unlink()
    rc, _, err = _cli("--runs-dir", str(runs), "--runs", "2", "--quiet")
    assert rc == 2 and "label_kd-s1 has no ckpt_e001.pt" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    rc, _, err = _cli(str(bad), "--quiet")
    assert rc == 2 and "cannot read checkpoint" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli(str(tmp_path / "nope.pt"), "--quiet")
    assert rc == 2 and "not found" in err


def test_existing_output_needs_overwrite(runs_dir, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "scores.json").write_text("{}")
    rc, _, err = _cli("--runs-dir", str(runs_dir), "--runs", "2", "--out", str(out), "--quiet")
    assert rc == 2 and "--overwrite" in err and (out / "scores.json").read_text() == "{}"


def test_defaults_are_the_studys_and_help_is_plain_text():
    from diversity.config import ScoreConfig
    from diversity.score import build_parser
    from figures.analysis.plan import FULL

    assert (ScoreConfig().batches, ScoreConfig().batch_size, ScoreConfig().k) == (
        FULL.score_batches,
        FULL.score_batch_size,
        1e-5,
    )
    text = build_parser().format_help()
    assert (
        "batches per checkpoint (shared by all unless --batch-mode per-model); the score is their mean [5]"
        in " ".join(text.split()).replace("- ", "-")
    )
    assert "`" not in text and "DESIGN" not in text and "§" not in text
