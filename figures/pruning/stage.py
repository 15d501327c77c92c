"""The Tables 1-3 study's jobs (figures.pruning.plan): one "teacher" job per network, one "train" job per initial
training (all seeds), one "prune" job per setting x schedule x KD (all seeds: prune, then fine-tune), and one
"tables" job per table. Each job is done when its outputs exist, so a re-run skips it; a killed one resumes."""
from __future__ import annotations

from pathlib import Path

from figures.jobs import Job, run_finished, table_job
from figures.probe import Rates, epoch_seconds
from figures.pruning.plan import PruneStudySpec, schedule_cells, schedule_run, schedule_spec, teacher_run
from figures.pruning.tables import make_pruning_table
from training.config import RuntimeOptions
from training.data.datasets import checkpoint_split
from training.engine.fit import fit
from training.engine.schedules import SUMMARY, ScheduleSpec, initial_config, run_schedule
from training.store.rundir import milestone_name


def prune_jobs(spec: PruneStudySpec, root: Path, figs: Path, rates: dict[str, Rates], device: str) -> list[Job]:
    """Every job of ``spec.tables``, in stage order; ``rates`` holds the throughput probe of each model."""
    opts = RuntimeOptions(device=device, quiet=True)
    settings = [s for t in spec.tables for s in spec.settings(t)]
    models = list(dict.fromkeys(s.model for s in settings))
    cfg = spec.base(models[0], 0).to_json()
    n_train, n_test = len(checkpoint_split(cfg, "train", spec.max_train_images)), len(checkpoint_split(cfg, "test"))

    def epoch_s(model: str, kd: bool = False) -> float:
        return epoch_seconds(rates[model], n_train, n_test, kd)

    def teacher(model: str) -> Path:
        return teacher_run(root, model) / milestone_name(spec.epochs)

    jobs = []
    for model in models:
        out = teacher_run(root, model)
        jobs.append(Job("teacher", f"prune/teachers/{model}", spec.epochs * epoch_s(model),
                        lambda o=out: run_finished(o, spec.epochs),
                        lambda m=model, o=out: fit(spec.base(m, spec.teacher_seed), o, opts)))
    initial: dict[str, tuple[str, list[ScheduleSpec]]] = {}  # first seed's run dir -> (model, every seed's spec)
    for s in settings:  # the scratch initial training, then one per KD: each shared by the schedules that start so
        for schedule, kd in [("finetuned", spec.kds[0])] + [("pre-distill", kd) for kd in spec.kds]:
            specs = [schedule_spec(spec, root, s, schedule, kd, seed, teacher(s.model)) for seed in spec.seeds]
            initial.setdefault(specs[0].initial_dir, (s.model, specs))
    for model, specs in initial.values():
        outs = [Path(sp.initial_dir) for sp in specs]
        kd = specs[0].schedule != "finetuned"
        jobs.append(Job("train", f"{outs[0].parent.name}/{outs[0].name.rsplit('-s', 1)[0]}",
                        len(outs) * spec.epochs * epoch_s(model, kd),
                        lambda outs=outs: all(run_finished(o, spec.epochs) for o in outs),
                        lambda specs=specs: [fit(initial_config(sp), sp.initial_dir, opts) for sp in specs]))
    for s in settings:
        for schedule, kd in schedule_cells(spec):
            outs = [schedule_run(root, s, schedule, kd, seed) for seed in spec.seeds]
            specs = [schedule_spec(spec, root, s, schedule, kd, seed, teacher(s.model)) for seed in spec.seeds]
            jobs.append(Job("prune", f"{s.label} {outs[0].name.rsplit('-s', 1)[0]}",
                            len(outs) * spec.finetune_epochs * epoch_s(s.model, schedule != "finetuned") + 2,
                            lambda outs=outs: all((o / SUMMARY).is_file() for o in outs),
                            lambda outs=outs, specs=specs: [run_schedule(sp, o, opts) for sp, o in zip(specs, outs)]))
    return jobs + [table_job(figs, t, 2, lambda t=t: make_pruning_table(t, root, figs, spec)) for t in spec.tables]

