"""The paper's printed Tables 1-6 (figures.paper): every cell typed, every printed gain, surplus, sum, ErrMargin and
99% interval recomputed from the printed cells (exactly the noted numbers disagree), every table we build shows the
paper's cell beside ours, and Tables 4-5 run the paper's networks (one block per network). No training: the tables
are built from fabricated accuracies and run directories, in well under a second."""
import json
import math

import pytest

from figures.augment.plan import AUGMENT_NETWORKS, DEMO, FULL, MICRO, matrix, student_run, teacher_run, with_networks
from figures.augment.tables import block_rows, make_augment_table, network_label
from figures.paper import (
    AUGMENT_PUBLISHED,
    AUGMENT_REPRODUCTION_GAP,
    AUGMENT_TABLES,
    NOTES,
    PRUNING_PUBLISHED,
    PRUNING_ROWS,
    PRUNING_TABLES,
    TABLE6,
    TABLE6_Z99,
    all_published,
)
from figures.pruning.tables import setting_rows
from training.errors import UserError

CENT = 0.005 + 1e-9  # a difference of two-decimal numbers agrees when it rounds to the printed two decimals
LABEL, FEATURE = "label", "feature"
PRUNING_PUBLISHED_KEYS = [(row, col) for row in PRUNING_ROWS for col in ("baseline", LABEL, FEATURE)]


def _printed_gains_tables_1_to_3():
    """(Published, recomputed) for every gain and surplus Tables 1-3 print."""
    out = []
    for table, settings in PRUNING_TABLES.items():
        for s in settings:
            cell = {(row, col): PRUNING_PUBLISHED[(table, s.label, row, col)]
                    for row, col in PRUNING_PUBLISHED_KEYS if (table, s.label, row, col) in PRUNING_PUBLISHED}
            scratch_u = cell[("Unpruned", "baseline")].value
            scratch_ft = cell[("Finetuned / Pre-Distill", "baseline")].value
            for kd in (LABEL, FEATURE):
                unpruned, self_distill = cell[("Unpruned", kd)], cell[("Self-Distill", kd)]
                if unpruned.gain is not None:
                    out.append((unpruned, unpruned.gain, unpruned.value - scratch_u))
                out.append((self_distill, self_distill.gain, self_distill.value - scratch_ft))
                surplus = cell[("Surplus", kd)]
                out.append((surplus, surplus.value, (self_distill.value - scratch_ft) - (unpruned.value - scratch_u)))
    return out


def _printed_gains_tables_4_5():
    out = []
    for cells in AUGMENT_PUBLISHED.values():
        scratch, aug = cells[(None, False, False)], cells[(None, True, False)]
        out.append((aug, aug.gain, aug.value - scratch.value))
        for kd in (LABEL, FEATURE):
            for key in ((kd, False, False), (kd, True, True)):
                out.append((cells[key], cells[key].gain, cells[key].value - scratch.value))
            # "the sum of each gain": the text's own gains of the augmentation and of KD
            out.append((cells[f"sum {kd}"], cells[f"sum {kd}"].value, aug.gain + cells[(kd, False, False)].gain))
    reported, ours = AUGMENT_PUBLISHED[(5, "PyramidNet-200 (alpha 240)")]["reported augment"], \
        AUGMENT_PUBLISHED[(5, "PyramidNet-200 (alpha 240)")][(None, True, False)]
    out.append((AUGMENT_REPRODUCTION_GAP, AUGMENT_REPRODUCTION_GAP.value, reported.value - ours.value))
    return out


def _table6_disagreements():
    """ErrMargin = std / sqrt(5), 99% = 2.576 x std / sqrt(5), with the printed std anywhere in its rounding interval
    (+-0.0005): a printed number disagrees when no such std gives it to its printed 3 decimals."""
    bad = set()
    for row in TABLE6.values():
        std = row["std"].value
        for key, factor in (("err_margin", 1 / math.sqrt(5)), ("ci99", TABLE6_Z99 / math.sqrt(5))):
            p = row[key]
            lo, hi = (std - 0.0005) * factor, (std + 0.0005) * factor
            if hi < p.value - 0.0005 or lo > p.value + 0.0005:
                bad.add((p.table, p.row, p.column))
    return bad


