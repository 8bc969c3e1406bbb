"""Squentropy: cross-entropy plus the mean squared logit of the other classes."""

from __future__ import annotations

from torch import Tensor

from losslab.losses._common import Loss, sample_ce, upcast


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
        z_y = z.gather(1, target[:, None]).squeeze(1)
        squares = (z.pow(2).sum(dim=-1) - z_y.pow(2)) / (z.shape[-1] - 1)
        return (sample_ce(z, target) + squares).mean()
