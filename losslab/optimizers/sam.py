"""Sharpness-aware minimisation around a base optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

BASES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adamw": torch.optim.AdamW,
}
BASE_DEFAULTS: dict[str, dict[str, Any]] = {"sgd": {"momentum": 0.9}, "adamw": {}}


class SAM(torch.optim.Optimizer):
    r"""Sharpness-aware minimisation (SAM), or adaptive SAM, wrapping SGD or AdamW.

    One step evaluates the objective twice through the closure the training loop
    passes to :meth:`step`:

    .. math::
        \epsilon = \rho \, \frac{T_w^2\, g}{\lVert T_w\, g \rVert_2}, \qquad
        w \leftarrow \mathrm{base\_step}\big(w,\ \nabla L(w + \epsilon)\big)

    with :math:`g = \nabla L(w)`, :math:`T_w = I` for SAM and
    :math:`T_w = \mathrm{diag}(|w|)` for adaptive SAM (the norm is over all
    parameters together).

    Args:
        params: parameters (or parameter groups) to optimise.
        base: ``sgd`` or ``adamw``.
        lr: learning rate of the base optimizer.
        weight_decay: weight decay of the base optimizer.
        rho: neighbourhood radius, > 0.
        adaptive: adaptive SAM (scale-invariant neighbourhood).
        base_kwargs: further arguments of the base optimizer (default: momentum
            0.9 for SGD, none for AdamW).

    References:
        Foret, Kleiner, Mobahi, Neyshabur. "Sharpness-Aware Minimization for
        Efficiently Improving Generalization", ICLR 2021, arXiv:2010.01412.
        Kwon, Kim, Park, Choi. "ASAM: Adaptive Sharpness-Aware Minimization",
        ICML 2021, arXiv:2102.11600.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        base: str = "sgd",
        lr: float = 0.1,
        weight_decay: float = 0.0,
        rho: float = 0.05,
        adaptive: bool = False,
        base_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if base not in BASES:
            raise ValueError(f"optimizer.base={base!r} is invalid; choose one of {sorted(BASES)}")
        if not rho > 0:
            raise ValueError(f"optimizer.rho={rho!r} is invalid: must be > 0")
        super().__init__(params, {"rho": float(rho), "adaptive": bool(adaptive)})
        kwargs = dict(BASE_DEFAULTS[base] if base_kwargs is None else base_kwargs)
        self.base = BASES[base](self.param_groups, lr=lr, weight_decay=weight_decay, **kwargs)
        # One list of groups: schedulers that change param_groups[i]["lr"] reach the base.
        self.param_groups = self.base.param_groups
        self.defaults.update(self.base.defaults)

    @torch.no_grad()
    def _perturb(self) -> None:
        scaled = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    weight = p.abs() if group["adaptive"] else 1.0
                    scaled.append((weight * p.grad).norm(2))
        if not scaled:
            return
        norm = torch.stack(scaled).norm(2)
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = (p.pow(2) if group["adaptive"] else 1.0) * p.grad * scale
                p.add_(e)
                self.state[p]["sam_e"] = e

    @torch.no_grad()
    def _restore(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                e = self.state[p].pop("sam_e", None)
                if e is not None:
                    p.sub_(e)

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor:  # type: ignore[override]
        """Two evaluations of ``closure`` (which zeroes the gradients, computes the
        objective and calls backward), then the base optimizer's step."""
        if closure is None:
            raise ValueError("SAM needs a closure that re-evaluates the objective")
        with torch.enable_grad():
            loss = closure()
        self._perturb()
        with torch.enable_grad():
            closure()
        self._restore()
        self.base.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"base": self.base.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict["base"])
        self.param_groups = self.base.param_groups
