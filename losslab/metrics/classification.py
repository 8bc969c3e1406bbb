r"""Split metrics from a full tensor of logits, computed on the logits' device.

Each function is pure: it takes logits ``[N, K]`` (any float dtype; computed in
float64 for exact sums) or probabilities, and integer targets ``[N]``, and
returns tensors without synchronising with the host; only
:func:`classification_metrics` and :func:`reliability_bins` convert to Python
values, with a single device-to-host transfer per call (:func:`to_python`).

Conventions shared by every metric:

- the predicted class is the first index of the largest logit (``argmax``);
- the confidence of a sample is its top-label probability :math:`\max_k p_k`;
- a sample is *correct* when its predicted class is the target.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from losslab.metrics.calibration import (
    adaptive_ece_of_sorted,
    bin_means,
    binned_calibration,
    check_bins,
    classwise_calibration_error,
    ece_of_sums,
    expected_calibration_error,
    mce_of_sums,
    top_label_sums,
)

__all__ = [
    "METRIC_KEYS",
    "area_under_risk_coverage",
    "binned_calibration",
    "brier_score",
    "check_inputs",
    "classification_metrics",
    "entropy_of_log_probs",
    "expected_calibration_error",
    "metrics_and_reliability",
    "reliability_bins",
    "target_rank",
    "to_python",
]

#: Keys of :func:`classification_metrics`, in order (``acc_top5`` only when K >= 5).
METRIC_KEYS = (
    "acc",
    "acc_top5",
    "nll",
    "brier",
    "ece",
    "ece_adaptive",
    "ece_classwise",
    "mce",
    "entropy",
    "entropy_correct",
    "entropy_incorrect",
    "aurc",
)


def check_inputs(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Validate shapes and bring targets to the logits' device without a host sync.

    Args:
        logits: ``[N, K]`` with ``N >= 1``.
        target: ``[N]`` integer classes.

    Returns:
        ``(target, valid)``: int64 targets on the logits' device, clamped to ``[0, K)`` so
        that indexing never fails on the device, and a 0-dim bool tensor that is False when
        any target was out of range. Callers transfer ``valid`` with their results and raise
        afterwards (see :func:`to_python`).

    Raises:
        ValueError: on mismatched shapes or an empty split.
    """
    if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"expected logits [N, K] and target [N], got {list(logits.shape)} and {list(target.shape)}"
        )
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"cannot compute metrics on an empty split (logits {list(logits.shape)})")
    if target.is_floating_point() or target.is_complex():
        raise ValueError(f"target must hold integer classes, got dtype {target.dtype}")
    target = target.to(device=logits.device, dtype=torch.int64)
    k = logits.shape[1]
    valid = ((target >= 0) & (target < k)).all()
    return target.clamp(0, k - 1), valid


def to_python(values: list[Tensor], valid: Tensor, k: int) -> list[float | None]:
    """Move tensors to the host in one transfer; non-finite values become None.

    Args:
        values: tensors on one device (0-dim or not; they are flattened in order).
        valid: 0-dim bool from :func:`check_inputs`.
        k: number of classes (for the error message).

    Returns:
        The entries as Python floats, None where one is NaN or infinite (not valid JSON).

    Raises:
        ValueError: when ``valid`` is False (a target outside ``[0, K)``).
    """
    flat = [v.reshape(-1).to(torch.float64) for v in (*values, valid)]
    *host, ok = torch.cat(flat).tolist()  # the single device-to-host transfer
    if ok != 1.0:
        raise ValueError(f"target holds classes outside [0, {k})")
    return [v if math.isfinite(v) else None for v in host]


def entropy_of_log_probs(logp: Tensor, probs: Tensor | None = None) -> Tensor:
    r"""Per-sample predictive entropy :math:`H(p) = -\sum_k p_k \log p_k` in nats.

    Args:
        logp: ``[N, K]`` log-probabilities (``log_softmax`` of the logits).
        probs: ``logp.exp()`` when the caller already has it.

    Returns:
        ``[N]`` in the dtype of ``logp``; the metrics ``entropy*`` are its means.

    Example:
        >>> logp = torch.log_softmax(torch.zeros(1, 4, dtype=torch.float64), dim=-1)
        >>> entropy_of_log_probs(logp).tolist() == [math.log(4)]
        True
    """
    if probs is None:
        probs = logp.exp()
    return -(probs * logp).sum(dim=-1)


