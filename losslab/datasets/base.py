"""Containers for a data set's splits and the split helper every loader uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor


@runtime_checkable
class ImageSource(Protocol):
    """Images decoded on demand (folder and Hugging Face sets too large for memory).

    ``source[i]`` is one uint8 image ``[C, H, W]`` of the data set's input shape.
    Served through a DataLoader with workers (see :mod:`losslab.datasets.loader`).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Tensor: ...


class SubsetSource:
    """The images of ``source`` at ``indices``, in that order."""

    def __init__(self, source: ImageSource, indices: Sequence[int]) -> None:
        self.source = source
        self.indices = [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Tensor:
        return self.source[self.indices[i]]


def serves_with(*names: str):
    """Mark a data set function as taking the serving options ``names`` (``loader``,
    ``memory_limit_mb``): the runner passes exactly what a function declares in its
    ``run_values`` (see :mod:`losslab.runner.build`), so a function without them can
    still be a ``_target_``."""

    def mark(fn):
        fn.run_values = names
        return fn

    return mark


def take(x: Tensor | ImageSource, indices: np.ndarray | Tensor) -> Tensor | ImageSource:
    """Rows ``indices`` of an in-memory tensor or of a lazy image source."""
    if isinstance(x, Tensor):
        return x[torch.as_tensor(np.asarray(indices), dtype=torch.long)].contiguous()
    return SubsetSource(x, np.asarray(indices).tolist())


@dataclass(frozen=True)
class BatchTransform:
    """Work done per batch on the training device, as whole-batch tensor operations.

    Every batch (train and eval) is converted to float32, multiplied by
    ``scale`` and normalised per channel with ``mean``/``std``; training batches
    are then augmented: a random crop of the input size after zero-padding by
    ``crop_padding`` pixels, and a random horizontal flip when ``flip``.

    Attributes:
        scale: multiplier of the raw values (1/255 for uint8 images, 1 for floats).
        mean, std: per-channel statistics after scaling (None: no normalisation).
        crop_padding: padding of the random crop, in pixels (0: no crop).
        flip: random horizontal flips.
    """

    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    crop_padding: int = 0
    flip: bool = False

    @property
    def augments(self) -> bool:
        return self.crop_padding > 0 or self.flip


@dataclass(frozen=True)
class Split:
    """One split: inputs, the labels training sees, the clean labels and the noise flag.

    Attributes:
        x: inputs: a tensor ``[N, *input_shape]`` held in memory (float, or uint8 for
            images), or an :class:`ImageSource` decoded on demand.
        y: the labels training sees, ``[N]`` int64; noisy where noise is on.
        y_clean: the original labels, ``[N]`` int64.
        is_noisy: ``y != y_clean``, ``[N]`` bool.
        source_index: position of each sample in its source split (e.g. the index in
            the official 50,000-image CIFAR training set), ``[N]`` int64. Label files
            that follow the source's order (CIFAR-N) are aligned through it.
    """

    x: Tensor | ImageSource
    y: Tensor
    y_clean: Tensor
    is_noisy: Tensor
    source_index: Tensor | None = None

    @classmethod
    def clean(cls, x: Tensor | ImageSource, y: Tensor, source_index: Tensor | None = None) -> Split:
        """A split whose labels are uncorrupted."""
        y = torch.as_tensor(y).to(torch.int64)
        if source_index is None:
            source_index = torch.arange(len(y))
        return cls(
            x=x,
            y=y,
            y_clean=y.clone(),
            is_noisy=torch.zeros_like(y, dtype=torch.bool),
            source_index=torch.as_tensor(source_index, dtype=torch.int64),
        )

    def with_labels(self, y: Tensor) -> Split:
        """The same split with new (noisy) labels; ``y_clean`` is kept."""
        y = y.to(torch.int64)
        return replace(self, y=y, is_noisy=y != self.y_clean)

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class DataBundle:
    """The train/val/test splits of one data set and what models need to know.

    Attributes:
        name: the data set's name (its config token).
        train, val, test: the splits.
        num_classes: K.
        input_shape: shape of one input, e.g. ``(1, 8, 8)``.
        info: free-form facts worth recording (source, split sizes, ...).
        transform: per-batch normalisation and training augmentation.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    info: dict = field(default_factory=dict)
    transform: BatchTransform = field(default_factory=BatchTransform)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def stratified_split(
    labels: np.ndarray | Sequence[int], fractions: Sequence[float], seed: int
) -> list[np.ndarray]:
    """Split sample indices into parts with the same class proportions.

    For every class the indices are shuffled with ``numpy.random.default_rng(seed)``
    and cut by ``fractions``; the last part takes the remainder, so every sample
    lands in exactly one part. The result depends only on ``labels``,
    ``fractions`` and ``seed``.

    Args:
        labels: class label of every sample, shape ``[N]``.
        fractions: the share of each part but the last (which takes the rest),
            e.g. ``[0.2, 0.1]`` gives three parts of about 20 %, 10 % and 70 %.
        seed: seed of the shuffle.

    Returns:
        One sorted index array per part (``len(fractions) + 1`` arrays).

    Example:
        >>> test, val, train = stratified_split([0, 0, 1, 1, 1, 1], [0.5, 0.0], seed=0)
        >>> len(test), len(val), len(train)
        (3, 0, 3)
    """
    labels = np.asarray(labels)
    if any(f < 0 for f in fractions) or sum(fractions) >= 1:
        raise ValueError(f"split fractions must be >= 0 and sum to < 1, got {list(fractions)}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        start = 0
        for p, frac in enumerate(fractions):
            n = round(frac * len(idx))
            parts[p].append(idx[start : start + n])
            start += n
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) for p in parts]


def check_declared(
    name: str,
    *,
    num_classes: int,
    input_shape: Sequence[int],
    actual_classes: int,
    actual_shape: Sequence[int],
) -> None:
    """Fail clearly when a config's ``num_classes``/``input_shape`` disagree with the data.

    Models are built from the config's values (by interpolation), so a mismatch
    would otherwise surface as a shape error deep inside training.
    """
    if int(num_classes) != int(actual_classes):
        raise ValueError(
            f"dataset '{name}': dataset.num_classes={num_classes} but the data has "
            f"{actual_classes} classes"
        )
    if tuple(int(s) for s in input_shape) != tuple(int(s) for s in actual_shape):
        raise ValueError(
            f"dataset '{name}': dataset.input_shape={list(input_shape)} but the data has "
            f"inputs of shape {list(actual_shape)}"
        )


def bundle_from_arrays(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    input_shape: Sequence[int],
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
    info: dict | None = None,
) -> DataBundle:
    """Carve a stratified test split, then a validation split from the rest.

    Inputs are standardised with the mean and standard deviation (one scalar
    each) of the training split only, so nothing leaks from val/test.

    Args:
        name: the data set's token.
        x: inputs ``[N, *input_shape]``, any float-convertible dtype.
        y: labels ``[N]`` in ``0..K-1``.
        num_classes: K as declared by the config (checked against ``y``).
        input_shape: declared shape of one input (checked against ``x``).
        split_seed: seed of both stratified splits.
        val_fraction: share of the non-test samples that goes to validation.
        test_fraction: share of all samples that goes to test.
        info: extra facts recorded with the bundle.
    """
    for key, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"dataset.{key}={frac} is invalid: must be in [0, 1)")
    y = np.asarray(y, dtype=np.int64)
    check_declared(
        name,
        num_classes=num_classes,
        input_shape=input_shape,
        actual_classes=int(y.max()) + 1,
        actual_shape=x.shape[1:],
    )
    test_idx, rest_idx = stratified_split(y, [test_fraction], seed=split_seed)
    val_rel, train_rel = stratified_split(y[rest_idx], [val_fraction], seed=split_seed)
    val_idx, train_idx = rest_idx[val_rel], rest_idx[train_rel]

    xf = torch.as_tensor(np.asarray(x, dtype=np.float32))
    mean = xf[train_idx].mean()
    std = xf[train_idx].std().clamp_min(1e-8)
    xf = (xf - mean) / std
    yt = torch.as_tensor(y)

    def part(idx: np.ndarray) -> Split:
        t = torch.as_tensor(idx)
        return Split.clean(xf[t].contiguous(), yt[t], source_index=t)

    return DataBundle(
        name=name,
        train=part(train_idx),
        val=part(val_idx),
        test=part(test_idx),
        num_classes=int(num_classes),
        input_shape=tuple(int(s) for s in input_shape),
        info={**(info or {}), "standardize": {"mean": float(mean), "std": float(std)}},
    )


def bundle_with_official_test(
    name: str,
    train_x: Tensor | ImageSource,
    train_y: np.ndarray | Tensor,
    test_x: Tensor | ImageSource,
    test_y: np.ndarray | Tensor,
    *,
    num_classes: int,
    input_shape: Sequence[int],
    split_seed: int,
    val_fraction: float,
    transform: BatchTransform | None = None,
    info: dict | None = None,
) -> DataBundle:
    """A bundle from a source with an official train/test split.

    The official test split is the test split; a stratified validation split of
    ``val_fraction`` is carved from the official training split with
    ``split_seed``. ``source_index`` of train and val samples is their position
    in the official training split. Inputs are kept as given (uint8 images stay
    uint8; normalisation happens per batch through ``transform``).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"dataset.val_fraction={val_fraction} is invalid: must be in [0, 1)")
    train_y = np.asarray(train_y, dtype=np.int64)
    test_y = np.asarray(test_y, dtype=np.int64)
    shape = tuple(train_x.shape[1:]) if isinstance(train_x, Tensor) else tuple(train_x[0].shape)
    check_declared(
        name,
        num_classes=num_classes,
        input_shape=input_shape,
        actual_classes=int(max(train_y.max(), test_y.max())) + 1,
        actual_shape=shape,
    )
    val_idx, train_idx = stratified_split(train_y, [val_fraction], seed=split_seed)
    return DataBundle(
        name=name,
        train=Split.clean(
            take(train_x, train_idx), train_y[train_idx], source_index=torch.as_tensor(train_idx)
        ),
        val=Split.clean(
            take(train_x, val_idx), train_y[val_idx], source_index=torch.as_tensor(val_idx)
        ),
        test=Split.clean(test_x, test_y),
        num_classes=int(num_classes),
        input_shape=tuple(int(v) for v in input_shape),
        info=dict(info or {}),
        transform=transform or BatchTransform(),
    )
