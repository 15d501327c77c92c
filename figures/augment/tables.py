"""Tables 4-5 (augmentation x KD) from the study's run directories (figures.augment.plan), in the paper's layout.

One block of rows per network of the table (Table 4: PyramidNet-200 alpha 300; Table 5: PyramidNet-110 alpha 64,
then PyramidNet-200 alpha 240). Rows: Scratch and the augmentation-only baseline (No KD column), then the teacher x
student matrix (augmentation at neither, the student only, the teacher only, both) with Label KD and Feature KD
columns: test accuracy (%) after the last epoch, mean +- sample std over seeds, the gain over Scratch in parentheses
(paired by seed). Then the comparison the paper discusses, per seed and averaged:

    sum of separate gains = (KD, no augmentation - Scratch) + (augmentation only - Scratch)
    synergy               = (KD with the augmentation at teacher and student - Scratch) - sum of separate gains

(positive = KD and the augmentation add more together than apart). Beside every cell, the paper's as printed
(figures.paper.AUGMENT_PUBLISHED: the table's cells with the gains and sums of Section 5's text; the synergy the
paper implies, from its printed cells), and for Table 5 the CutMix paper's numbers the paper marks *.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from figures.augment.plan import AugmentStudySpec, matrix, student_run, teacher_run
from figures.captions import refuse_embedded_subset
from figures.cells import Accuracy, accuracy_caption, cell, numbered, paper_numbers, paper_text
from figures.jobs import run_finished
from figures.paper import (
    AUGMENT_NAMES,
    AUGMENT_PUBLISHED,
    AUGMENT_REPRODUCTION_GAP,
    AUGMENT_TABLES,
    KD_COLUMNS,
    TABLE5_CAPTION_NOTE,
    AugmentSetting,
    Cell,
)
from figures.tables import write_table
from training.errors import UserError
from training.store.poolable import describe_config
from training.store.rundir import last_and_best_test_acc, milestone_name, read_config

REPORTED = "CutMix paper"  # Table 5's starred column: the network's score in the CutMix paper (Yun et al. 2019)
Accuracies = dict[Cell, list[Accuracy]]  # one accuracy per seed
PIPELINES = {"autoaugment-cutout": "DeepVoltaire's (crop with grey padding, flip, CIFAR-10 policy, Cutout 16x16)",
             "autoaugment": "CIFAR-10 policy, then zero-pad crop and flip, no Cutout (figures.study --table4-augment)"}


def final_acc(run_dir: Path, epochs: int, table: int) -> Accuracy:
    """Test accuracy after epoch ``epochs`` of ``run_dir``, carrying the best epoch's; a missing, unfinished or
    unreadable run is one UserError."""
    try:
        accs = last_and_best_test_acc(run_dir, epochs)
    except ValueError:  # a damaged metrics.jsonl
        accs = None
    if accs is None or not run_finished(run_dir, epochs):
        raise UserError(f"{run_dir} is missing or unfinished: run python -m figures.study --tables {table} with the "
                        "same --out-dir and preset (it resumes), or give figures.make the --preset and --runs of the "
                        "study that made the runs")
    return Accuracy(*accs)


def _check_teacher(run_dir: Path, teacher: Path) -> None:
    got = read_config(run_dir, required=True).get("teacher")
    if got != str(teacher):
        raise UserError(f"{run_dir} was distilled from {got}, not {teacher}; move it away and re-run the study")


def read_block(table: int, setting: AugmentSetting, root: Path, spec: AugmentStudySpec) -> Accuracies:
    """The accuracies of every student of one network, each KD student checked to be distilled from its teacher."""
    acc = {}
    for kd, student_aug, teacher_aug in matrix(spec):
        runs = [student_run(root, setting, kd, student_aug, teacher_aug, seed) for seed in spec.seeds]
        if kd:
            for r in runs:
                _check_teacher(r, teacher_run(root, setting, teacher_aug) / milestone_name(spec.epochs))
        acc[(kd, student_aug, teacher_aug)] = [final_acc(r, spec.epochs, table) for r in runs]
    return acc


def network_label(table: int, setting: AugmentSetting) -> str:
    """The paper's network, or "MODEL for NETWORK" when a stand-in ran in its place."""
    paper = next(s for s in AUGMENT_TABLES[table] if s.network == setting.network)
    return setting.network if setting.model == paper.model else f"{setting.model} for {setting.network}"


