"""The embedded data sets: digits and synthetic, and the stratified split."""

import numpy as np
import pytest
import torch

from losslab.datasets import digits
from losslab.datasets.base import stratified_split
from losslab.datasets.digits import load_digits
from losslab.datasets.synthetic import load_synthetic


def test_digits_shape_size_and_split():
    data = load_digits()
    sizes = data.sizes()
    assert sum(sizes.values()) == 1797
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.train.x.dtype == torch.float32 and data.train.x.shape[1:] == (1, 8, 8)
    # test: 20 % of all; val: 10 % of the rest (per class, rounded)
    assert abs(sizes["test"] - 0.2 * 1797) <= 10
    assert abs(sizes["val"] - 0.1 * (1797 - sizes["test"])) <= 10
    # standardised with training statistics
    assert abs(float(data.train.x.mean())) < 1e-4
    assert abs(float(data.train.x.std()) - 1) < 1e-3


def test_digits_file_is_read_as_scikit_learn_reads_it(monkeypatch):
    from sklearn.datasets import load_digits as sk_load_digits

    want = sk_load_digits()
    images, target = digits._digits_arrays()
    assert np.array_equal(images, want.images) and np.array_equal(target, want.target)
    # where scikit-learn's file is not found, its loader gives the same arrays
    monkeypatch.setattr(digits.importlib.util, "find_spec", lambda name: None)
    fallback_images, fallback_target = digits._digits_arrays()
    assert np.array_equal(fallback_images, images) and np.array_equal(fallback_target, target)


def test_digits_split_is_stratified_and_disjoint():
    data = load_digits()
    rows = {
        name: {tuple(r) for r in split.x.flatten(1).numpy().round(5).tolist()}
        for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
    }
    # digits contains a few duplicate images, so compare counts, not only sets
    assert len(rows["train"] & rows["test"]) < 10
    for split in (data.train, data.val, data.test):
        share = torch.bincount(split.y, minlength=10).float() / len(split)
        assert (share - 0.1).abs().max() < 0.03


def test_split_seed_controls_the_split():
    a, b, c = load_digits(split_seed=0), load_digits(split_seed=0), load_digits(split_seed=1)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.test.x, c.test.x)


def test_declared_shape_and_classes_are_checked():
    with pytest.raises(ValueError, match="num_classes=7"):
        load_digits(num_classes=7)
    with pytest.raises(ValueError, match=r"input_shape=\[64\]"):
        load_digits(input_shape=[64])


def test_bad_fractions():
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        load_digits(val_fraction=1.5)


def test_synthetic_any_size_and_separability():
    data = load_synthetic(num_classes=7, input_shape=[5], num_samples=700)
    assert data.num_classes == 7 and data.input_shape == (5,)
    assert sum(data.sizes().values()) == 700
    img = load_synthetic(num_classes=3, input_shape=[1, 4, 4], num_samples=90)
    assert img.train.x.shape[1:] == (1, 4, 4)

    def centroid_accuracy(sep: float) -> float:
        d = load_synthetic(num_classes=4, num_samples=2000, separation=sep)
        means = torch.stack([d.train.x[d.train.y == k].mean(0) for k in range(4)])
        pred = torch.cdist(d.test.x, means).argmin(1)
        return float((pred == d.test.y).float().mean())

    assert centroid_accuracy(0.0) < 0.45 < 0.95 < centroid_accuracy(4.0)


def test_synthetic_rejects_bad_values():
    with pytest.raises(ValueError, match="num_classes=1"):
        load_synthetic(num_classes=1)
    with pytest.raises(ValueError, match="separation=-1"):
        load_synthetic(separation=-1)


def test_stratified_split_partitions_every_index():
    labels = np.repeat(np.arange(5), [10, 20, 30, 7, 3])
    parts = stratified_split(labels, [0.3, 0.2], seed=3)
    joined = np.sort(np.concatenate(parts))
    assert np.array_equal(joined, np.arange(len(labels)))
    for c, n in zip(range(5), [10, 20, 30, 7, 3], strict=True):
        assert (labels[parts[0]] == c).sum() == round(0.3 * n)
    again = stratified_split(labels, [0.3, 0.2], seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again, strict=True))
