"""ResNet-18 in its CIFAR form: 3x3 stride-1 stem, no max-pool."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from losslab.models.base import Classifier, require_image_shape


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut."""

    def __init__(self, ch_in: int, ch_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch_out)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or ch_in != ch_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(ch_in, ch_out, 1, stride=stride, bias=False), nn.BatchNorm2d(ch_out)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(Classifier):
    """ResNet-18 (He et al., 2016) with the CIFAR stem of the noisy-label literature.

    Four stages of two :class:`BasicBlock` each, widths ``width * (1, 2, 4, 8)``,
    strides (1, 2, 2, 2); global average pooling, so any image size >= 1 works.

    Args:
        input_shape: ``[C, H, W]``.
        num_classes: K.
        width: channels of the first stage (64 in the standard model).

    References:
        He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition", 2016,
        arXiv:1512.03385.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, width: int = 64) -> None:
        super().__init__(input_shape, num_classes)
        c, _, _ = require_image_shape("resnet18", self.input_shape)
        if width < 1:
            raise ValueError(f"model.width={width} is invalid: must be >= 1")
        layers: list[nn.Module] = [
            nn.Conv2d(c, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        ch_in = width
        for stage, stride in enumerate((1, 2, 2, 2)):
            ch_out = width * 2**stage
            layers += [BasicBlock(ch_in, ch_out, stride), BasicBlock(ch_out, ch_out, 1)]
            ch_in = ch_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(ch_in, self.num_classes)
