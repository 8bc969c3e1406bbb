"""Area under the risk-coverage curve: closed forms, a direct loop and the tie rule."""

import itertools
import math

import numpy as np
import pytest
import torch

from losslab.metrics import area_under_risk_coverage, classification_metrics
from tests.metrics import reference


def aurc(conf, correct) -> float:
    return float(area_under_risk_coverage(torch.as_tensor(conf), torch.as_tensor(correct)))


@pytest.mark.parametrize(("n", "errors"), [(1, 0), (1, 1), (10, 3), (100, 1), (257, 200)])
def test_perfect_ranking_closed_form(n, errors):
    # every correct sample more confident than every error
    conf = np.linspace(1.0, 0.1, n)
    correct = np.arange(n) < n - errors
    want = sum(j / (n - errors + j) for j in range(1, errors + 1)) / n
    assert aurc(conf, correct) == pytest.approx(want, abs=1e-12)


def test_perfect_ranking_approaches_the_continuous_limit():
    # Geifman et al.: AURC* = r + (1 - r) ln(1 - r) for risk r as N grows
    n, r = 20000, 0.25
    conf = np.linspace(1.0, 0.0, n)
    got = aurc(conf, np.arange(n) < n * (1 - r))
    assert got == pytest.approx(r + (1 - r) * math.log(1 - r), abs=1e-3)


def test_worst_ranking_and_constants():
    n, errors = 10, 4
    conf = np.linspace(1.0, 0.1, n)
    worst = aurc(conf, np.arange(n) >= errors)  # every error ranked first
    want = (sum(1.0 for _ in range(errors)) + sum(errors / i for i in range(errors + 1, n + 1))) / n
    assert worst == pytest.approx(want, abs=1e-12)
    assert aurc(conf, np.ones(n, bool)) == 0.0 and aurc(conf, np.zeros(n, bool)) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 17, 400])
def test_matches_direct_numpy_loop(seed, n):
    rng = np.random.default_rng(seed)
    conf, correct = rng.random(n), rng.random(n) < 0.7
    assert aurc(conf, correct) == pytest.approx(reference.aurc(conf, correct), abs=1e-12)


def test_ties_are_the_mean_over_orderings_of_each_tied_block():
    conf = np.array([0.9, 0.5, 0.9, 0.5, 0.5, 0.2, 0.9])
    correct = np.array([True, False, False, True, False, True, True])
    # brute force: every ordering of the samples consistent with descending confidence
    blocks = [np.flatnonzero(conf == c) for c in sorted(set(conf), reverse=True)]
    risks = []
    for perms in itertools.product(*(itertools.permutations(b) for b in blocks)):
        order = np.concatenate(perms)
        errors = np.cumsum(~correct[order])
        risks.append(np.mean(errors / np.arange(1, len(conf) + 1)))
    assert aurc(conf, correct) == pytest.approx(np.mean(risks), abs=1e-12)


def test_ties_do_not_depend_on_input_order():
    rng = np.random.default_rng(0)
    conf = rng.integers(0, 5, 300) / 4  # five distinct values, many ties
    correct = rng.random(300) < 0.6
    base = aurc(conf, correct)
    for _ in range(3):
        perm = rng.permutation(300)
        assert aurc(conf[perm], correct[perm]) == pytest.approx(base, abs=1e-12)


def test_metric_uses_max_probability_confidence():
    rng = np.random.default_rng(4)
    logits, target = rng.standard_normal((200, 6)) * 2, rng.integers(0, 6, 200)
    p = reference.softmax(logits)
    m = classification_metrics(torch.tensor(logits), torch.tensor(target))
    assert m["aurc"] == pytest.approx(reference.aurc(p.max(1), p.argmax(1) == target), abs=1e-12)
