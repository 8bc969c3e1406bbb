"""Statistics of ``losslab compare``: intervals, p-value corrections and rank tests.

Pure functions on Python floats and numpy arrays (no torch, no Hydra); the
distributions and tests come from :mod:`scipy.stats`, which is imported inside
the functions so that importing this module stays cheap.

Three kinds of question:

* How precise is a mean over seeds? :func:`t_interval`, :func:`bootstrap_interval`
  (both via :func:`mean_interval`).
* Is one group different from another on one data set? :func:`paired_or_welch`,
  with :func:`adjust_pvalues` when many groups are tested at once.
* Do ``k`` treatments (losses) differ over ``N`` blocks (data sets, or data set
  and noise-rate cells)? The rank tests of Demšar (2006): :func:`average_ranks`,
  :func:`friedman` (with the Iman-Davenport F), the Nemenyi critical difference
  :func:`nemenyi_cd` and pairwise :func:`nemenyi_pvalues`, and the Holm step-down
  comparisons with a control :func:`holm_vs_control`.

References:
    J. Demšar, "Statistical Comparisons of Classifiers over Multiple Data Sets",
    JMLR 7:1-30, 2006.

    S. Holm, "A Simple Sequentially Rejective Multiple Test Procedure",
    Scandinavian Journal of Statistics 6(2):65-70, 1979.

    Y. Benjamini and Y. Hochberg, "Controlling the False Discovery Rate: A
    Practical and Powerful Approach to Multiple Testing", JRSS B 57(1):289-300, 1995.

Example:
    >>> import numpy as np
    >>> scores = np.array([[0.90, 0.88, 0.85], [0.81, 0.83, 0.80], [0.70, 0.69, 0.60]])
    >>> average_ranks(scores, higher_is_better=True).tolist()
    [1.3333333333333333, 1.6666666666666667, 3.0]
    >>> round(nemenyi_cd(k=3, n_blocks=3), 3)
    1.914
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CORRECTIONS",
    "INTERVALS",
    "Friedman",
    "Interval",
    "adjust_pvalues",
    "average_ranks",
    "bootstrap_interval",
    "friedman",
    "holm_vs_control",
    "mean_interval",
    "nemenyi_cd",
    "nemenyi_pvalues",
    "paired_or_welch",
    "t_interval",
]


# ---------------------------------------------------------------- validation


def _check_level(level: float, name: str = "level") -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {level!r}")
    return level


def _sample(values: Sequence[float], name: str = "values") -> np.ndarray:
    """``values`` as a 1-D float array; ValueError when empty or not finite."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {float(x[bad[0]])!r} at index {bad[0]}")
    return x


def _score_matrix(scores: np.ndarray) -> np.ndarray:
    """``scores`` as a finite float array [N blocks, k treatments]."""
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2:
        raise ValueError(
            f"scores must be a 2-D array [N blocks, k treatments], got shape {x.shape}"
        )
    if x.size == 0:
        raise ValueError(f"scores is empty (shape {x.shape})")
    bad = np.argwhere(~np.isfinite(x))
    if bad.size:
        i, j = bad[0]
        raise ValueError(
            f"scores must be finite, got {float(x[i, j])!r} at block {i}, treatment {j}"
            f" ({len(bad)} of {x.size} entries are not finite)"
        )
    return x


def _rank_vector(avg_ranks: Sequence[float], n_blocks: int) -> tuple[np.ndarray, int, int]:
    """Validated average ranks [k], ``k`` and ``N``."""
    r = _sample(avg_ranks, "avg_ranks")
    k = r.size
    if k < 2:
        raise ValueError(f"need at least 2 treatments to compare, got k={k}")
    if isinstance(n_blocks, bool) or int(n_blocks) != n_blocks or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    tol = 1e-9 * k
    out = np.flatnonzero((r < 1 - tol) | (r > k + tol))
    if out.size:
        raise ValueError(
            f"average ranks of {k} treatments lie in [1, {k}], got {float(r[out[0]])!r} at index {out[0]}"
        )
    return r, k, int(n_blocks)


