"""Mixup and CutMix: mix each training batch with a permutation of itself.

The training objective becomes ``lam * L(z, y) + (1 - lam) * L(z, y[perm])`` for
any loss and regularizer (each called through its own contract, with the
permuted labels and dataset indices for the second term). ``lam`` and the
permutation come from a generator seeded by ``(seed, epoch)``, so runs that
share ``seed`` mix the same pairs with the same weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from losslab.datasets.loader import MIXING_STREAM, epoch_seed


@dataclass(frozen=True)
class Mix:
    """One mixed batch: the inputs, the partner permutation and the label weight."""

    inputs: Tensor
    perm: Tensor
    lam: float


class Mixing:
    """Draws Mixup or CutMix for each batch.

    Args:
        mixup_alpha: Beta(alpha, alpha) parameter of Mixup; 0 turns it off.
        cutmix_alpha: Beta(alpha, alpha) parameter of CutMix; 0 turns it off.
            With both on, each batch uses one of them with probability 1/2.

    References:
        Zhang, Cisse, Dauphin, Lopez-Paz. "mixup: Beyond Empirical Risk Minimization",
        ICLR 2018, arXiv:1710.09412. Yun et al. "CutMix: Regularization Strategy to
        Train Strong Classifiers with Localizable Features", ICCV 2019, arXiv:1905.04899.
    """

    def __init__(self, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> None:
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"augment.{name}={value!r} is invalid: must be a number >= 0")
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    @staticmethod
    def generator(seed: int, epoch: int) -> torch.Generator:
        """The generator of one epoch's mixing draws (stream ``MIXING_STREAM`` of
        :func:`~losslab.datasets.loader.epoch_seed`)."""
        g = torch.Generator()
        g.manual_seed(epoch_seed(seed, epoch, MIXING_STREAM))
        return g

    def draw(self, x: Tensor, generator: torch.Generator) -> Mix:
        """Mix the batch ``x`` with ``x[perm]``; CutMix needs images ``[B, C, H, W]``."""
        use_cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha == 0 or float(torch.rand((), generator=generator)) < 0.5
        )
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = _beta(alpha, generator)
        perm = torch.randperm(x.shape[0], generator=generator)
        if x.device.type == "cuda":  # pinned + non-blocking: no wait for the GPU's queue
            perm = perm.pin_memory().to(x.device, non_blocking=True)
        else:
            perm = perm.to(x.device)
        if not use_cutmix:
            return Mix(lam * x + (1 - lam) * x[perm], perm, lam)
        if x.ndim != 4:
            raise ValueError(f"CutMix needs image batches [B, C, H, W], got shape {list(x.shape)}")
        h, w = x.shape[-2:]
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy = int(torch.randint(0, h, (), generator=generator))
        cx = int(torch.randint(0, w, (), generator=generator))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = x.clone()
        mixed[:, :, y0:y1, x0:x1] = x[perm][:, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)  # the share of the image that is x's own
        return Mix(mixed, perm, lam)


def _beta(alpha: float, generator: torch.Generator) -> float:
    """A Beta(alpha, alpha) draw from ``generator``: X / (X + Y) with X, Y ~ Gamma(alpha)."""
    g = torch._standard_gamma(torch.full((2,), alpha, dtype=torch.float64), generator=generator)
    return float(g[0] / (g[0] + g[1]))
