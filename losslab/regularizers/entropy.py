"""Predictive-entropy penalty (confidence penalty) or bonus."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.regularizers.base import Regularizer


class EntropyRegularizer(Regularizer):
    r"""Batch mean of :math:`\mp H(p)`, :math:`H(p) = -\sum_k p_k \log p_k`.

    ``mode="maximize"`` returns :math:`-H(p)`, so adding it with a positive
    weight rewards high entropy (the confidence penalty); ``mode="minimize"``
    returns :math:`+H(p)` (entropy minimisation).

    Args:
        weight: multiplier applied by the runner.
        mode: ``maximize`` or ``minimize``.

    References:
        Pereyra, Tucker, Chorowski, Kaiser, Hinton. "Regularizing Neural Networks by
        Penalizing Confident Output Distributions", 2017, arXiv:1701.06548.
    """

    MODES = ("maximize", "minimize")

    def __init__(self, weight: float = 0.1, mode: str = "maximize") -> None:
        super().__init__(weight)
        if mode not in self.MODES:
            raise ValueError(
                f"regularizer.entropy.mode='{mode}' is invalid; choose one of {self.MODES}"
            )
        self.sign = -1.0 if mode == "maximize" else 1.0

    def forward(self, logits: Tensor, target: Tensor, **extra: object) -> Tensor:
        logp = torch.log_softmax(logits.float(), dim=-1)
        entropy = -(logp.exp() * logp).sum(dim=-1)
        return self.sign * entropy.mean()
