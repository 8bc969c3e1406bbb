"""KL divergence of the batch's mean prediction from a class prior."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.regularizers.base import Regularizer

PRIORS = ("uniform", "class_frequency")


class PriorKLRegularizer(Regularizer):
    r""":math:`\mathrm{KL}(\bar p \,\Vert\, \pi)` with :math:`\bar p = \frac1B \sum_i \mathrm{softmax}(z_i)`.

    Penalises predictions that collapse onto few classes; :math:`\pi` is uniform
    or the training class frequencies.

    Args:
        weight: multiplier applied by the runner.
        prior: ``uniform`` or ``class_frequency``.
        num_classes: K (passed by the runner).
        class_counts: training labels per class, ``[K]`` (passed by the runner).

    References:
        Tanaka, Ikami, Yamasaki, Aizawa. "Joint Optimization Framework for Learning
        with Noisy Labels", CVPR 2018, arXiv:1803.11364.
    """

    run_values = ("num_classes", "class_counts")

    def __init__(
        self,
        weight: float = 1.0,
        prior: str = "uniform",
        num_classes: int | None = None,
        class_counts: Tensor | None = None,
    ) -> None:
        super().__init__(weight)
        if prior not in PRIORS:
            raise ValueError(
                f"regularizer.prior_kl.prior={prior!r} is invalid; choose one of {list(PRIORS)}"
            )
        self.prior = prior
        if prior == "class_frequency":
            if class_counts is None:
                raise ValueError(
                    "regularizer.prior_kl.prior=class_frequency needs the class counts"
                )
            counts = torch.as_tensor(class_counts, dtype=torch.float64).clamp_min(1e-12)
            self.register_buffer("pi", counts / counts.sum())
        else:
            self.pi = None

    def forward(self, logits: Tensor, target: Tensor, **extra: object) -> Tensor:
        p_bar = torch.softmax(logits.float(), dim=-1).mean(dim=0).clamp_min(1e-12)
        k = p_bar.shape[-1]
        pi = self.pi.to(p_bar) if self.pi is not None else torch.full_like(p_bar, 1.0 / k)
        return (p_bar * (p_bar.log() - pi.log())).sum()
