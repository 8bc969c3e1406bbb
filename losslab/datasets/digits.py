"""The embedded default data set: scikit-learn's 8x8 handwritten digits."""

from __future__ import annotations

import gzip
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from losslab.datasets.base import DataBundle, bundle_from_arrays


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 images (``[N, 8, 8]`` float64) and their labels.

    Read from the compressed CSV that scikit-learn ships (64 pixel columns, then
    the label), as ``sklearn.datasets.load_digits`` reads it, but without
    importing scikit-learn, which costs seconds of every short run's start-up;
    its loader is the fallback should the file move.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in locations:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt") as f:
                table = np.loadtxt(f, delimiter=",")
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load_digits

    raw = sk_load_digits()
    return raw.images, raw.target


def load_digits(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 8, 8),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> DataBundle:
    """scikit-learn's bundled digits (1,797 images of 8x8 pixels, 10 classes).

    Ships with scikit-learn, so it needs no network. Images are served as
    ``1x8x8`` float tensors standardised with training statistics; the
    stratified train/val/test split is fixed by ``split_seed``.

    Args:
        num_classes: declared K (must be 10).
        input_shape: declared input shape (must be ``[1, 8, 8]``).
        split_seed: seed of the stratified split.
        val_fraction: share of the non-test images used for validation.
        test_fraction: share of all images used for test.

    References:
        Alpaydin & Kaynak, "Optical Recognition of Handwritten Digits", UCI
        Machine Learning Repository, 1998.
    """
    images, target = _digits_arrays()
    return bundle_from_arrays(
        "digits",
        images.reshape(-1, 1, 8, 8),
        target,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        info={"source": "sklearn.datasets.load_digits"},
    )
