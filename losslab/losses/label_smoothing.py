"""Label smoothing."""

from __future__ import annotations

from torch import Tensor

from losslab.losses._common import Loss, check, target_log_prob


class LabelSmoothingLoss(Loss):
    r"""Cross-entropy against the smoothed target :math:`(1-\epsilon) e_y + \epsilon/K`.

    .. math:: \ell(z, y) = (1-\epsilon)(-\log p_y) + \epsilon \cdot \frac{1}{K}\sum_k (-\log p_k)

    Args:
        eps: smoothing weight in [0, 1]; 0 is cross-entropy.

    References:
        Szegedy, Vanhoucke, Ioffe, Shlens, Wojna. "Rethinking the Inception
        Architecture for Computer Vision", 2016, arXiv:1512.00567.
    """

    family = "cross-entropy"

    def __init__(self, eps: float = 0.1) -> None:
        super().__init__()
        self.eps = check("eps", eps, lambda v: 0 <= v <= 1, "in [0, 1]")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        logp, logp_y = target_log_prob(logits, target)
        return ((1 - self.eps) * -logp_y + self.eps * -logp.mean(dim=-1)).mean()