def test_every_printed_cell_is_typed_once():
    for table, settings in PRUNING_TABLES.items():
        for s in settings:
            keys = {(row, col) for (t, label, row, col) in PRUNING_PUBLISHED if (t, label) == (table, s.label)}
            # Scratch: Unpruned and Finetuned; Label and Feature: every row
            assert keys == {("Unpruned", "baseline"), ("Finetuned / Pre-Distill", "baseline")} | {
                (row, kd) for row in PRUNING_ROWS for kd in (LABEL, FEATURE)}, s.label
    assert len(PRUNING_PUBLISHED) == 112  # 8 settings x 14 cells
    cells = {t: sum(1 for (table, _), c in AUGMENT_PUBLISHED.items() for k in c
                    if table == t and not str(k).startswith("sum")) for t in (4, 5)}
    assert cells == {4: 10, 5: 24}  # Table 5: two networks x (Scratch, CutMix, each ours and *, 8 KD cells)
    assert {(t, s.network) for t, ss in AUGMENT_TABLES.items() for s in ss} == set(AUGMENT_PUBLISHED)
    assert sum(len(r) for r in TABLE6.values()) == 20
    ids = [(p.table, p.row, p.column) for p in all_published()]
    assert len(ids) == len(set(ids)) == 112 + 34 + 6 + 1 + 20  # cells, Section 5's sums and its 0.67 gap


def test_a_few_cells_as_the_paper_prints_them():
    assert PRUNING_PUBLISHED[(1, "ResNet-56 40/70/90%", "Surplus", LABEL)].value == 0.71  # Section 4's example
    assert PRUNING_PUBLISHED[(1, "ResNet-56 40/70/90%", "Unpruned", LABEL)].text() == "73.76 (+2.53)"
    assert PRUNING_PUBLISHED[(2, "VGG-19 50%", "Surplus", LABEL)].text() == "-0.20"
    assert PRUNING_PUBLISHED[(3, "ResNet-110 40%", "Post-Distill", FEATURE)].text() == "73.29"
    t4 = AUGMENT_PUBLISHED[(4, "PyramidNet-200 (alpha 300)")]
    assert (t4[(None, False, False)].value, t4[(LABEL, True, True)].text()) == (83.46, "87.27 (+3.81)")
    t5 = AUGMENT_PUBLISHED[(5, "PyramidNet-110 (alpha 64)")]
    assert (t5["reported scratch"].value, t5["reported augment"].value) == (80.15, 82.03)
    assert AUGMENT_PUBLISHED[(5, "PyramidNet-200 (alpha 240)")]["reported scratch"].value == pytest.approx(100 - 16.45)
    assert [TABLE6[m]["err_margin"].text() for m in TABLE6] == ["0.207", "0.275", "0.250", "0.157", "0.092"]
    assert [TABLE6[m]["ci99"].text() for m in TABLE6] == ["0.532", "0.709", "0.645", "0.406", "0.239"]


def test_printed_arithmetic_disagrees_exactly_where_noted():
    bad = {(p.table, p.row, p.column) for p, printed, recomputed in
           _printed_gains_tables_1_to_3() + _printed_gains_tables_4_5() if abs(printed - recomputed) > CENT}
    bad |= _table6_disagreements()
    noted = {(p.table, p.row, p.column) for p in all_published() if p.note}
    assert bad == noted == set(NOTES)
    assert {t for t, _, _ in bad} == {4, 5, 6}  # every gain and surplus of Tables 1-3 agrees with its cells
    assert len(_printed_gains_tables_1_to_3()) == 12 + 16 + 16 and len(_printed_gains_tables_4_5()) == 3 * 7 + 1


def _summary(acc_initial, acc_finetune, params=(1000, 600), macs=(10_000, 5_000)):
    return {"initial": {"test_acc": acc_initial, "dir": "i"}, "finetune": {"test_acc": acc_finetune, "dir": "f"},
            "pruning": {"params_before": params[0], "params_after": params[1], "macs_before": macs[0],
                        "macs_after": macs[1]}}


def _fake_summaries():
    from figures.pruning.plan import FULL as PRUNE_FULL
    from figures.pruning.plan import schedule_cells

    return {key: [_summary(70.0 + i, 60.0 + i)] for i, key in enumerate(schedule_cells(PRUNE_FULL))}


@pytest.mark.parametrize("table", [1, 2, 3])
def test_pruning_tables_show_every_printed_cell_beside_ours(table):
    notes: list[str] = []
    for index, setting in enumerate(PRUNING_TABLES[table]):
        rows = {r["Row"]: r for r in setting_rows(table, index, setting, _fake_summaries(), (LABEL, FEATURE), notes)}
        paper = [(row, col) for row in PRUNING_ROWS for col in ("Baseline", "Label KD", "Feature KD")
                 if rows[row][f"{col} (paper)"]]
        assert len(paper) == 14, setting.label
        for (row, key), col in ((("Unpruned", "baseline"), "Baseline"), (("Finetuned / Pre-Distill", "baseline"),
                                                                           "Baseline"),
                                (("Self-Distill", LABEL), "Label KD"), (("Surplus", FEATURE), "Feature KD")):
            p = PRUNING_PUBLISHED[(table, setting.label, row, key)]
            assert rows[row][f"{col} (paper)"] == p.text()
            assert rows[row]["paper"][col] == {"value": p.value, "gain": p.gain, "note": ""}
    assert notes == []


