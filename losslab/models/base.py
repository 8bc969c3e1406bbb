"""The model contract shared by every architecture."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name, with a clear error for unknown names."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"model.activation='{name}' is unknown; choose one of {sorted(ACTIVATIONS)}"
        ) from None


class Classifier(nn.Module):
    """Base class: ``forward(x) = head(forward_features(x))``.

    Subclasses set ``self.features`` (a module mapping inputs to a flat
    ``[B, feature_dim]`` tensor) and ``self.classifier`` (the last linear layer).
    """

    features: nn.Module
    classifier: nn.Linear

    def __init__(self, input_shape: Sequence[int], num_classes: int) -> None:
        super().__init__()
        if int(num_classes) < 2:
            raise ValueError(f"num_classes={num_classes} is invalid: must be >= 2")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)

    @property
    def feature_dim(self) -> int:
        return self.classifier.in_features

    def forward_features(self, x: Tensor) -> Tensor:
        """Penultimate activations, ``[B, feature_dim]``."""
        return self.features(x)

    def head(self, features: Tensor) -> Tensor:
        """Logits ``[B, K]`` from penultimate activations."""
        return self.classifier(features)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))


def require_image_shape(name: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(C, H, W)`` or a clear error for models that need images."""
    if len(input_shape) != 3:
        raise ValueError(
            f"model '{name}' needs image inputs of shape [C, H, W], but the data set has "
            f"input_shape={list(input_shape)}; use model=mlp for vector data"
        )
    c, h, w = (int(s) for s in input_shape)
    return c, h, w
