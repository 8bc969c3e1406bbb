"""Batches ``(x, y, index)`` for training and evaluation.

Two ways to serve a split, chosen by ``dataset.loader`` (``auto`` by default):

* ``memory``: the whole split lives on the training device as one tensor
  (uint8 for images); each batch is gathered with one index tensor and
  normalised, cropped and flipped there as whole-batch tensor operations: no
  DataLoader workers, no PIL, no per-sample Python in the hot path.
* ``dataloader``: a :class:`torch.utils.data.DataLoader` with workers decodes
  samples (lazy :class:`~losslab.datasets.base.ImageSource`) into pinned uint8
  batches that are copied without blocking; the same on-device transform follows.

Both visit the training samples in the order of :func:`epoch_permutation`, and
draw augmentations from a generator seeded by ``(seed, epoch)``: runs that share
``seed`` see the same batches and the same crops and flips, whatever their loss.

:func:`choose_loader` is the one place that turns ``dataset.loader`` and
``dataset.memory_limit_mb`` into the path used; the runner calls it, and so does a
data set that can read its inputs into memory faster than one sample at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.datasets.base import BatchTransform, DataBundle, ImageSource, Split

#: Values of ``dataset.loader``.
LOADERS = ("auto", "memory", "dataloader")

#: Default of ``dataset.memory_limit_mb``: with ``loader=auto``, lazy inputs up to this
#: many MiB (all splits together) are decoded into memory.
MEMORY_LIMIT_MB = 4096.0


def check_loader(mode: object) -> str:
    """``mode`` if it is one of :data:`LOADERS`, otherwise a ValueError naming the choices."""
    if not isinstance(mode, str) or mode not in LOADERS:
        raise ValueError(
            f"dataset.loader={mode!r} is invalid; choose one of {', '.join(map(repr, LOADERS))}"
        )
    return mode


def check_memory_limit(value: object) -> float:
    """``dataset.memory_limit_mb`` as a float, or a ValueError unless it is a number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < 0
    ):
        raise ValueError(f"dataset.memory_limit_mb={value!r} is invalid: use a number of MiB >= 0")
    return float(value)


def fits_in_memory(nbytes: int, memory_limit_mb: float) -> bool:
    """Whether ``nbytes`` are at most ``memory_limit_mb`` MiB."""
    return nbytes <= check_memory_limit(memory_limit_mb) * 2**20


