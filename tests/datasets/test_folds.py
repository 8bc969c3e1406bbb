"""k-fold cross-validation on the training split: stratified, fixed by the seed, recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab.datasets.base import DataBundle, Split
from losslab.datasets.folds import check_cv, cross_validation_fold, fold_ids


def _data(n: int = 60, k: int = 3) -> DataBundle:
    y = torch.arange(n) % k
    train = Split.clean(torch.randn(n, 4), y, source_index=torch.arange(100, 100 + n))
    noisy = (y + (torch.arange(n) % 5 == 0).long()) % k  # every fifth label flipped
    train = train.with_labels(noisy)
    val = Split.clean(torch.randn(6, 4), torch.arange(6) % k)
    test = Split.clean(torch.randn(9, 4), torch.arange(9) % k)
    return DataBundle("toy", train, val, test, k, (4,))


def test_folds_are_stratified_by_the_labels_trained_on_and_fixed_by_the_seed():
    labels = np.array([0] * 30 + [1] * 12 + [2] * 7)
    ids = fold_ids(labels, 3, seed=0)
    for c in range(3):
        counts = np.bincount(ids[labels == c], minlength=3)
        assert counts.max() - counts.min() <= 1  # each class dealt evenly
    assert np.array_equal(ids, fold_ids(labels, 3, seed=0))
    assert not np.array_equal(ids, fold_ids(labels, 3, seed=1))


def test_a_fold_is_the_validation_split_and_the_rest_trains():
    data = _data()
    parts = [cross_validation_fold(data, 3, i, seed=0) for i in range(3)]
    held = [set(p.val.source_index.tolist()) for p in parts]
    assert set().union(*held) == set(data.train.source_index.tolist())  # every sample once
    assert sum(len(h) for h in held) == len(data.train)
    for part, h in zip(parts, held, strict=True):
        assert set(part.train.source_index.tolist()).isdisjoint(h)
        assert len(part.train) + len(part.val) == len(data.train)
        assert torch.equal(part.test.y, data.test.y)  # the test split is untouched
        # the held-out fold keeps the labels training saw (noisy) and their clean ones
        assert bool(part.val.is_noisy.any())
        assert torch.equal(part.val.is_noisy, part.val.y != part.val.y_clean)
    shas = {p.info["cv"]["membership_sha"] for p in parts}
    assert len(shas) == 1  # one partition, whichever fold a run holds out
    assert parts[0].info["cv"] == {
        "folds": 3,
        "fold": 0,
        "seed": 0,
        "train": len(parts[0].train),
        "val": len(parts[0].val),
        "membership_sha": shas.pop(),
    }


def test_the_partition_depends_on_the_seed_only():
    data = _data()
    a = cross_validation_fold(data, 3, 0, seed=0).info["cv"]["membership_sha"]
    b = cross_validation_fold(data, 3, 0, seed=1).info["cv"]["membership_sha"]
    assert a != b


@pytest.mark.parametrize(
    "folds, fold, message",
    [
        (1, 0, r"cv.folds=1 is invalid: must be null \(off\) or an integer >= 2"),
        (True, 0, "cv.folds=True is invalid"),
        (3, 3, r"cv.fold=3 is invalid: must be an integer in \[0, 2\]"),
        (3, -1, "cv.fold=-1 is invalid"),
    ],
)
def test_bad_cross_validation_settings_name_the_value(folds, fold, message):
    with pytest.raises(ValueError, match=message):
        check_cv(folds, fold)


def test_no_cross_validation_by_default():
    assert check_cv(None, 0) is None
