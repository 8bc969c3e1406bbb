"""A small convolutional network for small images (8x8 digits to 32x32 CIFAR)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from losslab.models.base import Classifier, make_activation, require_image_shape


class SmallCNN(Classifier):
    """Conv-BN-act blocks, widths doubling, 2x2 max-pool after each block while
    the feature map is at least 4x4, then global average pooling and a linear head.

    Args:
        input_shape: ``[C, H, W]``.
        num_classes: K.
        width: channels of the first block (>= 1).
        depth: number of conv blocks (>= 1).
        activation: activation name (see :mod:`losslab.models.base`).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 32,
        depth: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__(input_shape, num_classes)
        c, h, w = require_image_shape("cnn", self.input_shape)
        if width < 1 or depth < 1:
            raise ValueError(f"model.width={width} and model.depth={depth} must be >= 1")
        layers: list[nn.Module] = []
        ch_in, size = c, min(h, w)
        for i in range(depth):
            ch_out = width * 2**i
            layers += [
                nn.Conv2d(ch_in, ch_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(ch_out),
                make_activation(activation),
            ]
            if size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            ch_in = ch_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(ch_in, self.num_classes)
