"""Squared L2 norm of the logits."""

from __future__ import annotations

from torch import Tensor

from losslab.regularizers.base import Regularizer


class LogitL2Regularizer(Regularizer):
    r"""Batch mean of :math:`\sum_k z_k^2`, which keeps logits small.

    Args:
        weight: multiplier applied by the runner.

    References:
        Dauphin, Cubuk. "Deconstructing the Regularization of BatchNorm", 2021
        (logit penalties as a regularizer), ICLR.
    """

    def __init__(self, weight: float = 1e-3) -> None:
        super().__init__(weight)

    def forward(self, logits: Tensor, target: Tensor, **extra: object) -> Tensor:
        return logits.float().pow(2).sum(dim=-1).mean()
