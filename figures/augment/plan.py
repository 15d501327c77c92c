"""What the Tables 4-5 study (augmentation x KD, docs/reference.md "Tables 4-5: augmentation × KD") runs, at full size
and at toy size, and where.

Per network of a table (Table 4: PyramidNet-200 alpha 300; Table 5: PyramidNet-110 alpha 64 and PyramidNet-200 alpha
240, figures.paper.AUGMENT_TABLES): two teachers of that network, trained without and with the table's augmentation
(AutoAugment for Table 4, CutMix for Table 5); per seed the Scratch and augmentation-only students, and the KD
students of the teacher/student matrix: teacher without / with the augmentation x student without / with it, for
label and feature KD. The teacher always sees the batch the student trains on (training.objectives), so with "teacher
yes / student no" the teacher gets the plain batch. Recipe: CutMix-PyTorch's CIFAR PyramidNet recipe
(training.config.PYRAMIDNET_RECIPE). Layout under OUT_DIR/augment/MODEL/:

    teachers/plain/, teachers/AUG/               the two teachers (run directories)
    plain-sSEED/, AUG-sSEED/                     Scratch and the augmentation-only baseline
    STUDENT-KD_kd-from-TEACHER-sSEED/            KD students (STUDENT, TEACHER = plain or AUG)
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from figures.paper import AUGMENT_TABLES, AugmentSetting
from training.config import PYRAMIDNET_RECIPE, TrainConfig
from training.engine.schedules import KD_METHODS
from training.errors import UserError
from training.objectives import method_spec

AUGMENT_DIR = "augment"
PLAIN = "plain"


@dataclass(frozen=True)
class AugmentStudySpec:
    tables: tuple[int, ...] = (4, 5)
    stand_ins: tuple[tuple[str, str], ...] = ()  # (paper network, stand-in model): AUGMENT_NETWORKS or the toy presets
    toy: bool = False  # a toy preset (captions say TOY SIZE; runs on the embedded subset are accepted)
    dataset: str = "cifar100"  # the paper's Tables 4-5
    data_dir: str | None = None  # None = the embedded CIFAR-10 subset (toy presets only)
    max_train_images: int | None = None  # None = all
    epochs: int = PYRAMIDNET_RECIPE["epochs"]  # CutMix-PyTorch's CIFAR recipe: 300 epochs, LR steps 150/225
    lr_milestones: tuple[int, ...] = tuple(PYRAMIDNET_RECIPE["lr_milestones"])
    seeds: tuple[int, ...] = (0,)  # each cell is the mean +- std over these seeds
    teacher_seed: int = 100  # the teachers are their own runs
    kds: tuple[str, ...] = ("label", "feature")
    # Table 4's augmented runs: DeepVoltaire's pipeline (crop, flip, policy, Cutout 16x16) or, with
    # "autoaugment", the policy before the device's crop and flip, without Cutout (training.data.autoaugment)
    autoaugment: str = "autoaugment-cutout"
    normalization: str = "cutmix"  # CutMix-PyTorch's mean/std (training.data.CUTMIX), the reference trainer's
    bf16: bool = False
    tf32: bool = False
    compile: bool = False
    cuda_graphs: bool = False

    def settings(self, table: int) -> tuple[AugmentSetting, ...]:
        """Table ``table``'s networks (blocks), in the paper's order, each with the preset's stand-in model."""
        return tuple(replace(s, model=dict(self.stand_ins).get(s.network, s.model)) for s in AUGMENT_TABLES[table])

    def config(self, setting: AugmentSetting, kd: str | None, student_aug: bool, seed: int,
               teacher: Path | None = None) -> TrainConfig:
        """One run: ``kd`` None (no KD), "label" or "feature"; the augmentation at the student or not."""
        kd_method = "scratch" if kd is None else KD_METHODS[kd]
        cutmix = setting.augment == "cutmix" and student_aug
        method = ("cutmix" if kd is None else f"cutmix_{kd_method}") if cutmix else kd_method
        augment = self.autoaugment if setting.augment == "autoaugment" and student_aug else "none"
        method_spec(method)  # an unknown name is refused here, not half-way
        recipe = {k: v for k, v in PYRAMIDNET_RECIPE.items() if k not in ("epochs", "lr_milestones")}
        return TrainConfig(method=method, model=setting.model, dataset=self.dataset, data_dir=self.data_dir,
                           max_train_images=self.max_train_images, seed=seed, epochs=self.epochs,
                           lr_milestones=self.lr_milestones, augment=augment, normalization=self.normalization,
                           teacher=str(teacher) if kd else None, amp_bf16=self.bf16, tf32=self.tf32,
                           compile=self.compile, cuda_graphs=self.cuda_graphs, **recipe)


