"""Early-learning regularization."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.regularizers.base import Regularizer


class ELRRegularizer(Regularizer):
    r"""Early-learning regularization: keep predictions close to their running average.

    For the samples of a batch (dataset indices ``index``), the targets are first
    updated without gradient,
    :math:`t_i \leftarrow \beta t_i + (1-\beta)\,\bar p_i`, where :math:`\bar p` is
    :math:`\mathrm{softmax}(z)` clamped to :math:`[10^{-4}, 1-10^{-4}]` and
    renormalised; the term is :math:`\frac1B\sum_i \log(1 - \langle t_i, p_i\rangle)`
    with :math:`p` clamped the same way (so the log stays finite). The targets are
    a buffer ``[num_samples, K]`` (saved in checkpoints), zero at the start.

    Args:
        weight: multiplier applied by the runner (the paper's lambda).
        beta: momentum of the running targets, in [0, 1).
        num_samples: training-set size (passed by the runner).
        num_classes: K (passed by the runner).

    References:
        Liu, Niles-Weed, Razavian, Fernandez-Granda. "Early-Learning Regularization
        Prevents Memorization of Noisy Labels", NeurIPS 2020, arXiv:2007.00151.
    """

    needs = frozenset({"index"})
    run_values = ("num_samples", "num_classes")

    def __init__(
        self, num_samples: int, num_classes: int, weight: float = 3.0, beta: float = 0.7
    ) -> None:
        super().__init__(weight)
        if not 0.0 <= float(beta) < 1.0:
            raise ValueError(f"regularizer.elr.beta={beta!r} is invalid: must be in [0, 1)")
        self.beta = float(beta)
        self.per_sample_state = ("targets",)  # kept consistent across data-parallel ranks
        self.register_buffer("targets", torch.zeros(int(num_samples), int(num_classes)))

    @staticmethod
    def _clamped(logits: Tensor) -> Tensor:
        p = torch.softmax(logits.float(), dim=-1).clamp(1e-4, 1 - 1e-4)
        return p / p.sum(dim=-1, keepdim=True)

    def forward(
        self, logits: Tensor, target: Tensor, *, index: Tensor | None = None, **extra: object
    ) -> Tensor:
        if index is None:
            raise ValueError("regularizer elr keeps per-sample targets and needs index=")
        p = self._clamped(logits)
        with torch.no_grad():
            t = self.beta * self.targets[index] + (1 - self.beta) * p.detach().to(
                self.targets.dtype
            )
            self.targets[index] = t
        inner = (t.to(p.dtype) * p).sum(dim=-1).clamp(max=1 - 1e-4)
        return torch.log1p(-inner).mean()
