"""Multi-layer perceptron on flattened inputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from losslab.models.base import Classifier, make_activation


class MLP(Classifier):
    """``depth`` hidden layers of ``width`` units, then a linear head.

    Args:
        input_shape: shape of one input; it is flattened.
        num_classes: K.
        width: units per hidden layer (>= 1).
        depth: number of hidden layers (>= 0; 0 is a linear model).
        activation: ``relu``, ``gelu``, ``silu``, ``tanh``, ``elu`` or ``leaky_relu``.
        dropout: dropout probability after each hidden activation.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        width: int = 256,
        depth: int = 2,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_shape, num_classes)
        if width < 1 or depth < 0:
            raise ValueError(f"model.width={width} must be >= 1 and model.depth={depth} >= 0")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout={dropout} is invalid: must be in [0, 1)")
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(self.input_shape)
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            fan_in = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(fan_in, self.num_classes)
