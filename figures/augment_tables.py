"""Tables 4-5 (augmentation x KD) from the study's run directories (figures.augment_plan), in the paper's layout.

Rows: Scratch and the augmentation-only baseline (No KD column), then the teacher x student matrix (augmentation
at neither, the student only, the teacher only, both) with Label KD and Feature KD columns: test accuracy (%) after
the last epoch, mean +- sample std over seeds, the gain over Scratch in parentheses (paired by seed). Then the
comparison the paper discusses, per seed and averaged:

    sum of separate gains = (KD, no augmentation - Scratch) + (augmentation only - Scratch)
    synergy               = (KD with the augmentation at teacher and student - Scratch) - sum of separate gains

(positive = KD and the augmentation add more together than apart). Table 5 prints the CutMix paper's numbers for
PyramidNet-200 beside Scratch and CutMix (figures.paper.CUTMIX_PAPER).
"""
from __future__ import annotations

from pathlib import Path

from figures.augment_plan import AugmentStudySpec, matrix, student_run, teacher_run
from figures.cells import Accuracy, accuracy_caption, cell
from figures.jobs import run_finished
from figures.paper import AUGMENT_NAMES, CUTMIX_PAPER
from figures.pooled import read_run_config
from figures.tables import write_table
from training.errors import UserError
from training.pooling import describe_config
from training.rundir import best_test_acc, final_test_acc, milestone_name

KD_COLUMNS = {"label": "Label KD", "feature": "Feature KD"}
PIPELINES = {"autoaugment-cutout": "DeepVoltaire's (crop with grey padding, flip, CIFAR-10 policy, Cutout 16x16)",
             "autoaugment": "CIFAR-10 policy, then zero-pad crop and flip, no Cutout (figures.study --table4-augment)"}


def final_acc(run_dir: Path, epochs: int, table: int) -> Accuracy:
    """Test accuracy after epoch ``epochs`` of ``run_dir``, carrying the best epoch's; a missing, unfinished or
    unreadable run is one UserError."""
    try:
        acc = final_test_acc(run_dir, epochs)
        best = best_test_acc(run_dir, epochs)
    except ValueError:  # a damaged metrics.jsonl
        acc = None
    if acc is None or not run_finished(run_dir, epochs):
        raise UserError(f"{run_dir} is missing or unfinished: run python -m figures.study --tables {table} with the "
                        "same --out-dir and preset (it resumes), or give figures.make the --preset and --runs of the "
                        "study that made the runs")
    return Accuracy(acc, best)


def _check_teacher(run_dir: Path, teacher: Path) -> None:
    got = read_run_config(run_dir).get("teacher")
    if got != str(teacher):
        raise UserError(f"{run_dir} was distilled from {got}, not {teacher}; move it away and re-run the study")


