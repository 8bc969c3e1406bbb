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

from losslab.metrics.calibration import top_label_ece
from losslab.metrics.classification import check_inputs, to_python

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # 0.618..., the interval shrinks by this per step

#: Factor in :math:`T` by which :func:`search_temperature` moves an end of its bracket
#: that the optimum lies at or beyond.
WIDEN = 100.0

#: Default ``limits`` of :func:`search_temperature` (see there for why these).
LIMITS = (1e-4, 1e8)


@dataclass(frozen=True)
class TemperatureFit:
    r"""The result of :func:`search_temperature`.

    Attributes:
        temperature: the fitted :math:`T` (1.0 when the NLL is not finite).
        at_bound: False exactly when ``temperature`` is an interior optimum: the NLL at
            both ends of ``bounds`` is strictly higher than at ``temperature`` (so, the
            NLL being unimodal in :math:`\log T`, the global minimum lies strictly
            inside). True when the NLL still falls beyond the end the search stopped
            at (a limit), is flat there in float64, or is not finite.
        bounds: ``(T_lo, T_hi)``, the bracket finally searched.
    """

    temperature: float
    at_bound: bool
    bounds: tuple[float, float]


def fit_temperature(
    logits: Tensor,
    target: Tensor,
    max_iter: int = 30,
    bounds: tuple[float, float] = (1e-2, 1e2),
) -> float:
    r"""The temperature in ``bounds`` that minimises the NLL of the scaled logits.

    .. math:: T^\star = \arg\min_{T \in [T_{lo}, T_{hi}]}
        -\frac1N \sum_i \log \mathrm{softmax}(z_i / T)_{y_i}

    :func:`search_temperature` with ``limits=bounds``: the bracket never moves, so
    when the optimum lies outside ``bounds`` the nearest bound is returned (or a
    point of the float64 plateau next to it) without saying so. Use
    :func:`search_temperature` to search further and be told (``at_bound``).

    Args:
        logits: ``[N, K]`` held-out logits, any float dtype (computed in float64).
        target: ``[N]`` integer classes.
        max_iter: golden-section steps (>= 0).
        bounds: ``(T_lo, T_hi)`` with ``0 < T_lo < 1 < T_hi``.

    Returns:
        The fitted temperature as a Python float; 1.0 when the NLL is not finite
        (non-finite logits).

    Raises:
        ValueError: on bad shapes, bounds or ``max_iter``, or targets outside ``[0, K)``.

    Example:
        >>> # one logit margin of 2, and 3 of 4 samples in class 0: sigmoid(2 / T) = 3/4
        >>> z = torch.tensor([[2.0, 0.0]]).repeat(4, 1)
        >>> t = fit_temperature(z, torch.tensor([0, 0, 0, 1]))
        >>> round(t, 6) == round(2 / math.log(3), 6)
        True
    """
    return search_temperature(logits, target, max_iter, bounds, limits=bounds).temperature


