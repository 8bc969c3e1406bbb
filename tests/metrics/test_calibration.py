"""Binning: equal-width and equal-mass bins, class-wise ECE and the reliability bins."""

import numpy as np
import pytest
import torch

from losslab.metrics import (
    adaptive_calibration_error,
    classification_metrics,
    classwise_calibration_error,
    equal_mass_bins,
    equal_width_bins,
    reliability_bins,
)
from tests.metrics import reference


@pytest.mark.parametrize("n_bins", [1, 3, 15])
@pytest.mark.parametrize("n", [1, 2, 14, 15, 16, 31, 100])
def test_equal_mass_bins_are_tensor_split(n, n_bins):
    groups = equal_mass_bins(n, n_bins)
    expected = torch.empty(n, dtype=torch.int64)
    for g, part in enumerate(torch.tensor_split(torch.arange(n), n_bins)):
        expected[part] = g
    assert groups.tolist() == expected.tolist()
    sizes = torch.bincount(groups, minlength=n_bins)
    assert int(sizes.max() - sizes.min()) <= 1 and int(sizes.sum()) == n


@pytest.mark.parametrize("n", [7, 15, 16, 299])
@pytest.mark.parametrize("k", [2, 6])
def test_adaptive_ece_matches_numpy_reference(n, k):
    rng = np.random.default_rng(n + k)
    p = reference.softmax(rng.standard_normal((n, k)) * 2)
    target = rng.integers(0, k, n)
    correct = p.argmax(1) == target
    for n_bins in (1, 4, 15):
        got = adaptive_calibration_error(torch.tensor(p), torch.tensor(target), n_bins)
        want = reference.adaptive_ece(p.max(1), correct, n_bins)
        assert float(got) == pytest.approx(want, abs=1e-12)


def test_adaptive_bins_hold_equal_numbers_of_samples():
    # 6 samples, 3 groups of 2 by confidence: (.55,.6) (.7,.8) (.9,.95)
    conf = torch.tensor([0.9, 0.55, 0.8, 0.6, 0.95, 0.7], dtype=torch.float64)
    probs = torch.stack([conf, 1 - conf], dim=1)
    target = torch.tensor([0, 1, 0, 0, 0, 1])  # correct: T F T T T F
    want = (2 / 6) * (abs(0.5 - 0.575) + abs(0.5 - 0.75) + abs(1.0 - 0.925))
    assert float(adaptive_calibration_error(probs, target, 3)) == pytest.approx(want)


@pytest.mark.parametrize(("n", "k"), [(200, 2), (150, 7), (60, 30)])
def test_classwise_ece_matches_numpy_reference(n, k):
    rng = np.random.default_rng(k)
    p = reference.softmax(rng.standard_normal((n, k)) * 3)
    target = rng.integers(0, k, n)
    for n_bins in (1, 10, 15):
        got = classwise_calibration_error(torch.tensor(p), torch.tensor(target), n_bins)
        assert float(got) == pytest.approx(reference.classwise_ece(p, target, n_bins), abs=1e-12)


def test_classwise_ece_of_calibrated_constant_predictions_is_zero():
    # p = (0.5, 0.25, 0.25) for all; classes appear in exactly those shares
    probs = torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64).repeat(8, 1)
    target = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2])
    assert float(classwise_calibration_error(probs, target, 15)) == pytest.approx(0.0, abs=1e-15)


def test_equal_width_bins_edges():
    values = torch.tensor([0.0, 1e-12, 0.2, 0.2000001, 1.0], dtype=torch.float64)
    assert equal_width_bins(values, 5).tolist() == [0, 0, 0, 1, 4]
    with pytest.raises(ValueError, match="n_bins=0"):
        equal_width_bins(values, 0)


@pytest.mark.parametrize("k", [2, 10])
def test_reliability_bins_match_reference_and_ece(k):
    rng = np.random.default_rng(k)
    logits, target = rng.standard_normal((500, k)) * 2, rng.integers(0, k, 500)
    bins = reliability_bins(torch.tensor(logits), torch.tensor(target), n_bins=15)
    assert set(bins) == {"n_bins", "count", "acc", "conf"} and bins["n_bins"] == 15
    assert all(len(bins[key]) == 15 for key in ("count", "acc", "conf"))
    assert all(type(v) is float for key in ("count", "acc", "conf") for v in bins[key])
    p = reference.softmax(logits)
    conf, correct = p.max(1), p.argmax(1) == target
    for b in range(15):
        mask = reference.in_bin(conf, b, 15)
        assert bins["count"][b] == mask.sum()
        if mask.any():
            assert bins["acc"][b] == pytest.approx(correct[mask].mean(), abs=1e-12)
            assert bins["conf"][b] == pytest.approx(conf[mask].mean(), abs=1e-12)
        else:
            assert bins["acc"][b] == 0.0 and bins["conf"][b] == 0.0
    ece = sum(
        n / 500 * abs(a - c)
        for n, a, c in zip(bins["count"], bins["acc"], bins["conf"], strict=True)
    )
    m = classification_metrics(torch.tensor(logits), torch.tensor(target))
    assert ece == pytest.approx(m["ece"], abs=1e-12)