def _rank_se(k: int, n_blocks: int) -> float:
    """Standard error of a difference of average ranks: sqrt(k(k+1) / (6N))."""
    return math.sqrt(k * (k + 1) / (6.0 * n_blocks))


# ---------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A confidence interval of a mean.

    Attributes:
        low: lower bound; None when it cannot be computed (fewer than two values).
        high: upper bound; None likewise.
        level: confidence level, e.g. 0.95.
        method: ``"t"`` or ``"bootstrap"``.
    """

    low: float | None
    high: float | None
    level: float
    method: str


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Student-t confidence interval of the mean.

    .. math::
        \\bar x \\pm t_{(1+\\text{level})/2,\\; n-1} \\, \\frac{s}{\\sqrt n},
        \\qquad s^2 = \\frac{1}{n-1} \\sum_i (x_i - \\bar x)^2

    Args:
        values: the sample [n], e.g. one metric over seeds; finite.
        level: confidence level in (0, 1).

    Returns:
        The interval; both bounds None for n < 2, zero width (the mean) when s == 0.

    Raises:
        ValueError: empty or non-finite values, or a level outside (0, 1).

    Example:
        >>> round(t_interval([0.90, 0.92, 0.94]).high, 5)
        0.96968
    """
    level = _check_level(level)
    x = _sample(values)
    n = x.size
    if n < 2:
        return Interval(None, None, level, "t")
    mean = float(np.mean(x))
    s = float(np.std(x, ddof=1))
    if s == 0.0:
        return Interval(mean, mean, level, "t")
    from scipy import stats

    half = float(stats.t.ppf((1.0 + level) / 2.0, n - 1)) * s / math.sqrt(n)
    return Interval(mean - half, mean + half, level, "t")


def _rng_keyword(bootstrap: Callable[..., Any]) -> str:
    """``rng`` in scipy >= 1.15, ``random_state`` before."""
    return "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"


