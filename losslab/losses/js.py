"""Jensen-Shannon divergence loss."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, sample_ce


class JSLoss(Loss):
    r"""Weighted Jensen-Shannon divergence between the label and the prediction,
    normalised to [0, 1].

    .. math::
        \ell(z, y) = \frac{\pi\,\mathrm{KL}(e_y \Vert m) + (1-\pi)\,\mathrm{KL}(p \Vert m)}
                          {-(1-\pi)\log(1-\pi)}, \qquad m = \pi e_y + (1-\pi) p

    With :math:`m_y = \pi + (1-\pi) p_y` and :math:`m_k = (1-\pi) p_k` for
    :math:`k \ne y` the sum is evaluated in closed form:
    :math:`\pi(-\log m_y) + (1-\pi)[p_y(\log p_y - \log m_y) - (1-p_y)\log(1-\pi)]`.
    It tends to cross-entropy as :math:`\pi \to 0` and to MAE as :math:`\pi \to 1`.

    Args:
        pi: weight of the label distribution, in (0, 1).

    References:
        Englesson, Azizpour. "Generalized Jensen-Shannon Divergence Loss for Learning
        with Noisy Labels", 2021, arXiv:2105.04522.
    """

    family = "symmetric"

    def __init__(self, pi: float = 0.5) -> None:
        super().__init__()
        self.pi = check("pi", pi, lambda v: 0 < v < 1, "in (0, 1)")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        pi = self.pi
        logp_y = -sample_ce(logits, target)
        p_y = logp_y.exp()
        log_m_y = torch.log(pi + (1 - pi) * p_y)
        log_1m_pi = math.log1p(-pi)
        kl_label = -log_m_y
        # p_y * log p_y is 0 at p_y = 0; the product is finite since logp_y is finite
        kl_pred = p_y * (logp_y - log_m_y) - (1 - p_y) * log_1m_pi
        return ((pi * kl_label + (1 - pi) * kl_pred) / (-(1 - pi) * log_1m_pi)).mean()
