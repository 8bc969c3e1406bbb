"""Asymmetric losses for noisy labels: AGCE and AUL."""

from __future__ import annotations

from torch import Tensor

from losslab.losses._common import Loss, check, sample_ce


class AGCELoss(Loss):
    r"""Asymmetric generalized cross-entropy.

    .. math:: \ell(z, y) = \frac{(a + 1)^{q} - (a + p_y)^{q}}{q}

    Args:
        a: > 0.
        q: > 0.

    References:
        Zhou, Liu, Jiang, Zhai, Ji. "Asymmetric Loss Functions for Learning with Noisy
        Labels", 2021, arXiv:2106.03110.
    """

    family = "asymmetric"

    def __init__(self, a: float = 3.0, q: float = 1.5) -> None:
        super().__init__()
        self.a = check("a", a, lambda v: v > 0, "> 0")
        self.q = check("q", q, lambda v: v > 0, "> 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        p_y = (-sample_ce(logits, target)).exp()
        return (((self.a + 1) ** self.q - (self.a + p_y).pow(self.q)) / self.q).mean()


class AULLoss(Loss):
    r"""Asymmetric unhinged loss.

    .. math:: \ell(z, y) = \frac{(a - p_y)^{q} - (a - 1)^{q}}{q}

    Args:
        a: > 1.
        q: > 0.

    References:
        Zhou, Liu, Jiang, Zhai, Ji. "Asymmetric Loss Functions for Learning with Noisy
        Labels", 2021, arXiv:2106.03110.
    """

    family = "asymmetric"

    def __init__(self, a: float = 6.0, q: float = 1.5) -> None:
        super().__init__()
        self.a = check("a", a, lambda v: v > 1, "> 1")
        self.q = check("q", q, lambda v: v > 0, "> 0")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        p_y = (-sample_ce(logits, target)).exp()
        return (((self.a - p_y).pow(self.q) - (self.a - 1) ** self.q) / self.q).mean()
