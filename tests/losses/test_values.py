"""Each loss against a direct NumPy transcription of its formula (float64, defaults),
plus the limits and symmetries that tie the families together."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.losses.conftest import TOKENS, make_loss

B, K = 7, 5
RNG = np.random.default_rng(1234)
Z = RNG.standard_normal((B, K)) * 2.5
Z[0] *= 8.0  # one sample with large logits
Y = RNG.integers(0, K, B)
Y[:K] = np.arange(K)  # every class appears


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def onehot(y, k=K):
    return np.eye(k)[y]


def py(z, y):
    return softmax(z)[np.arange(len(y)), y]


def sp(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def ldr_ref(f, y, lam, margin):
    d = margin * (1 - onehot(y, f.shape[1])) + f - f[np.arange(len(y)), y][:, None]
    return lam * np.log(np.mean(np.exp(d / lam), axis=1))


# Per-sample references, one per token, written from the formulas in the docs.
REFERENCES = {
    "ce": lambda z, y: -np.log(py(z, y)),
    "ls": lambda z, y: 0.9 * -np.log(py(z, y)) + 0.1 * np.mean(-np.log(softmax(z)), axis=1),
    "focal": lambda z, y: -((1 - py(z, y)) ** 2.0) * np.log(py(z, y)),
    "poly1": lambda z, y: -np.log(py(z, y)) + 1.0 * (1 - py(z, y)),
    "gce": lambda z, y: (1 - py(z, y) ** 0.7) / 0.7,
    "tgce": lambda z, y: (1 - np.maximum(py(z, y), 0.5) ** 0.7) / 0.7,
    "sce": lambda z, y: 0.1 * -np.log(py(z, y)) + 1.0 * 4.0 * (1 - py(z, y)),
    "rce": lambda z, y: -np.sum(softmax(z) * np.where(onehot(y) == 1, 0.0, -4.0), axis=1),
    "mae": lambda z, y: np.abs(onehot(y) - softmax(z)).sum(1),
    "mse": lambda z, y: ((softmax(z) - onehot(y)) ** 2).sum(1),
    "nce": lambda z, y: -np.log(py(z, y)) / (-np.log(softmax(z))).sum(1),
    "agce": lambda z, y: ((3.0 + 1) ** 1.5 - (3.0 + py(z, y)) ** 1.5) / 1.5,
    "aul": lambda z, y: ((6.0 - py(z, y)) ** 1.5 - (6.0 - 1) ** 1.5) / 1.5,
    "nce_rce": lambda z, y: REFERENCES["nce"](z, y) + REFERENCES["rce"](z, y),
    "nce_mae": lambda z, y: REFERENCES["nce"](z, y) + REFERENCES["mae"](z, y),
    "nce_agce": lambda z, y: REFERENCES["nce"](z, y) + REFERENCES["agce"](z, y),
    "nce_aul": lambda z, y: REFERENCES["nce"](z, y) + REFERENCES["aul"](z, y),
    "cs": lambda z, y: np.max(1.0 * (1 - onehot(y)) + z - z[np.arange(len(y)), y][:, None], axis=1),
    "ww": lambda z, y: np.sum(
        (1 - onehot(y)) * np.maximum(0, 1.0 + z - z[np.arange(len(y)), y][:, None]), axis=1
    ),
    "rll": lambda z, y: (
        np.log(1.1)
        - np.log(0.1 + py(z, y))
        - np.sum((1 - onehot(y)) * (np.log(1.1) - np.log(0.1 + softmax(z))), axis=1) / (K - 1)
    ),
    "ldr": lambda z, y: ldr_ref(sp(z) / sp(z).mean(1, keepdims=True), y, 0.1, 0.1),
    "squentropy": lambda z, y: -np.log(py(z, y)) + np.sum((1 - onehot(y)) * z**2, axis=1) / (K - 1),
    "spherical_z": lambda z, y: (
        sp(
            1.0
            * (
                1.0
                - ((z - z.mean(1, keepdims=True)) / z.std(1, keepdims=True))[np.arange(len(y)), y]
            )
        )
        / 1.0
    ),
    "comp_sum": lambda z, y: (py(z, y) ** (0.5 - 1) - 1) / (1 - 0.5),
    "sum_exp": lambda z, y: np.sum(
        (1 - onehot(y)) * np.exp(z - z[np.arange(len(y)), y][:, None]), axis=1
    ),
    "stablemax_ce": lambda z, y: (
        -np.log(
            np.where(z >= 0, z + 1, 1 / (1 - z))[np.arange(len(y)), y]
            / np.where(z >= 0, z + 1, 1 / (1 - z)).sum(1)
        )
    ),
}


def js_ref(z, y, pi=0.5):
    p, e = softmax(z), onehot(y)
    m = pi * e + (1 - pi) * p
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_e = np.sum(np.where(e > 0, e * np.log(e / m), 0.0), axis=1)
        kl_p = np.sum(np.where(p > 0, p * np.log(p / m), 0.0), axis=1)
    return (pi * kl_e + (1 - pi) * kl_p) / (-(1 - pi) * np.log(1 - pi))


REFERENCES["js"] = js_ref


def anyloss_ref(z, y, L=73.0):
    a = 1 / (1 + np.exp(-L * (softmax(z) - 0.5)))
    e = onehot(y)
    tp, fp, fn = (e * a).sum(0), ((1 - e) * a).sum(0), (e * (1 - a)).sum(0)
    f1 = np.mean(2 * tp / (2 * tp + fp + fn))
    return np.full(len(y), 1 - f1)  # batch-level: its "mean" is the value


REFERENCES["anyloss"] = anyloss_ref


def torch_value(token, z=Z, y=Y, *overrides):
    loss_fn = make_loss(token, *overrides, num_samples=len(y), num_classes=z.shape[1])
    return float(loss_fn(torch.tensor(z), torch.tensor(y), index=torch.arange(len(y))))


def test_every_token_has_a_reference():
    # A new loss token is done when its value matches a transcription of its paper's
    # formula: add one to REFERENCES above (README, "Adding a loss").
    missing = sorted(set(TOKENS) - set(REFERENCES) - {"aldr"})
    assert set(REFERENCES) | {"aldr"} == set(TOKENS), f"no NumPy reference for {missing}"


@pytest.mark.parametrize("token", sorted(REFERENCES))
def test_value_matches_formula(token):
    want = float(np.mean(REFERENCES[token](Z, Y)))
    assert torch_value(token) == pytest.approx(want, abs=1e-6, rel=1e-9)


def aldr_ref_step(z, y, lam, lam0=10.0, alpha=2.0, margin=0.1):
    """One ALDR-KL call: returns (per-sample loss, updated lambda)."""
    k = z.shape[1]
    f = z / (np.abs(z).sum(1, keepdims=True) / k)
    q = softmax(f / lam[:, None])
    kl = np.sum(q * np.log(k * q), axis=1)
    new = lam0 * (1 - kl / (alpha * np.log(k)))
    d = margin * (1 - onehot(y, k)) + f - f[np.arange(len(y)), y][:, None]
    loss = new * np.log(np.mean(np.exp(d / new[:, None]), axis=1))
    loss -= alpha * np.log(k) / (2 * lam0) * (new - lam0) ** 2
    return loss, new


def test_aldr_two_consecutive_calls_update_lambda():
    loss_fn = make_loss("aldr", num_samples=20, num_classes=K)
    index = torch.tensor([3, 7, 11, 0, 19, 5, 8])
    lam = np.full(B, 10.0)
    z2 = Z * 0.5 + 1.0
    for z in (Z, z2):  # the second call starts from the first call's lambda_i
        want, lam = aldr_ref_step(z, Y, lam)
        got = float(loss_fn(torch.tensor(z), torch.tensor(Y), index=index))
        assert got == pytest.approx(float(want.mean()), abs=1e-6)
        np.testing.assert_allclose(loss_fn.lam[index].numpy(), lam, atol=1e-9)
    untouched = torch.ones(20, dtype=torch.bool)
    untouched[index] = False
    assert torch.all(loss_fn.lam[untouched] == 10.0)
    assert loss_fn.lam.min() >= 10.0 * (1 - 1 / 2.0)


def test_aldr_needs_a_valid_index():
    loss_fn = make_loss("aldr", num_samples=5, num_classes=K)
    z, y = torch.tensor(Z), torch.tensor(Y)
    with pytest.raises(ValueError, match="needs index"):
        loss_fn(z, y)
    with pytest.raises(IndexError, match=r"out of range \[0, 5\)"):
        loss_fn(z, y, index=torch.arange(B))


def test_aldr_state_round_trips_through_state_dict():
    a = make_loss("aldr", num_samples=10, num_classes=K)
    a(torch.tensor(Z), torch.tensor(Y), index=torch.arange(B))
    b = make_loss("aldr", num_samples=10, num_classes=K)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.lam, b.lam) and not torch.all(b.lam == 10.0)


def test_aldr_epoch_stats_split_clean_and_noisy():
    loss_fn = make_loss("aldr", num_samples=4, num_classes=K)
    loss_fn.lam.copy_(torch.tensor([6.0, 8.0, 9.0, 10.0], dtype=torch.float64))
    stats = loss_fn.epoch_stats(torch.tensor([True, True, False, False]))
    assert stats == {"lam_mean": 8.25, "lam_mean_noisy": 7.0, "lam_mean_clean": 9.5}
    assert loss_fn.epoch_stats(None) == {"lam_mean": 8.25}


# ---- limits ------------------------------------------------------------------

CE = float(np.mean(-np.log(py(Z, Y))))


@pytest.mark.parametrize(
    ("token", "overrides"),
    [("focal", ["gamma=0"]), ("poly1", ["eps=0"]), ("ls", ["eps=0"]), ("comp_sum", ["tau=1"])],
)
def test_limits_equal_cross_entropy(token, overrides):
    assert torch_value(token, Z, Y, *overrides) == pytest.approx(CE, abs=1e-9)


def test_comp_sum_endpoints():
    assert torch_value("comp_sum", Z, Y, "tau=2") == pytest.approx(torch_value("mae") / 2, abs=1e-9)
    assert torch_value("comp_sum", Z, Y, "tau=0") == pytest.approx(torch_value("sum_exp"), rel=1e-9)
    # continuous through tau = 1
    assert torch_value("comp_sum", Z, Y, "tau=0.999999") == pytest.approx(CE, rel=1e-4)


def test_gce_tends_to_cross_entropy_as_q_goes_to_zero():
    gaps = [abs(torch_value("gce", Z, Y, f"q={q}") - CE) for q in (1e-1, 1e-3, 1e-6)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3


def test_sce_without_reverse_term_is_scaled_ce():
    assert torch_value("sce", Z, Y, "beta=0") == pytest.approx(0.1 * CE, abs=1e-9)


def test_ldr_special_case_is_ce_minus_log_k():
    value = torch_value("ldr", Z, Y, "normalize=none", "margin=0", "lam=1")
    assert value == pytest.approx(CE - math.log(K), abs=1e-9)


def test_ldr_tends_to_crammer_singer_as_lambda_goes_to_zero():
    cs = torch_value("cs", Z, Y, "margin=0.1")
    for lam in (1e-2, 1e-4):
        ldr = torch_value("ldr", Z, Y, "normalize=none", "margin=0.1", f"lam={lam}")
        # lam log(mean exp(d/lam)) lies in [max d - lam log K, max d]
        assert cs - lam * math.log(K) - 1e-9 <= ldr <= cs + 1e-9


def test_truncation_removes_the_gradient_of_unlikely_labels():
    logits = torch.tensor(
        [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]], dtype=torch.float64, requires_grad=True
    )
    make_loss("tgce", num_classes=3)(logits, torch.tensor([0, 0])).backward()
    assert logits.grad[0].abs().sum() > 0 and torch.all(logits.grad[1] == 0)


# ---- symmetry: sum over y of L(z, y) does not depend on z ---------------------

SYMMETRIC = {"mae": 2.0 * (K - 1), "rce": 4.0 * (K - 1), "nce": 1.0, "rll": 0.0}


@pytest.mark.parametrize("token", sorted(SYMMETRIC))
def test_symmetric_losses_sum_to_a_constant(token):
    loss_fn = make_loss(token, num_classes=K)
    for seed in range(3):
        z = torch.tensor(np.random.default_rng(seed).standard_normal((1, K)) * (1 + 3 * seed))
        total = sum(float(loss_fn(z, torch.tensor([y]))) for y in range(K))
        assert total == pytest.approx(SYMMETRIC[token], abs=1e-9)


def test_cross_entropy_is_not_symmetric():
    # the check above can fail: cross-entropy's sum over labels depends on z
    loss_fn = make_loss("ce", num_classes=K)
    sums = {
        round(sum(float(loss_fn(torch.tensor(z), torch.tensor([y]))) for y in range(K)), 6)
        for z in (np.zeros((1, K)), np.arange(K, dtype=float)[None])
    }
    assert len(sums) == 2


# ---- parameter validation ----------------------------------------------------

BAD = [
    ("gce", "q=0"),
    ("gce", "q=1.5"),
    ("tgce", "k=1"),
    ("ls", "eps=2"),
    ("focal", "gamma=-1"),
    ("poly1", "eps=-2"),
    ("sce", "A=0"),
    ("agce", "a=0"),
    ("aul", "a=1"),
    ("js", "pi=1"),
    ("cs", "margin=-1"),
    ("rll", "alpha=0"),
    ("ldr", "lam=0"),
    ("ldr", "normalize=l2"),
    ("aldr", "alpha=1"),
    ("spherical_z", "a=0"),
    ("comp_sum", "tau=-1"),
    ("anyloss", "metric=auc"),
    ("anyloss", "L=0"),
    ("nce_rce", "alpha=-1"),
]


@pytest.mark.parametrize(("token", "override"), BAD, ids=[f"{t}:{o}" for t, o in BAD])
def test_bad_parameters_are_named(token, override):
    from losslab.runner.settings import ConfigError

    key, value = override.split("=")
    with pytest.raises((ValueError, ConfigError), match=rf"{key}.*{value}|{value}.*{key}"):
        make_loss(token, override)
