"""A small image data set for runner tests, selected with ``dataset._target_=...``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from losslab.datasets.base import BatchTransform, DataBundle, bundle_with_official_test


class TensorSource:
    """A lazy image source over a tensor (stands in for image files)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def load_images(
    *,
    num_classes: int = 4,
    input_shape: Sequence[int] = (3, 8, 8),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    lazy: bool = False,
    **_: object,
) -> DataBundle:
    """uint8 images whose mean brightness of one channel encodes the class."""
    g = torch.Generator().manual_seed(0)
    n_train, n_test = 240, 80
    y = torch.arange(n_train + n_test) % num_classes
    x = torch.randint(0, 120, (n_train + n_test, *input_shape), generator=g)
    x[:, 0] += (y * 40)[:, None, None]
    x = x.clamp(0, 255).to(torch.uint8)
    wrap = TensorSource if lazy else (lambda t: t)
    return bundle_with_official_test(
        "fake_images",
        wrap(x[:n_train]),
        y[:n_train].numpy(),
        wrap(x[n_train:]),
        y[n_train:].numpy(),
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        transform=BatchTransform(
            scale=1 / 255, mean=(0.5,) * 3, std=(0.25,) * 3, crop_padding=2, flip=True
        ),
    )