def target_rank(logits: Tensor, target: Tensor) -> Tensor:
    """Rank of the target among the classes, 0 for the predicted class.

    The rank counts the classes with a larger logit, plus those with an equal logit
    and a smaller index: the order of a stable sort by descending logit, so that
    ``rank == 0`` exactly when ``argmax`` (first index on ties) is the target, and
    ``rank < k`` is top-``k`` correctness.

    Args:
        logits: ``[N, K]`` logits or log-probabilities.
        target: ``[N]`` int64 classes in ``[0, K)``.

    Returns:
        ``[N]`` int64.

    Example:
        >>> target_rank(torch.tensor([[1.0, 3.0, 2.0], [1.0, 1.0, 0.0]]), torch.tensor([2, 1]))
        tensor([1, 1])
    """
    at_target = logits.gather(1, target[:, None])
    index = torch.arange(logits.shape[1], device=logits.device)
    ahead = (logits > at_target) | ((logits == at_target) & (index < target[:, None]))
    return ahead.sum(dim=1)


def brier_score(probs: Tensor, target: Tensor) -> Tensor:
    r"""Multi-class Brier score, per sample.

    .. math:: \mathrm{BS}_i = \sum_k (p_{ik} - [y_i = k])^2

    Args:
        probs: ``[N, K]`` predicted probabilities.
        target: ``[N]`` int64 classes.

    Returns:
        ``[N]`` float64; the metric ``brier`` is its mean.

    Example:
        >>> brier_score(torch.tensor([[0.75, 0.25]]), torch.tensor([1])).tolist()
        [1.125]
    """
    probs = probs.to(torch.float64)
    p_y = probs.gather(1, target.to(probs.device)[:, None]).squeeze(1)
    # sum over k != y of p_k^2, plus (1 - p_y)^2: every term non-negative
    return (probs.square().sum(dim=1) - p_y.square()).clamp_min(0.0) + (1.0 - p_y).square()


def area_under_risk_coverage(confidence: Tensor, correct: Tensor) -> Tensor:
    r"""Area under the risk-coverage curve (AURC) of selective classification.

    Samples are ranked by confidence, descending. At coverage :math:`i/N` the
    classifier keeps the :math:`i` most confident samples and its risk is the
    error rate among them; the AURC is the mean risk over :math:`i = 1..N`:

    .. math:: \mathrm{AURC} = \frac{1}{N} \sum_{i=1}^{N} \frac{E_i}{i},

    where :math:`E_i` is the number of errors among the top :math:`i`.

    Ties: samples with equal confidence cannot be ordered by the score, so
    :math:`E_i` inside a block of tied samples is the expectation over a uniformly
    random order of that block: a block of :math:`m` samples with :math:`e` errors
    that starts after :math:`E` errors contributes :math:`E + j e / m` at its
    :math:`j`-th position. The result is thus independent of the input order; with
    distinct confidences it is the plain definition. Lower is better; a perfect
    ranking of :math:`e` errors among :math:`N` samples gives
    :math:`\frac{1}{N}\sum_{j=1}^{e} \frac{j}{N - e + j}`.

    Everything is fixed-size tensor work (sort, cumulative sums, scatters): no
    host synchronisation.

    Args:
        confidence: ``[N]`` confidence of every sample (higher = kept first).
        correct: ``[N]`` whether each sample is classified correctly.

    Returns:
        0-dim float64 tensor.

    Example:
        >>> conf = torch.tensor([0.9, 0.8, 0.7, 0.6])
        >>> # risks 0, 0, 1/3, 2/4 at coverage 1..4
        >>> round(float(area_under_risk_coverage(conf, torch.tensor([1, 1, 0, 0]))), 6)
        0.208333
    """
    sorted_conf, order = torch.sort(confidence.to(torch.float64), descending=True, stable=True)
    return _aurc_of_sorted(sorted_conf, correct.to(confidence.device)[order])


def _aurc_of_sorted(sorted_conf: Tensor, sorted_correct: Tensor) -> Tensor:
    """:func:`area_under_risk_coverage` of confidences sorted descending, correctness in
    the same order; the order inside a block of tied confidences does not matter."""
    n = sorted_conf.shape[0]
    device = sorted_conf.device
    errors = 1.0 - sorted_correct.to(torch.float64)
    # block id of every sorted position: a new block starts where the confidence changes
    starts = torch.ones(n, dtype=torch.int64, device=device)
    starts[1:] = (sorted_conf[1:] != sorted_conf[:-1]).long()
    block = starts.cumsum(0) - 1
    block_err = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, block, errors)
    block_size = torch.zeros_like(block_err).index_add_(0, block, torch.ones_like(errors))
    err_before = (block_err.cumsum(0) - block_err)[block]
    pos_before = (block_size.cumsum(0) - block_size)[block]
    position = torch.arange(1, n + 1, device=device, dtype=torch.float64)  # i = 1..N
    within = position - pos_before  # j = 1..m inside the block
    expected_errors = err_before + within * block_err[block] / block_size[block]
    return (expected_errors / position).mean()


