"""Split metrics from a full tensor of logits, computed on the logits' device.

Each function is pure: it takes logits ``[N, K]`` (any float dtype; computed in
float64 for exact sums) and integer targets ``[N]`` and returns tensors; only
:func:`classification_metrics` converts to Python floats, once per call.
"""

from __future__ import annotations

import torch
from torch import Tensor


def binned_calibration(
    confidence: Tensor, correct: Tensor, n_bins: int = 15
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bin sample counts, mean accuracy and mean confidence.

    Bins are equal-width over [0, 1] and right-closed: bin ``b`` (0-based)
    holds confidences in ``(b/n_bins, (b+1)/n_bins]``; a confidence of exactly 0
    goes to the first bin.

    Args:
        confidence: ``[N]`` values in [0, 1].
        correct: ``[N]`` 0/1 (bool or float) outcome for each sample.
        n_bins: number of bins (>= 1).

    Returns:
        ``(count [n_bins], acc [n_bins], conf [n_bins])``; ``acc`` and ``conf`` are 0
        where a bin is empty.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins} is invalid: must be >= 1")
    confidence = confidence.to(torch.float64)
    correct = correct.to(torch.float64)
    # ceil(c * n) - 1 maps (b/n, (b+1)/n] to b; clamp puts 0 in bin 0.
    bins = (torch.ceil(confidence * n_bins).long() - 1).clamp_(0, n_bins - 1)
    count = torch.zeros(n_bins, dtype=torch.float64, device=confidence.device)
    acc_sum = torch.zeros_like(count)
    conf_sum = torch.zeros_like(count)
    count.index_add_(0, bins, torch.ones_like(confidence))
    acc_sum.index_add_(0, bins, correct)
    conf_sum.index_add_(0, bins, confidence)
    denom = count.clamp_min(1.0)
    return count, acc_sum / denom, conf_sum / denom


def expected_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> Tensor:
    r"""Top-label ECE with equal-width bins.

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{N}\,\lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert

    over bins of the top-label confidence :math:`\max_k p_k` (see
    :func:`binned_calibration`).

    Args:
        probs: ``[N, K]`` predicted probabilities.
        target: ``[N]`` true classes.
        n_bins: number of equal-width bins.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
        >>> round(float(expected_calibration_error(p, torch.tensor([0, 1]), n_bins=10)), 6)
        0.35
    """
    conf, pred = probs.max(dim=-1)
    count, acc, mean_conf = binned_calibration(conf, pred == target, n_bins)
    return (count / count.sum().clamp_min(1.0) * (acc - mean_conf).abs()).sum()


def predictive_entropy(logits: Tensor) -> Tensor:
    r"""Per-sample entropy :math:`H(p) = -\sum_k p_k \log p_k` in nats, ``[N]``."""
    logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def classification_metrics(logits: Tensor, target: Tensor, n_bins: int = 15) -> dict[str, float]:
    """Metrics of one split from its logits, in one pass on the logits' device.

    Returns ``acc`` (top-1 accuracy), ``nll`` (mean negative log-likelihood,
    nats), ``ece`` (top-label ECE, ``n_bins`` equal-width bins) and ``entropy``
    (mean predictive entropy, nats).

    Args:
        logits: ``[N, K]``.
        target: ``[N]`` int64 classes.
        n_bins: bins for the calibration metrics.

    Example:
        >>> m = classification_metrics(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        >>> m["acc"]
        0.5
    """
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"expected logits [N, K] and target [N], got {list(logits.shape)} and {list(target.shape)}"
        )
    if logits.shape[0] == 0:
        raise ValueError("cannot compute metrics on an empty split")
    logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
    probs = logp.exp()
    target = target.to(device=logits.device, dtype=torch.int64)
    values = torch.stack(
        [
            (probs.argmax(dim=-1) == target).to(torch.float64).mean(),
            -logp.gather(1, target[:, None]).mean(),
            expected_calibration_error(probs, target, n_bins),
            -(probs * logp).sum(dim=-1).mean(),
        ]
    ).tolist()  # the single device-to-host transfer
    return dict(zip(("acc", "nll", "ece", "entropy"), values, strict=True))
