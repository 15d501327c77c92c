"""Pruning x KD schedules (docs/reference.md "Pruning as the reference code ran it"; the paper's Tables 1-3), each a
sequence of phases under one directory:

``DIR/initial`` (a run directory: training from scratch, or KD from --teacher; with sparsity s*sign(gamma) when the
rule is slimming, i.e. network slimming's sparsity training is the initial training), ``DIR/pruned.pt`` (the
pruned checkpoint of ``DIR/initial/last.pt``) and ``DIR/finetune`` (a run directory started from ``pruned.pt``:
plain fine-tuning, or KD). Schedules, as the paper defines them:

=============  ==================  ==========================================
schedule       initial training    fine-tuning
=============  ==================  ==========================================
finetuned      scratch             plain
pre-distill    KD from --teacher   plain
post-distill   scratch             KD from --teacher
pre-post       KD from --teacher   KD from --teacher
self-distill   KD from --teacher   KD from the unpruned student (DIR/initial)
=============  ==================  ==========================================

Every phase is an ordinary run (config.json, resume, checkpoints that record their teacher and its sha256), so
re-running the same schedule resumes where it stopped; ``DIR/schedule.json`` summarises the finished schedule.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import FINETUNE_RECIPE, RuntimeOptions, TrainConfig
from training.engine.fit import fit
from training.errors import CheckpointError, UserError
from training.models.registry import model_spec
from training.pruning.rules import RULES, prune_checkpoint
from training.store.checkpoint import load_checkpoint, load_model, save_checkpoint
from training.store.files import atomic_write_text, sha256_file
from training.store.lock import exclusive_lock
from training.store.rundir import LAST, last_and_best_test_acc


@dataclass(frozen=True)
class Schedule:
    initial_kd: bool  # KD from --teacher in the initial training
    finetune_teacher: str | None  # None = plain fine-tuning; "teacher" = --teacher; "student" = the unpruned student

    @property
    def needs_teacher(self) -> bool:
        """Whether a phase distils from the external --teacher."""
        return self.initial_kd or self.finetune_teacher == "teacher"


SCHEDULES: dict[str, Schedule] = {
    "finetuned": Schedule(False, None),
    "pre-distill": Schedule(True, None),
    "post-distill": Schedule(False, "teacher"),
    "pre-post": Schedule(True, "teacher"),
    "self-distill": Schedule(True, "student"),
}
KD_METHODS = {"label": "label_kd", "feature": "feature_kd"}
SUMMARY = "schedule.json"


@dataclass(frozen=True)
class ScheduleSpec:
    schedule: str  # a key of SCHEDULES
    kd: str  # a key of KD_METHODS
    rule: str  # a key of training.pruning.rules.RULES
    remaining: tuple[float, ...] = ()  # remaining ratios (see training.pruning.rules.prune_model)
    preset: str | None = None  # l1 only: Li et al.'s A / B
    teacher: str | None = None  # the external teacher's checkpoint
    base: TrainConfig = TrainConfig()  # model, data and initial-training recipe; method/teacher/init are set here
    # fine-tuning recipe (docs/reference.md "Pruning as the reference code ran it")
    finetune_epochs: int = FINETUNE_RECIPE["epochs"]
    finetune_lr: float = FINETUNE_RECIPE["lr"]
    slim_s: float | None = None  # slimming sparsity; None = Liu et al.'s per-family default
    # The initial training's run directory; None = DIR/initial. Schedules with the same initial training (finetuned
    # and post-distill; pre-distill, pre-post and self-distill of one KD) can share one run: figures.study does.
    initial_dir: str | None = None
    skip: str | None = None  # l1 with remaining: leave whole the layers Li et al.'s preset A/B skips (None = none)
    # Feature-KD fine-tuning after a feature-KD initial phase (pre-post, self-distill): start R from the initial
    # phase's trained regressor when its shape fits the pruned student and the fine-tuning teacher. Off by default:
    # the reference's pruning scripts save the pruned network alone, so its fine-tuning starts a new R, as
    # Post-Distill (no R before) must; then the KD fine-tunings differ only in their initial phase.
    reuse_regressor: bool = False

    def __post_init__(self) -> None:
        for name, table, flag in ((self.schedule, SCHEDULES, "--schedule"), (self.kd, KD_METHODS, "--kd"),
                                  (self.rule, RULES, "--rule")):
            if name not in table:
                raise UserError(f"unknown {flag} {name!r}; choose one of: {', '.join(table)}")
        if self.skip is not None and (self.rule != "l1" or self.preset is not None):
            raise UserError("--skip takes a preset's skip list for --rule l1 --remaining R R R; drop it here")
        if self.slim_s is not None and self.rule != "slimming":
            raise UserError(f"--slim-s is network slimming's sparsity training; drop it for --rule {self.rule}")
        if self.needs_teacher and not self.teacher:
            raise UserError(f"schedule {self.schedule} distils from a teacher: pass --teacher CKPT (an orthokd "
                            "checkpoint)")

    @property
    def needs_teacher(self) -> bool:
        return SCHEDULES[self.schedule].needs_teacher


def initial_dir(spec: ScheduleSpec, out_dir: Path) -> Path:
    """Where the initial training of ``spec`` lives: ``spec.initial_dir``, else OUT_DIR/initial."""
    return Path(spec.initial_dir) if spec.initial_dir else out_dir / "initial"


def sparsity(rule: str, model: str, slim_s: float | None = None) -> float:
    """The initial training's slimming sparsity s: 0 unless ``rule`` is slimming; then ``slim_s``, else Liu et
    al.'s per-family default in the model's registry entry (1e-4 VGG, 1e-5 ResNets and DenseNet)."""
    if rule != "slimming":
        return 0.0
    if slim_s is not None:
        return slim_s
    return model_spec(model).slim_s


def phase_configs(spec: ScheduleSpec, out_dir: Path) -> tuple[TrainConfig, TrainConfig]:
    """(initial-training config, fine-tuning config) of ``spec`` under ``out_dir``."""
    s, kd = SCHEDULES[spec.schedule], KD_METHODS[spec.kd]
    initial = dataclasses.replace(spec.base, method=kd if s.initial_kd else "scratch",
                                  teacher=spec.teacher if s.initial_kd else None, init=None, keep_zeros=False,
                                  slim_s=sparsity(spec.rule, spec.base.model, spec.slim_s))
    teacher = {None: None, "teacher": spec.teacher,
               "student": str(initial_dir(spec, out_dir) / LAST)}[s.finetune_teacher]
    finetune = dataclasses.replace(
        spec.base, method=kd if teacher else "scratch", teacher=teacher, init=str(out_dir / "pruned.pt"),
        keep_zeros=False, slim_s=0.0, epochs=spec.finetune_epochs, lr=spec.finetune_lr,
        lr_milestones=tuple(FINETUNE_RECIPE["lr_milestones"]), momentum=FINETUNE_RECIPE["momentum"],
        weight_decay=FINETUNE_RECIPE["weight_decay"])
    return initial, finetune


def initial_config(spec: ScheduleSpec) -> TrainConfig:
    """The initial-training config of ``spec`` (what ``run_schedule`` trains first), e.g. to train a shared
    ``spec.initial_dir`` before the schedules that start from it."""
    return phase_configs(spec, Path(spec.initial_dir or "."))[0]


def _prune_phase(spec: ScheduleSpec, source: Path, out: Path, overwrite: bool) -> dict[str, Any]:
    """Write ``out`` = the pruned ``source``, or keep an existing one made from the same source with the same rule;
    one made otherwise is refused unless ``overwrite``."""
    if out.is_file() and not overwrite:
        try:
            old = load_checkpoint(out).get("pruning") or {}
        except CheckpointError:
            old = {}
        same = (old.get("source_sha256") == sha256_file(source) and old.get("rule") == spec.rule
                and old.get("preset") == spec.preset and old.get("requested") == [float(r) for r in spec.remaining]
                and old.get("skip_preset") == spec.skip)
        if same:
            return old
        raise UserError(f"{out} was pruned from another checkpoint or with another rule; use another --out-dir "
                        "or pass --overwrite to redo the schedule")
    ckpt = prune_checkpoint(source, spec.rule, spec.remaining, spec.preset, spec.skip)
    save_checkpoint(ckpt, out)
    return ckpt["pruning"]


def _regressor_choice(spec: ScheduleSpec, initial: TrainConfig, finetune: TrainConfig, source: Path,
                      ) -> tuple[TrainConfig, str | None]:
    """(the fine-tuning config, how its feature-KD regressor R starts) under ``spec.reuse_regressor``: from the initial
    phase's trained R (``source``'s aux) when both phases are feature KD and R's shape (fine-tuning teacher's x pruned
    student's feature channels) fits, else fresh, saying why; (finetune, None) when the choice does not arise."""
    if not (spec.reuse_regressor and finetune.method == "feature_kd"):
        return finetune, None
    if initial.method != "feature_kd":
        return finetune, "fresh: the initial phase trained no regressor"
    trained = tuple(load_checkpoint(source)["aux"]["regressor"]["weight"].shape[:2])
    student, teacher = (load_model(path)[0].feature_channels for path in (finetune.init, finetune.teacher))
    if trained != (teacher, student):
        return finetune, (f"fresh: the initial regressor maps {trained[1]} -> {trained[0]} channels, this phase "
                          f"needs {student} -> {teacher}")
    return dataclasses.replace(finetune, regressor_init=str(source)), f"reused from {source}"


