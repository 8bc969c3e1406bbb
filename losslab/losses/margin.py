"""Multi-class hinge losses on the raw scores."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, others_mask, upcast


def margin_gaps(logits: Tensor, target: Tensor, margin: float) -> Tensor:
    """``d_k = margin [k != y] + z_k - z_y``, ``[B, K]``; ``d_y = 0``."""
    z = upcast(logits)
    gaps = z - z.gather(1, target[:, None])
    return gaps + margin * others_mask(target, z.shape[-1]).to(z.dtype)


class CrammerSingerLoss(Loss):
    r"""Crammer-Singer multi-class hinge loss (the largest margin violation).

    .. math:: \ell(z, y) = \max_k \big(\text{margin}\,[k \ne y] + z_k - z_y\big)

    Non-negative, since the :math:`k = y` term is 0.

    Args:
        margin: >= 0.

    References:
        Crammer, Singer. "On the Algorithmic Implementation of Multiclass Kernel-based
        Vector Machines", JMLR 2, 2001.
    """

    family = "margin"

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check("margin", margin, lambda v: v >= 0, ">= 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        return margin_gaps(logits, target, self.margin).amax(dim=-1).mean()


class WestonWatkinsLoss(Loss):
    r"""Weston-Watkins multi-class hinge loss (the sum of margin violations).

    .. math:: \ell(z, y) = \sum_{k \ne y} \max\big(0, \text{margin} + z_k - z_y\big)

    Args:
        margin: >= 0.

    References:
        Weston, Watkins. "Support Vector Machines for Multi-Class Pattern Recognition",
        ESANN, 1999.
    """

    family = "margin"

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = check("margin", margin, lambda v: v >= 0, ">= 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        gaps = margin_gaps(logits, target, self.margin)
        hinge = torch.relu(gaps) * others_mask(target, gaps.shape[-1]).to(gaps.dtype)
        return hinge.sum(dim=-1).mean()
