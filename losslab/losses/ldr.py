"""Label-distributionally robust (LDR) losses: LDR-KL and adaptive ALDR-KL."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from losslab.losses._common import Loss, check, check_choice, upcast

# Below this, log softplus(z) = z - e^z / 2 + ... equals z to far better than float64's
# (and float32's) precision: e^-40 / 2 = 2e-18 against an ulp of 40 of 7e-15.
_LOG_SOFTPLUS_TAIL = -40.0


class _LogSoftplus(torch.autograd.Function):
    """``log(softplus(z))`` and its derivative, exact for every finite ``z``."""

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:
        # softplus(z) = max(z, 0) + log1p(x) with x = e^{-|z|} in (0, 1]. log1p(x) is
        # log(u) corrected for the rounding of u = fl(1 + x) (exact to a few ulps, also
        # for u = 1). torch.log1p and torch.where each cost several times torch.log on
        # CPU (x7 and x2.5 on [1024, 100]), so neither is used.
        zc = z.clamp(min=_LOG_SOFTPLUS_TAIL)  # log softplus(z) = log softplus(zc) + z - zc
        x = zc.abs().neg_().exp_()
        u = x + 1
        lp = u.log().sub_(((u - 1).sub_(x)).div_(u))
        sp = lp.add_(zc.clamp(min=0))  # softplus(zc) >= 2e-18: no underflow
        ctx.save_for_backward(zc, sp)
        return sp.log().add_(z - zc)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        # d/dz log softplus(z) = sigmoid(z) / softplus(z), in (0, 1]; below the tail it is
        # 1 - e^z / 2, which rounds to 1 = its value at the tail.
        zc, sp = ctx.saved_tensors
        return grad * torch.sigmoid(zc).div_(sp)


def log_softplus(z: Tensor) -> Tensor:
    r"""``log(softplus(z))`` elementwise, exact in value and gradient for any finite ``z``.

    Computing ``softplus`` first underflows to 0 below about -745 (float64) or
    -103 (float32) and loses its relative precision before that; this form keeps
    both, e.g. ``log_softplus(-1e4) = -1e4`` with derivative 1. Not twice differentiable.
    """
    return _LogSoftplus.apply(z)


def softplus_scores(z: Tensor) -> Tensor:
    r""":math:`f = s / \mathrm{mean}_k\, s_k` for :math:`s = \mathrm{softplus}(z)`, per row.

    Computed as :math:`K \operatorname{softmax}(\log s)`: exact for any finite
    logits, including rows whose every softplus underflows (all logits below
    about -100 in float32), where ``s / s.mean()`` would be 0/0. The scores
    are positive and sum to K.
    """
    return z.shape[-1] * torch.softmax(log_softplus(z), dim=-1)


def mean_abs_scores(z: Tensor) -> Tensor:
    r""":math:`f = z / \mathrm{mean}_k |z_k|` per row, exact for any finite logits.

    Each row is first divided by its largest :math:`|z_k|` (at least the smallest
    normal number, a power of 2, so the division is exact), so that the mean
    neither underflows nor overflows. A row of zeros gives zeros (the ratio has no
    value there).
    """
    tiny = torch.finfo(z.dtype).tiny
    # f does not depend on the scale, so it needs no gradient (f = (z/c) / mean|z/c|)
    top = z.detach().abs().amax(dim=-1, keepdim=True).clamp_min(tiny)
    u = z / top
    return u / u.abs().mean(dim=-1, keepdim=True).clamp_min(tiny)


NORMALIZATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "softplus_mean": softplus_scores,
    "none": lambda z: z,
}


def kl_smoothed_max(scores: Tensor, target: Tensor, margin: float, lam: Tensor | float) -> Tensor:
    r"""``lam * log(mean_k exp(d_k / lam))`` per row ``[B]``, with
    ``d_k = margin [k != y] + f_k - f_y``; ``lam`` is a number or a tensor ``[B]``.

    Uses :math:`\log\sum_k e^{d_k/\lambda} = \mathrm{CE}(u, y)` for
    :math:`u = (f - \text{margin}\,e_y)/\lambda` (cross-entropy is shift-invariant,
    so adding the margin to every class but y equals subtracting it at y): one
    fused, stable cross-entropy kernel instead of a chain of [B, K] operations.
    """
    lam_col = lam[:, None] if isinstance(lam, Tensor) else lam
    shifted = scores.scatter_add(1, target[:, None], scores.new_full((scores.shape[0], 1), -margin))
    return lam * (
        F.cross_entropy(shifted / lam_col, target, reduction="none") - math.log(scores.shape[-1])
    )


def require_index(index: Tensor | None, num_samples: int, who: str) -> Tensor:
    """Check the dataset indices a stateful loss needs; on CUDA without a host sync."""
    if index is None:
        raise ValueError(f"{who} keeps per-sample state and needs index= (the dataset positions)")
    if index.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{who}: index must be an integer tensor, got {index.dtype}")
    if index.device.type == "cpu":
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_samples):
            raise IndexError(
                f"{who}: index out of range [0, {num_samples}): "
                f"min {int(index.min())}, max {int(index.max())}"
            )
    else:
        torch._assert_async(((index >= 0) & (index < num_samples)).all())
    return index


class LDRKLLoss(Loss):
    r"""LDR-KL loss: the worst case over label distributions with a KL penalty.

    .. math::
        \ell(z, y) = \lambda \log\Big(\frac{1}{K}\sum_k
                     \exp\big((\text{margin}\,[k \ne y] + f_k - f_y)/\lambda\big)\Big)

    on scores ``f``: ``softplus_mean`` uses :math:`f = \mathrm{softplus}(z) /
    \mathrm{mean}_k\,\mathrm{softplus}(z)` (the paper's default), ``none`` uses
    :math:`f = z`. With ``normalize=none``, margin 0 and :math:`\lambda = 1` it is
    cross-entropy minus :math:`\log K`; as :math:`\lambda \to 0` it tends to the
    Crammer-Singer loss on the same scores.

    Args:
        lam: KL regularisation strength :math:`\lambda` > 0.
        margin: >= 0.
        normalize: ``softplus_mean`` or ``none``.

    References:
        Zhu, Ying, Yang. "Label Distributionally Robust Losses for Multi-class
        Classification: Consistency, Robustness and Adaptivity", ICML 2023,
        arXiv:2112.14869.
    """

    family = "distributionally robust"

    def __init__(
        self, lam: float = 10.0, margin: float = 0.1, normalize: str = "softplus_mean"
    ) -> None:
        super().__init__()
        self.lam = check("lam", lam, lambda v: v > 0, "> 0")
        self.margin = check("margin", margin, lambda v: v >= 0, ">= 0")
        self.normalize = check_choice("normalize", normalize, tuple(NORMALIZATIONS))
        self._scores = NORMALIZATIONS[normalize]

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        f = self._scores(upcast(logits))
        return kl_smoothed_max(f, target, self.margin, self.lam).mean()


class ALDRKLLoss(Loss):
    r"""ALDR-KL: LDR-KL with an adaptive, per-sample :math:`\lambda_i`.

    Scores are :math:`f = s / (\lVert s \rVert_1 / K)` per row, with
    :math:`s = \mathrm{softplus}(z)` if ``softplus`` else :math:`s = z`. For each
    sample in a batch, without gradient:

    .. math::
        q = \operatorname{softmax}(f / \lambda_i), \quad
        \mathrm{KL}_i = \sum_k q_k \log(K q_k), \quad
        \lambda_i \leftarrow \lambda_0 \Big(1 - \frac{\mathrm{KL}_i}{\alpha \log K}\Big)

    (stored), then with the updated :math:`\lambda_i` and
    :math:`d_k = \text{margin}\,[k \ne y] + f_k - f_y`:

    .. math::
        \ell_i = \lambda_i \log\Big(\frac{1}{K}\sum_k e^{d_k/\lambda_i}\Big)
                 - \frac{\alpha \log K}{2\lambda_0} (\lambda_i - \lambda_0)^2

    Since :math:`0 \le \mathrm{KL}_i \le \log K`, :math:`\lambda_i \in
    [\lambda_0(1 - 1/\alpha), \lambda_0]`, which is why ``alpha`` must exceed 1.
    :math:`\mathrm{KL}_i` is computed from log-softmax (no smoothing constant).

    Args:
        lam0: the reference :math:`\lambda_0` > 0 (and the initial :math:`\lambda_i`).
        alpha: > 1.
        margin: >= 0.
        softplus: apply softplus before normalising the scores.
        num_samples: training-set size (passed by the runner); one :math:`\lambda_i` each.

    References:
        Zhu, Ying, Yang. "Label Distributionally Robust Losses for Multi-class
        Classification: Consistency, Robustness and Adaptivity", ICML 2023,
        arXiv:2112.14869.
    """

    family = "distributionally robust"
    run_values = ("num_samples",)

    def __init__(
        self,
        num_samples: int,
        lam0: float = 10.0,
        alpha: float = 2.0,
        margin: float = 0.1,
        softplus: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(
                f"ALDR-KL needs num_samples >= 1 (the training-set size), got {num_samples!r}"
            )
        self.lam0 = check("lam0", lam0, lambda v: v > 0, "> 0")
        self.alpha = check("alpha", alpha, lambda v: v > 1, "> 1")
        self.margin = check("margin", margin, lambda v: v >= 0, ">= 0")
        self.softplus = bool(softplus)
        self.num_samples = num_samples
        self.per_sample_state = ("lam",)  # kept consistent across data-parallel ranks
        self.register_buffer("lam", torch.full((num_samples,), self.lam0, dtype=torch.float64))

    def scores(self, logits: Tensor) -> Tensor:
        """The normalised scores ``f`` [B, K] (see the class docstring)."""
        return softplus_scores(logits) if self.softplus else mean_abs_scores(logits)

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        index = require_index(index, self.num_samples, "ALDR-KL")
        f = self.scores(upcast(logits))
        k = f.shape[-1]
        log_k = math.log(k)
        with torch.no_grad():
            lam_old = self.lam[index].to(f.dtype)[:, None]
            logq = torch.log_softmax(f / lam_old, dim=-1)
            kl = (logq.exp() * logq).sum(dim=-1) + log_k  # sum_k q_k log(K q_k)
            lam = self.lam0 * (1 - kl / (self.alpha * log_k))
            self.lam[index] = lam.to(self.lam.dtype)
        penalty = self.alpha * log_k / (2 * self.lam0) * (lam - self.lam0) ** 2
        return (kl_smoothed_max(f, target, self.margin, lam) - penalty).mean()

    def epoch_stats(self, is_noisy: Tensor | None = None) -> dict[str, float]:
        """Mean :math:`\\lambda_i`, and over clean and noisy samples when noise is on."""
        lam = self.lam
        stats = {"lam_mean": float(lam.mean())}
        if is_noisy is not None and bool(is_noisy.any()):
            noisy = is_noisy.to(lam.device)
            stats["lam_mean_noisy"] = float(lam[noisy].mean())
            if bool((~noisy).any()):
                stats["lam_mean_clean"] = float(lam[~noisy].mean())
        return stats
