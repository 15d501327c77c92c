"""Tables 4-5 (augmentation x KD) end to end at micro size: the paper's rows in one block per network, every cell
against the run it came from (accuracy, gain over Scratch, sum of separate gains, synergy), the teacher and
augmentation recorded in each KD student, runs shared between the tables and blocks, figures.make, resume."""
import json

import pytest
import torch

from figures.augment.plan import MICRO, student_run, teacher_run
from figures.make import main as make_main
from figures.study import main as study_main


def _final_acc(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return rows[-1]["test_acc"]


def _num(text):
    return float(text.split(" ")[0])


@pytest.fixture(scope="module")
def augmented(tmp_path_factory):
    out = tmp_path_factory.mktemp("augment") / "runs"
    assert study_main(["--preset", "micro", "--tables", "4", "5", "--out-dir", str(out), "--device", "cpu",
                       "--quiet"]) == 0
    return out


def _table(root, table):
    return json.loads((root / "figures" / f"table{table}.json").read_text())


@pytest.mark.parametrize("table,aug", [(4, "AutoAugment"), (5, "CutMix")])
def test_cells_equal_the_runs_and_the_comparison_is_recomputed(augmented, table, aug):
    doc = _table(augmented, table)
    assert "TOY SIZE" in doc["caption"] and "cifar10 instead of CIFAR-100" in doc["caption"]
    assert "width" not in doc["caption"] and "shortcut" not in doc["caption"]  # ResNet-only flags, not PyramidNet's
    t_col, s_col = f"Teacher {aug}", f"Student {aug}"
    settings = MICRO.settings(table)
    assert len(doc["rows"]) == 8 * len(settings) == 8 * {4: 1, 5: 2}[table]  # one block per network of the paper
    for block, s in enumerate(settings):
        rows = doc["rows"][8 * block:8 * block + 8]
        assert {r["Network"] for r in rows} == {f"pyramidnet_tiny for {s.network}"}
        _check_block(augmented, doc, rows, s, t_col, s_col, aug)


def _check_block(augmented, doc, rows, s, t_col, s_col, aug):
    assert [(r["Row"], r.get(t_col), r.get(s_col)) for r in rows] == [
        ("Scratch", "-", "no"), (f"{aug} only", "-", "yes"), ("KD", "no", "no"), ("KD", "no", "yes"),
        ("KD", "yes", "no"), ("KD", "yes", "yes"), ("Sum of separate gains", None, None),
        ("Synergy (both - sum)", None, None)]
    scratch = _final_acc(student_run(augmented, s, None, False, False, 0))
    aug_only = _final_acc(student_run(augmented, s, None, True, False, 0))
    assert _num(rows[0]["No KD"]) == pytest.approx(scratch, abs=0.005)
    assert rows[1]["no_kd"]["gain"] == pytest.approx(aug_only - scratch)
    # the best epoch's accuracy (the reference trainers' number) kept in the JSON; the caption names both
    best = max(json.loads(line)["test_acc"] for line in
               (student_run(augmented, s, None, False, False, 0) / "metrics.jsonl").read_text().splitlines())
    assert rows[0]["no_kd"]["best_mean"] == pytest.approx(best) and "Last-epoch test accuracy" in doc["caption"]
    assert ("DeepVoltaire's (crop with grey padding, flip, CIFAR-10 policy, Cutout 16x16)" in doc["caption"]) == (
        aug == "AutoAugment"
    )
    for kd, column in (("label", "Label KD"), ("feature", "Feature KD")):
        acc = {}
        for row in rows[2:6]:
            key = (row[s_col] == "yes", row[t_col] == "yes")
            acc[key] = _final_acc(student_run(augmented, s, kd, *key, 0))
            assert _num(row[column]) == pytest.approx(acc[key], abs=0.005)
            assert row[kd]["gain"] == pytest.approx(acc[key] - scratch)
        separate = (acc[(False, False)] - scratch) + (aug_only - scratch)
        assert rows[6][kd]["mean"] == pytest.approx(separate)
        assert rows[7][kd]["mean"] == pytest.approx((acc[(True, True)] - scratch) - separate)


@pytest.mark.parametrize("table", [4, 5])
def test_each_kd_student_records_its_teacher_and_both_augmentations(augmented, table):
    s = MICRO.settings(table)[-1]
    for teacher_aug in (False, True):
        for student_aug in (False, True):
            ckpt = torch.load(student_run(augmented, s, "feature", student_aug, teacher_aug, 0) / "last.pt",
                              weights_only=True)
            method = ckpt["method"]
            assert method["teacher"] == str(teacher_run(augmented, s, teacher_aug) / f"ckpt_e{MICRO.epochs:03d}.pt")
            if s.augment == "cutmix":
                assert method["augmentation"]["cutmix"] is student_aug
                assert method["teacher_augmentation"]["cutmix"] is teacher_aug
            else:
                # the study's default pipeline: DeepVoltaire's, with Cutout
                assert method["augmentation"]["augment"] == ("autoaugment-cutout" if student_aug else "none")
                assert method["teacher_augmentation"]["augment"] == ("autoaugment-cutout" if teacher_aug else "none")


def test_tables_share_their_plain_runs_and_make_reproduces_them(augmented, tmp_path, capfd):
    # The toy preset uses one network for every block of both tables: Scratch and the plain teacher are one run each.
    blocks = [*MICRO.settings(4), *MICRO.settings(5)]
    assert len({s.model for s in blocks}) == 1
    assert len({student_run(augmented, s, None, False, False, 0) for s in blocks}) == 1
    assert len({r["No KD"] for t in (4, 5) for r in _table(augmented, t)["rows"] if r["Row"] == "Scratch"}) == 1
    assert make_main(["--table", "4", "5", "--runs-dir", str(augmented), "--out", str(tmp_path), "--preset",
                      "micro"]) == 0
    for t in (4, 5):
        assert (tmp_path / f"table{t}.md").read_text() == (augmented / "figures" / f"table{t}.md").read_text()
    capfd.readouterr()
    assert study_main(["--preset", "micro", "--tables", "4", "5", "--out-dir", str(augmented), "--device",
                       "cpu"]) == 0
    assert "0 to run" in capfd.readouterr().err

