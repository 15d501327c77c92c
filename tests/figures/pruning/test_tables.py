"""Tables 1-3 (pruning x KD) end to end at micro size: the study's plan, shared initial runs, teachers of each phase,
every cell checked against the run directories it came from (accuracies, gains, surplus, parameter/MAC counts of the
pruned checkpoints recounted), mean +- std over seeds, resume, figures.make, bad input."""
import json
import statistics

import pytest

from figures.make import main as make_main
from figures.paper import PRUNING_ROWS, PRUNING_TABLES
from figures.pruning.plan import MICRO, initial_run, schedule_run, teacher_run
from figures.study import main as study_main
from training.cli.common import run_cli
from training.pruning.structured import count_params_macs
from training.store.checkpoint import load_model


def _final_acc(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return rows[-1]["test_acc"]


def _rows(path):
    return json.loads(path.read_text())["rows"]


def _num(cell):
    return float(cell.split(" ")[0])


def _gain(cell):
    return float(cell.split("(")[1].rstrip(")"))


def _study(out, *flags):
    assert study_main(["--preset", "micro", "--out-dir", str(out), "--device", "cpu", "--quiet", *flags]) == 0
    return out


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    return _study(tmp_path_factory.mktemp("prune") / "runs", "--tables", "1", "2", "3")


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    return _study(tmp_path_factory.mktemp("prune2") / "runs", "--tables", "3", "--seeds", "2")


def test_every_table_has_the_papers_settings_and_rows(pruned):
    for table, settings in PRUNING_TABLES.items():
        for ext in ("md", "csv", "tex", "json"):
            assert (pruned / "figures" / f"table{table}.{ext}").is_file()
        rows = _rows(pruned / "figures" / f"table{table}.json")
        assert [(r["Network"], r["Row"]) for r in rows] == [(s.label, name) for s in settings for name in PRUNING_ROWS]
        caption = json.loads((pruned / "figures" / f"table{table}.json").read_text())["caption"]
        assert "TOY SIZE" in caption and "cifar10 instead of CIFAR-100" in caption
    table1 = _rows(pruned / "figures" / "table1.json")
    surplus = next(r for r in table1 if r["Network"] == "ResNet-56 40/70/90%" and r["Row"] == "Surplus")
    assert surplus["Label KD (paper)"] == "0.71" and surplus["Feature KD (paper)"] == "0.38"
    unpruned = next(r for r in table1 if r["Network"] == "ResNet-56 40/70/90%" and r["Row"] == "Unpruned")
    assert (unpruned["Baseline (paper)"], unpruned["Label KD (paper)"]) == ("71.23", "73.76 (+2.53)")


@pytest.mark.parametrize("table,index", [(1, 0), (2, 0), (2, 2), (3, 0)])
def test_cells_equal_the_runs_they_come_from(pruned, table, index):
    setting = MICRO.settings(table)[index]
    rows = {r["Row"]: r for r in _rows(pruned / "figures" / f"table{table}.json") if r["Network"] ==
            PRUNING_TABLES[table][index].label}
    slim = setting.rule == "slimming"
    scratch = _final_acc(initial_run(pruned, setting.model, "scratch", slim, 0))
    finetuned = _final_acc(schedule_run(pruned, setting, "finetuned", "label", 0) / "finetune")
    assert _num(rows["Unpruned"]["Baseline"]) == pytest.approx(scratch, abs=0.005)
    assert _num(rows["Finetuned / Pre-Distill"]["Baseline"]) == pytest.approx(finetuned, abs=0.005)
    for kd, column, method in (("label", "Label KD", "label_kd"), ("feature", "Feature KD", "feature_kd")):
        unpruned_kd = _final_acc(initial_run(pruned, setting.model, method, slim, 0))
        assert _num(rows["Unpruned"][column]) == pytest.approx(unpruned_kd, abs=0.005)
        assert _gain(rows["Unpruned"][column]) == pytest.approx(unpruned_kd - scratch, abs=0.005)
        for name, schedule in (("Finetuned / Pre-Distill", "pre-distill"), ("Post-Distill", "post-distill"),
                               ("Pre-Post", "pre-post"), ("Self-Distill", "self-distill")):
            acc = _final_acc(schedule_run(pruned, setting, schedule, kd, 0) / "finetune")
            assert _num(rows[name][column]) == pytest.approx(acc, abs=0.005), (name, kd)
            assert _gain(rows[name][column]) == pytest.approx(acc - finetuned, abs=0.005), (name, kd)
        self_distill = _final_acc(schedule_run(pruned, setting, "self-distill", kd, 0) / "finetune")
        expected = (self_distill - finetuned) - (unpruned_kd - scratch)
        assert _num(rows["Surplus"][column]) == pytest.approx(expected, abs=0.005)
        assert rows["Surplus"][kd]["mean"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("table,index", [(1, 0), (2, 1), (3, 0)])
def test_params_and_macs_are_those_of_the_pruned_checkpoints(pruned, table, index):
    setting = MICRO.settings(table)[index]
    rows = {r["Row"]: r for r in _rows(pruned / "figures" / f"table{table}.json") if r["Network"] ==
            PRUNING_TABLES[table][index].label}
    dense, _ = load_model(initial_run(pruned, setting.model, "scratch", setting.rule == "slimming", 0) / "last.pt")
    assert rows["Unpruned"]["params"] == [count_params_macs(dense)[0]]
    counts = set()
    for schedule, kd in (("post-distill", "label"), ("post-distill", "feature")):
        model, _ = load_model(schedule_run(pruned, setting, schedule, kd, 0) / "pruned.pt")
        params, macs = count_params_macs(model)
        if setting.rule == "weight":  # same shapes; the table counts the weights that are left
            params -= sum(int((m.weight == 0).sum()) for m in model.modules() if hasattr(m, "kernel_size"))
        counts.add((params, macs))
    assert {(p, m) for p, m in zip(rows["Post-Distill"]["params"], rows["Post-Distill"]["macs"])} == counts
    assert all(p < rows["Unpruned"]["params"][0] for p, _ in counts)
    if setting.rule == "l1":
        assert all(m < rows["Unpruned"]["macs"][0] for _, m in counts)


def test_each_phase_records_its_teacher_and_initial_runs_are_shared(pruned):
    setting = MICRO.settings(1)[0]

    def summary(schedule, kd):
        return json.loads((schedule_run(pruned, setting, schedule, kd, 0) / "schedule.json").read_text())

    teacher = str(teacher_run(pruned, setting.model) / f"ckpt_e{MICRO.epochs:03d}.pt")
    label_initial = str(initial_run(pruned, setting.model, "label_kd", False, 0))
    ft = summary("finetuned", "label")
    assert ft["initial"]["teacher"] is None and ft["finetune"]["teacher"] is None
    assert summary("post-distill", "label")["initial"]["dir"] == ft["initial"]["dir"]
    assert summary("post-distill", "label")["finetune"]["teacher"] == teacher
    for schedule in ("pre-distill", "pre-post", "self-distill"):
        s = summary(schedule, "label")
        assert s["initial"]["dir"] == label_initial and s["initial"]["teacher"] == teacher
    assert summary("pre-distill", "label")["finetune"]["teacher"] is None
    assert summary("pre-post", "label")["finetune"]["teacher"] == teacher
    assert summary("self-distill", "label")["finetune"]["teacher"] == label_initial + "/last.pt"
    assert summary("self-distill", "feature")["finetune"]["method"] == "feature_kd"
    slim = MICRO.settings(2)
    assert summary_slim(pruned, slim[0]) == 1e-4 and summary_slim(pruned, slim[1]) == 1e-5  # VGG vs ResNet (Liu et al.)


def summary_slim(root, setting):
    s = json.loads((schedule_run(root, setting, "pre-post", "label", 0) / "schedule.json").read_text())
    assert s["finetune"]["slim_s"] == 0.0
    return s["initial"]["slim_s"]


def test_mean_and_std_over_seeds(two_seeds):
    setting = MICRO.settings(3)[0]
    rows = {r["Row"]: r for r in _rows(two_seeds / "figures" / "table3.json")}
    accs = [_final_acc(schedule_run(two_seeds, setting, "pre-post", "feature", s) / "finetune") for s in (0, 1)]
    cell = rows["Pre-Post"]["Feature KD"]
    assert "±" in cell and rows["Pre-Post"]["feature"]["n"] == 2
    assert rows["Pre-Post"]["feature"]["mean"] == pytest.approx(statistics.fmean(accs))
    assert rows["Pre-Post"]["feature"]["std"] == pytest.approx(statistics.stdev(accs))
    assert "mean ± std over 2 seeds" in json.loads((two_seeds / "figures" / "table3.json").read_text())["caption"]


def test_make_reproduces_the_studys_table_and_a_rerun_does_nothing(two_seeds, tmp_path, capfd):
    assert make_main(["--table", "3", "--runs-dir", str(two_seeds), "--out", str(tmp_path), "--preset", "micro",
                      "--runs", "2"]) == 0
    assert (tmp_path / "table3.md").read_text() == (two_seeds / "figures" / "table3.md").read_text()
    capfd.readouterr()
    assert study_main(["--preset", "micro", "--tables", "3", "--seeds", "2", "--out-dir", str(two_seeds),
                       "--device", "cpu"]) == 0
    assert "0 to run" in capfd.readouterr().err


def test_a_lost_schedule_is_redone_and_the_table_is_unchanged(two_seeds, capfd):
    import shutil

    before = (two_seeds / "figures" / "table3.md").read_text()
    shutil.rmtree(schedule_run(two_seeds, MICRO.settings(3)[0], "self-distill", "label", 1))
    (two_seeds / "figures" / "table3.manifest.json").unlink()
    capfd.readouterr()
    assert study_main(["--preset", "micro", "--tables", "3", "--seeds", "2", "--out-dir", str(two_seeds),
                       "--device", "cpu"]) == 0
    assert "2 to run" in capfd.readouterr().err  # that schedule's job and the table
    assert (two_seeds / "figures" / "table3.md").read_text() == before


def test_bad_input_is_one_line(tmp_path, capsys):
    assert run_cli(make_main, ["--table", "2", "--runs-dir", str(tmp_path), "--out", str(tmp_path / "o"),
                               "--preset", "micro"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "figures.study --tables 2" in err[0]
    with pytest.raises(SystemExit) as e:
        study_main(["--preset", "micro", "--tables", "9", "--out-dir", str(tmp_path)])
    assert e.value.code == 2
