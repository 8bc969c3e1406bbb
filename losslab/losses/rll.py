"""Robust log loss."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, upcast


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
        # With c_k = log(alpha+1) - log(alpha+p_k), c_y - sum_{k!=y} c_k/(K-1)
        # simplifies to (sum_k log(alpha+p_k) - K log(alpha+p_y)) / (K-1).
        log_ap = torch.log(torch.softmax(upcast(logits), dim=-1) + self.alpha)
        k = log_ap.shape[-1]
        log_ap_y = log_ap.gather(1, target[:, None]).squeeze(1)
        return ((log_ap.sum(dim=-1) - k * log_ap_y) / (k - 1)).mean()
