r"""Calibration errors: top-label (equal-width and equal-mass bins), maximum and class-wise.

All functions are pure, take probabilities ``[N, K]`` (computed in float64) and
integer targets ``[N]``, stay on the input's device and never synchronise with
the host: they return 0-dim tensors (or per-bin tensors) that the caller
converts once.

Equal-width bins are right-closed: bin ``b`` (0-based) of ``B`` holds values in
``(b/B, (b+1)/B]`` and a value of exactly 0 goes to the first bin. With
:math:`S^{\mathrm{out}}_b` and :math:`S^{\mathrm{conf}}_b` the sums of outcomes
and confidences in bin :math:`b`, the usual weighted gap reduces to

.. math::
    \sum_b \frac{n_b}{N}\,\Bigl\lvert \frac{S^{\mathrm{out}}_b}{n_b}
    - \frac{S^{\mathrm{conf}}_b}{n_b} \Bigr\rvert
    = \frac{1}{N} \sum_b \bigl\lvert S^{\mathrm{out}}_b - S^{\mathrm{conf}}_b \bigr\rvert,

which is how the functions below compute it (empty bins add nothing). The bin
sums avoid floating-point atomics, so every value is reproducible bit for bit on
CPU and CUDA (see :func:`binned_sums`).

Each formula is written once: :func:`ece_of_sums` (the weighted gap above, for
equal-width, equal-mass and class-wise bins alike), :func:`mce_of_sums` and
:func:`bin_means` turn bin sums into the metrics, and
:func:`~losslab.metrics.classification.classification_metrics` applies them to the
sums it computes once per split.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_bins(n_bins: int) -> None:
    """Raise ValueError unless ``n_bins >= 1``."""
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins} is invalid: must be >= 1")


def equal_width_bins(values: Tensor, n_bins: int) -> Tensor:
    """Index of the right-closed equal-width bin of every value in [0, 1].

    Args:
        values: any shape, values in [0, 1].
        n_bins: number of bins (>= 1).

    Returns:
        int64 tensor of ``values``' shape with entries in ``[0, n_bins)``: ``(b/n, (b+1)/n]``
        maps to ``b``, 0 maps to 0.

    Example:
        >>> equal_width_bins(torch.tensor([0.0, 0.25, 0.3, 1.0], dtype=torch.float64), 4).tolist()
        [0, 0, 1, 3]
    """
    check_bins(n_bins)
    # ceil(v * n) - 1 maps (b/n, (b+1)/n] to b; the clamp puts 0 in bin 0.
    return (torch.ceil(values.to(torch.float64) * n_bins).long() - 1).clamp_(0, n_bins - 1)


def equal_mass_bins(n: int, n_bins: int, device: torch.device | str | None = None) -> Tensor:
    """Group index of each of ``n`` sorted positions for ``n_bins`` equal-mass groups.

    The positions ``0..n-1`` are cut into ``n_bins`` contiguous groups whose
    sizes differ by at most one, the larger groups first: exactly the split of
    ``torch.tensor_split(torch.arange(n), n_bins)`` (and ``numpy.array_split``).
    With ``n = q * n_bins + r`` the first ``r`` groups hold ``q + 1`` positions
    and the rest ``q``; when ``n < n_bins`` the last ``n_bins - n`` groups are
    empty. Computed arithmetically, so it needs no host synchronisation.

    Args:
        n: number of positions (>= 0).
        n_bins: number of groups (>= 1).
        device: device of the result.

    Returns:
        ``[n]`` int64 group indices, non-decreasing.

    Example:
        >>> equal_mass_bins(7, 3).tolist()
        [0, 0, 0, 1, 1, 2, 2]
    """
    check_bins(n_bins)
    q, r = divmod(n, n_bins)
    pos = torch.arange(n, device=device)
    big = r * (q + 1)  # positions covered by the r groups of size q + 1
    if q == 0:
        return pos  # n < n_bins: one position per group
    return torch.where(pos < big, pos // (q + 1), r + (pos - big) // q)


def binned_sums(
    bins: Tensor, confidence: Tensor, outcome: Tensor, n_bins: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bin sample counts, outcome sums and confidence sums (float64).

    Bit-for-bit reproducible on every device: counts and 0/1 outcome sums are
    integers, exact in float64 whatever order a scatter adds them in, and the
    confidence sums are plain reductions, one per bin (no floating-point atomics).

    Args:
        bins: ``[M]`` int64 bin index of every entry, in ``[0, n_bins)``.
        confidence: ``[M]`` predicted probability of every entry.
        outcome: ``[M]`` 0/1 (bool or float) outcome of every entry.
        n_bins: number of bins.

    Returns:
        ``(count, outcome_sum, confidence_sum)``, each ``[n_bins]``.

    Example:
        >>> count, hits, conf = binned_sums(
        ...     torch.tensor([0, 1, 1]), torch.tensor([0.25, 0.5, 0.75]), torch.tensor([1, 0, 1]), 2
        ... )
        >>> count.tolist(), hits.tolist(), conf.tolist()
        ([1.0, 2.0], [1.0, 1.0], [0.25, 1.25])
    """
    confidence = confidence.to(torch.float64)
    count = torch.zeros(n_bins, dtype=torch.float64, device=confidence.device)
    out_sum = torch.zeros_like(count)
    count.index_add_(0, bins, torch.ones_like(confidence))
    out_sum.index_add_(0, bins, outcome.to(torch.float64))
    if confidence.device.type == "cpu":  # index_add is deterministic on the CPU: one pass
        conf_sum = torch.zeros_like(count).index_add_(0, bins, confidence)
    else:  # CUDA's index_add of floats is not: one masked sum per bin instead
        conf_sum = torch.stack(
            [torch.where(bins == b, confidence, 0.0).sum() for b in range(n_bins)]
        )
    return count, out_sum, conf_sum