def _fake_accuracies(spec, base=50.0):
    return {key: [base + i] for i, key in enumerate(matrix(spec))}


def test_augment_blocks_show_every_printed_cell_and_the_papers_synergy():
    notes: list[str] = []
    setting = FULL.settings(4)[0]
    rows = block_rows(4, setting, network_label(4, setting), _fake_accuracies(FULL), (LABEL, FEATURE), notes)
    assert [r["Row"] for r in rows] == ["Scratch", "AutoAugment only", "KD", "KD", "KD", "KD", "Sum of separate gains",
                                        "Synergy (both - sum)"]
    assert {r["Network"] for r in rows} == {"PyramidNet-200 (alpha 300)"}
    assert [r["No KD (paper)"] for r in rows[:2]] == ["83.46", "85.22 (+1.76)"]
    assert [r["Label KD (paper)"] for r in rows[2:6]] == ["83.96 (+0.50)", "86.84", "85.32", "87.27 (+3.81)"]
    assert [r["Feature KD (paper)"] for r in rows[2:6]] == ["84.45 (+0.99)", "86.18", "86.49", "86.61 (+3.15)"]
    assert (rows[6]["Label KD (paper)"], rows[6]["Feature KD (paper)"]) == ("2.24 [1]", "2.73 [2]")
    assert notes[0].endswith("1.76 + 0.50 = 2.26") and notes[1].endswith("1.76 + 0.99 = 2.75")
    # the synergy the paper's cells imply: (87.27 - 83.46) - ((83.96 - 83.46) + (85.22 - 83.46))
    assert (rows[7]["Label KD (paper)"], rows[7]["Feature KD (paper)"]) == ("1.55", "0.40")
    assert all("CutMix paper" not in r for r in rows)
    for setting in FULL.settings(5):
        rows = block_rows(5, setting, network_label(5, setting), _fake_accuracies(FULL), (LABEL, FEATURE), notes)
        reported = AUGMENT_PUBLISHED[(5, setting.network)]
        assert [r["CutMix paper"] for r in rows[:2]] == [reported["reported scratch"].text(),
                                                        reported["reported augment"].text()]
        assert all(r[f"{c} (paper)"] for r in rows[2:] for c in ("Label KD", "Feature KD"))


def test_tables_4_and_5_run_the_papers_networks_and_labelled_stand_ins():
    assert [s.model for s in FULL.settings(4)] == ["pyramidnet200_a300"]
    assert [s.model for s in FULL.settings(5)] == ["pyramidnet110_a64", "pyramidnet200_a240"]
    assert {s.augment for s in FULL.settings(5)} == {"cutmix"} and FULL.settings(4)[0].augment == "autoaugment"
    reduced = with_networks(FULL, "pyramidnet110")
    assert {s.model for t in (4, 5) for s in reduced.settings(t)} == {"pyramidnet110_a64"}
    assert network_label(4, reduced.settings(4)[0]) == "pyramidnet110_a64 for PyramidNet-200 (alpha 300)"
    assert network_label(5, reduced.settings(5)[0]) == "PyramidNet-110 (alpha 64)"
    assert with_networks(FULL, "paper") == FULL and with_networks(DEMO, None) == DEMO
    assert set(AUGMENT_NETWORKS) == {"paper", "pyramidnet110"}
    assert {s.model for t in (4, 5) for s in DEMO.settings(t)} == {"pyramidnet_tiny"}
    with pytest.raises(UserError, match="leave --augment-networks out"):
        with_networks(DEMO, "pyramidnet110")


def _fake_run(run_dir, acc, epochs, teacher=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"model": "pyramidnet_tiny", "dataset": "cifar10", "data_dir": None,
                                                     "epochs": epochs, "lr_milestones": [1], "teacher": teacher}))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e + 1, "test_acc": acc}) + "\n"
                                                   for e in range(epochs)))
    (run_dir / f"ckpt_e{epochs:03d}.pt").write_bytes(b"")


