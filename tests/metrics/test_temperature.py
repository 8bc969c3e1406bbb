"""Temperature scaling: recovery of a known temperature, scipy's optimum and the scaled metrics."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from losslab.metrics import (
    classification_metrics,
    fit_temperature,
    temperature,
    temperature_scaled_metrics,
)
from tests.metrics import reference


def sampled_case(t_true: float, n: int = 20000, k: int = 10, seed: int = 0):
    """Labels drawn from softmax(z / t_true): t_true is the calibrating temperature of z."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=gen) * 3.0
    probs = torch.softmax(logits.double() / t_true, dim=1)
    target = torch.multinomial(probs, 1, generator=gen).squeeze(1)
    return logits, target


@pytest.mark.parametrize("t_true", [0.5, 2.0])
def test_recovers_a_known_temperature(t_true):
    logits, target = sampled_case(t_true)
    t = fit_temperature(logits, target)
    assert t == pytest.approx(t_true, rel=0.05)
    raw = classification_metrics(logits, target)
    scaled = temperature_scaled_metrics(logits, target, t)
    assert scaled["nll_ts"] <= raw["nll"]
    assert scaled["ece_ts"] <= raw["ece"]


def nll_numpy(log_t: float, logits: np.ndarray, target: np.ndarray) -> float:
    p = reference.softmax(logits / math.exp(log_t))
    return float(-np.mean(np.log(p[np.arange(len(target)), target])))


@pytest.mark.parametrize(("seed", "k"), [(0, 2), (1, 5), (2, 20)])
def test_matches_scipy_bounded_minimiser(seed, k):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((800, k)) * 4
    target = np.where(rng.random(800) < 0.6, logits.argmax(1), rng.integers(0, k, 800))
    t = fit_temperature(torch.tensor(logits), torch.tensor(target))
    best = minimize_scalar(
        nll_numpy,
        bounds=(math.log(1e-2), math.log(1e2)),
        args=(logits, target),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert math.log(t) == pytest.approx(best.x, abs=1e-4)
    assert nll_numpy(math.log(t), logits, target) <= best.fun + 1e-12


def test_binary_closed_form():
    # one margin m, a share q of the labels on the predicted class: sigmoid(m / T) = q
    m, q = 3.0, 0.8
    logits = torch.tensor([[m, 0.0]]).repeat(10, 1)
    target = torch.tensor([0] * 8 + [1] * 2)
    assert fit_temperature(logits, target) == pytest.approx(m / math.log(q / (1 - q)), rel=1e-6)


def test_degenerate_cases_stay_in_bounds():
    separable = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # NLL falls as T -> 0 until it is 0 in float64: anywhere on that plateau near the bound
    t = fit_temperature(separable, torch.tensor([0, 1]))
    assert 1e-2 <= t < 0.05
    assert temperature_scaled_metrics(separable, torch.tensor([0, 1]), t)["nll_ts"] < 1e-12
    # all wrong: NLL falls as T -> infinity
    assert fit_temperature(separable, torch.tensor([1, 0])) == pytest.approx(1e2, rel=1e-3)
    # constant logits: every T is as good, T = 1 is kept
    assert fit_temperature(torch.zeros(5, 3), torch.tensor([0, 1, 2, 0, 1])) == 1.0


def test_is_deterministic_and_dtype_independent():
    logits, target = sampled_case(1.5, n=2000)
    t = fit_temperature(logits, target)
    assert fit_temperature(logits, target) == t
    assert fit_temperature(logits.double(), target) == t


def test_scaled_metrics_match_reference():
    rng = np.random.default_rng(3)
    logits, target = rng.standard_normal((300, 4)) * 3, rng.integers(0, 4, 300)
    got = temperature_scaled_metrics(torch.tensor(logits), torch.tensor(target), 1.7, n_bins=10)
    want = reference.metrics(logits / 1.7, target, 10)
    assert got["ece_ts"] == pytest.approx(want["ece"], abs=1e-12)
    assert got["nll_ts"] == pytest.approx(want["nll"], abs=1e-12)
    one = temperature_scaled_metrics(torch.tensor(logits), torch.tensor(target), 1.0)
    raw = classification_metrics(torch.tensor(logits), torch.tensor(target))
    assert one == {"ece_ts": raw["ece"], "nll_ts": raw["nll"]}


def test_bad_arguments():
    z, y = torch.zeros(3, 2), torch.tensor([0, 1, 0])
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="temperature"):
            temperature_scaled_metrics(z, y, bad)
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(z, y, bounds=(2.0, 10.0))
    with pytest.raises(ValueError, match="max_iter"):
        fit_temperature(z, y, max_iter=-1)
    with pytest.raises(ValueError, match="outside"):
        fit_temperature(z, torch.tensor([0, 5, 0]))


