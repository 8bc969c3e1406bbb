"""Comp-sum losses: a family through sum-exponential, cross-entropy and MAE."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, linear_tail_exp, sample_ce


def _expm1_tail(u: Tensor) -> Tensor:
    """``exp(u) - 1``: ``expm1`` where it is exact, the linear tail where exp would overflow."""
    return torch.where(u <= 1.0, torch.expm1(u.clamp(max=1.0)), linear_tail_exp(u) - 1)


class CompSumLoss(Loss):
    r"""Comp-sum loss :math:`\Phi^{\tau}` applied to :math:`p_y`.

    .. math::
        \ell(z, y) = \frac{p_y^{\tau - 1} - 1}{1 - \tau} \;(\tau \ne 1), \qquad
        \ell(z, y) = -\log p_y \;(\tau = 1)

    :math:`\tau = 0` is the sum-exponential loss, :math:`\tau = 1` cross-entropy,
    :math:`\tau = 2` is :math:`1 - p_y` (MAE/2); :math:`\tau \in (1, 2)` is GCE with
    :math:`q = \tau - 1`. Computed as ``expm1((1-tau)(-log p_y)) / (1-tau)``, exact
    near :math:`\tau = 1`. For :math:`\tau < 1` the loss grows exponentially in the
    logit gap; past :math:`e^{60}` (float32) or :math:`e^{600}` (float64) it continues linearly (see
    :func:`~losslab.losses._common.linear_tail_exp`) so values and gradients stay
    finite at any logits.

    Args:
        tau: >= 0.

    References:
        Mao, Mohri, Zhong. "Cross-Entropy Loss Functions: Theoretical Analysis and
        Applications", ICML 2023, arXiv:2304.07288.
    """

    family = "comp-sum"

    def __init__(self, tau: float = 0.5) -> None:
        super().__init__()
        self.tau = check("tau", tau, lambda v: v >= 0, ">= 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        ce = sample_ce(logits, target)
        if self.tau == 1.0:
            return ce.mean()
        c = 1.0 - self.tau
        return (_expm1_tail(c * ce) / c).mean()


class SumExpLoss(CompSumLoss):
    r"""Sum-exponential loss (comp-sum with :math:`\tau = 0`).

    .. math:: \ell(z, y) = \sum_{k \ne y} e^{z_k - z_y} = \frac{1}{p_y} - 1 = e^{-\log p_y} - 1

    Computed as ``expm1`` of the per-sample cross-entropy. Grows exponentially in
    the logit gap; past :math:`e^{60}` (float32) or :math:`e^{600}` (float64) it
    continues linearly (see :func:`~losslab.losses._common.linear_tail_exp`) so
    values and gradients stay finite at any logits.

    References:
        Mao, Mohri, Zhong. "Cross-Entropy Loss Functions: Theoretical Analysis and
        Applications", ICML 2023, arXiv:2304.07288.
    """

    def __init__(self) -> None:
        super().__init__(tau=0.0)
