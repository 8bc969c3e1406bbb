"""Cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from losslab.losses._common import Loss, upcast


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
        # the fused mean reduction: one kernel forward and backward
        return F.cross_entropy(upcast(logits), target)
