"""Clean labels (``noise=none``)."""

from __future__ import annotations

from losslab.datasets.noise.base import LabelNoise


class NoNoise(LabelNoise):
    """Clean labels (``noise=none``)."""

    kind = "none"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(rate=0.0, seed=seed)
