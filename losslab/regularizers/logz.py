"""The auxiliary z-loss of large-model training."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.regularizers.base import Regularizer


class LogZRegularizer(Regularizer):
    r"""Batch mean of :math:`(\log \sum_k e^{z_k})^2`, which keeps the soft-max
    normaliser near 1 (not the spherical Z-loss, ``loss=spherical_z``).

    Args:
        weight: multiplier applied by the runner.

    References:
        Chowdhery et al. "PaLM: Scaling Language Modeling with Pathways", 2022,
        arXiv:2204.02311 (auxiliary z-loss); Zoph et al. "ST-MoE", 2022, arXiv:2202.08906.
    """

    def __init__(self, weight: float = 1e-4) -> None:
        super().__init__(weight)

    def forward(self, logits: Tensor, target: Tensor, **extra: object) -> Tensor:
        return torch.logsumexp(logits.float(), dim=-1).pow(2).mean()