def search_temperature(
    logits: Tensor,
    target: Tensor,
    max_iter: int = 30,
    bounds: tuple[float, float] = (1e-2, 1e2),
    limits: tuple[float, float] = LIMITS,
) -> TemperatureFit:
    r"""The NLL-optimal temperature, searched beyond ``bounds`` while the optimum lies outside.

    .. math:: T^\star = \arg\min_{T > 0} -\frac1N \sum_i \log \mathrm{softmax}(z_i / T)_{y_i}

    **Search.** The NLL is convex in :math:`1/T` (a log-sum-exp of linear functions
    minus a linear one), hence unimodal in :math:`u = \log T`, so a golden-section
    search on :math:`u` finds the minimum over a bracket without gradients or
    line-search tolerances: each of the ``max_iter`` steps shrinks the bracket by
    0.618 (30 steps on ``[1e-2, 1e2]``: width below :math:`10^{-5}` in :math:`\log T`,
    so :math:`T` to a relative :math:`10^{-5}`, far finer than any change it makes to
    the scaled ECE or NLL; a wider bracket gets the extra steps that keep this
    width); each step costs one pass over the logits.

    **Widening.** After a search on :math:`[T_{lo}, T_{hi}]` the NLL at the result
    :math:`\hat T` is compared with the NLL at both ends. An end whose NLL is not
    strictly higher may hold the optimum at or beyond it; that end moves out by a
    factor :data:`WIDEN` (100) in :math:`T`, capped at ``limits``, and the bracket
    is searched again; the ends only move outwards, so this ends after at most
    :math:`\lceil \log_{100}(T_{lo}/\mathrm{limit}_{lo}) \rceil +
    \lceil \log_{100}(\mathrm{limit}_{hi}/T_{hi}) \rceil` extra searches (4 with
    the defaults). When both ends are strictly higher, unimodality puts the global
    minimum strictly inside the bracket, and the fit is interior
    (``at_bound=False``); otherwise the search stopped at a limit (``at_bound=True``):
    :math:`T \to \infty` when the logits carry no information about the labels,
    :math:`T \to 0` for separable data (where the NLL reaches 0 in float64 on a
    plateau), or a constant NLL.

    **Limits.** The default ``limits=(1e-4, 1e8)`` span the optimal temperatures
    seen in practice (up to about :math:`10^3` for the large logits of some losses
    on MNIST) with decades to spare, and mark where searching further would change
    no reported metric: below :math:`T = 10^{-4}` any logit gap above
    :math:`4 \cdot 10^{-3}` gives a probability ratio under :math:`e^{-36.7}`, float64's
    resolution of 1 (the scaled predictions are one-hot); above :math:`10^8` logits
    spanning up to 100 give probabilities within :math:`10^{-6}` of uniform.
    They also bound the cost (at most one extra search down and three up).

    The search runs a fixed number of steps per bracket, so it is deterministic.
    On a GPU the bracket is updated with ``torch.where`` on device tensors, so no
    step waits for the device and five numbers are transferred per bracket (the
    result and the NLL at it, at the ends and at :math:`T = 1`): one transfer when
    the optimum lies inside ``bounds``. On the CPU, where reading a value costs
    nothing, the same steps keep the bracket in Python floats instead (a dozen
    fewer tensor ops per step). :math:`T = 1` is kept unless the fitted value has
    a strictly lower NLL (e.g. constant logits, where every :math:`T` is equally
    good).

    Args:
        logits: ``[N, K]`` held-out logits, any float dtype (computed in float64).
        target: ``[N]`` integer classes.
        max_iter: golden-section steps on ``bounds`` (>= 0).
        bounds: the first bracket, ``0 < T_lo < 1 < T_hi``.
        limits: how far the bracket may move: ``0 < limit_lo <= T_lo`` and
            ``T_hi <= limit_hi < inf``; ``limits=bounds`` searches ``bounds`` only.

    Returns:
        The :class:`TemperatureFit`: :math:`T`, whether it is not an interior
        optimum, and the bracket finally searched. ``T = 1.0`` and
        ``at_bound=True`` when the NLL is not finite (non-finite logits).

    Raises:
        ValueError: on bad shapes, bounds, limits or ``max_iter``, or targets outside
            ``[0, K)``.

    Example:
        >>> z = torch.tensor([[2.0, 0.0]]).repeat(4, 1) * 1000  # margin 2000, 3 of 4 right
        >>> fit = search_temperature(z, torch.tensor([0, 0, 0, 1]))
        >>> round(fit.temperature / (2000 / math.log(3)), 4), fit.at_bound, fit.bounds
        (1.0, False, (0.01, 10000.0))
        >>> round(fit_temperature(z, torch.tensor([0, 0, 0, 1])), 2)  # bounds only: the end
        100.0
    """
    lo, hi = bounds
    if not 0.0 < lo < 1.0 < hi or not math.isfinite(hi):
        raise ValueError(f"bounds={bounds} are invalid: need 0 < T_lo < 1 < T_hi < inf")
    limit_lo, limit_hi = limits
    if not 0.0 < limit_lo <= lo or not hi <= limit_hi < math.inf:
        raise ValueError(
            f"limits={limits} are invalid for bounds={bounds}: need "
            "0 < limit_lo <= T_lo and T_hi <= limit_hi < inf"
        )
    if max_iter < 0:
        raise ValueError(f"max_iter={max_iter} is invalid: must be >= 0")
    target, valid = check_inputs(logits, target)
    k = logits.shape[1]
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

    on_host = z.device.type in _HOST_SEARCH_DEVICES
    if on_host:
        # Reading a value costs nothing where the tensors are in host memory: the bracket
        # is kept in Python floats, which saves the dozen tensor ops per step that keep it
        # on a device (most of the fit's time on a CPU for validation-set sizes).
        to_python([], valid, k)  # raises on targets outside [0, K)
        host_offset = float(offset)

    def f(u: Any) -> Any:  # the NLL at T = exp(u), for a tensor or a float u
        if isinstance(u, Tensor):
            inv_t = torch.exp(-u)
            return inv_t * offset + log_sum_exp(inv_t)
        inv_t = math.exp(-u)
        return inv_t * host_offset + float(log_sum_exp(inv_t))

    first_width = math.log(hi) - math.log(lo)
    while True:
        a, b = math.log(lo), math.log(hi)
        # extra steps keep the final width of a wider bracket that of the first one
        steps = max_iter + _extra_steps((b - a) / first_width) if max_iter else 0
        if on_host:
            u = _golden_section(f, a, b, steps, _pick)
            f_u, f_a, f_b, f_1 = f(u), f(a), f(b), f(0.0)
        else:
            ua, ub = (torch.full((), v, dtype=torch.float64, device=z.device) for v in (a, b))
            u_t = _golden_section(f, ua, ub, steps, torch.where)
            ends = [f(u_t), f(ua), f(ub), f(torch.zeros_like(u_t))]
            u, f_u, f_a, f_b, f_1 = _to_host([u_t, *ends], valid, k)  # one transfer a bracket
        if not (math.isfinite(f_u) and math.isfinite(f_1)):
            return TemperatureFit(1.0, True, (lo, hi))  # non-finite logits
        # not f_u < f_a: the optimum may lie at or beyond that end (NaN never occurs here:
        # finite logits give a finite or +inf NLL at every T in the limits)
        open_lo, open_hi = not f_u < f_a and lo > limit_lo, not f_u < f_b and hi < limit_hi
        if not (open_lo or open_hi):
            break
        lo = max(lo / WIDEN, limit_lo) if open_lo else lo
        hi = min(hi * WIDEN, limit_hi) if open_hi else hi
    interior = f_u < f_a and f_u < f_b
    return TemperatureFit(math.exp(u) if f_u < f_1 else 1.0, not interior, (lo, hi))