def bootstrap_interval(
    values: Sequence[float],
    level: float = 0.95,
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Bias-corrected and accelerated (BCa) bootstrap interval of the mean.

    ``scipy.stats.bootstrap`` draws ``resamples`` samples of size n with
    replacement and takes the BCa interval of their means (Efron 1987): the
    percentile interval with the percentiles moved by the bias correction
    :math:`z_0 = \\Phi^{-1}(\\#\\{\\bar x^*_b < \\bar x\\} / B)` and the jackknife
    acceleration :math:`a`. BCa is undefined when it cannot be computed (e.g.
    the jackknife means are all equal); then the plain percentile interval
    (the ``(1-level)/2`` and ``(1+level)/2`` quantiles of the resampled means)
    is returned. Constant data give the zero-width interval at the mean.

    Args:
        values: the sample [n]; finite.
        level: confidence level in (0, 1).
        resamples: number of bootstrap resamples B.
        seed: seed of the resampling; the same seed gives the same interval.

    Returns:
        The interval; both bounds None for n < 2.

    Raises:
        ValueError: empty or non-finite values, a level outside (0, 1) or
            fewer than one resample.
    """
    level = _check_level(level)
    x = _sample(values)
    if isinstance(resamples, bool) or int(resamples) != resamples or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    if x.size < 2:
        return Interval(None, None, level, "bootstrap")
    if np.all(x == x[0]):
        mean = float(x[0])
        return Interval(mean, mean, level, "bootstrap")
    from scipy import stats

    kwargs = {
        "n_resamples": int(resamples),
        "confidence_level": level,
        "vectorized": True,
        _rng_keyword(stats.bootstrap): np.random.default_rng(seed),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning: handled below
        ci = stats.bootstrap((x,), np.mean, method="BCa", **kwargs).confidence_interval
        if not (math.isfinite(ci.low) and math.isfinite(ci.high)):
            kwargs[_rng_keyword(stats.bootstrap)] = np.random.default_rng(seed)
            ci = stats.bootstrap((x,), np.mean, method="percentile", **kwargs).confidence_interval
    return Interval(float(ci.low), float(ci.high), level, "bootstrap")


#: Interval methods of :func:`mean_interval`.
INTERVALS: dict[str, Callable[..., Interval]] = {
    "t": t_interval,
    "bootstrap": bootstrap_interval,
}


def mean_interval(
    values: Sequence[float], level: float = 0.95, method: str = "t", **kw: Any
) -> Interval:
    """Confidence interval of the mean by name: ``"t"`` or ``"bootstrap"``.

    Args:
        values: the sample [n].
        level: confidence level in (0, 1).
        method: a key of :data:`INTERVALS`.
        **kw: passed on (``resamples``, ``seed`` for the bootstrap).

    Returns:
        :func:`t_interval` or :func:`bootstrap_interval` of ``values``.

    Raises:
        ValueError: an unknown method (the message lists the valid ones).
    """
    try:
        interval = INTERVALS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown interval method {method!r}; valid: {', '.join(INTERVALS)}"
        ) from None
    return interval(values, level, **kw)


# ---------------------------------------------------------------- p-value corrections


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down: p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j)), p_(1) <= ... <= p_(m)."""
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.maximum.accumulate(stepped)
    return out


def _bonferroni(p: np.ndarray) -> np.ndarray:
    """Bonferroni: p -> min(1, m p)."""
    return np.minimum(1.0, p.size * p)


def _bh_step_up(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up: p_(i) -> min_{j >= i} min(1, m p_(j) / j)."""
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    out = np.empty(m)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``, scipy >= 1.11)."""
    from scipy import stats

    fdc = getattr(stats, "false_discovery_control", None)
    if fdc is None:
        return _bh_step_up(p)
    return np.asarray(fdc(p, method="bh"), dtype=float)


_ADJUST: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "holm": _holm,
    "bonferroni": _bonferroni,
    "bh": _bh,
    "none": lambda p: p,
}

#: Names of the corrections of :func:`adjust_pvalues`.
CORRECTIONS: tuple[str, ...] = tuple(_ADJUST)


def adjust_pvalues(pvalues: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """p-values adjusted for ``m`` simultaneous tests.

    With the ``m`` non-None p-values sorted, :math:`p_{(1)} \\le \\dots \\le p_{(m)}`:

    * ``holm`` (family-wise error, Holm 1979):
      :math:`\\tilde p_{(i)} = \\max_{j \\le i} \\min(1, (m - j + 1)\\, p_{(j)})`;
    * ``bonferroni`` (family-wise error): :math:`\\tilde p_i = \\min(1, m\\, p_i)`;
    * ``bh`` (false discovery rate, Benjamini-Hochberg 1995):
      :math:`\\tilde p_{(i)} = \\min_{j \\ge i} \\min(1, m\\, p_{(j)} / j)`;
    * ``none``: unchanged.

    Rejecting where :math:`\\tilde p_i \\le \\alpha` is the corresponding
    procedure at level :math:`\\alpha`.

    Args:
        pvalues: p-values in [0, 1]; None entries (tests that could not be run)
            stay None and do not count in ``m``.
        method: one of :data:`CORRECTIONS`.

    Returns:
        The adjusted p-values, in the order given.

    Raises:
        ValueError: an unknown method, or a p-value that is not a number in [0, 1].

    Example:
        >>> adjust_pvalues([0.01, 0.04, None, 0.03, 0.005])
        [0.03, 0.06, None, 0.06, 0.02]
    """
    try:
        adjust = _ADJUST[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown p-value correction {method!r}; valid: {', '.join(CORRECTIONS)}"
        ) from None
    present = [i for i, p in enumerate(pvalues) if p is not None]
    p = np.array([pvalues[i] for i in present], dtype=float)
    bad = np.flatnonzero(~((p >= 0.0) & (p <= 1.0)))
    if bad.size:
        raise ValueError(
            f"p-values must lie in [0, 1], got {float(p[bad[0]])!r} at index {present[bad[0]]}"
        )
    out: list[float | None] = [None] * len(pvalues)
    if method == "none":
        for i in present:
            out[i] = pvalues[i]
        return out
    for i, q in zip(present, adjust(p) if p.size else [], strict=True):
        out[i] = float(q)
    return out


# ---------------------------------------------------------------- two groups


def _pairs(side: Mapping[Any, float] | Sequence[tuple[Any, float]]) -> list[tuple[Any, float]]:
    items = side.items() if isinstance(side, Mapping) else side
    return [(key, float(value)) for key, value in items]


def paired_or_welch(
    a: Mapping[Any, float] | Sequence[tuple[Any, float]],
    b: Mapping[Any, float] | Sequence[tuple[Any, float]],
) -> tuple[float | None, str | None]:
    """Two-sided p-value of a difference of means: paired over equal keys, Welch otherwise.

    * ``"paired t"`` (``scipy.stats.ttest_rel``) when both sides hold exactly the
      same keys (seeds), each once, and at least two of them:
      :math:`t = \\bar d / (s_d / \\sqrt n)` on the differences :math:`d` of
      matching keys, :math:`n - 1` degrees of freedom;
    * ``"Welch t"`` (``scipy.stats.ttest_ind(equal_var=False)``) otherwise, when
      both sides have at least two values:
      :math:`t = (\\bar a - \\bar b) / \\sqrt{s_a^2/n_a + s_b^2/n_b}` with
      Welch-Satterthwaite degrees of freedom;
    * ``(None, None)`` when neither applies.

    Args:
        a: ``{key: value}`` or ``[(key, value), ...]``, e.g. one metric per seed.
        b: the same for the other group.

    Returns:
        ``(p, test name)``; p is None when the test is undefined (e.g. both
        sides constant), with the name of the test that was tried.
    """
    pa, pb = _pairs(a), _pairs(b)
    da, db = dict(pa), dict(pb)
    paired = len(da) == len(pa) and len(db) == len(pb) and da.keys() == db.keys() and len(da) >= 2
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant samples: NaN, reported as None
        if paired:
            keys = list(da)
            p = stats.ttest_rel([da[key] for key in keys], [db[key] for key in keys]).pvalue
            test = "paired t"
        elif len(pa) >= 2 and len(pb) >= 2:
            p = stats.ttest_ind([v for _, v in pa], [v for _, v in pb], equal_var=False).pvalue
            test = "Welch t"
        else:
            return None, None
    p = float(p)
    return (p if math.isfinite(p) else None), test


# ---------------------------------------------------------------- rank tests


def average_ranks(scores: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Mean rank of each treatment over the blocks.

    Within block i the k treatments get ranks :math:`r_i^j` from 1 (best) to k;
    tied scores share the average of the ranks they span
    (``scipy.stats.rankdata``, ``method="average"``). Returns
    :math:`R_j = \\frac1N \\sum_i r_i^j`.

    Args:
        scores: [N blocks, k treatments], finite.
        higher_is_better: True for accuracy-like scores, False for errors.

    Returns:
        Average ranks [k], in [1, k], summing to k(k+1)/2.

    Raises:
        ValueError: not 2-D, empty or non-finite scores.

    Example:
        >>> average_ranks(np.array([[0.9, 0.8], [0.7, 0.7]]), higher_is_better=True).tolist()
        [1.25, 1.75]
    """
    x = _score_matrix(scores)
    from scipy import stats

    return stats.rankdata(-x if higher_is_better else x, axis=1).mean(axis=0)


@dataclass(frozen=True)
class Friedman:
    """Result of the Friedman test and its Iman-Davenport correction.

    Attributes:
        statistic: Friedman's :math:`\\chi^2_F` (with the correction for ties).
        pvalue: its p-value from :math:`\\chi^2_{k-1}`.
        iman_davenport_f: :math:`F_F`; None when undefined (:math:`\\chi^2_F = N(k-1)`).
        iman_davenport_p: its p-value from :math:`F_{k-1, (k-1)(N-1)}`; None likewise.
        n_blocks: N.
        k: number of treatments.
        average_ranks: :math:`R_j`, rank 1 = best.
    """

    statistic: float
    pvalue: float
    iman_davenport_f: float | None
    iman_davenport_p: float | None
    n_blocks: int
    k: int
    average_ranks: tuple[float, ...]


def _iman_davenport(chi2: float, n_blocks: int, k: int) -> tuple[float | None, float | None]:
    """F_F = (N-1) chi2 / (N(k-1) - chi2) and its p-value from F(k-1, (k-1)(N-1))."""
    denominator = n_blocks * (k - 1) - chi2
    if denominator <= 1e-12 * n_blocks * (k - 1):
        return None, None
    from scipy import stats

    f = (n_blocks - 1) * chi2 / denominator
    return float(f), float(stats.f.sf(f, k - 1, (k - 1) * (n_blocks - 1)))


def friedman(scores: np.ndarray, higher_is_better: bool) -> Friedman:
    """Friedman test that k treatments rank alike over N blocks, and Iman-Davenport's F.

    .. math::
        \\chi^2_F = \\frac{12N}{k(k+1)} \\Big[\\sum_j R_j^2 - \\frac{k(k+1)^2}{4}\\Big],
        \\qquad
        F_F = \\frac{(N-1)\\,\\chi^2_F}{N(k-1) - \\chi^2_F}

    :math:`\\chi^2_F` is ``scipy.stats.friedmanchisquare`` (which also divides by
    the usual correction for ties, :math:`1 - \\sum (t^3 - t) / (N k (k^2 - 1))`
    over tie groups of size t; no ties, no change), compared with
    :math:`\\chi^2_{k-1}`. :math:`F_F` (Iman and Davenport 1980, recommended by
    Demšar 2006 as less conservative) is compared with
    :math:`F_{k-1, (k-1)(N-1)}`. When every block ties all treatments the
    statistics are 0 and the p-values 1.

    Args:
        scores: [N blocks, k treatments], finite; N >= 2, k >= 3.
        higher_is_better: True for accuracy-like scores, False for errors.

    Returns:
        :class:`Friedman`.

    Raises:
        ValueError: fewer than 3 treatments (compare two with a paired test or
            the Wilcoxon signed-rank test), fewer than 2 blocks, or bad scores.
    """
    x = _score_matrix(scores)
    n, k = x.shape
    if k < 3:
        raise ValueError(
            f"the Friedman test needs at least 3 treatments (columns of scores), got k={k};"
            " compare two with a paired test instead"
        )
    if n < 2:
        raise ValueError(f"the Friedman test needs at least 2 blocks (rows of scores), got N={n}")
    ranks = average_ranks(x, higher_is_better)
    if np.all(x == x[:, :1]):
        chi2, p = 0.0, 1.0
        f, f_p = 0.0, 1.0
    else:
        from scipy import stats

        result = stats.friedmanchisquare(*x.T)
        chi2, p = float(result.statistic), float(result.pvalue)
        f, f_p = _iman_davenport(chi2, n, k)
    return Friedman(
        statistic=chi2,
        pvalue=p,
        iman_davenport_f=f,
        iman_davenport_p=f_p,
        n_blocks=n,
        k=k,
        average_ranks=tuple(float(r) for r in ranks),
    )


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks.

    .. math::
        CD = q_\\alpha \\sqrt{\\frac{k(k+1)}{6N}}, \\qquad
        q_\\alpha = \\frac{q_{1-\\alpha}(k, \\infty)}{\\sqrt 2}

    with :math:`q_{1-\\alpha}(k, \\infty)` the quantile of the studentized range
    of k normal variables (``scipy.stats.studentized_range``, infinite degrees
    of freedom). Two treatments whose average ranks differ by at least CD
    differ significantly at level alpha.

    Args:
        k: number of treatments, >= 2.
        n_blocks: number of blocks N, >= 1.
        alpha: significance level in (0, 1).

    Returns:
        CD, in rank units.

    Raises:
        ValueError: k < 2, N < 1 or alpha outside (0, 1).

    Example:
        >>> round(nemenyi_cd(k=4, n_blocks=14), 3)
        1.254
    """
    alpha = _check_level(alpha, "alpha")
    if isinstance(k, bool) or int(k) != k or k < 2:
        raise ValueError(f"k must be an integer >= 2 (number of treatments), got {k!r}")
    if isinstance(n_blocks, bool) or int(n_blocks) != n_blocks or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    from scipy import stats

    q = float(stats.studentized_range.ppf(1.0 - alpha, int(k), np.inf)) / math.sqrt(2.0)
    return q * _rank_se(int(k), int(n_blocks))


def nemenyi_pvalues(avg_ranks: Sequence[float], n_blocks: int) -> np.ndarray:
    """Pairwise Nemenyi p-values of average ranks.

    .. math::
        z_{ij} = \\frac{|R_i - R_j|}{\\sqrt{k(k+1)/(6N)}}, \\qquad
        p_{ij} = P\\big(Q_{k,\\infty} > \\sqrt 2\\, z_{ij}\\big)

    with :math:`Q_{k,\\infty}` the studentized range (``scipy.stats.studentized_range.sf``);
    :math:`p_{ij} \\le \\alpha` exactly when :math:`|R_i - R_j| \\ge` :func:`nemenyi_cd`.

    Args:
        avg_ranks: average ranks [k] (:func:`average_ranks`).
        n_blocks: number of blocks N they were averaged over.

    Returns:
        Symmetric p-values [k, k], ones on the diagonal.

    Raises:
        ValueError: fewer than 2 ranks, ranks outside [1, k] or N < 1.
    """
    r, k, n = _rank_vector(avg_ranks, n_blocks)
    from scipy import stats

    z = np.abs(r[:, None] - r[None, :]) / _rank_se(k, n)
    p = np.clip(stats.studentized_range.sf(z * math.sqrt(2.0), k, np.inf), 0.0, 1.0)
    np.fill_diagonal(p, 1.0)
    return p


def holm_vs_control(avg_ranks: Sequence[float], n_blocks: int, control: int) -> list[float | None]:
    """Each treatment against a control, Holm-adjusted over the k - 1 comparisons.

    .. math::
        z_i = \\frac{R_i - R_c}{\\sqrt{k(k+1)/(6N)}}, \\qquad p_i = 2\\,(1 - \\Phi(|z_i|))

    then :func:`adjust_pvalues` with ``"holm"`` (Demšar 2006, section 3.2.2).

    Args:
        avg_ranks: average ranks [k] (:func:`average_ranks`).
        n_blocks: number of blocks N they were averaged over.
        control: index of the control treatment (e.g. the baseline loss).

    Returns:
        Adjusted p-values [k]; None at ``control``.

    Raises:
        ValueError: a control index out of range, or bad ranks / N.
    """
    r, k, n = _rank_vector(avg_ranks, n_blocks)
    if isinstance(control, bool) or int(control) != control or not 0 <= control < k:
        raise ValueError(f"control must be an index in [0, {k - 1}], got {control!r}")
    from scipy import stats

    z = (r - r[int(control)]) / _rank_se(k, n)
    p: list[float | None] = [float(2.0 * stats.norm.sf(abs(zi))) for zi in z]
    p[int(control)] = None
    return adjust_pvalues(p, "holm")