def top_label_sums(
    confidence: Tensor, correct: Tensor, n_bins: int
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`binned_sums` of the top-label confidences over equal-width right-closed bins:
    ``(count, correct_sum, confidence_sum)``, each ``[n_bins]``, from which
    :func:`ece_of_sums`, :func:`mce_of_sums` and :func:`bin_means` give ECE, MCE and the
    reliability bins."""
    return binned_sums(equal_width_bins(confidence, n_bins), confidence, correct, n_bins)


def ece_of_sums(outcome_sum: Tensor, confidence_sum: Tensor, n: int) -> Tensor:
    r"""The weighted calibration gap of bins from their sums:
    :math:`\frac{1}{N} \sum_b \lvert S^{\mathrm{out}}_b - S^{\mathrm{conf}}_b \rvert`.

    Args:
        outcome_sum: per-bin sums of the outcomes (any shape).
        confidence_sum: per-bin sums of the confidences, same shape.
        n: the normaliser :math:`N`, the number of binned entries (0 is read as 1).

    Returns:
        0-dim float64 tensor.

    Example:
        >>> # bins of 1 and 2 samples: (|1 - 0.25| + |1 - 1.25|) / 3
        >>> round(float(ece_of_sums(torch.tensor([1.0, 1.0]), torch.tensor([0.25, 1.25]), 3)), 6)
        0.333333
    """
    return (outcome_sum - confidence_sum).abs().sum() / max(n, 1)


def mce_of_sums(count: Tensor, outcome_sum: Tensor, confidence_sum: Tensor) -> Tensor:
    r"""The largest gap of a non-empty bin from the bin sums:
    :math:`\max_{b:\,n_b > 0} \lvert S^{\mathrm{out}}_b - S^{\mathrm{conf}}_b \rvert / n_b`.

    Empty bins have gap 0, which never exceeds the (non-negative) gap of a non-empty one.

    Example:
        >>> count, conf = torch.tensor([1.0, 2.0]), torch.tensor([0.25, 1.25])
        >>> float(mce_of_sums(count, torch.ones(2), conf))  # max(|1 - 0.25|, |1 - 1.25| / 2)
        0.75
    """
    return ((outcome_sum - confidence_sum).abs() / count.clamp_min(1.0)).max()


def bin_means(
    count: Tensor, outcome_sum: Tensor, confidence_sum: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``(count, mean outcome, mean confidence)`` per bin from the bin sums; the means are 0
    where a bin is empty.

    Example:
        >>> sums = torch.tensor([0.0, 2.0]), torch.ones(2), torch.tensor([0.0, 1.5])
        >>> count, acc, conf = bin_means(*sums)
        >>> count.tolist(), acc.tolist(), conf.tolist()
        ([0.0, 2.0], [1.0, 0.5], [0.0, 0.75])
    """
    denom = count.clamp_min(1.0)
    return count, outcome_sum / denom, confidence_sum / denom


def binned_calibration(
    confidence: Tensor, correct: Tensor, n_bins: int = 15
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-bin sample counts, mean accuracy and mean confidence (equal-width bins).

    Bins are equal-width over [0, 1] and right-closed: bin ``b`` (0-based)
    holds confidences in ``(b/n_bins, (b+1)/n_bins]``; a confidence of exactly 0
    goes to the first bin.

    Args:
        confidence: ``[N]`` values in [0, 1].
        correct: ``[N]`` 0/1 (bool or float) outcome for each sample.
        n_bins: number of bins (>= 1).

    Returns:
        ``(count [n_bins], acc [n_bins], conf [n_bins])``, float64; ``acc`` and ``conf``
        are 0 where a bin is empty.

    Example:
        >>> conf = torch.tensor([0.2, 0.9, 0.95], dtype=torch.float64)
        >>> count, acc, mean_conf = binned_calibration(conf, torch.tensor([0, 1, 0]), n_bins=2)
        >>> count.tolist(), acc.tolist()
        ([1.0, 2.0], [0.0, 0.5])
    """
    return bin_means(*top_label_sums(confidence, correct, n_bins))


def _top_label(probs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Top-label confidence ``max_k p_k`` and correctness (first index wins ties)."""
    conf, pred = probs.to(torch.float64).max(dim=-1)
    return conf, pred == target.to(device=probs.device)


def top_label_ece(confidence: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    r"""ECE from top-label confidences and correctness, equal-width right-closed bins.

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{N}\,\lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert

    Args:
        confidence: ``[N]`` top-label confidence.
        correct: ``[N]`` whether the top label is the target.
        n_bins: number of bins.

    Returns:
        0-dim float64 tensor.
    """
    _, acc_sum, conf_sum = top_label_sums(confidence, correct, n_bins)
    return ece_of_sums(acc_sum, conf_sum, confidence.shape[0])


def top_label_mce(confidence: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    r"""Maximum calibration error over the non-empty equal-width bins.

    .. math:: \mathrm{MCE} = \max_{b:\,n_b > 0} \lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert

    Args:
        confidence: ``[N]`` top-label confidence.
        correct: ``[N]`` whether the top label is the target.
        n_bins: number of bins.

    Returns:
        0-dim float64 tensor (0 when ``N == 0``).
    """
    return mce_of_sums(*top_label_sums(confidence, correct, n_bins))


def top_label_adaptive_ece(confidence: Tensor, correct: Tensor, n_bins: int = 15) -> Tensor:
    r"""ECE over equal-mass bins of the top-label confidence.

    Samples are sorted by confidence, ascending, with a stable sort (tied
    confidences keep their input order), and the sorted sequence is cut into
    ``n_bins`` contiguous groups whose sizes differ by at most one, as
    ``torch.tensor_split(order, n_bins)`` does (see :func:`equal_mass_bins`;
    samples with equal confidence may fall in two neighbouring groups). Then

    .. math:: \mathrm{ECE}_{\mathrm{adaptive}}
        = \sum_g \frac{n_g}{N}\,\lvert \mathrm{acc}_g - \mathrm{conf}_g \rvert

    over the non-empty groups (``N < n_bins`` leaves some empty).

    Args:
        confidence: ``[N]`` top-label confidence.
        correct: ``[N]`` whether the top label is the target.
        n_bins: number of groups.

    Returns:
        0-dim float64 tensor.
    """
    sorted_conf, order = torch.sort(confidence.to(torch.float64), stable=True)
    return adaptive_ece_of_sorted(sorted_conf, correct[order], n_bins)


def adaptive_ece_of_sorted(sorted_conf: Tensor, sorted_correct: Tensor, n_bins: int) -> Tensor:
    """:func:`top_label_adaptive_ece` of confidences already sorted ascending (stable),
    with the correctness in the same order: for callers that need the sort for other
    metrics too (it is the costly part on the CPU)."""
    n = sorted_conf.shape[0]
    groups = equal_mass_bins(n, n_bins, device=sorted_conf.device)
    _, acc_sum, conf_sum = binned_sums(groups, sorted_conf, sorted_correct, n_bins)
    return ece_of_sums(acc_sum, conf_sum, n)


def expected_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> Tensor:
    r"""Top-label ECE with equal-width bins.

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{N}\,\lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert

    over right-closed bins of the top-label confidence :math:`\max_k p_k` (see
    :func:`binned_calibration`).

    Args:
        probs: ``[N, K]`` predicted probabilities.
        target: ``[N]`` true classes.
        n_bins: number of equal-width bins.

    Returns:
        0-dim float64 tensor.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
        >>> round(float(expected_calibration_error(p, torch.tensor([0, 1]), n_bins=10)), 6)
        0.35
    """
    return top_label_ece(*_top_label(probs, target), n_bins)


def max_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> Tensor:
    r"""Top-label MCE: the largest gap of a non-empty equal-width bin.

    .. math:: \mathrm{MCE} = \max_{b:\,n_b > 0} \lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert

    Args:
        probs: ``[N, K]`` predicted probabilities.
        target: ``[N]`` true classes.
        n_bins: number of equal-width bins.

    Returns:
        0-dim float64 tensor.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
        >>> round(float(max_calibration_error(p, torch.tensor([0, 1]), n_bins=10)), 6)
        0.6
    """
    return top_label_mce(*_top_label(probs, target), n_bins)


def adaptive_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> Tensor:
    r"""Top-label ECE with ``n_bins`` equal-mass bins (see :func:`top_label_adaptive_ece`).

    .. math:: \mathrm{ECE}_{\mathrm{adaptive}}
        = \sum_g \frac{n_g}{N}\,\lvert \mathrm{acc}_g - \mathrm{conf}_g \rvert

    with the samples sorted by confidence (stable, ascending) and split into
    contiguous groups of sizes differing by at most one, larger groups first.

    Args:
        probs: ``[N, K]`` predicted probabilities.
        target: ``[N]`` true classes.
        n_bins: number of equal-mass bins.

    Returns:
        0-dim float64 tensor.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]], dtype=torch.float64)
        >>> # groups {0.6, 0.8} and {0.9}: (2/3)|0.5 - 0.7| + (1/3)|1 - 0.9|
        >>> round(float(adaptive_calibration_error(p, torch.tensor([0, 0, 1]), n_bins=2)), 6)
        0.166667
    """
    return top_label_adaptive_ece(*_top_label(probs, target), n_bins)


def classwise_calibration_error(probs: Tensor, target: Tensor, n_bins: int = 15) -> Tensor:
    r"""Class-wise ECE: the calibration of every class probability, averaged over classes.

    For each class :math:`k`, the values :math:`p_{ik}` of all samples are put in
    equal-width right-closed bins and the outcome is the indicator
    :math:`[y_i = k]`:

    .. math::
        \mathrm{ECE}_k = \sum_b \frac{n_{kb}}{N}\,\Bigl\lvert
        \overline{[y = k]}_{kb} - \overline{p_k}_{kb} \Bigr\rvert, \qquad
        \mathrm{ECE}_{\mathrm{classwise}} = \frac{1}{K} \sum_k \mathrm{ECE}_k.

    Memory ``O(N K)``; one pass over the ``N * K`` probabilities per bin.

    Args:
        probs: ``[N, K]`` predicted probabilities.
        target: ``[N]`` true classes.
        n_bins: number of equal-width bins per class.

    Returns:
        0-dim float64 tensor.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
        >>> # class 0: |1 - 0.9| / 2 + |0 - 0.6| / 2; class 1: |0 - 0.1| / 2 + |1 - 0.4| / 2
        >>> round(float(classwise_calibration_error(p, torch.tensor([0, 1]), n_bins=10)), 6)
        0.35
    """
    probs = probs.to(torch.float64)
    n, k = probs.shape
    target = target.to(device=probs.device, dtype=torch.int64)
    bins = equal_width_bins(probs, n_bins)  # [N, K]
    # per (class, bin) sums of p: one column reduction per bin, [K, n_bins]
    if probs.device.type == "cpu":  # deterministic index_add on the CPU: one pass
        cells = (torch.arange(k, device=probs.device) * n_bins + bins).flatten()
        conf_sum = (
            torch.zeros(k * n_bins, dtype=torch.float64, device=probs.device)
            .index_add_(0, cells, probs.flatten())
            .view(k, n_bins)
        )
    else:  # CUDA's float index_add is not deterministic: one column reduction per bin
        conf_sum = torch.stack(
            [torch.where(bins == b, probs, 0.0).sum(dim=0) for b in range(n_bins)], dim=1
        )
    # the indicator [y = k] is 1 only at (i, y_i): count those N entries by (y_i, bin);
    # integer counts are exact in any summation order
    hit_bins = target * n_bins + bins.gather(1, target[:, None]).squeeze(1)
    hits = torch.zeros(k * n_bins, dtype=torch.float64, device=probs.device)
    hits.index_add_(0, hit_bins, torch.ones_like(probs[:, 0]))
    # the N K binned entries: the mean over classes of the per-class ECE
    return ece_of_sums(hits.view(k, n_bins), conf_sum, n * k)
