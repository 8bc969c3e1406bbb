"""Normalisation statistics of a data set's inputs, the one helper every loader uses.

Loaders that do not ship fixed constants (Kuzushiji-49, ImageFolder trees,
Hugging Face sets without ``dataset.mean``/``dataset.std``) compute them from
training inputs with :func:`channel_stats`, optionally over a random sample of
rows drawn by :func:`sample_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from losslab.datasets.base import ImageSource


def sample_rows(n: int, samples: int, seed: int) -> np.ndarray:
    """Sorted positions of ``min(n, samples)`` distinct rows of ``range(n)``, drawn with ``seed``.

    The draw uses ``numpy.random.default_rng(seed)``, so it depends only on
    ``(n, samples, seed)``.
    """
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, int(samples)), replace=False))


def channel_stats(
    x: Tensor | ImageSource,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    scale: float = 1 / 255,
    chunk: int = 256,
    min_std: float | None = None,
    decimals: int | None = None,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and (population) standard deviation along axis 1 of the inputs times ``scale``:
    per channel for images ``[N, C, H, W]``, per feature for vectors ``[N, d]``.

    Sums are accumulated in float64 over chunks of rows, so a large uint8 tensor
    is never converted to float all at once, and the rows are visited in the
    same order whether ``x`` is a tensor or a lazy source: the serving path never
    changes the result.

    Args:
        x: a tensor ``[N, ...]`` (e.g. uint8 images), or a source of ``[...]`` rows.
        indices: the rows to use, in increasing order (default: all); see
            :func:`sample_rows`.
        scale: multiplier of the stored values (1/255 for uint8 pixels, 1 for floats).
        chunk: rows per accumulation step.
        min_std: standard deviations at or below it (constant channels or
            features) become 1, so that normalising never divides by ~0. Hugging
            Face inputs may be arbitrary feature vectors and use ``1e-6``; image
            loaders leave it None (a constant image channel is a data error they
            do not paper over).
        decimals: round both statistics to this many decimals (the image loaders
            record 6: the values then read the same in the run record as in a
            config); None keeps full precision.

    Returns:
        ``(mean, std)``, one value per channel (or feature).

    Raises:
        ValueError: no rows to compute statistics from.
    """
    rows = np.arange(len(x)) if indices is None else np.asarray(indices, dtype=np.int64)
    if len(rows) == 0:
        raise ValueError("cannot compute mean/std of an empty training split")
    total = sq = None
    count = 0
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        if isinstance(x, Tensor):
            batch = x[torch.from_numpy(part)]
        else:
            batch = torch.stack([x[int(i)] for i in part])
        f = batch.to(torch.float64) * scale
        dims = (0, *range(2, f.ndim))
        part_sum, part_sq = f.sum(dim=dims), (f * f).sum(dim=dims)
        total, sq = (part_sum, part_sq) if total is None else (total + part_sum, sq + part_sq)
        count += f.numel() // f.shape[1]
    mean = total / count
    std = (sq / count - mean**2).clamp_min(0).sqrt()
    if min_std is not None:
        std = torch.where(std > min_std, std, torch.ones_like(std))
    if decimals is not None:
        return (
            tuple(round(float(v), decimals) for v in mean),
            tuple(round(float(v), decimals) for v in std),
        )
    return tuple(mean.tolist()), tuple(std.tolist())
