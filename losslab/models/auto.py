"""A model chosen by the shape of the data: one preset for image and tabular data sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from losslab.models.base import Classifier
from losslab.models.mlp import MLP
from losslab.models.resnet import ResNet18


def by_input_shape(
    input_shape: Sequence[int],
    num_classes: int,
    image: Mapping[str, Any] | None = None,
    vector: Mapping[str, Any] | None = None,
) -> Classifier:
    """ResNet-18 for image inputs ``[C, H, W]``, an MLP for feature vectors ``[d]``.

    This is how benchmark protocols that span image and tabular data sets pick
    their network (the LDR benchmark: ResNet-18 on CIFAR-100, KMNIST-49 and Tiny
    ImageNet; a tanh MLP on letter, vowel, aloi and news20), so that one preset
    serves every data set.

    Args:
        input_shape: shape of one input; 3 dimensions mean an image.
        num_classes: K.
        image: keyword arguments of :class:`~losslab.models.resnet.ResNet18` (``width``).
        vector: keyword arguments of :class:`~losslab.models.mlp.MLP` (``width``,
            ``depth``, ``activation``, ``dropout``).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return ResNet18(shape, num_classes, **dict(image or {}))
    if len(shape) == 1:
        return MLP(shape, num_classes, **dict(vector or {}))
    raise ValueError(
        f"model=auto needs input_shape [C, H, W] (an image) or [d] (a vector), "
        f"got input_shape={list(shape)}"
    )
