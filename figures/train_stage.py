"""The study's training jobs: the scratch teacher (unless the study names one), then every method x seed."""
from __future__ import annotations

from pathlib import Path

from figures.jobs import Job
from figures.plan import TEACHER_RUN, StudySpec, run_name
from figures.probe import Rates
from training.config import RuntimeOptions, TrainConfig
from training.data import checkpoint_split
from training.fit import fit
from training.methods import method_spec
from training.rundir import milestone_name


def train_config(spec: StudySpec, method: str, seed: int, teacher: Path | None) -> TrainConfig:
    return TrainConfig(method=method, model=spec.model, width=spec.width, dataset=spec.dataset, data_dir=spec.data_dir,
                       max_train_images=spec.max_train_images, teacher=str(teacher) if teacher else None, seed=seed,
                       epochs=spec.epochs, lr_milestones=spec.lr_milestones)


def teacher_checkpoint(runs_dir: Path, spec: StudySpec) -> Path:
    """The study's teacher: ``spec.teacher`` when it names a checkpoint, else the scratch teacher the study trains."""
    return Path(spec.teacher) if spec.teacher else runs_dir / TEACHER_RUN / milestone_name(spec.epochs)


def training_jobs(spec: StudySpec, runs_dir: Path, rates: Rates, device: str) -> list[Job]:
    config = train_config(spec, "scratch", 0, None).to_json()
    n_train = len(checkpoint_split(config, "train", spec.max_train_images))
    n_test = len(checkpoint_split(config, "test"))
    epoch_s = n_train / rates.train_images_per_s + n_test / rates.forward_images_per_s
    teacher = teacher_checkpoint(runs_dir, spec)
    opts = RuntimeOptions(device=device, quiet=True)

    def job(method: str, seed: int, out: Path, with_teacher: bool) -> Job:
        cost = spec.epochs * epoch_s * (1.4 if with_teacher else 1.0)  # the teacher's forward pass costs ~1/3 step
        return Job(
            stage="train", name=out.name, cost=cost,
            done=lambda: (out / milestone_name(spec.epochs)).is_file(),
            run=lambda: fit(train_config(spec, method, seed, teacher if with_teacher else None), out, opts),
        )

    jobs = [] if spec.teacher else [job("scratch", spec.teacher_seed, runs_dir / TEACHER_RUN, False)]
    for method in spec.methods:
        kd = method_spec(method).objective != "ce"
        jobs += [job(method, seed, runs_dir / run_name(method, seed), kd) for seed in spec.seeds]
    return jobs
