"""What every label-noise model shares: the :class:`LabelNoise` base class, the
record helpers (:func:`labels_sha`, :func:`empirical_transition_matrix`) and the
parameter checks whose messages name ``noise.<key>=<value>`` and what is valid.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from losslab.datasets.base import DataBundle, Split

# Spawn key of the stream that draws model-level randomness shared by the train
# and val splits (the projections of instance noise). Keys 0 and 1 are the
# per-split streams of :meth:`LabelNoise.apply`.
SHARED_STREAM = 2


def labels_sha(labels: torch.Tensor) -> str:
    """SHA-256 of a label vector (as little-endian int64), to prove two runs saw the same labels."""
    arr = np.ascontiguousarray(labels.detach().cpu().numpy().astype("<i8"))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def empirical_transition_matrix(
    clean: torch.Tensor | np.ndarray, noisy: torch.Tensor | np.ndarray, num_classes: int
) -> list[list[float]]:
    """The observed clean -> noisy label transition matrix.

    Entry ``[i][j]`` is the fraction of samples of clean class ``i`` whose
    (noisy) label is ``j``; each row sums to 1, and a class without samples has
    a row of zeros.

    Args:
        clean: the clean labels, ``[N]``.
        noisy: the labels training sees, ``[N]``.
        num_classes: K.

    Returns:
        A K x K nested list of floats.
    """
    clean = np.asarray(clean, dtype=np.int64)
    noisy = np.asarray(noisy, dtype=np.int64)
    counts = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(counts, (clean, noisy), 1.0)
    rows = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    return matrix.tolist()


# --- parameter checks: every message names ``noise.<key>=<value>`` and what is valid ---


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def invalid(key: str, value: Any, valid: str) -> ValueError:
    return ValueError(f"noise.{key}={_show(value)} is invalid: {valid}")


def check_fraction(key: str, value: Any) -> float:
    """A number in [0, 1]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise invalid(key, value, "must be a number in [0, 1]")
    return float(value)


def check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise invalid("seed", value, "must be an integer >= 0")
    return int(value)


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise invalid(key, value, "must be true or false")
    return bool(value)


def check_choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise invalid(key, value, f"must be one of {', '.join(choices)}")
    return value


def check_min_classes(kind: str, num_classes: int, minimum: int = 2) -> None:
    if num_classes < minimum:
        raise ValueError(
            f"noise={kind} needs at least {minimum} classes, the data set has K={num_classes}"
        )


class LabelNoise:
    """Base class: no corruption. Subclasses override :meth:`corrupt`.

    Args:
        rate: nominal noise rate in [0, 1], or None where the model has none
            (its realised rate is recorded instead).
        seed: seed of the noise (``noise.seed``), independent of the run's seed.
    """

    kind = "none"

    def __init__(self, rate: float | None = 0.0, seed: int = 0) -> None:
        self.rate = None if rate is None else check_fraction("rate", rate)
        self.seed = check_seed(seed)

    def prepare(self, data: DataBundle) -> None:
        """Check the model against the data set before any label is drawn.

        Raises:
            ValueError: the model does not fit the data set (default: never).
        """

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        """Return noisy labels for one split (default: unchanged).

        Args:
            labels: the split's clean labels, ``[N]`` int64 (a copy: may be modified).
            num_classes: K.
            rng: the split's own generator, derived from ``noise.seed``.
            split: the split (its inputs and ``source_index``, for models that need them).
        """
        return labels

    def apply(self, data: DataBundle) -> DataBundle:
        """Corrupt the train and val labels; the test split is returned untouched."""
        self.prepare(data)
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

    def shared_rng(self) -> np.random.Generator:
        """A generator for randomness that the train and val splits share (same every call)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(SHARED_STREAM,)))

    def params(self) -> dict[str, Any]:
        """The model's parameters other than ``rate`` and ``seed``, for the run record."""
        return {}

    def nominal_rate(self, data: DataBundle) -> float | None:
        """The rate the model aims at (``rate``); None where it has no nominal rate."""
        return self.rate

    def summary(self, data: DataBundle) -> dict:
        """What results.json records under ``noise``."""
        return {
            "type": self.kind,
            "rate": self.nominal_rate(data),
            "realised_rate": float(data.train.is_noisy.float().mean()) if len(data.train) else 0.0,
            "realised_rate_val": float(data.val.is_noisy.float().mean()) if len(data.val) else 0.0,
            "seed": self.seed,
            "labels_sha": labels_sha(data.train.y),
            "params": self.params(),
        }

    def transition_matrix(self, data: DataBundle) -> list[list[float]]:
        """The empirical clean -> noisy matrix of the training split (rows normalised).

        Entry ``[i][j]`` is the share of training samples of clean class ``i`` that
        carry label ``j``; a class without training samples has a row of zeros.
        """
        return empirical_transition_matrix(data.train.y_clean, data.train.y, data.num_classes)
