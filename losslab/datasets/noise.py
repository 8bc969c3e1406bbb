"""Label noise applied to the training and validation labels of a data set.

A noise model is built from ``conf/noise/<token>.yaml``. It draws its
randomness only from ``noise.seed`` (never from the run's ``seed``), so every
loss in a comparison sees identical noisy labels. Test labels are never
corrupted.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import torch

from losslab.datasets.base import DataBundle, Split


def labels_sha(labels: torch.Tensor) -> str:
    """SHA-256 of a label vector (as little-endian int64), to prove two runs saw the same labels."""
    arr = np.ascontiguousarray(labels.detach().cpu().numpy().astype("<i8"))
    return hashlib.sha256(arr.tobytes()).hexdigest()


class LabelNoise:
    """Base class: no corruption. Subclasses override :meth:`corrupt`.

    Args:
        rate: nominal noise rate in [0, 1].
        seed: seed of the noise (``noise.seed``), independent of the run's seed.
    """

    kind = "none"

    def __init__(self, rate: float = 0.0, seed: int = 0) -> None:
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"noise.rate={rate} is invalid: must be in [0, 1]")
        self.rate = float(rate)
        self.seed = int(seed)

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        """Return noisy labels for one split (default: unchanged)."""
        return labels

    def apply(self, data: DataBundle) -> DataBundle:
        """Corrupt the train and val labels; the test split is returned untouched."""
        # One generator per split, derived from noise.seed, so the training
        # labels do not depend on the size of the validation split and vice versa.
        streams = np.random.SeedSequence(self.seed).spawn(2)
        out = {}
        for (name, split), stream in zip(
            (("train", data.train), ("val", data.val)), streams, strict=True
        ):
            noisy = self.corrupt(
                split.y_clean.numpy().copy(), data.num_classes, np.random.default_rng(stream), split
            )
            out[name] = split.with_labels(torch.as_tensor(noisy, dtype=torch.int64))
        return replace(data, train=out["train"], val=out["val"])

    def summary(self, data: DataBundle) -> dict:
        """What results.json records under ``noise``."""
        return {
            "type": self.kind,
            "rate": self.rate,
            "realised_rate": float(data.train.is_noisy.float().mean()) if len(data.train) else 0.0,
            "realised_rate_val": float(data.val.is_noisy.float().mean()) if len(data.val) else 0.0,
            "seed": self.seed,
            "labels_sha": labels_sha(data.train.y),
        }


class NoNoise(LabelNoise):
    """Clean labels (``noise=none``)."""

    kind = "none"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(rate=0.0, seed=seed)
