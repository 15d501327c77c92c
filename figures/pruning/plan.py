"""What the Tables 1-3 study (pruning x KD, docs/reference.md "Pruning as the reference code ran it") runs, at full size
and at toy size, and where it puts it.

Per network: a scratch teacher of that network (docs/reference.md "Objectives": the paper distils between same-size
networks in its
pruning study), then per seed the three initial trainings (scratch, label KD, feature KD; with network-slimming
sparsity for the slimming table), then per pruning setting and seed the nine fine-tunings of the schedules
(finetuned once, and pre-distill, post-distill, pre-post, self-distill for each KD). Schedules that share an initial
training share its run (training.engine.schedules.ScheduleSpec.initial_dir). Layout under OUT_DIR/prune/:

    teachers/MODEL/                             the scratch teacher (a run directory)
    MODEL/[slim-]METHOD-sSEED/                  initial trainings (slim- = with sparsity s*sign(gamma))
    MODEL/RULE-R1-R2-R3[-skipP]/SCHEDULE[-KD][-reuseR]-sSEED/    pruned.pt, finetune/ and schedule.json of one schedule

The networks and pipeline default to the reference code's (rethinking-network-pruning, docs/reference.md "Pruning as the
reference code ran it"): L1 pruning leaves whole the layers of Li et al.'s preset B skip list in every Table 1 setting
(B is the
preset of ResNet-56 40/70/90% and ResNet-110 50/60/70%; the two other settings keep their network's B list, since
the reference's res56prune.py / res110prune.py choose ratios and skip list together by -v A|B, the paper's text says
certain layers are never pruned, and one list per network leaves the ratios as the only difference between its two
rows), the ResNets' stride-2 shortcut is detached and the inputs are normalized with the reference's constants,
and Table 2's ResNet-56 is network slimming's pre-activation bottleneck PreResNet-56. Each is a field (and a flag of
figures.study) with the alternative.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from figures.paper import PRUNING_TABLES, PruneSetting
from training.config import FINETUNE_RECIPE, TrainConfig
from training.data.datasets import NORMALIZATIONS
from training.engine.schedules import KD_METHODS, SCHEDULES, ScheduleSpec, sparsity
from training.errors import UserError
from training.models.registry import model_spec, training_kwargs
from training.models.resnet import SHORTCUTS
from training.pruning.structured import L1_PRESETS

PRUNE_DIR = "prune"
KD_SCHEDULES = tuple(s for s in SCHEDULES if s != "finetuned")  # the schedules run once per KD


L1_SKIP = ("B", "A", "none")  # Li et al.'s preset whose skip list Table 1 uses; none = prune every block
SLIM_RESNETS = {"preresnet": "preresnet56", "basic": "resnet56"}  # Table 2's ResNet-56: our architecture of each
# Toy stand-ins of the networks the presets do not take from figures.paper.PRUNING_TABLES (Table 2's PreResNet-56).
EXTRA_STAND_INS = {"preresnet56": "preresnet_tiny"}


@dataclass(frozen=True)
class StudySetting(PruneSetting):
    """A paper setting as the study runs it: the architecture (a stand-in, or Table 2's PreResNet-56), the L1 skip
    list (Li et al.'s preset whose list applies; None = none) and whether feature-KD fine-tuning reuses R."""
    skip: str | None = None
    reuse_regressor: bool = False


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
    # 40 epochs at lr 0.001, no decay (docs/reference.md "Pruning as the reference code ran it")
    finetune_epochs: int = FINETUNE_RECIPE["epochs"]
    seeds: tuple[int, ...] = (0,)  # each cell is the mean +- std over these seeds (std only with several)
    teacher_seed: int = 100  # the teachers are their own runs, not one of the students
    kds: tuple[str, ...] = tuple(KD_METHODS)  # label and feature KD: the two KD columns
    bf16: bool = False  # recorded in every run's config, as in the Tables 6-8 study
    tf32: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    # The reference code's networks and pipeline (see the module docstring); each field names its alternative.
    shortcut: str = "pad-detached"  # ResNets' stride-2 shortcut, as rethinking-network-pruning (pad: with gradient)
    normalization: str = "rethinking"  # its mean/std constants (cifar: the true CIFAR statistics)
    l1_skip: str = "B"  # a key of L1_SKIP
    slim_resnet: str = "preresnet"  # a key of SLIM_RESNETS
    reuse_regressor: bool = False  # feature-KD fine-tuning starts R fresh (training.engine.schedules.ScheduleSpec)

    def __post_init__(self) -> None:
        for value, allowed, flag in ((self.shortcut, SHORTCUTS, "--prune-shortcut"),
                                     (self.normalization, NORMALIZATIONS, "--prune-normalization"),
                                     (self.l1_skip, L1_SKIP, "--l1-skip"),
                                     (self.slim_resnet, SLIM_RESNETS, "--slim-resnet")):
            if value not in allowed:
                raise UserError(f"{flag} {value!r}: choose one of {', '.join(allowed)}")

    def model(self, network: str, full_model: str) -> str:
        """Our architecture for the paper's ``network``: its stand-in in a toy preset, else ``full_model``."""
        return dict(self.stand_ins).get(network, full_model)

    def settings(self, table: int) -> tuple[StudySetting, ...]:
        """Table ``table``'s settings as this study runs them (stand-ins, Table 2's ResNet, skip list, R reuse)."""
        out = []
        for s in PRUNING_TABLES[table]:
            model = SLIM_RESNETS[self.slim_resnet] if (s.rule, s.model) == ("slimming", "resnet56") else s.model
            if self.stand_ins:
                model = EXTRA_STAND_INS.get(model) or self.model(s.network, model)
            # Li et al.'s lists number the layers of ResNet-56/110; a toy stand-in has none and prunes every block.
            skip = self.l1_skip if s.rule == "l1" and (model, self.l1_skip) in L1_PRESETS else None
            out.append(StudySetting(s.network, model, s.rule, s.remaining, skip, self.reuse_regressor))
        return tuple(out)

    def base(self, model: str, seed: int) -> TrainConfig:
        """The initial-training recipe of ``model`` (method, teacher and sparsity are set per run)."""
        flags = model_spec(model).flags  # --width / --shortcut: the ResNets' only
        width = self.width if "width" in flags else TrainConfig.width
        shortcut = self.shortcut if "shortcut" in flags else TrainConfig.shortcut
        training_kwargs(model, width, shortcut)  # an architecture without --width is refused here, not half-way
        return TrainConfig(model=model, width=width, shortcut=shortcut, normalization=self.normalization,
                           dataset=self.dataset, data_dir=self.data_dir, max_train_images=self.max_train_images,
                           seed=seed, epochs=self.epochs, lr_milestones=self.lr_milestones, amp_bf16=self.bf16,
                           tf32=self.tf32, compile=self.compile, cuda_graphs=self.cuda_graphs)


FULL = PruneStudySpec(seeds=(0, 1, 2))  # three seeds: the paper's effects (0.05-1.5 points) are within one run's noise

# Toy size on the embedded CIFAR-10 subset: ResNet-8/14 (width 8), a 10-conv VGG, PreResNet-11 (width 4,
# EXTRA_STAND_INS) and DenseNet-10 stand in for the paper's networks; 4 initial epochs (LR steps after 2 and 3), 2
# fine-tuning epochs, 1,000 training images.
DEMO = PruneStudySpec(stand_ins=(("ResNet-56", "resnet8"), ("ResNet-110", "resnet14"), ("VGG-19", "vgg_tiny"),
                                 ("DenseNet-40", "densenet_tiny")),
                      width=8, dataset="cifar10", max_train_images=1000, epochs=4, lr_milestones=(2, 3),
                      finetune_epochs=2, seeds=(0,), slim_resnet="basic")
# The demo's Table 2 slims the basic-block ResNet-8: after 4 sparsity epochs the global threshold at 50% empties a BN
# of the PreResNet-11 stand-in (refused, as the reference code would fail there too). The micro preset, whose
# shorter sparsity training does not, keeps the reference's PreResNet so the tests cover that path.

# Seconds per run, for the tests in CI.
MICRO = replace(DEMO, width=4, max_train_images=256, epochs=2, lr_milestones=(1,), finetune_epochs=1,
                slim_resnet="preresnet")

PRUNE_PRESETS: dict[str, PruneStudySpec] = {"full": FULL, "demo": DEMO, "micro": MICRO}


def network_note(spec: PruneStudySpec, table: int) -> str:
    """The caption's sentences on how Table ``table``'s networks and pipeline relate to the reference code's."""
    settings = spec.settings(table)
    notes = []
    if any(s.rule == "l1" for s in settings):
        if spec.l1_skip == "none":
            notes.append("L1 pruning prunes every block (no skip list; the reference skips Li et al.'s layers)")
        else:
            models = dict.fromkeys(s.model for s in settings)
            lists = "; ".join(f"{m} {list(L1_PRESETS[(m, spec.l1_skip)][0])}" for m in models
                              if (m, spec.l1_skip) in L1_PRESETS)
            notes.append(f"L1 pruning leaves whole the layers of Li et al.'s preset {spec.l1_skip} skip list in every "
                         f"setting ({lists or 'the stand-ins have none and prune every block'}); preset B is ResNet-56 "
                         "40/70/90% and ResNet-110 50/60/70%, and the two other settings keep their network's list, "
                         "as the reference picks ratios and skip list together")
    slim_resnet = [s.model for s in settings if s.rule == "slimming" and s.network == "ResNet-56"]
    if slim_resnet:
        notes.append(f"ResNet-56 is {slim_resnet[0]}: " + (
            "network slimming's pre-activation bottleneck ResNet (every BN in the threshold and the sparsity term), "
            "the reference's network" if spec.slim_resnet == "preresnet" else
            "the basic-block ResNet of Table 1 (bn1 of each block pruned), not the reference's network"))
    if any(s.rule == "weight" for s in settings):
        notes.append("Unpruned row: the same ResNet-110 runs as Table 1's Unpruned row (the initial trainings are "
                     "shared); the paper's Table 3 Unpruned cells differ from its Table 1 ones, so it trained its own")
    if spec.reuse_regressor:
        notes.append("feature-KD Pre-Post and Self-Distill fine-tuning start R from the initial phase's where its "
                     "shape fits")
    return "".join(f"{n}. " for n in notes)


def ratio_tag(remaining: tuple[float, ...]) -> str:
    return "-".join(f"{r:g}" for r in remaining)


def teacher_run(root: Path, model: str) -> Path:
    return root / PRUNE_DIR / "teachers" / model


def initial_run(root: Path, model: str, method: str, slim: bool, seed: int) -> Path:
    return root / PRUNE_DIR / model / f"{'slim-' if slim else ''}{method}-s{seed}"


def schedule_run(root: Path, setting: StudySetting, schedule: str, kd: str, seed: int) -> Path:
    """A schedule's directory; a skip list and R reuse get their own, so runs of either choice never meet."""
    reuse = setting.reuse_regressor and kd == "feature" and schedule in ("pre-post", "self-distill")
    name = f"{schedule}-s{seed}" if schedule == "finetuned" else f"{schedule}-{kd}{'-reuseR' if reuse else ''}-s{seed}"
    pruning = f"{setting.rule}-{ratio_tag(setting.remaining)}{f'-skip{setting.skip}' if setting.skip else ''}"
    return root / PRUNE_DIR / setting.model / pruning / name


def schedule_cells(spec: PruneStudySpec) -> list[tuple[str, str]]:
    """(schedule, kd) of every schedule a setting runs per seed: finetuned once (it has no KD), the others per KD."""
    return [("finetuned", spec.kds[0])] + [(s, kd) for s in KD_SCHEDULES for kd in spec.kds]


def schedule_spec(spec: PruneStudySpec, root: Path, setting: StudySetting, schedule: str, kd: str, seed: int,
                  teacher: Path) -> ScheduleSpec:
    """The ScheduleSpec of one cell, its initial training in the shared run of ``initial_run``."""
    initial_kd = SCHEDULES[schedule].initial_kd
    method = KD_METHODS[kd] if initial_kd else "scratch"
    slim = sparsity(setting.rule, setting.model) > 0
    needs_teacher = SCHEDULES[schedule].needs_teacher
    return ScheduleSpec(schedule, kd, setting.rule, setting.remaining, None, str(teacher) if needs_teacher else None,
                        spec.base(setting.model, seed), spec.finetune_epochs,
                        initial_dir=str(initial_run(root, setting.model, method, slim, seed)),
                        skip=setting.skip, reuse_regressor=setting.reuse_regressor)

