"""Squentropy: cross-entropy plus the mean squared logit of the other classes."""

from __future__ import annotations

from torch import Tensor

from losslab.losses._common import Loss, others_mask, target_log_prob, upcast


class SquentropyLoss(Loss):
    r"""Cross-entropy plus the average square of the incorrect-class logits.

    .. math:: \ell(z, y) = -\log p_y + \frac{1}{K-1}\sum_{k \ne y} z_k^2

    References:
        Hui, Belkin, Wright. "Cut your Losses with Squentropy", ICML 2023,
        arXiv:2302.03952.
    """

    family = "cross-entropy"

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        z = upcast(logits)
        _, logp_y = target_log_prob(z, target)
        k = z.shape[-1]
        squares = (z.pow(2) * others_mask(target, k).to(z.dtype)).sum(dim=-1) / (k - 1)
        return (-logp_y + squares).mean()
