"""Cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class CrossEntropyLoss(nn.Module):
    r"""Cross-entropy, the reference every other loss is compared with.

    .. math:: \ell(z, y) = -\log p_y, \qquad p = \operatorname{softmax}(z)

    Computed from log-softmax in float32 or wider (also under bf16 autocast),
    so it is finite for any finite logits.

    References:
        Good, "Rational Decisions", Journal of the Royal Statistical Society B, 1952
        (the logarithmic scoring rule).
    """

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        return F.cross_entropy(logits, target)