@pytest.mark.parametrize("seed", range(6))
def test_host_and_device_brackets_agree(monkeypatch, seed):
    """The float bracket used for CPU tensors takes the same steps as the tensor one."""
    gen = torch.Generator().manual_seed(seed)
    n, k = 50 + 400 * seed, 2 + 7 * seed
    logits = torch.randn(n, k, generator=gen) * (0.5 + seed)
    target = torch.randint(0, k, (n,), generator=gen)
    host = fit_temperature(logits, target)
    monkeypatch.setattr(temperature, "_HOST_SEARCH_DEVICES", ())
    assert fit_temperature(logits, target) == pytest.approx(host, rel=1e-12)
    with pytest.raises(ValueError, match="outside"):
        fit_temperature(logits, torch.full((n,), k))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    logits, target = sampled_case(2.0, n=5000)
    t_cpu = fit_temperature(logits, target)
    t_gpu = fit_temperature(logits.cuda(), target.cuda())
    assert t_gpu == pytest.approx(t_cpu, rel=1e-9)
    cpu = temperature_scaled_metrics(logits, target, t_cpu)
    gpu = temperature_scaled_metrics(logits.cuda(), target.cuda(), t_cpu)
    assert gpu == pytest.approx(cpu, abs=1e-12)


def test_non_finite_logits_give_one():
    z = torch.tensor([[math.nan, 0.0], [1.0, 0.0]])
    assert fit_temperature(z, torch.tensor([0, 1])) == 1.0


# ---------------------------------------------------- search beyond the first bracket


def drawn_at(t_true: float, scale: float, n: int = 20000, k: int = 10, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=gen, dtype=torch.float64) * scale
    target = torch.multinomial(torch.softmax(logits / t_true, dim=1), 1, generator=gen).squeeze(1)
    return logits, target


@pytest.mark.parametrize(("t_true", "scale"), [(1300.0, 3 * 1300.0), (0.002, 3 * 0.002)])
def test_an_optimum_outside_the_first_bracket_is_found(t_true, scale):
    logits, target = drawn_at(t_true, scale)
    old = fit_temperature(logits, target)  # the first bracket [1e-2, 1e2] alone: its end
    assert old == pytest.approx(1e2 if t_true > 1 else 1e-2, rel=1e-3)
    fit = temperature.search_temperature(logits, target)
    assert not fit.at_bound
    best = minimize_scalar(
        nll_numpy,
        bounds=(math.log(t_true) - 3, math.log(t_true) + 3),
        args=(logits.numpy(), target.numpy()),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert math.log(fit.temperature) == pytest.approx(best.x, abs=1e-3)
    assert fit.temperature == pytest.approx(t_true, rel=0.05)
    scaled = temperature_scaled_metrics(logits, target, fit.temperature)
    at_bound = temperature_scaled_metrics(logits, target, old)
    assert scaled["nll_ts"] < at_bound["nll_ts"]


def test_separable_data_is_flagged():
    z = torch.tensor([[10.0, 0.0], [0.0, 10.0], [8.0, 1.0]])
    fit = temperature.search_temperature(z, torch.tensor([0, 1, 0]))
    assert fit.at_bound


def test_predictions_against_the_labels_reach_the_upper_limit_flagged():
    # every confident prediction is wrong: the NLL falls all the way to T -> inf
    z = torch.tensor([[5.0, 0.0], [0.0, 5.0]]).repeat(50, 1)
    y = torch.tensor([1, 0]).repeat(50)
    fit = temperature.search_temperature(z, y)
    assert fit.at_bound and fit.temperature > 1e7


def test_search_limits_are_checked():
    z, y = torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="limits"):
        temperature.search_temperature(z, y, limits=(1e-1, 1e8))
