"""What the Tables 4-5 study (augmentation x KD, DESIGN §12) runs, at full size and at toy size, and where.

Per table: two teachers of the table's network, trained without and with the table's augmentation (AutoAugment
for Table 4, CutMix for Table 5); per seed the Scratch and augmentation-only students, and the KD students of the
teacher/student matrix: teacher without / with the augmentation x student without / with it, for label and
feature KD. The teacher always sees the batch the student trains on (training.methods), so with "teacher yes /
student no" the teacher gets the plain batch. Recipe: CutMix-PyTorch's CIFAR PyramidNet recipe
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
from training.methods import method_spec

AUGMENT_DIR = "augment"
PLAIN = "plain"


@dataclass(frozen=True)
class AugmentStudySpec:
    tables: tuple[int, ...] = (4, 5)
    stand_ins: tuple[tuple[str, str], ...] = ()  # (paper network, stand-in) pairs of the toy presets
    dataset: str = "cifar100"  # the paper's Tables 4-5
    data_dir: str | None = None  # None = the embedded CIFAR-10 subset (toy presets only)
    max_train_images: int | None = None  # None = all
    epochs: int = PYRAMIDNET_RECIPE["epochs"]  # CutMix-PyTorch's CIFAR recipe: 300 epochs, LR steps 150/225
    lr_milestones: tuple[int, ...] = tuple(PYRAMIDNET_RECIPE["lr_milestones"])
    seeds: tuple[int, ...] = (0,)  # each cell is the mean +- std over these seeds
    teacher_seed: int = 100  # the teachers are their own runs
    kds: tuple[str, ...] = ("label", "feature")
    # Table 4's augmented runs: DeepVoltaire's pipeline (crop, flip, policy, Cutout 16x16) or, with
    # "autoaugment", the policy before the device's crop and flip, without Cutout (training.autoaugment)
    autoaugment: str = "autoaugment-cutout"
    normalization: str = "cutmix"  # CutMix-PyTorch's mean/std (training.data.CUTMIX), the reference trainer's
    bf16: bool = False
    tf32: bool = False
    compile: bool = False

    def setting(self, table: int) -> AugmentSetting:
        """Table ``table``'s setting with the preset's stand-in model."""
        s = AUGMENT_TABLES[table]
        return replace(s, model=dict(self.stand_ins).get(s.network, s.model))

    def config(self, setting: AugmentSetting, kd: str | None, student_aug: bool, seed: int,
               teacher: Path | None = None) -> TrainConfig:
        """One run: ``kd`` None (no KD), "label" or "feature"; the augmentation at the student or not."""
        kd_method = {None: "scratch", "label": "label_kd", "feature": "feature_kd"}[kd]
        cutmix = setting.augment == "cutmix" and student_aug
        method = ("cutmix" if kd is None else f"cutmix_{kd_method}") if cutmix else kd_method
        augment = self.autoaugment if setting.augment == "autoaugment" and student_aug else "none"
        method_spec(method)  # an unknown name is refused here, not half-way
        recipe = {k: v for k, v in PYRAMIDNET_RECIPE.items() if k not in ("epochs", "lr_milestones")}
        return TrainConfig(method=method, model=setting.model, dataset=self.dataset, data_dir=self.data_dir,
                           max_train_images=self.max_train_images, seed=seed, epochs=self.epochs,
                           lr_milestones=self.lr_milestones, augment=augment, normalization=self.normalization,
                           teacher=str(teacher) if kd else None, amp_bf16=self.bf16, tf32=self.tf32,
                           compile=self.compile, **recipe)


FULL = AugmentStudySpec(seeds=(0, 1, 2))  # three seeds: the paper's gains (0.05-1.5 points) are within one run's noise

# Toy size on the embedded CIFAR-10 subset: a tiny PyramidNet stands in for both networks (so the two tables share
# their plain runs); 4 epochs (LR steps after 2 and 3) on 1,000 training images.
DEMO = AugmentStudySpec(stand_ins=(("PyramidNet-110 (alpha 64)", "pyramidnet_tiny"),
                                   ("PyramidNet-200 (alpha 240)", "pyramidnet_tiny")),
                        dataset="cifar10", max_train_images=1000, epochs=4, lr_milestones=(2, 3))

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

