"""Cross-entropy."""

from __future__ import annotations

from torch import Tensor

from losslab.losses._common import Loss, sample_ce


class CrossEntropyLoss(Loss):
    r"""Cross-entropy, the reference every other loss is compared with.

    .. math:: \ell(z, y) = -\log p_y, \qquad p = \operatorname{softmax}(z)

    Computed from log-softmax in at least float32 (also under bf16 autocast),
    so it is finite for any finite logits.

    References:
        Good. "Rational Decisions", Journal of the Royal Statistical Society B, 1952
        (the logarithmic scoring rule).
    """

    family = "cross-entropy"

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        return sample_ce(logits, target).mean()
