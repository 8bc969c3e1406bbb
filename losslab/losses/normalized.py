"""Normalized losses."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.losses._common import Loss, upcast


class NCELoss(Loss):
    r"""Normalized cross-entropy: cross-entropy of the label over that of every class.

    .. math:: \ell(z, y) = \frac{-\log p_y}{\sum_k -\log p_k}

    Symmetric: :math:`\sum_y \ell(z, y) = 1`. Bounded in [0, 1].

    References:
        Ma, Huang, Wang, Romano, Erfani, Bailey. "Normalized Loss Functions for Deep
        Learning with Noisy Labels", 2020, arXiv:2006.13554.
    """

    family = "normalized"

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        z = upcast(logits)
        lse = torch.logsumexp(z, dim=-1)
        ce = lse - z.gather(1, target[:, None]).squeeze(1)
        # sum_k -log p_k = K lse - sum_k z_k: no [B, K] log-probabilities needed
        return (ce / (z.shape[-1] * lse - z.sum(dim=-1))).mean()