#: Streams of :func:`epoch_seed`: the sample order, the crops and flips, and the
#: Mixup/CutMix draws of :class:`~losslab.datasets.mixing.Mixing`.
ORDER_STREAM, AUGMENT_STREAM, MIXING_STREAM = 0, 1, 2


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A well-spread 63-bit seed for ``(seed, epoch, stream)``: the one formula behind
    every per-epoch generator of the data path (order, augmentation, mixing), so
    each depends only on the run's ``seed`` and the epoch."""
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + int(stream) * 104_729) % (2**63 - 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The sample order of one epoch: a permutation of ``range(n)`` on the CPU.

    It depends only on ``(seed, epoch)``: every run with the same ``seed``
    visits the data in the same order whatever its loss, model or device, and a
    resumed run continues the order exactly without saved generator state.
    """
    g = torch.Generator()
    g.manual_seed(epoch_seed(seed, epoch, ORDER_STREAM))
    return torch.randperm(n, generator=g)


def augment_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """The generator of one epoch's crops and flips, on ``device``."""
    g = torch.Generator(device=device)
    g.manual_seed(epoch_seed(seed, epoch, AUGMENT_STREAM))
    return g


def random_crop(x: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Per-sample random crops of size ``H x W`` from ``x`` zero-padded by ``padding``.

    ``x`` is ``[B, C, H, W]``; offsets are drawn uniformly in ``[0, 2 * padding]``
    for each sample and axis; one gather, no Python loop over samples.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    off = torch.randint(0, 2 * padding + 1, (2, b), generator=generator, device=x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # [B,1,H,1]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # [B,1,1,W]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Flip each image of ``[B, C, H, W]`` horizontally with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def apply_transform(
    x: Tensor, t: BatchTransform, *, generator: torch.Generator | None = None
) -> Tensor:
    """Scale, augment (when ``generator`` is given and ``t`` augments) and normalise a batch.

    Order as in the usual torchvision pipelines: crop and flip act on the
    scaled image (zero padding is black), normalisation comes last.
    """
    if x.dtype == torch.float32 and t.scale == 1.0 and t.mean is None and not t.augments:
        return x
    x = x.float()
    if t.scale != 1.0:
        x = x * t.scale
    if generator is not None:
        if t.crop_padding > 0:
            x = random_crop(x, t.crop_padding, generator)
        if t.flip:
            x = random_flip(x, generator)
    if t.mean is not None:
        mean, std = _statistics(t, x.device, x.ndim)
        x = (x - mean) / std
    return x


_STATISTICS: dict[tuple, tuple[Tensor, Tensor]] = {}


def _statistics(t: BatchTransform, device: torch.device, ndim: int) -> tuple[Tensor, Tensor]:
    """``t``'s mean and std as broadcastable tensors on ``device``, made once: copying
    them from the host for every batch would make each step wait for the GPU."""
    key = (t.mean, t.std, str(device), ndim)
    if key not in _STATISTICS:
        shape = (1, -1) + (1,) * (ndim - 2)
        _STATISTICS[key] = (
            torch.tensor(t.mean, dtype=torch.float32).view(shape).to(device),
            torch.tensor(t.std, dtype=torch.float32).view(shape).to(device),
        )
    return _STATISTICS[key]


class Batches(Protocol):
    """What the training loop iterates: ``len()`` batches of ``(x, y, index)`` per epoch."""

    def __len__(self) -> int: ...

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]: ...


class InMemoryLoader:
    """Iterates one split held as tensors on the training device.

    Args:
        split: the split to serve (``y`` is what training sees; may be noisy).
        batch_size: samples per batch (>= 1).
        device: where the tensors live.
        transform: per-batch scaling, normalisation and augmentation.
        shuffle: training mode: a new order and new augmentations every epoch;
            otherwise the stored order and no augmentation.
        seed: seed of the order and the augmentations (the run's ``seed``).
        drop_last: drop a last, smaller batch.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        transform: BatchTransform | None = None,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid: must be >= 1")
        if not isinstance(split.x, Tensor):
            raise TypeError("InMemoryLoader needs the split's inputs as a tensor")
        self.device = torch.device(device)
        self.x = split.x.to(self.device)
        self.y = split.y.to(self.device)
        self.n = len(split)
        self.transform = transform or BatchTransform()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Yield ``(x, y, index)`` for one epoch; ``index`` are dataset positions."""
        generator = None
        if self.shuffle:
            order = epoch_permutation(self.n, self.seed, epoch).to(self.device)
            if self.transform.augments:
                generator = augment_generator(self.seed, epoch, self.device)
        else:
            order = torch.arange(self.n, device=self.device)
        for b in range(len(self)):
            rows = slice(b * self.batch_size, (b + 1) * self.batch_size)
            idx = order[rows]
            if self.shuffle:
                x, y = self.x[idx], self.y[idx]
            else:  # stored order: views, no gather
                x, y = self.x[rows], self.y[rows]
            yield apply_transform(x, self.transform, generator=generator), y, idx


class _Indexed(torch.utils.data.Dataset):
    """``(image, index)`` pairs of a source, for the DataLoader path."""

    def __init__(self, source: ImageSource | Tensor) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.source[i], i


class StreamingLoader:
    """Iterates one split through a DataLoader with workers (data sets read from disk).

    Same order, transform and seeding as :class:`InMemoryLoader`; the labels stay
    on the device and are gathered by index.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        transform: BatchTransform | None = None,
        shuffle: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid: must be >= 1")
        self.device = torch.device(device)
        self.source = split.x
        self.y = split.y.to(self.device)
        self.n = len(split)
        self.transform = transform or BatchTransform()
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.num_workers = int(num_workers)
        self.drop_last = drop_last

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        order = (
            epoch_permutation(self.n, self.seed, epoch) if self.shuffle else torch.arange(self.n)
        )
        chunks = [
            order[b * self.batch_size : (b + 1) * self.batch_size].tolist()
            for b in range(len(self))
        ]
        loader = torch.utils.data.DataLoader(
            _Indexed(self.source),
            batch_sampler=chunks,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )
        generator = None
        if self.shuffle and self.transform.augments:
            generator = augment_generator(self.seed, epoch, self.device)
        for x, idx in loader:
            x = x.to(self.device, non_blocking=True)
            idx = idx.to(self.device, non_blocking=True)
            yield apply_transform(x, self.transform, generator=generator), self.y[idx], idx


def materialize(source: ImageSource, num_workers: int = 0, batch_size: int = 256) -> Tensor:
    """Decode every sample of a non-empty lazy source into one tensor (workers in parallel)."""
    loader = torch.utils.data.DataLoader(
        _Indexed(source), batch_size=batch_size, num_workers=num_workers, shuffle=False
    )
    return torch.cat([x for x, _ in loader])


def in_memory(data: DataBundle, num_workers: int = 0) -> DataBundle:
    """``data`` with the inputs of every lazy split decoded into one tensor."""
    splits = (data.train, data.val, data.test)
    sample = next((s.x[0] for s in splits if len(s) and not isinstance(s.x, Tensor)), None)
    if sample is None:
        return data

    def decoded(split: Split) -> Split:
        if isinstance(split.x, Tensor):
            return split
        if len(split) == 0:
            return replace(split, x=torch.empty((0, *sample.shape), dtype=sample.dtype))
        return replace(split, x=materialize(split.x, num_workers))

    return replace(data, train=decoded(data.train), val=decoded(data.val), test=decoded(data.test))


def nbytes(split: Split) -> int:
    """Memory the split's inputs take (or would take) as one tensor."""
    if isinstance(split.x, Tensor):
        return split.x.numel() * split.x.element_size()
    if len(split) == 0:
        return 0
    one = split.x[0]
    return len(split) * one.numel() * one.element_size()


def choose_loader(mode: str, splits: list[Split], memory_limit_mb: float) -> str:
    """``memory`` or ``dataloader``: how ``splits`` are served for ``dataset.loader=mode``.

    ``memory`` and ``dataloader`` are obeyed. ``auto`` keeps inputs that are
    already tensors in memory, and decodes lazy sources into memory when all
    splits together take at most ``memory_limit_mb`` MiB (:func:`nbytes`),
    otherwise serves them through a DataLoader.

    Raises:
        ValueError: ``mode`` is not one of :data:`LOADERS`, or ``memory_limit_mb``
            is not a number >= 0.
    """
    check_loader(mode)
    check_memory_limit(memory_limit_mb)
    if mode != "auto":
        return mode
    if all(isinstance(s.x, Tensor) for s in splits):
        return "memory"
    return (
        "memory"
        if fits_in_memory(sum(nbytes(s) for s in splits), memory_limit_mb)
        else "dataloader"
    )
