"""Weighted sums of existing losses (active-passive pairs and other combinations)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from losslab.losses._common import Loss


class WeightedSum(Loss):
    r"""A weighted sum of losses, :math:`\ell = \sum_j w_j \ell_j`.

    Combination losses are configs over this class, not new classes: for example
    ``nce_rce`` is :math:`\alpha \cdot \mathrm{NCE} + \beta \cdot \mathrm{RCE}` with
    ``weights: {nce: ${loss.alpha}, rce: ${loss.beta}}``. The named coefficients
    (``alpha``, ``beta``) sit beside ``terms`` so users override them as
    ``loss.alpha=...``; they take effect through ``weights``.

    In a config the terms are nested ``_target_`` nodes, which Hydra builds
    (recursively) before this class; the runner gives each term the run values
    it declares (``num_samples`` for a term with per-sample state, see
    :class:`~losslab.losses._common.Loss`), so the sum itself declares none.

    Args:
        terms: name -> loss module (built).
        weights: name -> weight (>= 0), one per term.
        **coefficients: the named coefficients the weights refer to (recorded).

    Raises:
        TypeError: for a term that is not an ``nn.Module``.

    References:
        Ma, Huang, Wang, Romano, Erfani, Bailey. "Normalized Loss Functions for Deep
        Learning with Noisy Labels", 2020, arXiv:2006.13554 (active-passive losses).
    """

    family = "active-passive"

    def __init__(
        self,
        terms: Mapping[str, nn.Module],
        weights: Mapping[str, float],
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
        built = dict(terms)
        for name, term in built.items():
            if not isinstance(term, nn.Module):
                raise TypeError(
                    f"loss.terms.{name} is {type(term).__name__}, not a built loss module "
                    "(a config term is built by Hydra: leave _recursive_ at its default, true)"
                )
        self.terms = nn.ModuleDict(built)
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
