"""k-fold cross-validation on the training split (``cv.folds``, ``cv.fold``).

The LDR protocol (Zhu, Ying & Yang, ICML 2023) chooses each loss's parameters by
5-fold cross-validation on the noisy training set. :func:`cross_validation_fold`
turns a data set into fold ``i`` of ``k``: the training split loses the samples
of fold ``i``, which become the validation split, with the labels the run trains
on (noisy where noise is on; their clean labels come along, so ``val/acc_clean``
is still reported). The test split is untouched.

The folds are stratified by those labels and fixed by the seed (the data set's
``split_seed``): for every class its samples are shuffled with
``numpy.random.default_rng(seed)`` and dealt to the folds in turn. They depend
on nothing else, so every loss of a comparison, and every fold of one trial,
sees the same partition; ``membership_sha`` (the fold of every training sample,
hashed) proves it in each run's record.
"""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from losslab.datasets.base import DataBundle, Split, take


def check_cv(folds: Any, fold: Any) -> tuple[int, int] | None:
    """``(folds, fold)`` checked; None when cross-validation is off (``folds`` null).

    Raises:
        ValueError: naming ``cv.folds`` or ``cv.fold`` and what is valid.
    """
    if folds is None:
        return None
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
        raise ValueError(f"cv.folds={folds!r} is invalid: must be null (off) or an integer >= 2")
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or not 0 <= fold < folds:
        raise ValueError(
            f"cv.fold={fold!r} is invalid: must be an integer in [0, {int(folds) - 1}] "
            f"(cv.folds={folds})"
        )
    return int(folds), int(fold)


def fold_ids(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold of every sample: stratified by ``labels``, fixed by ``seed``."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        out[idx] = np.arange(len(idx)) % folds
    return out


def membership_sha(ids: np.ndarray, source_index: torch.Tensor | None) -> str:
    """SHA-256 of the (source index, fold) pairs of the training split, sorted by source index."""
    index = np.arange(len(ids)) if source_index is None else source_index.numpy()
    order = np.argsort(index, kind="stable")
    pairs = np.stack([index[order], ids[order]]).astype("<i8")
    return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()


def _rows(split: Split, rows: np.ndarray) -> Split:
    at = torch.as_tensor(rows, dtype=torch.long)
    return Split(
        x=take(split.x, rows),
        y=split.y[at],
        y_clean=split.y_clean[at],
        is_noisy=split.is_noisy[at],
        source_index=None if split.source_index is None else split.source_index[at],
    )


def cross_validation_fold(data: DataBundle, folds: int, fold: int, seed: int) -> DataBundle:
    """``data`` with fold ``fold`` of ``folds`` of its training split as the validation split.

    The run's own validation split is set aside. ``info["cv"]`` records the
    folds, the seed, the sizes and ``membership_sha``.
    """
    if folds > len(data.train):
        raise ValueError(
            f"cv.folds={folds} is invalid: the training split has only {len(data.train)} samples"
        )
    ids = fold_ids(data.train.y.numpy(), folds, seed)
    held_out = np.flatnonzero(ids == fold)
    kept = np.flatnonzero(ids != fold)
    info = {
        "folds": folds,
        "fold": fold,
        "seed": seed,
        "train": len(kept),
        "val": len(held_out),
        "membership_sha": membership_sha(ids, data.train.source_index),
    }
    return replace(
        data,
        train=_rows(data.train, kept),
        val=_rows(data.train, held_out),
        info={**data.info, "cv": info},
    )
