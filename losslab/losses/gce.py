"""Generalized cross-entropy (Lq) and its truncated form."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, sample_ce


class GCELoss(Loss):
    r"""Generalized cross-entropy: the negative Box-Cox transform of :math:`p_y`.

    .. math:: \ell(z, y) = \frac{1 - p_y^{q}}{q}

    :math:`q \to 0` gives cross-entropy, :math:`q = 1` gives :math:`1 - p_y` (MAE/2).
    Computed as ``-expm1(q log p_y) / q``.

    Args:
        q: in (0, 1].

    References:
        Zhang, Sabuncu. "Generalized Cross Entropy Loss for Training Deep Neural
        Networks with Noisy Labels", 2018, arXiv:1805.07836.
    """

    family = "robust (bounded)"

    def __init__(self, q: float = 0.7) -> None:
        super().__init__()
        self.q = check("q", q, lambda v: 0 < v <= 1, "in (0, 1]")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp_y = -sample_ce(logits, target)
        return (-torch.expm1(self.q * logp_y) / self.q).mean()


class TruncatedGCELoss(Loss):
    r"""Truncated Lq loss: GCE held constant where :math:`p_y \le k`.

    .. math:: \ell(z, y) = \frac{1 - \max(p_y, k)^{q}}{q}

    Samples the model gives less than ``k`` probability contribute a constant
    (no gradient), which prunes likely-mislabelled samples.

    Args:
        q: in (0, 1].
        k: truncation threshold in [0, 1); 0 is GCE.

    References:
        Zhang, Sabuncu. "Generalized Cross Entropy Loss for Training Deep Neural
        Networks with Noisy Labels", 2018, arXiv:1805.07836 (Section 3.3).
    """

    family = "robust (bounded)"

    def __init__(self, q: float = 0.7, k: float = 0.5) -> None:
        super().__init__()
        self.q = check("q", q, lambda v: 0 < v <= 1, "in (0, 1]")
        self.k = check("k", k, lambda v: 0 <= v < 1, "in [0, 1)")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp_y = -sample_ce(logits, target)
        log_k = math.log(self.k) if self.k > 0 else -math.inf
        return (-torch.expm1(self.q * logp_y.clamp_min(log_k)) / self.q).mean()
