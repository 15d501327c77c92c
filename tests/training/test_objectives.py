"""Paper eq. (1) and eq. (2) against hand computations on fixed tensors; CutMix's lambda and patch."""
import ast
import math
from pathlib import Path

import numpy as np
import torch

from training.data.augment import Targets, cutmix, cutmix_box
from training.models.registry import build_model
from training.objectives import CrossEntropy, FeatureKD, LabelKD, feature_distance, kd_kl_term, mixed_cross_entropy


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_label_kd_equals_eq1_by_hand():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 10, generator=g, dtype=torch.float64), torch.randn(6, 10, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 3, 9, 1, 1, 5])
    alpha, T = 0.9, 4.0
    sn, tn = s.numpy(), t.numpy()
    ce = -np.mean(np.log(_softmax(sn))[np.arange(6), y.numpy()])
    p_t, p_s = _softmax(tn / T), _softmax(sn / T)
    kl = np.sum(p_t * (np.log(p_t) - np.log(p_s))) / 6  # batchmean
    expected = (1 - alpha) * ce + alpha * T * T * kl
    got = (1 - alpha) * mixed_cross_entropy(s, Targets(y, y, 1.0)) + alpha * kd_kl_term(s, t, T)
    assert abs(got.item() - expected) < 1e-10


def test_label_kd_module_uses_teacher_in_eval_and_eq1():
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10, width=4), build_model("resnet8", 10, width=4)
    obj = LabelKD(student, teacher, 0.9, 4.0).train()
    assert not obj.teacher.training and obj.student.training
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    res = obj(x, Targets(y, y, 1.0))
    with torch.no_grad():
        t_logits = teacher(x)
    expected = 0.1 * torch.nn.functional.cross_entropy(res.logits, y) + 0.9 * kd_kl_term(res.logits, t_logits, 4.0)
    assert torch.allclose(res.loss, expected)
    assert all(p.grad is None for p in teacher.parameters())
    res.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())


def test_feature_kd_equals_eq2_by_hand():
    g = torch.Generator().manual_seed(1)
    fs, ft = (
        torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64),
        torch.randn(3, 4, 2, 2, generator=g, dtype=torch.float64),
    )
    a, b = fs.reshape(3, -1).numpy(), ft.reshape(3, -1).numpy()
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    assert abs(feature_distance(fs, ft).item() - np.abs(a - b).mean()) < 1e-12


def test_feature_kd_module_total_loss():
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10, width=4), build_model("resnet8", 10, width=8)
    obj = FeatureKD(student, teacher, beta=500.0).train()
    assert obj.regressor.in_channels == 16 and obj.regressor.out_channels == 32
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([1, 2, 3, 4])
    res = obj(x, Targets(y, y, 1.0))
    fs = obj.regressor(student.forward_features(x))
    with torch.no_grad():
        ft = teacher.forward_features(x)
    expected = torch.nn.functional.cross_entropy(res.logits, y) + 500.0 * feature_distance(fs, ft)
    assert torch.allclose(res.loss, expected, rtol=1e-6)
    res.loss.backward()
    assert obj.regressor.weight.grad is not None and obj.regressor.weight.grad.abs().sum() > 0


def test_objectives_state_their_contract():
    """Each objective names its networks, its aux modules and its teacher's contribution, and rebuilds itself
    around other networks with the same hyperparameters (what the packed step uses)."""
    torch.manual_seed(0)
    student, teacher = build_model("resnet8", 10, width=4), build_model("resnet8", 10, width=8)
    x = torch.randn(2, 3, 32, 32)
    ce, label, feature = CrossEntropy(student), LabelKD(student, teacher, 0.7, 3.0), FeatureKD(student, teacher, 250.0)
    assert ce.networks() == {"student": student} and ce.aux_modules() == {} and ce.teacher_targets(x) is None
    assert label.networks() == {"student": student, "teacher": teacher} and label.aux_modules() == {}
    assert feature.aux_modules() == {"regressor": feature.regressor}
    with torch.no_grad():
        assert torch.equal(label.teacher_targets(x), teacher(x))
        assert torch.equal(feature.teacher_targets(x), teacher.forward_features(x))
    assert not label.teacher_targets(x).requires_grad
    other_s, other_t = build_model("resnet8", 10, width=4), build_model("resnet8", 10, width=8)
    again = label.around(other_s, other_t)
    assert type(again) is LabelKD and (again.alpha, again.temperature) == (0.7, 3.0) and again.teacher is other_t
    again = feature.around(other_s, other_t)
    assert type(again) is FeatureKD and again.beta == 250.0 and again.regressor is not feature.regressor
    assert type(ce.around(other_s)) is CrossEntropy and ce.around(other_s).student is other_s


