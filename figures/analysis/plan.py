"""What the Tables 6-8 study runs, at full size and at demo size.

Full size is the paper: ResNet-56, 160 epochs with LR steps after 80 and 120, five methods x five seeds,
a scratch ResNet-56 teacher, 51x51 surfaces on the whole train split for one seed per method at each of
the three milestones, NASWOT scores of every final checkpoint. The demo keeps every stage but shrinks
each: a tiny ResNet, few epochs with the same three LR steps, fewer seeds, a small grid, few images.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from diversity.config import ScoreConfig
from figures.analysis.hessian import HessianSettings
from figures.paper import SURFACE_TABLES, TABLE6_ROWS
from landscape.config import GridSpec
from training.config import milestone_epochs
from training.errors import UserError


@dataclass(frozen=True)
class StudySpec:
    model: str = "resnet56"  # architecture of teacher and students (paper: ResNet-56)
    width: int = 16  # first-stage channels (paper: 16)
    epochs: int = 160  # paper recipe
    lr_milestones: tuple[int, ...] = (80, 120)  # paper recipe; milestones + final epoch = surface columns
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # Table 6: five models per method
    teacher: str | None = None  # None = train a scratch teacher as OUT_DIR/teachers/scratch-teacher; else a checkpoint
    teacher_seed: int = 100  # the scratch teacher is its own run, not one of the scratch students
    methods: tuple[str, ...] = tuple(TABLE6_ROWS)  # the five Table 6 methods (Tables 7-8 use the same five)
    dataset: str = "cifar10"
    data_dir: str | None = None  # None = embedded subset; full runs pass torchvision's CIFAR-10 folder
    max_train_images: int | None = None  # None = all
    surface_seed: int = 0  # the run whose milestones get loss surfaces
    surface_steps: int = 51  # Li et al.: 51 x 51 on [-1, 1]^2
    surface_max_images: int | None = None  # None = the whole train split (Li et al.)
    score_batches: int = 5  # NASWOT batches of 128 per checkpoint (paired across checkpoints)
    score_batch_size: int = 128  # Table 6's scores (each <= -N, -143.96 ... -141.34) give N <= 141; 128 assumed
    score_bn_mode: str = ScoreConfig.bn_mode  # Table 6: BatchNorm in train mode (NASWOT's harness) or eval mode
    sharpness: HessianSettings = HessianSettings()  # Tables 7-8 Hessian numbers: images and stopping rules
    # Train a method's seeds in one process, one forward/backward per step (training.engine.packed). The CPU presets do
    # not: on 2 CPU cores packing 5 ResNet-20 runs measured 0.66x the images/s of the 5 runs one after another.
    pack_seeds: bool = True
    bf16: bool = False  # training: bf16 autocast (CUDA), recorded in every run's config
    tf32: bool = False  # training: TF32 convolutions/matmuls (CUDA), recorded in every run's config
    compile: bool = False  # training: torch.compile (then seeds train one after another: the packed step is vmapped)
    cuda_graphs: bool = False  # training: each step replayed as one CUDA graph (training.engine.graphs), recorded

    @property
    def surface_epochs(self) -> tuple[int, ...]:
        return tuple(milestone_epochs(self.lr_milestones, self.epochs))

    @property
    def surface_methods(self) -> tuple[str, ...]:
        wanted = {m for rows in SURFACE_TABLES.values() for m in rows}
        return tuple(m for m in self.methods if m in wanted)

    def grid(self) -> GridSpec:
        """The surfaces' grid: surface_steps x surface_steps on Li's [-1, 1]^2, on surface_max_images images."""
        return GridSpec(xsteps=self.surface_steps, ysteps=self.surface_steps, max_images=self.surface_max_images)

    def score_config(self, bn_mode: str | None = None) -> ScoreConfig:
        """Table 6's NASWOT scoring: score_batches shared batches of score_batch_size images, BatchNorm in
        ``bn_mode`` (None: score_bn_mode)."""
        return ScoreConfig(batch_size=self.score_batch_size, batches=self.score_batches,
                           bn_mode=bn_mode or self.score_bn_mode)


FULL = StudySpec()

# About 6 minutes on 2 CPU cores (5 min 33 s measured), every artifact of the full study at toy size.
DEMO = StudySpec(model="resnet8", width=8, epochs=6, lr_milestones=(2, 4), seeds=(0, 1, 2), max_train_images=None,
                 surface_steps=11, surface_max_images=500, score_batches=2, score_batch_size=64,
                 sharpness=HessianSettings(images=64, rel_se=0.2, max_samples=40, sketch=5, max_iters=20),
                 pack_seeds=False)

# Seconds, for the end-to-end test in CI.
MICRO = replace(DEMO, width=4, epochs=3, lr_milestones=(1, 2), seeds=(0, 1), max_train_images=256,
                surface_steps=5, surface_max_images=128, score_batches=1, score_batch_size=32,
                sharpness=HessianSettings(images=16, rel_se=0.5, min_samples=2, max_samples=4, sketch=2, max_iters=5))

PRESETS: dict[str, StudySpec] = {"full": FULL, "demo": DEMO, "micro": MICRO}


def run_name(method: str, seed: int | str) -> str:
    return f"{method}-s{seed}"


TEACHER_RUN = "teachers/scratch-teacher"  # two levels down: not one of the scratch students that Table 6 discovers


def table_hours_line(costs: dict[int, float], device: torch.device) -> str:
    """The plan's line of what each table costs: ``costs`` maps a table to the estimated seconds of every job it
    needs (done or not; from the throughput probe of each network on ``device``), printed in device-hours."""
    unit = "GPU" if device.type == "cuda" else f"{device.type.upper()}"
    each = ", ".join(f"Table {t} {s / 3600:.2f} {unit}-hours" for t, s in sorted(costs.items()))
    return (f"plan: {each} (estimated from the throughput probe of each network on this {device.type} device; runs "
            "that "
            "tables share are counted in each; with several GPUs the wall time divides, the GPU-hours do not)")


def require_gpu(device: torch.device, allow_cpu: bool, what: str) -> None:
    """Full size on a CPU takes days: refuse unless ``allow_cpu``, with one UserError naming the fix."""
    if device.type == "cpu" and not allow_cpu:
        raise UserError(f"{what} on the CPU takes days: use --device cuda, pass --allow-cpu to run anyway, "
                        "or use --preset demo or micro")
