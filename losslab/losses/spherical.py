"""The Z-loss of the spherical family (shift- and scale-invariant)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.losses._common import Loss, check, upcast


class SphericalZLoss(Loss):
    r"""Z-loss: a soft hinge on the standardised score of the label.

    .. math::
        \ell(z, y) = \frac{1}{a}\,\mathrm{softplus}\big(a (b - \hat z_y)\big), \qquad
        \hat z = \frac{z - \mathrm{mean}_k z}{\mathrm{std}_k z}

    with the population standard deviation (divisor K). Invariant to adding a
    constant to, or scaling, all logits. A tiny constant (1e-12) under the square
    root keeps constant logits finite.

    Not to be confused with the auxiliary "z-loss" :math:`(\log\sum_k e^{z_k})^2`
    (the ``logz`` regularizer).

    Args:
        a: sharpness of the soft hinge, > 0.
        b: target standardised score of the label.

    References:
        de Brébisson, Vincent. "The Z-loss: a shift and scale invariant classification
        loss belonging to the Spherical Family", 2016, arXiv:1604.08859.
    """

    family = "spherical"

    def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
        super().__init__()
        self.a = check("a", a, lambda v: v > 0, "> 0")
        self.b = check("b", b, lambda v: True, "a finite number")

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        z = upcast(logits)
        var, mean = torch.var_mean(z, dim=-1, correction=0)  # population variance
        z_y = (z.gather(1, target[:, None]).squeeze(1) - mean) / torch.sqrt(var + 1e-12)
        return (F.softplus(self.a * (self.b - z_y)) / self.a).mean()
