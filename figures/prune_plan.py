"""What the Tables 1-3 study (pruning x KD, DESIGN §11) runs, at full size and at toy size, and where it puts it.

Per network: a scratch teacher of that network (DESIGN §4.6: the paper distils between same-size networks in its
pruning study), then per seed the three initial trainings (scratch, label KD, feature KD; with network-slimming
sparsity for the slimming table), then per pruning setting and seed the nine fine-tunings of the schedules
(finetuned once, and pre-distill, post-distill, pre-post, self-distill for each KD). Schedules that share an initial
training share its run (training.schedules.ScheduleSpec.initial_dir). Layout under OUT_DIR/prune/:

    teachers/MODEL/                             the scratch teacher (a run directory)
    MODEL/[slim-]METHOD-sSEED/                  initial trainings (slim- = with sparsity s*sign(gamma))
    MODEL/RULE-R1-R2-R3/SCHEDULE[-KD]-sSEED/    pruned.pt, finetune/ and schedule.json of one schedule
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from figures.paper import PRUNING_TABLES, PruneSetting
from training.config import FINETUNE_RECIPE, TrainConfig
from training.models import training_kwargs
from training.schedules import KD_METHODS, SCHEDULES, ScheduleSpec, sparsity

PRUNE_DIR = "prune"
KD_SCHEDULES = tuple(s for s in SCHEDULES if s != "finetuned")  # the schedules run once per KD


@dataclass(frozen=True)
class PruneStudySpec:
    tables: tuple[int, ...] = (1, 2, 3)
    # (paper network, stand-in) pairs: the toy presets train small members of each family in the paper's place.
    stand_ins: tuple[tuple[str, str], ...] = ()
    width: int = 16  # ResNets' first-stage channels (paper: 16)
    dataset: str = "cifar100"  # the paper's Tables 1-3
    data_dir: str | None = None  # None = the embedded CIFAR-10 subset (toy presets only)
    max_train_images: int | None = None  # None = all
    epochs: int = 160  # initial training (rethinking-network-pruning's CIFAR recipe: 160 epochs, LR steps 80/120)
    lr_milestones: tuple[int, ...] = (80, 120)
    finetune_epochs: int = FINETUNE_RECIPE["epochs"]  # 40 epochs at lr 0.001, no decay (DESIGN §11)
    seeds: tuple[int, ...] = (0,)  # each cell is the mean +- std over these seeds (std only with several)
    teacher_seed: int = 100  # the teachers are their own runs, not one of the students
    kds: tuple[str, ...] = tuple(KD_METHODS)  # label and feature KD: the two KD columns
    bf16: bool = False  # recorded in every run's config, as in the Tables 6-8 study
    tf32: bool = False
    compile: bool = False

    def model(self, network: str, full_model: str) -> str:
        """Our architecture for the paper's ``network``: its stand-in in a toy preset, else ``full_model``."""
        return dict(self.stand_ins).get(network, full_model)

    def settings(self, table: int) -> tuple[PruneSetting, ...]:
        """Table ``table``'s settings with the preset's stand-in models."""
        return tuple(replace(s, model=self.model(s.network, s.model)) for s in PRUNING_TABLES[table])

    def base(self, model: str, seed: int) -> TrainConfig:
        """The initial-training recipe of ``model`` (method, teacher and sparsity are set per run)."""
        width = self.width if model.startswith("resnet") else TrainConfig.width
        training_kwargs(model, width)  # an architecture without --width is refused here, not half-way
        return TrainConfig(model=model, width=width, dataset=self.dataset, data_dir=self.data_dir,
                           max_train_images=self.max_train_images, seed=seed, epochs=self.epochs,
                           lr_milestones=self.lr_milestones, amp_bf16=self.bf16, tf32=self.tf32, compile=self.compile)


FULL = PruneStudySpec(seeds=(0, 1, 2))  # three seeds: the paper's effects (0.05-1.5 points) are within one run's noise

# Toy size on the embedded CIFAR-10 subset: ResNet-8/14 (width 8), a 10-conv VGG and DenseNet-10 stand in for the
# paper's networks; 4 initial epochs (LR steps after 2 and 3), 2 fine-tuning epochs, 1,000 training images.
DEMO = PruneStudySpec(stand_ins=(("ResNet-56", "resnet8"), ("ResNet-110", "resnet14"), ("VGG-19", "vgg_tiny"),
                                 ("DenseNet-40", "densenet_tiny")),
                      width=8, dataset="cifar10", max_train_images=1000, epochs=4, lr_milestones=(2, 3),
                      finetune_epochs=2, seeds=(0,))

# Seconds per run, for the tests in CI.
MICRO = replace(DEMO, width=4, max_train_images=256, epochs=2, lr_milestones=(1,), finetune_epochs=1)

PRUNE_PRESETS: dict[str, PruneStudySpec] = {"full": FULL, "demo": DEMO, "micro": MICRO}


def ratio_tag(remaining: tuple[float, ...]) -> str:
    return "-".join(f"{r:g}" for r in remaining)


def teacher_run(root: Path, model: str) -> Path:
    return root / PRUNE_DIR / "teachers" / model


def initial_run(root: Path, model: str, method: str, slim: bool, seed: int) -> Path:
    return root / PRUNE_DIR / model / f"{'slim-' if slim else ''}{method}-s{seed}"


def schedule_run(root: Path, setting: PruneSetting, schedule: str, kd: str, seed: int) -> Path:
    name = f"{schedule}-s{seed}" if schedule == "finetuned" else f"{schedule}-{kd}-s{seed}"
    return root / PRUNE_DIR / setting.model / f"{setting.rule}-{ratio_tag(setting.remaining)}" / name


def schedule_cells(spec: PruneStudySpec) -> list[tuple[str, str]]:
    """(schedule, kd) of every schedule a setting runs per seed: finetuned once (it has no KD), the others per KD."""
    return [("finetuned", spec.kds[0])] + [(s, kd) for s in KD_SCHEDULES for kd in spec.kds]


def schedule_spec(spec: PruneStudySpec, root: Path, setting: PruneSetting, schedule: str, kd: str, seed: int,
                  teacher: Path) -> ScheduleSpec:
    """The ScheduleSpec of one cell, its initial training in the shared run of ``initial_run``."""
    initial_kd = SCHEDULES[schedule].initial_kd
    method = KD_METHODS[kd] if initial_kd else "scratch"
    slim = sparsity(setting.rule, setting.model) > 0
    needs_teacher = SCHEDULES[schedule].needs_teacher
    return ScheduleSpec(schedule, kd, setting.rule, setting.remaining, None, str(teacher) if needs_teacher else None,
                        spec.base(setting.model, seed), spec.finetune_epochs,
                        initial_dir=str(initial_run(root, setting.model, method, slim, seed)))

