"""AnyLoss: one minus a classification metric computed on a soft confusion matrix."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from losslab.losses._common import Loss, check, check_choice, upcast

_EPS = 1e-12


def _f1(tp: Tensor, fp: Tensor, fn: Tensor, n: int) -> Tensor:
    return (2 * tp / (2 * tp + fp + fn).clamp_min(_EPS)).mean()


def _accuracy(tp: Tensor, fp: Tensor, fn: Tensor, n: int) -> Tensor:
    return tp.sum() / n


def _balanced_accuracy(tp: Tensor, fp: Tensor, fn: Tensor, n: int) -> Tensor:
    return (tp / (tp + fn).clamp_min(_EPS)).mean()


METRICS: dict[str, Callable[[Tensor, Tensor, Tensor, int], Tensor]] = {
    "f1": _f1,
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
}


class AnyLoss(Loss):
    r"""One minus a metric of the batch's soft confusion matrix.

    Soft predictions :math:`a_{ik} = \sigma(L (p_{ik} - 1/2))` approximate the
    one-vs-rest decisions :math:`[p_{ik} > 1/2]`. Per class :math:`k`:
    :math:`TP_k = \sum_i [y_i = k] a_{ik}`, :math:`FP_k = \sum_i [y_i \ne k] a_{ik}`,
    :math:`FN_k = \sum_i [y_i = k](1 - a_{ik})`. Then

    * ``f1``: macro F1, :math:`\frac1K \sum_k 2TP_k / (2TP_k + FP_k + FN_k)`;
    * ``accuracy``: :math:`\sum_k TP_k / B`;
    * ``balanced_accuracy``: mean recall :math:`\frac1K \sum_k TP_k / (TP_k + FN_k)`;

    and :math:`\ell = 1 - M`. A batch-level loss: it is invariant to the order of
    the batch but is not a mean of per-sample terms. A class absent from the
    batch counts with F1 and recall 0 (guarded division by 1e-12).

    Args:
        L: amplifier of the sigmoid approximation, > 0 (the paper uses 73).
        metric: ``f1``, ``accuracy`` or ``balanced_accuracy``.

    References:
        Han, Luo, Hu, Kim, Zhu. "AnyLoss: Transforming Classification Metrics into
        Loss Functions", KDD 2024, arXiv:2405.14745.
    """

    family = "metric-derived"

    def __init__(self, L: float = 73.0, metric: str = "f1") -> None:
        super().__init__()
        self.L = check("L", L, lambda v: v > 0, "> 0")
        self.metric = check_choice("metric", metric, tuple(METRICS))
        self._metric = METRICS[metric]

    def forward(self, logits: Tensor, target: Tensor, *, index: Tensor | None = None) -> Tensor:
        p = torch.softmax(upcast(logits), dim=-1)
        a = torch.sigmoid(self.L * (p - 0.5))
        k = a.shape[-1]
        a_y = a.gather(1, target[:, None]).squeeze(1)
        tp = torch.zeros(k, dtype=a.dtype, device=a.device).index_add(0, target, a_y)
        fp = a.sum(dim=0) - tp  # column sums over samples of other classes
        counts = torch.zeros(k, dtype=a.dtype, device=a.device)  # bincount would sync on CUDA
        fn = counts.index_add(0, target, torch.ones_like(a_y)) - tp
        return 1 - self._metric(tp, fp, fn, target.shape[0])
