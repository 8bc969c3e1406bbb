"""Symmetric (uniform) label noise (``noise=symmetric`` and the ``ldr/sym*``,
``apl/sym*`` presets)."""

from __future__ import annotations

from typing import Any

import numpy as np

from losslab.datasets.base import DataBundle, Split
from losslab.datasets.noise.base import LabelNoise, check_bool, check_min_classes


class SymmetricNoise(LabelNoise):
    """Symmetric (uniform) label noise (``noise=symmetric``).

    Each sample is flipped, independently with probability ``rate``, to a label
    drawn uniformly from the other K-1 classes:
    ``P(noisy=j | clean=i) = 1 - rate`` for ``j = i`` and ``rate / (K-1)`` otherwise.

    With ``include_true`` the new label is drawn from all K classes, so it may
    equal the clean one: ``P(noisy=j | clean=i) = 1 - rate + rate/K`` for ``j = i``
    and ``rate / K`` otherwise; the realised rate is then ``rate (K-1) / K``
    (the "uniform" noise of the LDR reference code).

    With ``exact`` exactly ``round(rate * n_c)`` samples of every class ``c``
    (chosen at random) draw a new label as above, instead of one coin per sample.

    Args:
        rate: flip probability in [0, 1].
        include_true: draw the new label from all K classes instead of the other K-1.
        exact: flip a fixed number of samples per class instead of a random number.
        seed: seed of the noise.

    References:
        van Rooyen, Menon & Williamson, "Learning with Symmetric Label Noise: The
        Importance of Being Unhinged", NeurIPS 2015.
        Ghosh, Kumar & Sastry, "Robust Loss Functions under Label Noise for Deep
        Neural Networks", AAAI 2017.
        Zhu, Ying & Yang, "Label Distributionally Robust Losses for Multi-class
        Classification: Consistency, Robustness and Adaptivity", ICML 2023.
    """

    kind = "symmetric"

    def __init__(
        self, rate: float = 0.2, include_true: bool = False, exact: bool = False, seed: int = 0
    ) -> None:
        super().__init__(rate=rate, seed=seed)
        self.include_true = check_bool("include_true", include_true)
        self.exact = check_bool("exact", exact)

    def prepare(self, data: DataBundle) -> None:
        check_min_classes(self.kind, data.num_classes)

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        n = len(labels)
        if self.exact:
            chosen = np.zeros(n, dtype=bool)
            for c in range(num_classes):
                idx = np.flatnonzero(labels == c)
                chosen[rng.permutation(idx)[: round(self.rate * len(idx))]] = True
        else:
            chosen = rng.random(n) < self.rate
        if self.include_true:
            new = rng.integers(0, num_classes, size=n)
        else:  # a non-zero offset modulo K is uniform over the other K-1 classes
            new = (labels + rng.integers(1, num_classes, size=n)) % num_classes
        return np.where(chosen, new, labels)

    def params(self) -> dict[str, Any]:
        return {"include_true": self.include_true, "exact": self.exact}
