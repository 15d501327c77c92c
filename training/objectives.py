"""Training objectives (docs/reference.md "Objectives"). Each is an ``Objective``: an ``nn.Module`` whose
``forward(images, targets)`` returns ``StepResult(loss, logits, parts)`` and which states its own contract (its
networks, its trainable modules beside the student, what its teacher contributes), so no trainer branches on the
method name.

CutMix is not an objective but a batch transform (training.data.augment.cutmix) that any objective sits
behind: every objective takes ``Targets`` and uses the mixed cross-entropy, which reduces to plain CE
when the batch was not mixed (lam = 1).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from training.data.augment import Targets
from training.errors import UserError
from training.models.registry import MODELS


class StepResult(NamedTuple):
    loss: torch.Tensor  # scalar to back-propagate
    logits: torch.Tensor  # student logits (N, classes)
    parts: dict[str, torch.Tensor]  # detached loss terms, for logging


def mixed_cross_entropy(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    """lam * CE(s, y_a) + (1 - lam) * CE(s, y_b) (CutMix, docs/reference.md "Objectives"); plain CE when lam = 1. A
    tensor
    lam (a captured step's device input, training.engine.graphs) always takes the mixed formula: no host read of it."""
    if not isinstance(t.lam, torch.Tensor) and t.lam == 1.0:
        return F.cross_entropy(logits, t.a)
    return t.lam * F.cross_entropy(logits, t.a) + (1.0 - t.lam) * F.cross_entropy(logits, t.b)


def kd_kl_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch (``reduction="batchmean"``)."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1),
                    reduction="batchmean") * (t * t)


def feature_distance(student_feat: torch.Tensor, teacher_feat: torch.Tensor) -> torch.Tensor:
    """mean |normalize(phi_S) - normalize(phi_T)| with per-sample L2 normalization of the flattened
    (N, C*H*W) maps, averaged over all N*C*H*W elements (``nn.L1Loss`` default), docs/reference.md "Objectives"."""
    s = F.normalize(student_feat.flatten(1), dim=1)
    t = F.normalize(teacher_feat.flatten(1), dim=1)
    return F.l1_loss(s, t)


class Objective(nn.Module):
    """A loss around a student network (and a teacher for the KD methods). The trainers use only these methods."""

    def networks(self) -> dict[str, nn.Module]:
        """The networks the loss reads: ``student`` and, for the KD methods, ``teacher``."""
        return {"student": self.student}

    def around(self, student: nn.Module, teacher: nn.Module | None = None) -> Objective:
        """The same formula and hyperparameters around other networks (the packed step's stand-ins); new trainable
        modules of its own, initialized as in a fresh objective."""
        raise NotImplementedError

    def aux_modules(self) -> dict[str, nn.Module]:
        """Trainable modules beside the student, saved under the checkpoint's ``aux`` (feature KD's R)."""
        return {}

    def teacher_targets(self, images: torch.Tensor) -> torch.Tensor | None:
        """What the teacher contributes to the loss on ``images`` (its logits for label KD, its last feature map for
        feature KD), without gradient; None without a teacher."""
        return None


class CrossEntropy(Objective):
    """Scratch training, docs/reference.md "Objectives" (mixed CE behind CutMix)."""

    def __init__(self, student: nn.Module):
        super().__init__()
        self.student = student

    def around(self, student: nn.Module, teacher: nn.Module | None = None) -> CrossEntropy:
        return CrossEntropy(student)

    def forward(self, images: torch.Tensor, targets: Targets) -> StepResult:
        logits = self.student(images)
        ce = mixed_cross_entropy(logits, targets)
        return StepResult(ce, logits, {"ce": ce.detach()})


class _WithTeacher(Objective):
    """Holds a frozen teacher that stays in eval mode whatever ``train()`` is called with."""

    def __init__(self, student: nn.Module, teacher: nn.Module):
        super().__init__()
        self.student = student
        self.teacher = teacher.eval()
        self.teacher.requires_grad_(False)

    def networks(self) -> dict[str, nn.Module]:
        return {"student": self.student, "teacher": self.teacher}

    def train(self, mode: bool = True) -> _WithTeacher:
        super().train(mode)
        self.teacher.eval()
        return self