@pytest.mark.parametrize("table", [4, 5])
def test_every_output_format_has_the_papers_cells(tmp_path, table):
    root = tmp_path / "runs"
    for s in MICRO.settings(table):
        for aug in (False, True):
            _fake_run(teacher_run(root, s, aug), 60.0 + aug, MICRO.epochs)
        for i, (kd, student_aug, teacher_aug) in enumerate(matrix(MICRO)):
            teacher = str(teacher_run(root, s, teacher_aug) / f"ckpt_e{MICRO.epochs:03d}.pt") if kd else None
            _fake_run(student_run(root, s, kd, student_aug, teacher_aug, 0), 40.0 + i, MICRO.epochs, teacher)
    make_augment_table(table, root, tmp_path / "out", MICRO)
    doc = json.loads((tmp_path / "out" / f"table{table}.json").read_text())
    networks = [network_label(table, s) for s in MICRO.settings(table)]
    assert [r["Network"] for r in doc["rows"]] == [n for n in networks for _ in range(8)]
    assert all(n.startswith("pyramidnet_tiny for ") for n in networks) and "TOY SIZE" in doc["caption"]
    printed = [p.text() for s in AUGMENT_TABLES[table] for k, p in AUGMENT_PUBLISHED[(table, s.network)].items()
               if not str(k).startswith("reported")]
    md, csv, tex = ((tmp_path / "out" / f"table{table}.{e}").read_text() for e in ("md", "csv", "tex"))
    for text in printed:
        number = text.split(" ")[0]
        assert number in md and number in csv and number in tex and number in json.dumps(doc), text
    assert ("CutMix paper" in doc["columns"]) == (table == 5)
    if table == 5:
        assert "83.55" in md and "80.15" in md and "error (%), but its values are accuracies" in md
        assert "0.67% worse" in md
    else:
        assert "[1] PyramidNet-200 (alpha 300), Section 5 text, sum of gains, Label" in md


def test_the_full_study_plans_every_network_of_both_tables(tmp_path):
    from dataclasses import replace

    from figures.augment.stage import augment_jobs
    from figures.probe import Rates

    spec = replace(FULL, dataset="cifar10")  # the embedded subset, so the plan needs no download
    rates = {m: Rates(1000.0, 4000.0) for m in ("pyramidnet200_a300", "pyramidnet110_a64", "pyramidnet200_a240")}
    jobs = augment_jobs(spec, tmp_path, tmp_path / "figures", rates, "cpu")
    teachers = sorted(j.name for j in jobs if j.stage == "teacher")
    assert teachers == sorted(f"augment/{m}/teachers/{a}" for m, a in (
        ("pyramidnet200_a300", "plain"), ("pyramidnet200_a300", "autoaugment"), ("pyramidnet110_a64", "plain"),
        ("pyramidnet110_a64", "cutmix"), ("pyramidnet200_a240", "plain"), ("pyramidnet200_a240", "cutmix")))
    assert sum(j.stage == "train" for j in jobs) == 3 * 10 and [j.name for j in jobs if j.stage == "tables"] == [
        "table4", "table5"]
    reduced = augment_jobs(with_networks(spec, "pyramidnet110"), tmp_path, tmp_path / "figures",
                           {"pyramidnet110_a64": Rates(1000.0, 4000.0)}, "cpu")
    # PyramidNet-110 in every block: Table 5's two blocks are one set of runs, Table 4 adds its AutoAugment runs
    assert sum(j.stage == "teacher" for j in reduced) == 3 and sum(j.stage == "train" for j in reduced) == 17


@pytest.mark.parametrize("table", [1, 2, 3])
def test_every_output_format_of_the_pruning_tables_has_the_papers_cells(tmp_path, table):
    from figures.pruning.plan import MICRO as PRUNE_MICRO
    from figures.pruning.plan import schedule_cells, schedule_run
    from figures.pruning.tables import make_pruning_table
    from training.engine.schedules import SUMMARY

    root = tmp_path / "runs"
    initial = tmp_path / "initial"
    initial.mkdir()
    (initial / "config.json").write_text(json.dumps({"model": "resnet8", "dataset": "cifar10", "data_dir": None,
                                                     "epochs": 2, "lr_milestones": [1]}))
    for s in PRUNE_MICRO.settings(table):
        for i, (schedule, kd) in enumerate(schedule_cells(PRUNE_MICRO)):
            summary = dict(_summary(30.0 + i, 20.0 + i), rule=s.rule)
            summary["initial"]["dir"] = str(initial)
            summary["pruning"]["requested"] = list(s.remaining)
            path = schedule_run(root, s, schedule, kd, 0) / SUMMARY
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(summary))
    make_pruning_table(table, root, tmp_path / "out", PRUNE_MICRO)
    doc = json.loads((tmp_path / "out" / f"table{table}.json").read_text())
    assert {"Baseline (paper)", "Label KD (paper)", "Feature KD (paper)"} <= set(doc["columns"])
    md, csv, tex = ((tmp_path / "out" / f"table{table}.{e}").read_text() for e in ("md", "csv", "tex"))
    for s in PRUNING_TABLES[table]:
        for (t, label, _, _), p in PRUNING_PUBLISHED.items():
            if (t, label) == (table, s.label):
                assert p.text() in md and p.text() in csv and p.text() in tex, (s.label, p)
    assert sum(bool(r[c]) for r in doc["rows"] for c in doc["columns"] if c.endswith("(paper)")) == \
        14 * len(PRUNING_TABLES[table])
    assert "every cell as printed" in doc["caption"]
