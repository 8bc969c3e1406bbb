"""Focal loss."""

from __future__ import annotations

from torch import Tensor

from losslab.losses._common import Loss, check, one_minus_exp, sample_ce


class FocalLoss(Loss):
    r"""Cross-entropy down-weighted on well-classified samples.

    .. math:: \ell(z, y) = -(1 - p_y)^{\gamma} \log p_y

    :math:`1 - p_y` is computed as ``-expm1(log p_y)``, exact near :math:`p_y = 1`.

    Args:
        gamma: focusing parameter >= 0; 0 is cross-entropy.

    References:
        Lin, Goyal, Girshick, He, Dollár. "Focal Loss for Dense Object Detection",
        2017, arXiv:1708.02002. Calibration: Mukhoti et al., "Calibrating Deep
        Neural Networks using Focal Loss", 2020, arXiv:2002.09437.
    """

    family = "cross-entropy"

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = check("gamma", gamma, lambda v: v >= 0, ">= 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp_y = -sample_ce(logits, target)
        # clamp keeps the gradient of x**gamma finite at x = 0 when gamma < 1
        weight = one_minus_exp(logp_y).clamp_min(1e-30).pow(self.gamma) if self.gamma else 1.0
        return (-weight * logp_y).mean()
