"""The Tables 4-5 study's jobs (figures.augment.plan): "teacher" jobs (each network of each table without and with
the augmentation), one "train" job per network and student kind (all seeds), one "tables" job per table. A job is
done when its runs' final checkpoints (or the table's manifest and files) exist; a re-run skips it and a killed run
resumes."""
from __future__ import annotations

from pathlib import Path

from figures.augment.plan import AugmentStudySpec, matrix, student_run, teacher_run
from figures.augment.tables import make_augment_table
from figures.jobs import Job, run_finished, table_job
from figures.probe import Rates, epoch_seconds
from training.config import RuntimeOptions, TrainConfig
from training.data.datasets import checkpoint_split
from training.engine.fit import fit
from training.store.rundir import milestone_name


def augment_jobs(spec: AugmentStudySpec, root: Path, figs: Path, rates: dict[str, Rates], device: str) -> list[Job]:
    """Every job of ``spec.tables`` in stage order; ``rates`` holds the throughput probe of each model. Runs that two
    tables or blocks share (the same config in the same directory: toy presets use one network for all) are trained
    once."""
    opts = RuntimeOptions(device=device, quiet=True)
    jobs: list[Job] = []
    seen: set[Path] = set()
    cfg = spec.config(spec.settings(spec.tables[0])[0], None, False, 0).to_json()  # every run reads the same splits
    n_train, n_test = len(checkpoint_split(cfg, "train", spec.max_train_images)), len(checkpoint_split(cfg, "test"))

    def add(stage: str, outs: list[Path], cfgs: list[TrainConfig], kd: bool) -> None:
        if outs[0] in seen:
            return
        seen.add(outs[0])
        epoch_s = epoch_seconds(rates[cfgs[0].model], n_train, n_test, kd)
        name = f"{outs[0].parent.name}/{outs[0].name.rsplit('-s', 1)[0]}" if stage == "train" else str(
            outs[0].relative_to(root))
        jobs.append(Job(stage, name, len(outs) * spec.epochs * epoch_s,
                        lambda: all(run_finished(o, spec.epochs) for o in outs),
                        lambda: [fit(c, o, opts) for c, o in zip(cfgs, outs)]))

    for s in (s for table in spec.tables for s in spec.settings(table)):
        teachers = {aug: teacher_run(root, s, aug) / milestone_name(spec.epochs) for aug in (False, True)}
        for aug in (False, True):
            add("teacher", [teacher_run(root, s, aug)], [spec.config(s, None, aug, spec.teacher_seed)], False)
        for kd, student_aug, teacher_aug in matrix(spec):
            teacher = teachers[teacher_aug] if kd else None
            add("train", [student_run(root, s, kd, student_aug, teacher_aug, seed) for seed in spec.seeds],
                [spec.config(s, kd, student_aug, seed, teacher) for seed in spec.seeds], kd is not None)
    return jobs + [table_job(figs, t, 2, lambda t=t: make_augment_table(t, root, figs, spec)) for t in spec.tables]
