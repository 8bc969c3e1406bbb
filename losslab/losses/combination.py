"""Weighted sums of existing losses (active-passive pairs and other combinations)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from losslab.losses._common import Loss


def _instantiate(spec: Any, context: dict[str, Any]) -> nn.Module:
    """A term given as a module, or as a config mapping with ``_target_`` (built with the
    run-time context its constructor names, e.g. ``num_samples``)."""
    if isinstance(spec, nn.Module):
        return spec
    from hydra.utils import get_object, instantiate

    target = get_object(spec["_target_"])
    named = inspect.signature(target).parameters
    return instantiate(spec, **{k: v for k, v in context.items() if k in named})


class WeightedSum(Loss):
    r"""A weighted sum of losses, :math:`\ell = \sum_j w_j \ell_j`.

    Combination losses are configs over this class, not new classes: for example
    ``nce_rce`` is :math:`\alpha \cdot \mathrm{NCE} + \beta \cdot \mathrm{RCE}` with
    ``weights: {nce: ${loss.alpha}, rce: ${loss.beta}}``. The named coefficients
    (``alpha``, ``beta``) sit beside ``terms`` so users override them as
    ``loss.alpha=...``; they take effect through ``weights``.

    Args:
        terms: name -> loss module, or name -> config with ``_target_`` (then built
            here with ``num_samples``/``num_classes`` where the term takes them).
        weights: name -> weight (>= 0), one per term.
        num_samples: forwarded to terms that keep per-sample state.
        num_classes: forwarded to terms that take it.
        **coefficients: the named coefficients the weights refer to (recorded).

    References:
        Ma, Huang, Wang, Romano, Erfani, Bailey. "Normalized Loss Functions for Deep
        Learning with Noisy Labels", 2020, arXiv:2006.13554 (active-passive losses).
    """

    family = "active-passive"

    def __init__(
        self,
        terms: Mapping[str, Any],
        weights: Mapping[str, float],
        num_samples: int | None = None,
        num_classes: int | None = None,
        **coefficients: float,
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("loss.terms is empty: a weighted sum needs at least one term")
        if set(terms) != set(weights):
            raise ValueError(
                f"loss.weights must name every term exactly once: terms {sorted(terms)}, "
                f"weights {sorted(weights)}"
            )
        for name, c in coefficients.items():
            if not isinstance(c, int | float) or isinstance(c, bool) or c < 0:
                raise ValueError(f"loss.{name}={c!r} is invalid: must be a number >= 0")
        for name, w in weights.items():
            if not isinstance(w, int | float) or isinstance(w, bool) or w < 0:
                raise ValueError(f"loss.weights.{name}={w!r} is invalid: must be a number >= 0")
        context = {"num_samples": num_samples, "num_classes": num_classes}
        context = {k: v for k, v in context.items() if v is not None}
        self.terms = nn.ModuleDict(
            {name: _instantiate(spec, context) for name, spec in terms.items()}
        )
        self.weights = {name: float(weights[name]) for name in terms}
        self.coefficients = dict(coefficients)

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        values = [
            self.weights[n] * term(logits, target, index=index) for n, term in self.terms.items()
        ]
        return torch.stack(values).sum()

    def on_epoch_start(self, epoch: int) -> None:
        for term in self.terms.values():
            hook = getattr(term, "on_epoch_start", None)
            if hook is not None:
                hook(epoch)

    def epoch_stats(self, is_noisy: Tensor | None = None) -> dict[str, float]:
        """The terms' own diagnostics, prefixed with the term's name."""
        out: dict[str, float] = {}
        for name, term in self.terms.items():
            stats = getattr(term, "epoch_stats", None)
            if stats is not None:
                out.update({f"{name}/{k}": v for k, v in stats(is_noisy).items()})
        return out
