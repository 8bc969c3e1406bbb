"""Poly-1 loss."""

from __future__ import annotations

from torch import Tensor

from losslab.losses._common import Loss, check, one_minus_exp, sample_ce


class Poly1Loss(Loss):
    r"""Cross-entropy plus a first-order polynomial correction.

    .. math:: \ell(z, y) = -\log p_y + \epsilon (1 - p_y)

    Args:
        eps: coefficient of the leading polynomial term, >= -1 (0 is cross-entropy).

    References:
        Leng, Tan, Liu, Cubuk, Shi, Cheng, Anguelov, Tan. "PolyLoss: A Polynomial
        Expansion Perspective of Classification Loss Functions", 2022, arXiv:2204.12511.
    """

    family = "cross-entropy"

    def __init__(self, eps: float = 1.0) -> None:
        super().__init__()
        self.eps = check("eps", eps, lambda v: v >= -1, ">= -1")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp_y = -sample_ce(logits, target)
        return (-logp_y + self.eps * one_minus_exp(logp_y)).mean()