def run_schedule(spec: ScheduleSpec, out_dir: str | Path, opts: RuntimeOptions = RuntimeOptions(),
                 overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) every phase of ``spec`` under ``out_dir``; returns the summary written to schedule.json:
    each phase's directory, method, teacher (and sha256), last-epoch and best-epoch test accuracy, and the pruning
    record."""
    out_dir = Path(out_dir)
    if spec.teacher:
        try:
            load_checkpoint(spec.teacher)
        except CheckpointError as e:
            raise UserError(f"--teacher: {e}") from None
    initial, finetune = phase_configs(spec, out_dir)
    first = initial_dir(spec, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # One process per schedule directory (its phases' run directories have their own locks; pruned.pt and
    # schedule.json need this one), so a second schedule on it is refused at once, naming the first.
    with exclusive_lock(out_dir, f"schedule directory {out_dir}"):
        fit(initial, first, opts, overwrite and not spec.initial_dir)  # a shared initial run is never redone from here
        pruning = _prune_phase(spec, first / LAST, out_dir / "pruned.pt", overwrite)
        finetune, regressor = _regressor_choice(spec, initial, finetune, first / LAST)
        fit(finetune, out_dir / "finetune", opts, overwrite)

    def phase(cfg: TrainConfig, run_dir: Path) -> dict[str, Any]:
        last, best = last_and_best_test_acc(run_dir, cfg.epochs) or (None, None)
        return {"dir": str(run_dir), "method": cfg.method, "teacher": cfg.teacher,
                "teacher_sha256": sha256_file(cfg.teacher) if cfg.teacher else None, "slim_s": cfg.slim_s,
                "test_acc": last, "best_test_acc": best}

    summary = {"schedule": spec.schedule, "kd": spec.kd, "rule": spec.rule, "remaining": list(pruning["remaining"]),
               "preset": spec.preset, "initial": phase(initial, first), "pruning": pruning,
               "finetune": phase(finetune, out_dir / "finetune")}
    if regressor:
        summary["finetune"]["regressor"] = regressor
    atomic_write_text(out_dir / SUMMARY, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