def classification_metrics(
    logits: Tensor, target: Tensor, n_bins: int = 15
) -> dict[str, float | None]:
    r"""Metrics of one split from its logits, in one pass on the logits' device.

    With :math:`p = \mathrm{softmax}(z)` (float64), :math:`\hat y = \arg\max_k z_k`,
    confidence :math:`c = \max_k p_k` and :math:`H(p) = -\sum_k p_k \log p_k`:

    - ``acc``: :math:`\frac1N \sum_i [\hat y_i = y_i]`;
    - ``acc_top5``: share of samples whose target is among the 5 largest logits (ties
      broken by the lower class index, see :func:`target_rank`); only when ``K >= 5``;
    - ``nll``: :math:`-\frac1N \sum_i \log p_{i y_i}` (nats);
    - ``brier``: :math:`\frac1N \sum_i \sum_k (p_{ik} - [y_i = k])^2`;
    - ``ece``: :math:`\sum_b \frac{n_b}{N} \lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert`
      over ``n_bins`` equal-width right-closed bins of :math:`c`
      (:func:`~losslab.metrics.calibration.top_label_ece`);
    - ``ece_adaptive``: the same over ``n_bins`` equal-mass bins: samples sorted by
      :math:`c` (stable) and cut into contiguous groups whose sizes differ by at most one
      (:func:`~losslab.metrics.calibration.top_label_adaptive_ece`);
    - ``ece_classwise``: per class :math:`k`, the ECE of :math:`p_k` against
      :math:`[y = k]` over equal-width bins, averaged over the classes
      (:func:`~losslab.metrics.calibration.classwise_calibration_error`);
    - ``mce``: :math:`\max_b \lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert` over the
      non-empty equal-width bins;
    - ``entropy``, ``entropy_correct``, ``entropy_incorrect``: mean :math:`H(p)` (nats) over
      all, the correctly and the incorrectly classified samples;
    - ``aurc``: area under the risk-coverage curve ranked by :math:`c`, ties averaged
      (:func:`area_under_risk_coverage`).

    Values are Python floats, or None where a value is undefined: an empty group
    (``entropy_correct`` when nothing is correct, ``entropy_incorrect`` when everything
    is) or a non-finite result (non-finite logits). The dict is valid JSON as is.

    Args:
        logits: ``[N, K]``, ``N >= 1``, any float dtype.
        target: ``[N]`` integer classes in ``[0, K)``.
        n_bins: bins for the calibration metrics.

    Returns:
        ``{key: float | None}`` with the keys of :data:`METRIC_KEYS` in that order
        (without ``acc_top5`` when ``K < 5``).

    Raises:
        ValueError: on mismatched shapes, an empty split, ``n_bins < 1`` or a target
            outside ``[0, K)``.

    Example:
        >>> m = classification_metrics(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
        >>> m["acc"], m["entropy_incorrect"] is not None, "acc_top5" in m
        (0.5, True, False)
    """
    values, _, valid = _split_tensors(logits, target, n_bins)
    host = to_python(list(values.values()), valid, logits.shape[1])
    return dict(zip(values, host, strict=True))


