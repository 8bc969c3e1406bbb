"""Symmetric (noise-tolerant) losses: reverse CE, MAE, MSE, and symmetric CE."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, one_minus_exp, sample_ce, upcast


class RCELoss(Loss):
    r"""Reverse cross-entropy :math:`-\sum_k p_k \log q_k` against the one-hot label
    :math:`q = e_y` with :math:`\log 0` clipped to :math:`-A`.

    .. math:: \ell(z, y) = A (1 - p_y)

    Symmetric: :math:`\sum_y \ell(z, y) = A (K - 1)` for every :math:`z`.

    Args:
        A: the clip value of log 0, > 0.

    References:
        Wang, Ma, Chen, Luo, Yi, Bailey. "Symmetric Cross Entropy for Robust Learning
        with Noisy Labels", 2019, arXiv:1908.06112.
    """

    family = "symmetric"

    def __init__(self, A: float = 4.0) -> None:
        super().__init__()
        self.A = check("A", A, lambda v: v > 0, "> 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp_y = -sample_ce(logits, target)
        return (self.A * one_minus_exp(logp_y)).mean()


class SCELoss(Loss):
    r"""Symmetric cross-entropy: cross-entropy plus reverse cross-entropy.

    .. math:: \ell(z, y) = \alpha(-\log p_y) + \beta A (1 - p_y)

    Args:
        alpha: weight of cross-entropy, >= 0.
        beta: weight of reverse cross-entropy, >= 0.
        A: the clip value of log 0 in the reverse term, > 0.

    References:
        Wang, Ma, Chen, Luo, Yi, Bailey. "Symmetric Cross Entropy for Robust Learning
        with Noisy Labels", 2019, arXiv:1908.06112.
    """

    family = "symmetric"

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, A: float = 4.0) -> None:
        super().__init__()
        self.alpha = check("alpha", alpha, lambda v: v >= 0, ">= 0")
        self.beta = check("beta", beta, lambda v: v >= 0, ">= 0")
        self.A = check("A", A, lambda v: v > 0, "> 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp_y = -sample_ce(logits, target)
        return (self.alpha * -logp_y + self.beta * self.A * one_minus_exp(logp_y)).mean()


class MAELoss(Loss):
    r"""Mean absolute error between the one-hot label and the prediction.

    .. math:: \ell(z, y) = \lVert e_y - p \rVert_1 = 2 (1 - p_y)

    Symmetric: :math:`\sum_y \ell(z, y) = 2 (K - 1)`.

    References:
        Ghosh, Kumar, Sastry. "Robust Loss Functions under Label Noise for Deep Neural
        Networks", 2017, arXiv:1712.09482.
    """

    family = "symmetric"

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp_y = -sample_ce(logits, target)
        return (2 * one_minus_exp(logp_y)).mean()


class MSELoss(Loss):
    r"""Squared error between the one-hot label and the prediction (the Brier score).

    .. math:: \ell(z, y) = \sum_k (p_k - [k = y])^2

    References:
        Ghosh, Kumar, Sastry. "Robust Loss Functions under Label Noise for Deep Neural
        Networks", 2017, arXiv:1712.09482 (as a noise-tolerant loss). Brier,
        "Verification of Forecasts Expressed in Terms of Probability", 1950 (the score).
    """

    family = "symmetric"

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        p = torch.softmax(upcast(logits), dim=-1)
        # sum_k (p_k - [k=y])^2 = sum_k p_k^2 - 2 p_y + 1
        return (p.pow(2).sum(dim=-1) - 2 * p.gather(1, target[:, None]).squeeze(1) + 1).mean()
