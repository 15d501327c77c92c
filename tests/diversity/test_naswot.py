"""The NASWOT v1 score against its formula, numpy, and per-image autograd."""
import math

import numpy as np
import pytest
import torch

from diversity.batches import draw_batches
from diversity.naswot import (
    batch_jacobian,
    correlation_eigenvalues,
    naswot_v1,
    naswot_v2,
    relu_kernel,
    score_from_eigenvalues,
    scoring_copy,
)
from training.data.datasets import load_split
from training.errors import UserError
from training.store.checkpoint import load_model

K = 1e-5


def test_identity_correlation_score():
    n = 128
    assert score_from_eigenvalues(np.ones(n), K) == pytest.approx(-n * (math.log(1 + K) + 1 / (1 + K)), rel=1e-12)


def test_gaussian_jacobians_score_about_minus_130_8():
    rng = np.random.default_rng(0)
    scores = []
    for _ in range(3):
        v = correlation_eigenvalues(rng.standard_normal((128, 3072)))
        assert v.sum() == pytest.approx(128, rel=1e-10)  # trace of a correlation matrix = N
        scores.append(score_from_eigenvalues(v, K))
    assert all(s < -128 for s in scores)
    assert np.mean(scores) == pytest.approx(-130.8, abs=0.3)


def test_duplicated_row_scores_about_minus_1e5():
    j = np.random.default_rng(1).standard_normal((128, 3072))
    j[7] = j[3]
    s = score_from_eigenvalues(correlation_eigenvalues(j), K)
    assert -1.1e5 < s < -0.9e5


def test_zero_variance_row_and_nonpositive_eigenvalue_raise():
    j = np.random.default_rng(2).standard_normal((8, 50))
    j[2] = 3.0
    with pytest.raises(UserError, match="zero variance"):
        correlation_eigenvalues(j)
    with pytest.raises(UserError, match="not positive"):
        score_from_eigenvalues(np.array([1.0, -0.5]), K)


@pytest.fixture(scope="module")
def real_batch(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint)
    x = draw_batches(load_split("cifar10", "train"), 32, 1, seed=0)[0]
    return model, x


def test_real_model_score_equals_independent_numpy(real_batch):
    model, x = real_batch
    m = scoring_copy(model, "train")
    j = batch_jacobian(m, x)
    c = np.corrcoef(j)  # numpy's own path: eigenvalues via eigh, score by the formula
    v = np.linalg.eigh(c)[0]
    expected = -np.sum(np.log(v + K) + 1.0 / (v + K))
    assert naswot_v1(scoring_copy(model, "train"), x, K) == pytest.approx(expected, rel=1e-9)
    assert expected <= -x.shape[0]


def test_eval_mode_batch_jacobian_equals_per_image_gradients(real_batch):
    model, x = real_batch
    m = scoring_copy(model, "eval")
    j = batch_jacobian(m, x[:6])
    for i in range(6):
        xi = x[i : i + 1].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m(xi).sum(), xi)
        np.testing.assert_allclose(j[i], g.flatten().double().numpy(), rtol=1e-5, atol=1e-7)


def test_train_mode_scoring_leaves_checkpoint_statistics_untouched(real_batch):
    model, x = real_batch
    before = {k: v.clone() for k, v in model.state_dict().items()}
    naswot_v1(scoring_copy(model, "train"), x)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training


def test_naswot_v2_kernel_diagonal_counts_units(real_batch):
    model, x = real_batch
    m = scoring_copy(model, "eval")
    sizes = []
    hooks = [r.register_forward_hook(lambda _m, _i, o: sizes.append(o[0].numel()))
             for r in m.modules() if isinstance(r, torch.nn.ReLU)]
    with torch.no_grad():
        m(x[:1])
    for h in hooks:
        h.remove()
    k = relu_kernel(m, x[:8])
    assert np.all(np.diag(k) == sum(sizes))  # every unit agrees with itself
    assert np.allclose(k, k.T) and np.all(k[~np.eye(8, dtype=bool)] < sum(sizes))  # distinct images, distinct codes
    sign, logdet = np.linalg.slogdet(k)
    assert naswot_v2(m, x[:8]) == pytest.approx(logdet) and sign > 0


def test_train_mode_score_ignores_the_copys_running_statistics(real_batch):
    # diversity.scoring reuses one copy for all batches of a checkpoint: valid only if the statistics
    # that scoring accumulates in the copy never change a train-mode score.
    model, x = real_batch
    m = scoring_copy(model, "train")
    first = naswot_v1(m, x[:16])
    naswot_v1(m, x[16:])
    key = next(k for k in model.state_dict() if k.endswith("running_mean"))
    assert not torch.equal(m.state_dict()[key], model.state_dict()[key])  # the copy's statistics did move
    assert naswot_v1(m, x[:16]) == first
