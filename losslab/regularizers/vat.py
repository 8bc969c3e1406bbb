"""Virtual adversarial training."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.regularizers.base import Regularizer


def _unit(d: Tensor) -> Tensor:
    return d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (d.ndim - 1)))


@contextlib.contextmanager
def _frozen_batchnorm_stats(model: nn.Module):
    """BatchNorm layers keep their running statistics while the context is open."""
    saved = [
        (m, m.momentum) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    try:
        for m, _ in saved:
            m.momentum = 0.0
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


def _kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """Batch mean of KL(softmax(p) || softmax(q))."""
    logp = F.log_softmax(p_logits.float(), dim=-1)
    logq = F.log_softmax(q_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(dim=-1).mean()


class VATRegularizer(Regularizer):
    r"""Virtual adversarial training: :math:`\mathrm{KL}(p(x) \,\Vert\, p(x + r_{adv}))`.

    :math:`p(x)` is detached. :math:`r_{adv}` comes from one power iteration:
    :math:`d \sim N(0, I)` normalised per sample, :math:`r = \xi d`,
    :math:`g = \nabla_r \mathrm{KL}(p(x) \Vert p(x + r))`,
    :math:`r_{adv} = \epsilon\, g / \lVert g \rVert` per sample. The power iteration
    uses ``torch.autograd.grad`` with respect to ``r`` only (no gradient lands on
    the model's parameters) and BatchNorm running statistics are frozen during
    the extra forward passes. ``d`` is drawn from the global RNG, which the runner
    seeds and checkpoints.

    Args:
        weight: multiplier applied by the runner.
        eps: norm of the adversarial perturbation, > 0.
        xi: scale of the finite-difference probe, > 0.

    References:
        Miyato, Maeda, Koyama, Ishii. "Virtual Adversarial Training: A Regularization
        Method for Supervised and Semi-Supervised Learning", TPAMI 2018, arXiv:1704.03976.
    """

    needs = frozenset({"model", "inputs"})

    def __init__(self, weight: float = 1.0, eps: float = 1.0, xi: float = 1e-6) -> None:
        super().__init__(weight)
        if not float(eps) > 0:
            raise ValueError(f"regularizer.vat.eps={eps!r} is invalid: must be > 0")
        if not float(xi) > 0:
            raise ValueError(f"regularizer.vat.xi={xi!r} is invalid: must be > 0")
        self.eps, self.xi = float(eps), float(xi)

    def perturbation(self, model: nn.Module, inputs: Tensor, clean_logits: Tensor) -> Tensor:
        """``r_adv`` for ``inputs`` (norm ``eps`` per sample), without touching parameter grads."""
        x = inputs.detach().float()
        r = (self.xi * _unit(torch.randn_like(x))).requires_grad_()
        with _frozen_batchnorm_stats(model), torch.enable_grad():
            divergence = _kl(clean_logits.detach(), model(x + r))
            (grad,) = torch.autograd.grad(divergence, r)
        return self.eps * _unit(grad.detach())

    def forward(
        self,
        logits: Tensor,
        target: Tensor,
        *,
        model: nn.Module | None = None,
        inputs: Tensor | None = None,
        **extra: object,
    ) -> Tensor:
        if model is None or inputs is None:
            raise ValueError("regularizer vat needs model= and inputs=")
        r_adv = self.perturbation(model, inputs, logits)
        with _frozen_batchnorm_stats(model):
            adversarial = model(inputs.detach() + r_adv.to(inputs.dtype))
        return _kl(logits.detach(), adversarial)