def block_rows(table: int, setting: AugmentSetting, network: str, acc: Accuracies, kds: Sequence[str],
               notes: list[str]) -> list[dict]:
    """The eight rows of one network: ours, and the paper's printed cells in the "(paper)" columns (footnotes of
    contradicted numbers appended to ``notes``)."""
    paper = AUGMENT_PUBLISHED[(table, setting.network)]
    aug = AUGMENT_NAMES[setting.augment]
    yes_no = {False: "no", True: "yes"}
    t_col, s_col = f"Teacher {aug}", f"Student {aug}"
    scratch, aug_only = acc[(None, False, False)], acc[(None, True, False)]
    rows = [{"Row": "Scratch", t_col: "-", s_col: "no"}, {"Row": f"{aug} only", t_col: "-", s_col: "yes"}]
    for row, key, baseline in ((rows[0], (None, False, False), None), (rows[1], (None, True, False), scratch)):
        row["No KD"], row["no_kd"] = cell(acc[key], baseline)
        row["No KD (paper)"] = paper_text(paper[key], notes)
        row["paper"] = {"No KD": paper_numbers(paper[key])}
    for row, key in ((rows[0], "reported scratch"), (rows[1], "reported augment")):
        if key in paper:
            row[REPORTED] = paper_text(paper[key], notes)
            row["paper"][REPORTED] = paper_numbers(paper[key])
    for teacher_aug in (False, True):
        for student_aug in (False, True):
            row = {"Row": "KD", t_col: yes_no[teacher_aug], s_col: yes_no[student_aug], "paper": {}}
            for kd in kds:
                printed = paper[(kd, student_aug, teacher_aug)]
                row[KD_COLUMNS[kd]], row[kd] = cell(acc[(kd, student_aug, teacher_aug)], scratch)
                row[f"{KD_COLUMNS[kd]} (paper)"] = paper_text(printed, notes)
                row["paper"][KD_COLUMNS[kd]] = paper_numbers(printed)
            rows.append(row)
    separate = {kd: [(k - b) + (a - b) for k, a, b in zip(acc[(kd, False, False)], aug_only, scratch)] for kd in kds}
    sum_row, synergy_row = {"Row": "Sum of separate gains", "paper": {}}, {"Row": "Synergy (both - sum)", "paper": {}}
    p_scratch, p_aug = paper[(None, False, False)].value, paper[(None, True, False)].value
    for kd in kds:
        column = KD_COLUMNS[kd]
        sum_row[column], sum_row[kd] = cell(separate[kd])
        synergy = [(k - b) - sep for k, b, sep in zip(acc[(kd, True, True)], scratch, separate[kd])]
        synergy_row[column], synergy_row[kd] = cell(synergy)
        sum_row[f"{column} (paper)"] = paper_text(paper[f"sum {kd}"], notes)
        sum_row["paper"][column] = paper_numbers(paper[f"sum {kd}"])
        p_synergy = (paper[(kd, True, True)].value - p_scratch) - (
            (paper[(kd, False, False)].value - p_scratch) + (p_aug - p_scratch))
        synergy_row[f"{column} (paper)"] = f"{p_synergy:.2f}"
        synergy_row["paper"][column] = {"value": round(p_synergy, 2), "gain": None,
                                        "note": "computed from the printed cells (the paper prints no synergy)"}
    rows += [sum_row, synergy_row]
    for row in rows:
        row["Network"] = network
    return rows


