"""Robust log loss."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, others_mask, upcast


class RLLLoss(Loss):
    r"""Robust log loss: a symmetric loss built from :math:`\log(\alpha + p)`.

    .. math::
        \ell(z, y) = \log(\alpha+1) - \log(\alpha+p_y)
                     - \frac{1}{K-1} \sum_{k \ne y} \big[\log(\alpha+1) - \log(\alpha+p_k)\big]

    Symmetric: :math:`\sum_y \ell(z, y) = 0` for every :math:`z`.

    Args:
        alpha: > 0.

    References:
        Patel, Sastry. "Memorization in Deep Neural Networks: Does the Loss Function
        Matter?", PAKDD 2021, arXiv:2107.09957.
    """

    family = "symmetric"

    def __init__(self, alpha: float = 0.1) -> None:
        super().__init__()
        self.alpha = check("alpha", alpha, lambda v: v > 0, "> 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        p = torch.softmax(upcast(logits), dim=-1)
        k = p.shape[-1]
        # per class: c_k = log(alpha + 1) - log(alpha + p_k)
        c = math.log(self.alpha + 1) - torch.log(self.alpha + p)
        c_y = c.gather(1, target[:, None]).squeeze(1)
        c_others = (c * others_mask(target, k).to(c.dtype)).sum(dim=-1)
        return (c_y - c_others / (k - 1)).mean()