FULL = AugmentStudySpec(seeds=(0, 1, 2))  # three seeds: the paper's gains (0.05-1.5 points) are within one run's noise

# Which network runs each block at full size (figures.study / figures.make --augment-networks): the paper's, or
# PyramidNet-110 (alpha 64, 1.7 M parameters) standing in for both PyramidNet-200s (40.3 M and 26.8 M), named as a
# stand-in in every caption. With pyramidnet110, Table 5's two blocks are the same runs.
AUGMENT_NETWORKS: dict[str, tuple[tuple[str, str], ...]] = {
    "paper": (),
    "pyramidnet110": (("PyramidNet-200 (alpha 300)", "pyramidnet110_a64"),
                      ("PyramidNet-200 (alpha 240)", "pyramidnet110_a64")),
}


def with_networks(spec: AugmentStudySpec, name: str | None) -> AugmentStudySpec:
    """``spec`` running the networks of AUGMENT_NETWORKS[name]; None keeps the preset's. A toy preset refuses a name
    (its tiny stand-in runs every block)."""
    if name is None:
        return spec
    if spec.toy:
        raise UserError(f"--augment-networks {name} is for the full-size Tables 4-5; the demo and micro presets run "
                        "pyramidnet_tiny in place of every network: leave --augment-networks out")
    return replace(spec, stand_ins=AUGMENT_NETWORKS[name])


# Toy size on the embedded CIFAR-10 subset: a tiny PyramidNet stands in for every network (so the blocks of one
# augmentation are the same runs, and the two tables share their plain runs); 4 epochs (LR steps after 2 and 3) on
# 1,000 training images.
DEMO = AugmentStudySpec(stand_ins=tuple((s.network, "pyramidnet_tiny") for t in AUGMENT_TABLES.values() for s in t),
                        toy=True, dataset="cifar10", max_train_images=1000, epochs=4, lr_milestones=(2, 3))

# Seconds per run, for the tests in CI.
MICRO = replace(DEMO, max_train_images=256, epochs=2, lr_milestones=(1,))

AUGMENT_PRESETS: dict[str, AugmentStudySpec] = {"full": FULL, "demo": DEMO, "micro": MICRO}


def aug_tag(setting: AugmentSetting, on: bool) -> str:
    return setting.augment if on else PLAIN


def teacher_run(root: Path, setting: AugmentSetting, aug: bool) -> Path:
    return root / AUGMENT_DIR / setting.model / "teachers" / aug_tag(setting, aug)


def student_run(root: Path, setting: AugmentSetting, kd: str | None, student_aug: bool, teacher_aug: bool,
                seed: int) -> Path:
    name = aug_tag(setting, student_aug)
    if kd is not None:
        name += f"-{kd}_kd-from-{aug_tag(setting, teacher_aug)}"
    return root / AUGMENT_DIR / setting.model / f"{name}-s{seed}"


def matrix(spec: AugmentStudySpec) -> list[tuple[str | None, bool, bool]]:
    """(kd, student_aug, teacher_aug) of every student per seed: the two baselines (no KD), then per KD the four
    teacher x student combinations in the paper's order (teacher no/yes, then student no/yes)."""
    cells: list[tuple[str | None, bool, bool]] = [(None, False, False), (None, True, False)]
    return cells + [(kd, s, t) for kd in spec.kds for t in (False, True) for s in (False, True)]

