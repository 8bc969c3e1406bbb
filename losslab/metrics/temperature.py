r"""Temperature scaling: one scalar :math:`T > 0` that rescales the logits post hoc.

:math:`T` is fitted on held-out (validation) logits by minimising the negative
log-likelihood of :math:`\mathrm{softmax}(z / T)`; the scaled test metrics then
show how much of a loss's miscalibration one parameter removes.

References:
    Guo, Pleiss, Sun, Weinberger. *On Calibration of Modern Neural Networks*. ICML 2017.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from losslab.metrics.calibration import check_bins, top_label_ece
from losslab.metrics.classification import check_inputs, to_python

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618..., the interval shrinks by this per step


def fit_temperature(
    logits: Tensor,
    target: Tensor,
    max_iter: int = 30,
    bounds: tuple[float, float] = (1e-2, 1e2),
) -> float:
    r"""The temperature that minimises the NLL of the scaled logits.

    .. math:: T^\star = \arg\min_{T \in [T_{lo}, T_{hi}]}
        -\frac1N \sum_i \log \mathrm{softmax}(z_i / T)_{y_i}

    The NLL is convex in :math:`1/T` (a log-sum-exp of linear functions minus a
    linear one), hence unimodal in :math:`u = \log T`, so a golden-section search
    on :math:`u \in [\log T_{lo}, \log T_{hi}]` finds the minimum without
    gradients or line-search tolerances: each of the ``max_iter`` steps shrinks
    the bracket by 0.618 (30 steps: width below :math:`10^{-5}` in :math:`\log T`, so
    :math:`T` to a relative :math:`10^{-5}`, far finer than any change it makes to the
    scaled ECE or NLL); each step costs one pass over the logits. The search runs a
    fixed number of steps, so it is deterministic. On a GPU the bracket is updated
    with ``torch.where`` on device tensors, so no step waits for the device and one
    number is transferred at the end; on the CPU, where reading a value costs
    nothing, the same steps keep the bracket in Python floats instead (a dozen
    fewer tensor ops per step). :math:`T = 1` is kept unless the fitted value has a strictly
    lower NLL (e.g. constant logits, where every :math:`T` is equally good). When
    the optimum lies outside the bounds (separable data drives :math:`T \to 0`)
    the nearest bound is returned, or a point of the plateau next to it where the
    NLL no longer changes in float64.

    Args:
        logits: ``[N, K]`` held-out logits, any float dtype (computed in float64).
        target: ``[N]`` integer classes.
        max_iter: golden-section steps (>= 0).
        bounds: ``(T_lo, T_hi)`` with ``0 < T_lo < 1 < T_hi``.

    Returns:
        The fitted temperature as a Python float; 1.0 when the search ends on a non-finite
        NLL (non-finite logits).

    Raises:
        ValueError: on bad shapes, bounds or ``max_iter``, or targets outside ``[0, K)``.

    Example:
        >>> # one logit margin of 2, and 3 of 4 samples in class 0: sigmoid(2 / T) = 3/4
        >>> z = torch.tensor([[2.0, 0.0]]).repeat(4, 1)
        >>> t = fit_temperature(z, torch.tensor([0, 0, 0, 1]))
        >>> round(t, 6) == round(2 / math.log(3), 6)
        True
    """
    lo, hi = bounds
    if not 0.0 < lo < 1.0 < hi or not math.isfinite(hi):
        raise ValueError(f"bounds={bounds} are invalid: need 0 < T_lo < 1 < T_hi < inf")
    if max_iter < 0:
        raise ValueError(f"max_iter={max_iter} is invalid: must be >= 0")
    target, valid = check_inputs(logits, target)
    z = logits.to(torch.float64)
    z_y = z.gather(1, target[:, None]).squeeze(1)
    # logsumexp(z / T) = max(z) / T + log sum exp((z - max z) / T) for T > 0: the row
    # maxima and the T-free part of the NLL are computed once, not at every step
    z_max = z.amax(dim=1)
    below = z - z_max[:, None]  # <= 0: exp of it times 1/T never overflows
    offset = (z_max - z_y).mean()

    n = z.shape[0]

    def log_sum_exp(inv_t: Any) -> Tensor:  # mean over rows of log sum_k exp(below / T)
        return below.mul(inv_t).exp_().sum(dim=1).log_().sum() / n  # (.mean() is slower)

    def f(u: Any) -> Any:  # the NLL at T = exp(u), for a tensor or a float u
        if isinstance(u, Tensor):
            inv_t = torch.exp(-u)
            return inv_t * offset + log_sum_exp(inv_t)
        inv_t = math.exp(-u)
        return inv_t * host_offset + float(log_sum_exp(inv_t))

    if z.device.type in _HOST_SEARCH_DEVICES:
        # Reading a value costs nothing where the tensors are in host memory: the bracket
        # is kept in Python floats, which saves the dozen tensor ops per step that keep it
        # on a device (most of the fit's time on a CPU for validation-set sizes).
        to_python([], valid, z.shape[1])  # raises on targets outside [0, K)
        host_offset = float(offset)
        u = _golden_section(f, math.log(lo), math.log(hi), max_iter, _pick)
        log_t = u if f(u) < f(0.0) else 0.0
    else:
        a = torch.tensor(math.log(lo), dtype=torch.float64, device=z.device)
        b = torch.tensor(math.log(hi), dtype=torch.float64, device=z.device)
        u = _golden_section(f, a, b, max_iter, torch.where)
        zero = torch.zeros_like(u)
        u = torch.where(f(u) < f(zero), u, zero)
        (log_t,) = to_python([u], valid, z.shape[1])
    return 1.0 if log_t is None else math.exp(log_t)


#: Devices where :func:`fit_temperature` keeps its search bracket on the host.
_HOST_SEARCH_DEVICES = ("cpu",)


def _pick(condition: bool, a: float, b: float) -> float:
    return a if condition else b


def _golden_section(f: Callable, a: Any, b: Any, steps: int, pick: Callable) -> Any:
    """Midpoint of the bracket left after ``steps`` golden-section steps on ``[a, b]``.

    Written once for both representations of the bracket: Python floats with
    ``pick = _pick``, or 0-dim device tensors with ``pick = torch.where``, where no
    step waits for the device (the comparisons stay tensors).
    """
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        left = fc < fd  # the minimum lies in [a, d]; else in [c, b]
        a, b = pick(left, a, c), pick(left, d, b)
        new = pick(left, b - _GOLDEN * (b - a), a + _GOLDEN * (b - a))
        f_new = f(new)
        c, fc, d, fd = (
            pick(left, new, d),
            pick(left, f_new, fd),
            pick(left, c, new),
            pick(left, fc, f_new),
        )
    return (a + b) / 2


@dataclass(frozen=True)
class TemperatureFit:
    """The result of :func:`search_temperature`.

    Attributes:
        temperature: the fitted :math:`T`.
        at_bound: True when :math:`T` is not an interior optimum: the NLL still falls
            beyond it (the search reached ``limits``) or is flat next to it in float64.
        bounds: the bracket finally searched.
    """

    temperature: float
    at_bound: bool
    bounds: tuple[float, float]


#: Steps of the bracket when the optimum lies at one of its ends: its far end moves
#: this factor further out, its near end to a factor ``_OVERLAP`` inside the old end.
_WIDEN = 100.0
_OVERLAP = math.e
#: An end of the bracket counts as reached within this distance in log T: the final
#: golden-section bracket of 30 steps over a width of up to 10 in log T is ~1e-5 wide.
_AT_END = 1e-3


def search_temperature(
    logits: Tensor,
    target: Tensor,
    max_iter: int = 30,
    bounds: tuple[float, float] = (1e-2, 1e2),
    limits: tuple[float, float] = (1e-4, 1e8),
) -> TemperatureFit:
    r"""The NLL-optimal temperature, searched beyond ``bounds`` when the optimum lies outside.

    :func:`fit_temperature` runs on ``bounds``; while its result lies at an end of the
    bracket (within ``1e-3`` in :math:`\log T`) the bracket moves that way, by a
    factor 100 per round, until the optimum is inside or the end reaches ``limits``.
    The NLL is convex in :math:`1/T`, so unimodal in :math:`\log T`: a minimum found
    strictly inside a bracket is the global one. The result is flagged ``at_bound``
    unless the NLL is strictly higher a step of ``1e-3`` in :math:`\log T` on both
    sides, i.e. when the search stopped at a limit (:math:`T \to \infty` when the
    logits carry no information about the labels) or on a float64 plateau
    (:math:`T \to 0` for separable data). The default limits span 12 decades: below
    :math:`10^{-4}` or above :math:`10^8` the scaled probabilities are one-hot or
    uniform to float64 precision for logits of ordinary size, so searching further
    changes no metric.

    Args:
        logits: ``[N, K]`` held-out logits.
        target: ``[N]`` integer classes.
        max_iter: golden-section steps per bracket.
        bounds: the first bracket, ``0 < T_lo < 1 < T_hi``.
        limits: how far the bracket may move, ``limits[0] <= T_lo`` and ``T_hi <= limits[1]``.

    Returns:
        The :class:`TemperatureFit`.

    Raises:
        ValueError: on bad inputs (see :func:`fit_temperature`) or limits.

    Example:
        >>> z = torch.tensor([[2.0, 0.0]]).repeat(4, 1) * 1000  # margin 2000, 3 of 4 right
        >>> fit = search_temperature(z, torch.tensor([0, 0, 0, 1]))
        >>> round(fit.temperature / (2000 / math.log(3)), 4), fit.at_bound
        (1.0, False)
    """
    lo, hi = bounds
    if not 0.0 < limits[0] <= lo < 1.0 < hi <= limits[1] < math.inf:
        raise ValueError(
            f"limits={limits} are invalid for bounds={bounds}: need 0 < limit_lo <= T_lo "
            "and T_hi <= limit_hi < inf"
        )
    while True:
        t = fit_temperature(logits, target, max_iter, (lo, hi))
        u = math.log(t)
        if u - math.log(lo) < _AT_END and lo > limits[0] and t != 1.0:
            lo, hi = max(lo / _WIDEN, limits[0]), min(lo * _OVERLAP, 1.0 + 1e-9)
            hi = hi if hi > 1.0 else 1.0 + 1e-9
        elif math.log(hi) - u < _AT_END and hi < limits[1] and t != 1.0:
            lo, hi = max(hi / _OVERLAP, 1.0 - 1e-9), min(hi * _WIDEN, limits[1])
            lo = lo if lo < 1.0 else 1.0 - 1e-9
        else:
            break
    nll = _nll_at(logits, target)
    here = nll(u)
    interior = nll(u - _AT_END) > here and nll(u + _AT_END) > here
    return TemperatureFit(t, not interior, (lo, hi))


def _nll_at(logits: Tensor, target: Tensor) -> Callable[[float], float]:
    """The mean NLL of ``softmax(logits / exp(u))`` as a function of ``u``, in float64."""
    z = logits.to(torch.float64)
    y = target.to(z.device).long()

    def nll(u: float) -> float:
        return float(torch.nn.functional.cross_entropy(z * math.exp(-u), y))

    return nll


def temperature_scaled_metrics(
    logits: Tensor, target: Tensor, temperature: float, n_bins: int = 15
) -> dict[str, float | None]:
    r"""ECE and NLL of ``softmax(logits / temperature)``.

    ``ece_ts`` is the top-label ECE (``n_bins`` equal-width right-closed bins, as
    ``ece``) and ``nll_ts`` the mean NLL in nats, both of the scaled logits. Scaling
    by :math:`T > 0` keeps the predicted class, so accuracy is unchanged.

    Args:
        logits: ``[N, K]``.
        target: ``[N]`` integer classes.
        temperature: :math:`T > 0`, usually from :func:`fit_temperature` on validation data.
        n_bins: bins for ``ece_ts``.

    Returns:
        ``{"ece_ts": float | None, "nll_ts": float | None}`` (None when not finite).

    Example:
        >>> z, y = torch.tensor([[4.0, 0.0], [0.0, 4.0]]), torch.tensor([0, 0])
        >>> m = temperature_scaled_metrics(z, y, temperature=4.0)
        >>> round(m["nll_ts"], 4)  # log(1 + e)/2 + log(1 + 1/e)/2
        0.8133
    """
    if not (temperature > 0.0 and math.isfinite(temperature)):
        raise ValueError(f"temperature={temperature} is invalid: must be positive and finite")
    check_bins(n_bins)
    target, valid = check_inputs(logits, target)
    logp = torch.log_softmax(logits.to(torch.float64) / temperature, dim=-1)
    logp_max, pred = logp.max(dim=-1)
    correct = pred == target
    ece = top_label_ece(logp_max.exp(), correct, n_bins)
    nll = -logp.gather(1, target[:, None]).mean()
    ece_ts, nll_ts = to_python([ece, nll], valid, logits.shape[1])
    return {"ece_ts": ece_ts, "nll_ts": nll_ts}