def metrics_and_reliability(
    logits: Tensor, target: Tensor, n_bins: int = 15
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """:func:`classification_metrics` and :func:`reliability_bins` of one split together:
    one pass over the logits (the reliability diagram is made of the ``ece`` bins) and one
    device-to-host transfer.

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
        >>> metrics, bins = metrics_and_reliability(z, y, n_bins=2)
        >>> metrics == classification_metrics(z, y, 2), bins == reliability_bins(z, y, 2)
        (True, True)
    """
    values, (count, acc, conf), valid = _split_tensors(logits, target, n_bins)
    host = to_python([*values.values(), count, acc, conf], valid, logits.shape[1])
    metrics = dict(zip(values, host[: len(values)], strict=True))
    return metrics, _reliability_dict(host[len(values) :], n_bins)


def _reliability_dict(host: list[float | None], n_bins: int) -> dict[str, Any]:
    return {
        "n_bins": n_bins,
        "count": host[:n_bins],
        "acc": host[n_bins : 2 * n_bins],
        "conf": host[2 * n_bins :],
    }


def _split_tensors(
    logits: Tensor, target: Tensor, n_bins: int
) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor, Tensor], Tensor]:
    """The metrics of :func:`classification_metrics` as device tensors, the reliability
    bins (count, accuracy, confidence) and the validity flag of :func:`check_inputs`.

    Shared work is done once: the equal-width bin sums give ``ece``, ``mce`` and the
    reliability bins (through the formulas of :mod:`losslab.metrics.calibration` that
    :func:`~losslab.metrics.calibration.top_label_ece`,
    :func:`~losslab.metrics.calibration.top_label_mce` and :func:`binned_calibration`
    apply), and one stable sort of the confidences serves both ``ece_adaptive``
    (ascending) and ``aurc`` (the same order reversed: AURC does not depend on the
    order inside a block of tied confidences).
    """
    check_bins(n_bins)
    target, valid = check_inputs(logits, target)
    n, k = logits.shape
    logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
    probs = logp.exp()
    logp_max, pred = logp.max(dim=-1)  # first index on ties, as argmax
    conf = logp_max.exp()  # == probs.max(-1): exp is monotone
    correct = (pred == target).to(torch.float64)
    logp_y = logp.gather(1, target[:, None]).squeeze(1)
    entropy = entropy_of_log_probs(logp, probs)
    n_correct = correct.sum()
    n_wrong = n - n_correct
    sums = top_label_sums(conf, correct, n_bins)  # count, correct_sum, conf_sum
    sorted_conf, order = torch.sort(conf, stable=True)
    sorted_correct = correct[order]

    values: dict[str, Tensor] = {"acc": correct.mean()}
    if k >= 5:
        hit5 = (target_rank(logp, target) < 5) & torch.isfinite(logp_y)
        values["acc_top5"] = hit5.to(torch.float64).mean()
    values |= {
        "nll": -logp_y.mean(),
        "brier": brier_score(probs, target).mean(),
        "ece": ece_of_sums(sums[1], sums[2], n),  # top_label_ece of these bins
        "ece_adaptive": adaptive_ece_of_sorted(sorted_conf, sorted_correct, n_bins),
        "ece_classwise": classwise_calibration_error(probs, target, n_bins),
        "mce": mce_of_sums(*sums),  # top_label_mce of these bins
        "entropy": entropy.mean(),
        # an empty group gives NaN, which reads None on the host
        "entropy_correct": torch.where(
            n_correct > 0, (entropy * correct).sum() / n_correct.clamp_min(1.0), torch.nan
        ),
        "entropy_incorrect": torch.where(
            n_wrong > 0, (entropy * (1.0 - correct)).sum() / n_wrong.clamp_min(1.0), torch.nan
        ),
        "aurc": _aurc_of_sorted(sorted_conf.flip(0), sorted_correct.flip(0)),
    }
    return values, bin_means(*sums), valid


def reliability_bins(logits: Tensor, target: Tensor, n_bins: int = 15) -> dict[str, Any]:
    """Per-bin data of the top-label reliability diagram, for plots.

    The same bins as ``ece`` (``n_bins`` equal-width right-closed bins of the
    top-label confidence), so that ``sum_b count_b / N * |acc_b - conf_b|`` is the
    ``ece`` of :func:`classification_metrics`.

    Args:
        logits: ``[N, K]``.
        target: ``[N]`` integer classes.
        n_bins: number of bins.

    Returns:
        ``{"n_bins": int, "count": [n_bins], "acc": [n_bins], "conf": [n_bins]}`` with lists
        of floats: samples per bin, their accuracy and mean confidence (0 for an empty bin).

    Example:
        >>> z = torch.tensor([[0.0, 3.0], [0.0, 3.0], [1.0, 0.0]])
        >>> bins = reliability_bins(z, torch.tensor([1, 0, 0]), n_bins=2)
        >>> bins["count"], bins["acc"]
        ([0.0, 3.0], [0.0, 0.6666666666666666])
    """
    target, valid = check_inputs(logits, target)
    logp_max, pred = torch.log_softmax(logits.to(torch.float64), dim=-1).max(dim=-1)
    count, acc, conf = binned_calibration(logp_max.exp(), pred == target, n_bins)
    return _reliability_dict(to_python([count, acc, conf], valid, logits.shape[1]), n_bins)
