"""Asymmetric (class-dependent) label noise along a class mapping (``noise=asymmetric``
and the ``ldr_*``, ``ldr/cyclic*``, ``ldr/<set>*`` and ``apl/asym*`` presets)."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from losslab.datasets.base import DataBundle, Split
from losslab.datasets.noise import mappings
from losslab.datasets.noise.base import LabelNoise, check_choice, check_min_classes, invalid

# Named mappings of asymmetric noise, each a function of K; "pairs" comes from noise.pairs.
_NAMED_MAPPINGS: dict[str, Callable[[int], dict[int, int]]] = {
    "cifar10": lambda k: dict(mappings.CIFAR10),
    "cifar100": lambda k: mappings.cifar100_next_in_superclass(),
    "mnist": lambda k: dict(mappings.MNIST),
    "cyclic": mappings.cyclic,
}
ASYMMETRIC_MAPPINGS = (*_NAMED_MAPPINGS, "pairs", "auto")


def _check_pairs(value: Any) -> dict[int, int]:
    """``[[src, dst], ...]`` as a dict, with distinct sources and no fixed points."""
    valid = "must be a non-empty list of [source, target] class pairs, e.g. [[9, 1], [3, 5]]"
    if value is None or isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise invalid("pairs", value, valid)
    pairs = [list(p) if isinstance(p, Sequence) and not isinstance(p, str) else p for p in value]
    mapping: dict[int, int] = {}
    for pair in pairs:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair)
            and min(pair) >= 0
        ):
            raise invalid("pairs", pairs, f"{valid}; bad entry {pair} (classes are ints >= 0)")
        src, dst = int(pair[0]), int(pair[1])
        if src == dst:
            raise invalid("pairs", pairs, f"the pair [{src}, {dst}] maps a class to itself")
        if src in mapping:
            raise invalid(
                "pairs", pairs, f"class {src} is mapped twice (to {mapping[src]} and {dst})"
            )
        mapping[src] = dst
    if not mapping:
        raise invalid("pairs", pairs, valid)
    return mapping


class AsymmetricNoise(LabelNoise):
    """Asymmetric (class-dependent) label noise along a class mapping (``noise=asymmetric``).

    With probability ``rate`` a sample of clean class ``c`` gets label
    ``mapping[c]``; classes absent from the mapping are never flipped, so the
    realised rate is ``rate`` times the share of samples in mapped classes.

    Mappings (``noise.mapping``):

    - ``cifar10``: truck -> automobile (9->1), bird -> airplane (2->0),
      deer -> horse (4->7), cat <-> dog (3<->5).
    - ``cifar100``: each fine class -> the next fine class of its own superclass,
      cyclically, using the true CIFAR-100 fine -> superclass assignment.
    - ``mnist``: 2->7, 3->8, 5<->6, 7->1.
    - ``cyclic``: ``y -> (y + 1) mod K`` (the LDR paper's "class-dependent" noise).
    - ``pairs``: the explicit ``[source, target]`` pairs of ``noise.pairs``.
    - ``auto``: the mapping named like the data set (``cifar10``, ``cifar100``,
      ``mnist``) if there is one, else ``cyclic``; lets one sweep cover several
      data sets with each one's standard asymmetric noise.

    Args:
        rate: flip probability of a sample of a mapped class, in [0, 1].
        mapping: one of ``cifar10``, ``cifar100``, ``mnist``, ``cyclic``, ``pairs``, ``auto``.
        pairs: the ``[source, target]`` class pairs; only with ``mapping=pairs``.
        seed: seed of the noise.

    Raises:
        ValueError: a bad parameter, or (at :meth:`apply`) a mapping that names a
            class index >= K.

    References:
        Patrini et al., "Making Deep Neural Networks Robust to Label Noise: a Loss
        Correction Approach", CVPR 2017.
        Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural
        Networks with Noisy Labels", NeurIPS 2018.
        Zhu, Ying & Yang, "Label Distributionally Robust Losses for Multi-class
        Classification: Consistency, Robustness and Adaptivity", ICML 2023 (cyclic
        noise and the letter/vowel/news20 swaps).
    """

    kind = "asymmetric"

    def __init__(
        self,
        rate: float = 0.4,
        mapping: str = "cyclic",
        pairs: Sequence[Sequence[int]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(rate=rate, seed=seed)
        self.mapping = check_choice("mapping", mapping, ASYMMETRIC_MAPPINGS)
        if mapping == "pairs":
            self.pairs: dict[int, int] | None = _check_pairs(pairs)
        elif pairs is not None:
            raise invalid(
                "pairs", pairs, f"pairs are only used with noise.mapping=pairs (got {mapping!r})"
            )
        else:
            self.pairs = None
        self.resolved = None if mapping == "auto" else mapping

    def class_map(self, num_classes: int) -> dict[int, int]:
        """``{source class: noisy class}`` for a data set of K classes."""
        if self.pairs is not None:
            return dict(self.pairs)
        if self.resolved is None:
            raise RuntimeError("noise.mapping=auto is resolved by prepare(data) first")
        return _NAMED_MAPPINGS[self.resolved](num_classes)

    def prepare(self, data: DataBundle) -> None:
        if self.mapping == "auto":
            self.resolved = data.name if data.name in _NAMED_MAPPINGS else "cyclic"
        k = data.num_classes
        check_min_classes(self.kind, k)
        table = self.class_map(k)
        too_big = sorted({c for pair in table.items() for c in pair if c >= k})
        if too_big:
            key = "pairs" if self.pairs is not None else "mapping"
            value = [list(p) for p in table.items()] if key == "pairs" else self.mapping
            raise invalid(
                key,
                value,
                f"it names class {too_big[-1]} but the data set '{data.name}' has K={k} "
                f"classes (valid classes: 0..{k - 1})",
            )

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        target = np.arange(num_classes)
        for src, dst in self.class_map(num_classes).items():
            target[src] = dst
        flip = rng.random(len(labels)) < self.rate
        return np.where(flip, target[labels], labels)

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mapping": self.resolved or self.mapping}
        if self.pairs is not None:
            out["pairs"] = [[s, d] for s, d in self.pairs.items()]
        return out
