"""Helpers shared by the loss modules: dtype handling, validation, stable pieces."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn


def upcast(logits: Tensor) -> Tensor:
    """Logits in float32 when they arrive in a half type (bf16 autocast), else unchanged.

    Every loss computes its soft-max pieces at least in float32, so that
    ``log p`` and ``p`` are exact enough for 1 - p_y near 0 or 1.
    """
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def sample_ce(logits: Tensor, target: Tensor) -> Tensor:
    """Per-sample cross-entropy ``-log p_y`` ``[B]`` (one fused kernel), in at least float32."""
    return torch.nn.functional.cross_entropy(upcast(logits), target, reduction="none")


def target_log_prob(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(log_softmax(z) [B, K], log p_y [B])`` in at least float32."""
    logp = torch.log_softmax(upcast(logits), dim=-1)
    return logp, logp.gather(1, target[:, None]).squeeze(1)


def one_minus_exp(log_x: Tensor) -> Tensor:
    """``1 - exp(log_x)`` without cancellation when ``exp(log_x)`` is close to 1."""
    return -torch.expm1(log_x)


def others_mask(target: Tensor, num_classes: int) -> Tensor:
    """Bool mask ``[B, K]`` that is True where ``k != y``."""
    mask = torch.ones(target.shape[0], num_classes, dtype=torch.bool, device=target.device)
    return mask.scatter_(1, target[:, None], False)


def exp_tail_start(dtype: torch.dtype) -> float:
    """Where :func:`linear_tail_exp` leaves the exponential: e^600 in float64, e^60 otherwise.

    Chosen so that a sum of a thousand tail terms at logit gaps of 1e4 still fits
    the dtype (float32 overflows near e^88, float64 near e^709).
    """
    return 600.0 if dtype == torch.float64 else 60.0


def linear_tail_exp(u: Tensor) -> Tensor:
    r"""``exp(u)`` up to a dtype-dependent point ``s``, continued by its tangent line beyond.

    .. math:: \exp(u) \text{ if } u \le s, \quad e^{s}\,(1 + u - s) \text{ otherwise}

    Exponential losses (``sum_exp``, ``comp_sum`` with tau < 1) overflow for
    logit gaps of a few hundred; the tangent keeps their value and gradient
    finite at any logits while every value up to :math:`e^{s}` (about 1e26 in
    float32, 1e260 in float64; see :func:`exp_tail_start`) is exact. The
    function is continuous with a continuous first derivative.
    """
    start = exp_tail_start(u.dtype)
    clipped = u.clamp(max=start)
    return torch.where(u <= start, torch.exp(clipped), math.exp(start) * (1 + u - start))


def check(name: str, value: float, ok: Callable[[float], bool], requirement: str) -> float:
    """Return ``float(value)`` or raise a ValueError naming the parameter and the valid range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"loss.{name}={value!r} is invalid: must be a number {requirement}"
        ) from None
    if not math.isfinite(number) or not ok(number):
        raise ValueError(f"loss.{name}={value!r} is invalid: must be {requirement}")
    return number


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"loss.{name}={value!r} is invalid; choose one of {list(choices)}")
    return value


class Loss(nn.Module):
    """Base class of the loss library: the contract and the ``losslab losses`` metadata.

    Subclasses implement ``forward(logits [B, K], target [B], *, index=None)``
    returning the batch mean as a 0-dim tensor, and set ``family`` (a short
    name of the loss family, shown by ``losslab losses``).

    Run values: a loss that needs facts known only once the data is loaded takes
    them as constructor arguments and names them in ``run_values``; the runner
    passes exactly the declared ones, as keyword arguments, also to a loss built
    as a nested ``_target_`` (a term of
    :class:`~losslab.losses.combination.WeightedSum`). The runner supplies
    ``num_samples`` (size of the training split, for per-sample state indexed by
    ``index``), ``num_classes`` (K) and ``class_counts`` (training labels per
    class, ``[K]``). For example ``run_values = ("num_samples",)`` with
    ``__init__(self, num_samples: int, ...)``. Built outside the runner, a loss
    takes the same values as ordinary arguments.
    """

    family: str = "other"
    #: The run values this loss takes at construction (see above); none by default.
    run_values: ClassVar[tuple[str, ...]] = ()

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        raise NotImplementedError