def make_augment_table(table: int, root: Path, out: Path, spec: AugmentStudySpec) -> list[Path]:
    """Write tableN.{md,csv,tex,json} from the runs under ``root``, one block of rows per network; returns the
    paths."""
    settings = spec.settings(table)
    rows: list[dict] = []
    notes: list[str] = []
    for setting in settings:
        rows += block_rows(table, setting, network_label(table, setting), read_block(table, setting, root, spec),
                           spec.kds, notes)
    gap = AUGMENT_REPRODUCTION_GAP
    text_notes = [f"Note: {TABLE5_CAPTION_NOTE}.", f"Note: {gap.row}, {gap.column}: {gap.note}."] if table == 5 else []
    aug = AUGMENT_NAMES[settings[0].augment]
    value_cols = ["No KD", *(KD_COLUMNS[kd] for kd in spec.kds)]
    columns = ["Network", "Row", f"Teacher {aug}", f"Student {aug}", *value_cols, *(f"{c} (paper)" for c in value_cols),
               *([REPORTED] if any(REPORTED in r for r in rows) else [])]
    return write_table(out, f"table{table}", rows, columns, caption(table, spec, root),
                       footnotes=numbered(notes) + text_notes,
                       data_columns=["no_kd", *spec.kds, "paper"])


def caption(table: int, spec: AugmentStudySpec, root: Path) -> str:
    """What every reader needs to judge the numbers: networks (and stand-ins), data and toy size, teachers, recipe,
    what the rows and the paper's columns mean."""
    settings = spec.settings(table)
    aug = AUGMENT_NAMES[settings[0].augment]
    dirs = [student_run(root, s, None, False, False, spec.seeds[0]) for s in settings]
    configs = [read_config(d, required=True) for d in dirs]
    if not spec.toy:
        refuse_embedded_subset(dict(zip(dirs, configs)))
    networks = [network_label(table, s) for s in settings]
    if spec.toy:
        size = f"TOY SIZE, not the paper's setting: {configs[0]['dataset']} instead of CIFAR-100. "
    elif any(n != s.network for n, s in zip(networks, settings)):
        size = "REDUCED: where a block says MODEL for NETWORK, MODEL ran in place of the paper's network. "
    else:
        size = ""
    n = len(spec.seeds)
    teachers = "; ".join(f"{network}: " + ", ".join(
        f"{'with' if a else 'without'} {aug} {final_acc(teacher_run(root, s, a), spec.epochs, table):.2f}%"
        for a in (False, True)) for s, network in zip(settings, networks))
    students = " | ".join(dict.fromkeys(describe_config(c).split("; teacher")[0] for c in configs))
    pipeline = ""
    # which host pipeline the augmented students ran (training.data.autoaugment)
    if settings[0].augment == "autoaugment":
        used = read_config(student_run(root, settings[0], None, True, False, spec.seeds[0]), required=True).get(
            "augment"
        )
        pipeline = f"{aug} pipeline: {PIPELINES.get(used, used)}. "
    return (f"Table {table}: {aug} x KD, {' and '.join(networks)}. {size}{accuracy_caption(n)}; in parentheses the "
            f"gain over Scratch. {pipeline}Teacher / Student {aug}: whether the teacher / the student trained with "
            f"{aug}; the teacher sees the batch the student trains on. Sum of separate gains = (KD without {aug}) + "
            f"({aug} only), each over Scratch; synergy = the gain of KD with {aug} at both minus that sum. Teachers "
            f"(the student's network, seed {spec.teacher_seed}): {teachers}. Students: {students}. (paper) columns: "
            f"Park et al. 2020, Table {table}, as printed, with the gains and sums its Section 5 prints; its synergy "
            f"computed from its printed cells (it prints none)."
            + (f" {REPORTED}: the values Table 5 marks *, Yun et al. 2019 (100 - top-1 error, best epoch; ours: last "
               "epoch)." if table == 5 else ""))
