"""The embedded default data set: scikit-learn's 8x8 handwritten digits."""

from __future__ import annotations

from collections.abc import Sequence

from losslab.datasets.base import DataBundle, bundle_from_arrays


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
    from sklearn.datasets import load_digits as sk_load_digits

    raw = sk_load_digits()
    x = raw.images.reshape(-1, 1, 8, 8)
    return bundle_from_arrays(
        "digits",
        x,
        raw.target,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        info={"source": "sklearn.datasets.load_digits"},
    )