#: Devices where :func:`search_temperature` keeps its search bracket on the host.
_HOST_SEARCH_DEVICES = ("cpu",)


def _extra_steps(ratio: float) -> int:
    """Golden-section steps that shrink a bracket ``ratio`` times wider to the same width."""
    return max(0, math.ceil(math.log(ratio) / -math.log(_GOLDEN) - 1e-9))


def _to_host(values: list[Tensor], valid: Tensor, k: int) -> list[float]:
    """0-dim tensors as Python floats in one transfer, inf and NaN kept (unlike
    :func:`to_python`); raises like it on targets outside ``[0, K)``."""
    *host, ok = torch.stack([*values, valid.to(torch.float64)]).tolist()
    if ok != 1.0:
        raise ValueError(f"target holds classes outside [0, {k})")
    return host


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
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins} is invalid: must be >= 1")
    target, valid = check_inputs(logits, target)
    logp = torch.log_softmax(logits.to(torch.float64) / temperature, dim=-1)
    logp_max, pred = logp.max(dim=-1)
    correct = pred == target
    ece = top_label_ece(logp_max.exp(), correct, n_bins)
    nll = -logp.gather(1, target[:, None]).mean()
    ece_ts, nll_ts = to_python([ece, nll], valid, logits.shape[1])
    return {"ece_ts": ece_ts, "nll_ts": nll_ts}
