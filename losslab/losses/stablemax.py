"""Cross-entropy through StableMax instead of softmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.losses._common import Loss, upcast


class StableMaxCELoss(Loss):
    r"""Cross-entropy with the StableMax normalisation, which grows linearly rather
    than exponentially in the logits (avoids softmax collapse).

    .. math::
        \ell(z, y) = -\log \frac{s(z_y)}{\sum_k s(z_k)}, \qquad
        s(x) = \begin{cases} x + 1 & x \ge 0 \\ 1/(1-x) & x < 0 \end{cases}

    References:
        Prieto, Barsbey, Mediano, Birdal. "Grokking at the Edge of Numerical
        Stability", ICLR 2025, arXiv:2501.04697.
    """

    family = "cross-entropy"

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        # log s(x) = sign(x) log(1 + |x|), and -log(s_y / sum_k s_k) is the softmax
        # cross-entropy of the scores log s(z): one fused kernel does the rest.
        z = upcast(logits)
        return F.cross_entropy(torch.copysign(torch.log1p(z.abs()), z), target)
