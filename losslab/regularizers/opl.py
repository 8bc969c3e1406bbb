"""Orthogonal projection loss on penultimate features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.regularizers.base import Regularizer


class OPLRegularizer(Regularizer):
    r"""Orthogonal projection loss: same-class features parallel, others orthogonal.

    On L2-normalised penultimate features :math:`f`,
    :math:`(1 - s) + \gamma\,\lvert d \rvert` with :math:`s` the mean cosine over
    same-class pairs :math:`i \ne j` and :math:`d` the mean cosine over
    different-class pairs of the batch. A batch without same-class pairs (or
    without different-class pairs) has :math:`s = 1` (or :math:`d = 0`): that part
    contributes nothing.

    Args:
        weight: multiplier applied by the runner.
        gamma: weight of the different-class part, >= 0.

    References:
        Ranasinghe, Naseer, Hayat, Khan, Khan. "Orthogonal Projection Loss", ICCV 2021,
        arXiv:2103.14021.
    """

    needs = frozenset({"features"})

    def __init__(self, weight: float = 1.0, gamma: float = 0.5) -> None:
        super().__init__(weight)
        if not float(gamma) >= 0:
            raise ValueError(f"regularizer.opl.gamma={gamma!r} is invalid: must be >= 0")
        self.gamma = float(gamma)

    def forward(
        self, logits: Tensor, target: Tensor, *, features: Tensor | None = None, **extra: object
    ) -> Tensor:
        if features is None:
            raise ValueError("regularizer opl needs features= (penultimate activations)")
        f = F.normalize(features.float().flatten(1), dim=-1)
        cos = f @ f.T
        same = target[:, None] == target[None, :]
        eye = torch.eye(len(target), dtype=torch.bool, device=target.device)
        pos, neg = same & ~eye, ~same
        # Masked means without a host sync: 1 (no positive pair) / 0 (no negative) if empty.
        n_pos, n_neg = pos.sum(), neg.sum()
        s = torch.where(n_pos > 0, (cos * pos).sum() / n_pos.clamp_min(1), 1.0)
        d = torch.where(n_neg > 0, (cos * neg).sum() / n_neg.clamp_min(1), 0.0)
        return (1 - s) + self.gamma * d.abs()
