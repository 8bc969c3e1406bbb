"""Gaussian clusters of any size and class count, for tests and quick studies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from losslab.datasets.base import DataBundle, bundle_from_arrays


def load_synthetic(
    *,
    num_classes: int = 4,
    input_shape: Sequence[int] = (16,),
    num_samples: int = 2000,
    separation: float = 2.0,
    data_seed: int = 0,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> DataBundle:
    """Isotropic Gaussian clusters, one per class.

    Class means are drawn as ``separation * N(0, I_d)``; each sample is its
    class mean plus ``N(0, I_d)`` noise, so ``separation`` is the knob from
    overlapping (0) to trivially separable (large). Classes are balanced
    (``num_samples // K`` each, the remainder spread over the first classes).

    Args:
        num_classes: K (>= 2).
        input_shape: shape of one input; ``[d]`` for vectors, or e.g.
            ``[1, 8, 8]`` to feed image models (the d = prod(shape) features
            are reshaped).
        num_samples: total number of samples before splitting.
        separation: scale of the class means relative to the unit noise.
        data_seed: seed of the generator (the data itself).
        split_seed: seed of the stratified split.
        val_fraction: share of the non-test samples used for validation.
        test_fraction: share of all samples used for test.
    """
    if num_classes < 2:
        raise ValueError(f"dataset.num_classes={num_classes} is invalid: must be >= 2")
    if num_samples < 5 * num_classes:
        raise ValueError(
            f"dataset.num_samples={num_samples} is too small for {num_classes} classes: "
            f"need at least {5 * num_classes}"
        )
    if separation < 0:
        raise ValueError(f"dataset.separation={separation} is invalid: must be >= 0")
    shape = tuple(int(s) for s in input_shape)
    dim = int(np.prod(shape))
    rng = np.random.default_rng(data_seed)
    means = separation * rng.standard_normal((num_classes, dim))
    y = np.arange(num_samples) % num_classes
    x = means[y] + rng.standard_normal((num_samples, dim))
    return bundle_from_arrays(
        "synthetic",
        x.reshape(num_samples, *shape),
        y,
        num_classes=num_classes,
        input_shape=shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        info={"source": "gaussian clusters", "separation": separation, "data_seed": data_seed},
    )