def make_augment_table(table: int, root: Path, out: Path, spec: AugmentStudySpec) -> list[Path]:
    """Write tableN.{md,csv,tex,json} from the runs under ``root``; returns the paths."""
    s = spec.setting(table)
    aug = AUGMENT_NAMES[s.augment]
    teachers = {a: teacher_run(root, s, a) for a in (False, True)}
    acc = {}
    for kd, student_aug, teacher_aug in matrix(spec):
        runs = [student_run(root, s, kd, student_aug, teacher_aug, seed) for seed in spec.seeds]
        if kd:
            for r in runs:
                _check_teacher(r, teachers[teacher_aug] / milestone_name(spec.epochs))
        acc[(kd, student_aug, teacher_aug)] = [final_acc(r, spec.epochs, table) for r in runs]
    scratch, aug_only = acc[(None, False, False)], acc[(None, True, False)]
    paper = table == 5 and not spec.stand_ins
    yes_no = {False: "no", True: "yes"}
    t_col, s_col = f"Teacher {aug}", f"Student {aug}"
    rows = [{"Row": "Scratch", t_col: "-", s_col: "no"}, {"Row": f"{aug} only", t_col: "-", s_col: "yes"}]
    rows[0]["No KD"], rows[0]["no_kd"] = cell(scratch)
    rows[1]["No KD"], rows[1]["no_kd"] = cell(aug_only, scratch)
    if paper:
        rows[0]["CutMix paper"] = f"{CUTMIX_PAPER['scratch'].value:.2f}"
        rows[1]["CutMix paper"] = f"{CUTMIX_PAPER['augment'].value:.2f}"
    for teacher_aug in (False, True):
        for student_aug in (False, True):
            row = {"Row": "KD", t_col: yes_no[teacher_aug], s_col: yes_no[student_aug]}
            for kd in spec.kds:
                row[KD_COLUMNS[kd]], row[kd] = cell(acc[(kd, student_aug, teacher_aug)], scratch)
            rows.append(row)
    separate = {kd: [(k - b) + (a - b) for k, a, b in zip(acc[(kd, False, False)], aug_only, scratch)]
                for kd in spec.kds}
    sum_row, synergy_row = {"Row": "Sum of separate gains"}, {"Row": "Synergy (both - sum)"}
    for kd in spec.kds:
        sum_row[KD_COLUMNS[kd]], sum_row[kd] = cell(separate[kd])
        synergy = [(k - b) - sep for k, b, sep in zip(acc[(kd, True, True)], scratch, separate[kd])]
        synergy_row[KD_COLUMNS[kd]], synergy_row[kd] = cell(synergy)
    rows += [sum_row, synergy_row]
    columns = ["Row", t_col, s_col, "No KD", *(KD_COLUMNS[kd] for kd in spec.kds), *(["CutMix paper"] if paper else [])]
    return write_table(out, f"table{table}", rows, columns, caption(table, spec, root, teachers),
                       data_columns=["no_kd", *spec.kds])


def caption(table: int, spec: AugmentStudySpec, root: Path, teachers: dict[bool, Path]) -> str:
    s = spec.setting(table)
    aug = AUGMENT_NAMES[s.augment]
    cfg = read_run_config(student_run(root, s, None, False, False, spec.seeds[0]))
    if not spec.stand_ins and cfg.get("data_dir") is None:
        raise UserError(f"the runs of Table {table} were trained on the embedded 5,000-image subset, not the real "
                        "dataset; full-size tables need runs trained with --data-dir (for demo runs pass --preset demo)")
    network = s.network if not spec.stand_ins else f"{s.model} standing in for {s.network}"
    toy = f"TOY SIZE, not the paper's setting: {cfg['dataset']} instead of CIFAR-100. " if spec.stand_ins else ""
    n = len(spec.seeds)
    t_acc = ", ".join(f"{'with' if a else 'without'} {aug} {final_acc(p, spec.epochs, table):.2f}%"
                      for a, p in teachers.items())
    pipeline = ""
    if s.augment == "autoaugment":  # which host pipeline the augmented students ran (training.autoaugment)
        used = read_run_config(student_run(root, s, None, True, False, spec.seeds[0])).get("augment")
        pipeline = f"{aug} pipeline: {PIPELINES.get(used, used)}. "
    return (f"Table {table}: {aug} x KD, {network}. {toy}{accuracy_caption(n)}; in parentheses the gain over "
            f"Scratch. {pipeline}"
            f"Teacher / Student {aug}: whether the teacher / the student trained with {aug}; the teacher sees the "
            f"batch the student trains on. Sum of separate gains = (KD without {aug}) + ({aug} only), each over "
            f"Scratch; synergy = the gain of KD with {aug} at both minus that sum. Teachers ({s.model}, seed "
            f"{spec.teacher_seed}): {t_acc}. Students: {describe_config(cfg).split('; teacher')[0]}."
            + (" CutMix paper: Yun et al. 2019, Table 3 (100 - top-1 error, best epoch; ours: last epoch)."
               if table == 5 and not spec.stand_ins else ""))