def test_trainers_never_branch_on_the_method():
    """The trainers ask the objective (training.objectives.Objective) instead of naming methods or classes."""
    engine = Path(__file__).resolve().parents[2] / "training" / "engine"
    for name in ("fit.py", "loop.py", "packed.py", "packed_step.py", "run.py", "publish.py", "prepare.py"):
        tree = ast.parse((engine / name).read_text())
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not strings & {"ce", "label_kd", "feature_kd"}, name
        assert not names & {"CrossEntropy", "LabelKD", "FeatureKD", "isinstance"}, name


def test_cutmix_lambda_is_pasted_area_and_patch_from_partner(real_batch_u8):
    x, y = real_batch_u8
    rng, gen = np.random.default_rng(3), torch.Generator().manual_seed(3)
    mixed_any = False
    for _ in range(20):
        mixed, t = cutmix(x, y, rng, gen, prob=0.5, beta=1.0)
        if t.lam == 1.0:
            assert torch.equal(mixed, x) and torch.equal(t.b, t.a)
            continue
        mixed_any = True
        changed = (mixed != x).any(dim=1)  # (N, H, W): where a pixel came from another image
        # The box is shared by the batch: recover it from the label permutation and check the area.
        rows = torch.nonzero(changed.any(0).any(1)).flatten()
        cols = torch.nonzero(changed.any(0).any(0)).flatten()
        y1, y2, x1, x2 = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
        assert math.isclose(t.lam, 1 - (y2 - y1) * (x2 - x1) / 1024, abs_tol=1e-12)
        outside = torch.ones(32, 32, dtype=torch.bool)
        outside[y1:y2, x1:x2] = False
        assert torch.equal(mixed[:, :, outside], x[:, :, outside])
        # Each image's patch is the partner's patch, and the partner's label is targets.b.
        for i in range(x.shape[0]):
            partner = [j for j in range(x.shape[0]) if torch.equal(mixed[i, :, y1:y2, x1:x2], x[j, :, y1:y2, x1:x2])]
            assert partner and any(y[j] == t.b[i] for j in partner)
    assert mixed_any


def test_cutmix_box_clips_at_borders():
    assert cutmix_box(32, 32, 0.75, 0, 0) == (0, 8, 0, 8)
    assert cutmix_box(32, 32, 0.0, 16, 16) == (0, 32, 0, 32)
    assert cutmix_box(32, 32, 1.0, 5, 5) == (5, 5, 5, 5)


def test_mixed_ce_is_lambda_weighted():
    logits = torch.randn(5, 10)
    a, b = torch.arange(5), torch.arange(5).flip(0)
    f = torch.nn.functional.cross_entropy
    got = mixed_cross_entropy(logits, Targets(a, b, 0.3))
    assert torch.allclose(got, 0.3 * f(logits, a) + 0.7 * f(logits, b))


def test_resnet56_shape_and_parameter_count():
    m = build_model("resnet56", 10)
    assert sum(p.numel() for p in m.parameters()) == 853_018  # He et al. 2016: 0.85 M
    x = torch.randn(2, 3, 32, 32)
    assert m.forward_features(x).shape == (2, 64, 8, 8)
    assert torch.allclose(m(x), m.forward_head(m.forward_features(x)))


def test_pad_shortcut_passes_gradient():
    from training.models.resnet import PadShortcut

    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    y = PadShortcut(4, 8)(x)
    assert y.shape == (2, 8, 4, 4) and torch.equal(y[:, 4:], torch.zeros(2, 4, 4, 4))
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 0.25))  # 2x2 average pool, not detached
