"""Statistics of ``losslab compare`` against scipy and against the formulas computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from losslab.report.stats import (
    CORRECTIONS,
    Interval,
    _bh_step_up,
    _iman_davenport,
    _rng_keyword,
    adjust_pvalues,
    average_ranks,
    bootstrap_interval,
    friedman,
    holm_vs_control,
    mean_interval,
    nemenyi_cd,
    nemenyi_pvalues,
    paired_or_welch,
    t_interval,
)

SAMPLE = [0.912, 0.905, 0.921, 0.899, 0.915]


def rank_chi2(avg_ranks: np.ndarray, n: int) -> float:
    """Friedman's chi2 from average ranks, Demšar (2006) eq. in section 3.2.2 (no tie correction)."""
    k = len(avg_ranks)
    return 12 * n / (k * (k + 1)) * (np.sum(np.square(avg_ranks)) - k * (k + 1) ** 2 / 4)


# ---------------------------------------------------------------- intervals


@pytest.mark.parametrize("level", [0.5, 0.9, 0.95, 0.99])
def test_t_interval_matches_scipy(level: float) -> None:
    x = np.array(SAMPLE)
    low, high = stats.t.interval(level, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    ci = t_interval(SAMPLE, level)
    assert ci == Interval(pytest.approx(low), pytest.approx(high), level, "t")


def test_t_interval_small_and_constant_samples() -> None:
    assert t_interval([0.9]) == Interval(None, None, 0.95, "t")
    assert t_interval([0.9, 0.9, 0.9]) == Interval(0.9, 0.9, 0.95, "t")


def test_bootstrap_interval_is_deterministic_and_covers_the_mean() -> None:
    a = bootstrap_interval(SAMPLE, resamples=2000, seed=3)
    assert a == bootstrap_interval(SAMPLE, resamples=2000, seed=3)
    assert a != bootstrap_interval(SAMPLE, resamples=2000, seed=4)
    assert a.method == "bootstrap" and a.level == 0.95
    assert a.low < np.mean(SAMPLE) < a.high
    # Inside the range of the data, and narrower at a lower level.
    assert min(SAMPLE) <= a.low and a.high <= max(SAMPLE)
    b = bootstrap_interval(SAMPLE, 0.5, resamples=2000, seed=3)
    assert a.low < b.low < b.high < a.high


def test_bootstrap_interval_is_bca_from_scipy() -> None:
    seed = {_rng_keyword(stats.bootstrap): np.random.default_rng(7)}
    x = (np.array(SAMPLE),)
    ci = stats.bootstrap(x, np.mean, n_resamples=2000, method="BCa", **seed).confidence_interval
    got = bootstrap_interval(SAMPLE, resamples=2000, seed=7)
    assert (got.low, got.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_bootstrap_interval_falls_back_to_percentile(monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap = stats.bootstrap

    def bca_fails(*args, method: str = "BCa", **kwargs):
        result = bootstrap(*args, method=method, **kwargs)
        if method == "BCa":
            result.confidence_interval = type(result.confidence_interval)(math.nan, math.nan)
        return result

    seed = {_rng_keyword(bootstrap): np.random.default_rng(5)}
    x = (np.array(SAMPLE),)
    ci = bootstrap(x, np.mean, n_resamples=1000, method="percentile", **seed).confidence_interval
    monkeypatch.setattr(stats, "bootstrap", bca_fails)
    got = bootstrap_interval(SAMPLE, resamples=1000, seed=5)
    assert (got.low, got.high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_bootstrap_interval_edge_cases() -> None:
    assert bootstrap_interval([0.9]) == Interval(None, None, 0.95, "bootstrap")
    assert bootstrap_interval([0.8, 0.8, 0.8]) == Interval(0.8, 0.8, 0.95, "bootstrap")
    # Two values: BCa is degenerate (equal jackknife spread both ways) or not; finite anyway.
    ci = bootstrap_interval([0.8, 0.9], resamples=500)
    assert 0.8 <= ci.low <= ci.high <= 0.9


def test_mean_interval_dispatches() -> None:
    assert mean_interval(SAMPLE) == t_interval(SAMPLE)
    assert mean_interval(SAMPLE, 0.9, "bootstrap", resamples=500, seed=1) == bootstrap_interval(
        SAMPLE, 0.9, resamples=500, seed=1
    )
    with pytest.raises(ValueError, match=r"unknown interval method 'normal'; valid: t, bootstrap"):
        mean_interval(SAMPLE, method="normal")


@pytest.mark.parametrize("function", [t_interval, bootstrap_interval])
def test_intervals_reject_bad_inputs(function) -> None:
    with pytest.raises(ValueError, match="values is empty"):
        function([])
    with pytest.raises(ValueError, match=r"finite, got nan at index 1"):
        function([0.9, math.nan])
    for level in (0.0, 1.0, 95):
        with pytest.raises(
            ValueError, match=rf"level must lie strictly between 0 and 1, got {level}"
        ):
            function(SAMPLE, level)


# ---------------------------------------------------------------- corrections


P = [0.01, 0.04, 0.03, 0.005]


def test_holm_hand_worked() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06.
    assert adjust_pvalues(P, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_pvalues(P) == adjust_pvalues(P, "holm")


def test_holm_is_capped_at_one_and_monotone() -> None:
    assert adjust_pvalues([0.3, 0.6, 0.2], "holm") == pytest.approx([0.6, 0.6, 0.6])
    assert adjust_pvalues([0.5, 0.9], "holm") == pytest.approx([1.0, 1.0])
    p = np.random.default_rng(0).uniform(size=30)
    adj = np.array(adjust_pvalues(list(p), "holm"))
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= p) and np.all(adj <= 1)


def test_bonferroni_hand_worked() -> None:
    assert adjust_pvalues(P, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjust_pvalues([0.3, 0.01], "bonferroni") == pytest.approx([0.6, 0.02])
    assert adjust_pvalues([0.6, 0.01], "bonferroni") == pytest.approx([1.0, 0.02])


def test_bh_hand_worked_and_against_scipy() -> None:
    # Sorted: 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04.
    assert adjust_pvalues(P, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(1)
    for p in (rng.uniform(size=25), rng.uniform(0, 0.05, size=10), np.array([0.2, 0.2, 0.01])):
        expected = stats.false_discovery_control(p, method="bh")
        assert adjust_pvalues(list(p), "bh") == pytest.approx(list(expected))
        # The step-up fallback for scipy < 1.11 agrees too.
        assert _bh_step_up(p) == pytest.approx(expected)


def test_none_entries_stay_and_do_not_count() -> None:
    with_none = [None, 0.01, 0.04, None, 0.03, 0.005]
    for method in CORRECTIONS:
        got = adjust_pvalues(with_none, method)
        assert got[0] is None and got[3] is None
        assert got[1:3] + got[4:] == pytest.approx(adjust_pvalues(P, method))
    assert adjust_pvalues([None, None], "holm") == [None, None]
    assert adjust_pvalues([], "bh") == []


def test_none_correction_is_identity() -> None:
    assert adjust_pvalues([0.2, None, 0.01], "none") == [0.2, None, 0.01]


def test_adjust_pvalues_rejects_bad_inputs() -> None:
    assert CORRECTIONS == ("holm", "bonferroni", "bh", "none")
    with pytest.raises(ValueError, match=r"'fdr'; valid: holm, bonferroni, bh, none"):
        adjust_pvalues(P, "fdr")
    with pytest.raises(ValueError, match=r"in \[0, 1\], got 1.5 at index 2"):
        adjust_pvalues([0.1, None, 1.5])
    with pytest.raises(ValueError, match=r"got nan at index 0"):
        adjust_pvalues([math.nan])


# ---------------------------------------------------------------- two groups


def test_paired_when_the_seeds_match() -> None:
    a = {0: 0.90, 1: 0.92, 2: 0.91}
    b = {2: 0.88, 0: 0.89, 1: 0.90}
    p, test = paired_or_welch(a, b)
    assert test == "paired t"
    assert p == pytest.approx(stats.ttest_rel([0.90, 0.92, 0.91], [0.89, 0.90, 0.88]).pvalue)
    # The same as (seed, value) pairs in any order.
    assert paired_or_welch(list(a.items()), sorted(b.items())) == (p, "paired t")


def test_welch_otherwise() -> None:
    a = {0: 0.90, 1: 0.92, 2: 0.91}
    expected = stats.ttest_ind([0.90, 0.92, 0.91], [0.89, 0.90], equal_var=False).pvalue
    assert paired_or_welch(a, {0: 0.89, 1: 0.90}) == (pytest.approx(expected), "Welch t")
    # A seed twice on one side is not a pairing, even with the same key set.
    twice = [(0, 0.90), (0, 0.92), (1, 0.91)]
    expected = stats.ttest_ind([0.90, 0.92, 0.91], [0.88, 0.89], equal_var=False).pvalue
    assert paired_or_welch(twice, {0: 0.88, 1: 0.89}) == (pytest.approx(expected), "Welch t")


def test_too_few_values_or_undefined() -> None:
    assert paired_or_welch({0: 0.9}, {0: 0.8}) == (None, None)
    assert paired_or_welch({0: 0.9, 1: 0.8}, {2: 0.8}) == (None, None)
    assert paired_or_welch({}, {}) == (None, None)
    # Constant differences / constant samples: the test is undefined.
    assert paired_or_welch({0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.8}) == (None, "paired t")
    assert paired_or_welch({0: 0.9, 1: 0.9}, {2: 0.9, 3: 0.9}) == (None, "Welch t")


# ---------------------------------------------------------------- ranks and Friedman

# Error rates of 4 treatments on 6 blocks (lower is better), with ties.
ERRORS = np.array(
    [
        [0.10, 0.12, 0.11, 0.15],
        [0.20, 0.20, 0.25, 0.22],
        [0.05, 0.07, 0.06, 0.06],
        [0.30, 0.28, 0.31, 0.35],
        [0.12, 0.14, 0.13, 0.13],
        [0.08, 0.09, 0.10, 0.11],
    ]
)

# Ranks (1 = best) of 4 treatments on 14 blocks, chosen so that the average
# ranks are those of Demšar's (2006) section 3.2.2 example: 44/14 = 3.143,
# 28/14 = 2.000, 40.5/14 = 2.893, 27.5/14 = 1.964. One block has a tie.
DEMSAR_RANKS = np.array(
    [
        [4, 1, 2.5, 2.5],
        [4, 2, 1, 3],
        [3, 4, 1, 2],
        [2, 3, 4, 1],
        [4, 3, 2, 1],
        [2, 1, 3, 4],
        [2, 3, 4, 1],
        [3, 1, 4, 2],
        [3, 2, 4, 1],
        [4, 2, 1, 3],
        [3, 2, 4, 1],
        [3, 2, 4, 1],
        [3, 1, 4, 2],
        [4, 1, 2, 3],
    ]
)


def test_average_ranks_against_rankdata() -> None:
    expected = np.mean([stats.rankdata(row) for row in ERRORS], axis=0)
    assert average_ranks(ERRORS, higher_is_better=False) == pytest.approx(expected)
    assert average_ranks(1 - ERRORS, higher_is_better=True) == pytest.approx(expected)
    reverse = average_ranks(ERRORS, higher_is_better=True)
    assert reverse == pytest.approx(5 - expected)
    assert expected.sum() == pytest.approx(4 * 5 / 2)
    # Ties share the average rank.
    assert average_ranks(np.array([[0.9, 0.9, 0.8]]), True) == pytest.approx([1.5, 1.5, 3.0])


def test_friedman_against_scipy_and_the_formulas() -> None:
    result = friedman(ERRORS, higher_is_better=False)
    expected = stats.friedmanchisquare(*ERRORS.T)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.pvalue == pytest.approx(expected.pvalue)
    n, k = ERRORS.shape
    assert (result.n_blocks, result.k) == (n, k)
    assert result.average_ranks == pytest.approx(tuple(average_ranks(ERRORS, False)))
    # Tie-corrected rank formula, computed directly.
    ranks = np.array([stats.rankdata(row) for row in ERRORS])
    ties = sum(np.sum(c**3 - c) for c in (np.unique(row, return_counts=True)[1] for row in ERRORS))
    chi2 = rank_chi2(ranks.mean(axis=0), n) / (1 - ties / (n * k * (k * k - 1)))
    assert result.statistic == pytest.approx(chi2)
    f = (n - 1) * chi2 / (n * (k - 1) - chi2)
    assert result.iman_davenport_f == pytest.approx(f)
    assert result.iman_davenport_p == pytest.approx(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))
    # The direction changes the ranks, not the statistic.
    assert friedman(-ERRORS, higher_is_better=True) == result


def test_demsar_worked_example() -> None:
    r = np.array([3.143, 2.000, 2.893, 1.964])
    chi2 = rank_chi2(r, 14)
    assert chi2 == pytest.approx(9.28, abs=0.005)
    f, p = _iman_davenport(chi2, 14, 4)
    assert f == pytest.approx(3.69, abs=0.005)
    # F(3, 39): the critical value at alpha = 0.05 is 2.85 (Demšar), so p < 0.05.
    assert stats.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=0.005)
    assert p == pytest.approx(stats.f.sf(f, 3, 39)) and p < 0.05

    # Scores with exactly those ranks: scipy's chi2 is the rank formula with the tie correction.
    accuracy = 1 - DEMSAR_RANKS / 10
    result = friedman(accuracy, higher_is_better=True)
    exact = np.array([44, 28, 40.5, 27.5]) / 14
    assert result.average_ranks == pytest.approx(tuple(exact))
    assert result.average_ranks == pytest.approx(tuple(r), abs=5e-4)
    tie_correction = 1 - (2**3 - 2) / (14 * 4 * (4**2 - 1))
    assert result.statistic == pytest.approx(rank_chi2(exact, 14) / tie_correction)
    assert result.statistic == pytest.approx(stats.friedmanchisquare(*accuracy.T).statistic)


def test_friedman_degenerate_cases() -> None:
    ties = np.full((3, 4), 0.5)
    result = friedman(ties, higher_is_better=True)
    assert (result.statistic, result.pvalue) == (0.0, 1.0)
    assert (result.iman_davenport_f, result.iman_davenport_p) == (0.0, 1.0)
    assert result.average_ranks == (2.5, 2.5, 2.5, 2.5)
    # Every block ranks the same: chi2 = N(k-1), Iman-Davenport's F is undefined.
    same = np.tile([0.9, 0.8, 0.7], (5, 1))
    result = friedman(same, higher_is_better=True)
    assert result.statistic == pytest.approx(5 * 2)
    assert (result.iman_davenport_f, result.iman_davenport_p) == (None, None)


def test_rank_functions_reject_bad_scores() -> None:
    with pytest.raises(ValueError, match=r"needs at least 3 treatments .* got k=2"):
        friedman(np.ones((4, 2)), True)
    with pytest.raises(ValueError, match=r"at least 2 blocks .* got N=1"):
        friedman(np.ones((1, 3)), True)
    for function in (average_ranks, friedman):
        with pytest.raises(ValueError, match=r"got nan at block 1, treatment 2"):
            function(np.array([[0.1, 0.2, 0.3], [0.1, 0.2, np.nan]]), True)
        with pytest.raises(ValueError, match=r"scores is empty"):
            function(np.zeros((0, 3)), True)
        with pytest.raises(ValueError, match=r"2-D array .* got shape \(3,\)"):
            function(np.array([0.1, 0.2, 0.3]), True)


# ---------------------------------------------------------------- Nemenyi and Holm

# Demšar (2006), Table 5(a): q_0.05 of the Nemenyi test for k = 2..10. Those are
# quantiles from printed tables of the studentized range divided by sqrt(2),
# so they agree with the exact value to 1e-3 (not always in the last digit).
Q_005 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}


@pytest.mark.parametrize(("k", "q"), sorted(Q_005.items()))
def test_nemenyi_q_matches_demsar_table(k: int, q: float) -> None:
    n = 7
    q_from_cd = nemenyi_cd(k, n, 0.05) / math.sqrt(k * (k + 1) / (6 * n))
    assert q_from_cd == pytest.approx(q, abs=1e-3)


def test_nemenyi_cd_formula() -> None:
    # k = 2, infinite df: the studentized range of two normals / sqrt(2) is |N(0, 1)|.
    assert nemenyi_cd(2, 10, 0.05) == pytest.approx(stats.norm.ppf(0.975) * math.sqrt(6 / 60))
    # Demšar's example: k = 4, N = 14 -> CD = 2.569 * sqrt(20 / 84) = 1.25.
    assert nemenyi_cd(4, 14) == pytest.approx(1.254, abs=1e-3)
    assert nemenyi_cd(4, 14, 0.10) < nemenyi_cd(4, 14, 0.05)


def test_nemenyi_pvalues() -> None:
    r = [1.5, 2.0, 3.0, 3.5]
    n = 12
    p = nemenyi_pvalues(r, n)
    assert p.shape == (4, 4)
    assert np.all(np.diag(p) == 1.0) and np.allclose(p, p.T)
    se = math.sqrt(4 * 5 / (6 * n))
    expected = stats.studentized_range.sf(abs(1.5 - 3.5) / se * math.sqrt(2), 4, np.inf)
    assert p[0, 3] == pytest.approx(expected)
    # p <= alpha exactly where the ranks differ by at least the CD.
    cd = nemenyi_cd(4, n, 0.05)
    diff = np.abs(np.subtract.outer(r, r))
    off = ~np.eye(4, dtype=bool)
    assert np.array_equal((p <= 0.05)[off], (diff >= cd)[off])
    assert p[0, 3] < 0.05 < p[0, 1]
    # Two treatments: the two-sided normal test.
    two = nemenyi_pvalues([1.2, 1.8], 10)
    assert two[0, 1] == pytest.approx(2 * stats.norm.sf(0.6 / math.sqrt(6 / 60)))


def test_holm_vs_control() -> None:
    r = [2.9, 1.4, 2.1, 3.6]
    n = 20
    se = math.sqrt(4 * 5 / (6 * n))
    raw = [2 * stats.norm.sf(abs(ri - r[0]) / se) for ri in r[1:]]
    # Holm by hand: sort the three raw p-values, multiply by 3, 2, 1, running maximum.
    order = np.argsort(raw)
    stepped = np.maximum.accumulate([min(1, (3 - i) * raw[j]) for i, j in enumerate(order)])
    by_hand = np.empty(3)
    by_hand[order] = stepped
    got = holm_vs_control(r, n, control=0)
    assert got[0] is None
    assert got[1:] == pytest.approx(list(by_hand))
    assert holm_vs_control(r, n, control=3)[3] is None


def test_rank_tests_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"k must be an integer >= 2 .* got 1"):
        nemenyi_cd(1, 10)
    with pytest.raises(ValueError, match=r"n_blocks must be a positive integer, got 0"):
        nemenyi_cd(3, 0)
    with pytest.raises(ValueError, match=r"alpha must lie strictly between 0 and 1, got 1.5"):
        nemenyi_cd(3, 10, 1.5)
    with pytest.raises(ValueError, match=r"at least 2 treatments to compare, got k=1"):
        nemenyi_pvalues([1.0], 5)
    with pytest.raises(ValueError, match=r"lie in \[1, 3\], got 3.5 at index 2"):
        nemenyi_pvalues([1.0, 1.5, 3.5], 5)
    with pytest.raises(ValueError, match=r"finite, got nan at index 1"):
        holm_vs_control([1.0, math.nan, 2.0], 5, 0)
    with pytest.raises(ValueError, match=r"control must be an index in \[0, 2\], got 3"):
        holm_vs_control([1.0, 2.0, 3.0], 5, 3)
    with pytest.raises(ValueError, match=r"n_blocks must be a positive integer, got 2.5"):
        holm_vs_control([1.0, 2.0, 3.0], 2.5, 0)