class LabelKD(_WithTeacher):
    """Paper eq. (1): L = (1 - alpha) * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T)).

    The teacher sees the same (augmented, possibly CutMix-ed) batch; CE is the mixed CE."""

    def __init__(self, student: nn.Module, teacher: nn.Module, alpha: float = 0.9, temperature: float = 4.0):
        super().__init__(student, teacher)
        self.alpha, self.temperature = alpha, temperature

    def around(self, student: nn.Module, teacher: nn.Module | None = None) -> LabelKD:
        return LabelKD(student, teacher, self.alpha, self.temperature)

    def teacher_targets(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's logits."""
        with torch.no_grad():
            return self.teacher(images)

    def forward(self, images: torch.Tensor, targets: Targets) -> StepResult:
        logits = self.student(images)
        teacher_logits = self.teacher_targets(images)
        ce = mixed_cross_entropy(logits, targets)
        kl = kd_kl_term(logits, teacher_logits, self.temperature)
        loss = (1.0 - self.alpha) * ce + self.alpha * kl
        return StepResult(loss, logits, {"ce": ce.detach(), "kd": kl.detach()})


class FeatureKD(_WithTeacher):
    """Paper eq. (2): L = CE(s, y) + beta * mean|normalize(R(phi_S)) - normalize(phi_T)|.

    phi is the last feature map; R is a trainable 1x1 conv without bias (student -> teacher channels)
    trained by the same optimizer; phi_T is computed without gradient."""

    def __init__(self, student: nn.Module, teacher: nn.Module, beta: float = 500.0):
        super().__init__(student, teacher)
        self.beta = beta
        self.regressor = nn.Conv2d(student.feature_channels, teacher.feature_channels, 1, bias=False)

    def around(self, student: nn.Module, teacher: nn.Module | None = None) -> FeatureKD:
        return FeatureKD(student, teacher, self.beta)

    def aux_modules(self) -> dict[str, nn.Module]:
        return {"regressor": self.regressor}

    def teacher_targets(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's last feature map phi_T."""
        with torch.no_grad():
            return self.teacher.forward_features(images)

    def forward(self, images: torch.Tensor, targets: Targets) -> StepResult:
        feats = self.student.forward_features(images)
        logits = self.student.forward_head(feats)
        teacher_feats = self.teacher_targets(images)
        if feats.shape[-2:] != teacher_feats.shape[-2:]:
            raise UserError(
                f"feature KD compares feature maps of one size, but the student's are "
                f"{tuple(feats.shape[-2:])} and the teacher's {tuple(teacher_feats.shape[-2:])}; "
                "use a teacher whose last feature map has the student's spatial size (e.g. the same family)"
            )
        ce = mixed_cross_entropy(logits, targets)
        feat = feature_distance(self.regressor(feats), teacher_feats)
        loss = ce + self.beta * feat
        return StepResult(loss, logits, {"ce": ce.detach(), "feat": feat.detach()})


@dataclass(frozen=True)
class MethodSpec:
    objective: str  # "ce", "label_kd" or "feature_kd"
    cutmix: bool  # CutMix batch transform in front of the objective
    description: str

    @property
    def distils(self) -> bool:
        """Whether the method's loss reads a teacher (--teacher required)."""
        return self.objective != "ce"


METHODS: dict[str, MethodSpec] = {
    "scratch": MethodSpec("ce", False, "cross-entropy"),
    "cutmix": MethodSpec("ce", True, "CutMix + mixed cross-entropy"),
    "label_kd": MethodSpec("label_kd", False, "label KD, eq. (1)"),
    "feature_kd": MethodSpec("feature_kd", False, "feature KD, eq. (2)"),
    "cutmix_label_kd": MethodSpec("label_kd", True, "label KD behind CutMix"),
    "cutmix_feature_kd": MethodSpec("feature_kd", True, "feature KD behind CutMix"),
}

def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[name]


def default_feature_beta(model_name: str) -> float:
    """eq. (2) beta of ``model_name``'s family, as its registry entry holds it (docs/reference.md "Objectives")."""
    if model_name not in MODELS:
        raise UserError(f"no default feature-KD beta for {model_name!r}; pass --feature-beta")
    return MODELS[model_name].feature_beta


OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "ce": lambda student, teacher, cfg: CrossEntropy(student),
    "label_kd": lambda student, teacher, cfg: LabelKD(student, teacher, cfg.kd_alpha, cfg.kd_temperature),
    "feature_kd": lambda student, teacher, cfg: FeatureKD(
        student, teacher, cfg.feature_beta if cfg.feature_beta is not None else default_feature_beta(cfg.model)
    ),
}


def build_objective(method: str, student: nn.Module, teacher: nn.Module | None, cfg) -> Objective:
    """The objective module of ``method`` around ``student`` (and ``teacher`` for the KD methods)."""
    spec = method_spec(method)
    if spec.distils and teacher is None:
        raise UserError(f"method {method} distils from a teacher: pass --teacher CKPT (an orthokd checkpoint)")
    return OBJECTIVES[spec.objective](student, teacher, cfg)
