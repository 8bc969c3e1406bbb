"""Label noise applied to the training and validation labels of a data set.

A noise model is built from ``conf/noise/<token>.yaml``. It draws its
randomness only from ``noise.seed`` (never from the run's ``seed``, and never
from the global torch or numpy generators), so every loss in a comparison sees
identical noisy labels. Test labels are never corrupted.

Models (config tokens):

- ``none``: clean labels (:class:`NoNoise`).
- ``symmetric``: uniform flips to the other classes (:class:`SymmetricNoise`).
- ``asymmetric``: flips along a class mapping (:class:`AsymmetricNoise`); the
  ``ldr_letter``, ``ldr_vowel`` and ``ldr_news20`` presets hold the LDR benchmark's swaps.
- ``instance``: part/instance-dependent flips (:class:`InstanceNoise`).
- ``transition``: a K x K transition matrix read from a file (:class:`TransitionNoise`).
- ``human``: CIFAR-10N / CIFAR-100N human labels (:class:`HumanNoise`).
"""

from __future__ import annotations

import hashlib
import numbers
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from losslab.datasets import noise_mappings
from losslab.datasets.base import DataBundle, Split

# Spawn key of the stream that draws model-level randomness shared by the train
# and val splits (the projections of instance noise). Keys 0 and 1 are the
# per-split streams of :meth:`LabelNoise.apply`.
_SHARED_STREAM = 2


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


def _invalid(key: str, value: Any, valid: str) -> ValueError:
    return ValueError(f"noise.{key}={_show(value)} is invalid: {valid}")


def _check_fraction(key: str, value: Any) -> float:
    """A number in [0, 1]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise _invalid(key, value, "must be a number in [0, 1]")
    return float(value)


def _check_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise _invalid("seed", value, "must be an integer >= 0")
    return int(value)


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise _invalid(key, value, "must be true or false")
    return bool(value)


def _check_choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _invalid(key, value, f"must be one of {', '.join(choices)}")
    return value


def _check_min_classes(kind: str, num_classes: int, minimum: int = 2) -> None:
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
        self.rate = None if rate is None else _check_fraction("rate", rate)
        self.seed = _check_seed(seed)

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
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_SHARED_STREAM,)))

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


class NoNoise(LabelNoise):
    """Clean labels (``noise=none``)."""

    kind = "none"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(rate=0.0, seed=seed)


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
        self.include_true = _check_bool("include_true", include_true)
        self.exact = _check_bool("exact", exact)

    def prepare(self, data: DataBundle) -> None:
        _check_min_classes(self.kind, data.num_classes)

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


# Named mappings of asymmetric noise, each a function of K; "pairs" comes from noise.pairs.
_NAMED_MAPPINGS: dict[str, Callable[[int], dict[int, int]]] = {
    "cifar10": lambda k: dict(noise_mappings.CIFAR10),
    "cifar100": lambda k: noise_mappings.cifar100_next_in_superclass(),
    "mnist": lambda k: dict(noise_mappings.MNIST),
    "cyclic": noise_mappings.cyclic,
}
ASYMMETRIC_MAPPINGS = (*_NAMED_MAPPINGS, "pairs", "auto")


def _check_pairs(value: Any) -> dict[int, int]:
    """``[[src, dst], ...]`` as a dict, with distinct sources and no fixed points."""
    valid = "must be a non-empty list of [source, target] class pairs, e.g. [[9, 1], [3, 5]]"
    if value is None or isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        raise _invalid("pairs", value, valid)
    pairs = [list(p) if isinstance(p, Sequence) and not isinstance(p, str) else p for p in value]
    mapping: dict[int, int] = {}
    for pair in pairs:
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair)
            and min(pair) >= 0
        ):
            raise _invalid("pairs", pairs, f"{valid}; bad entry {pair} (classes are ints >= 0)")
        src, dst = int(pair[0]), int(pair[1])
        if src == dst:
            raise _invalid("pairs", pairs, f"the pair [{src}, {dst}] maps a class to itself")
        if src in mapping:
            raise _invalid(
                "pairs", pairs, f"class {src} is mapped twice (to {mapping[src]} and {dst})"
            )
        mapping[src] = dst
    if not mapping:
        raise _invalid("pairs", pairs, valid)
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
        self.mapping = _check_choice("mapping", mapping, ASYMMETRIC_MAPPINGS)
        if mapping == "pairs":
            self.pairs: dict[int, int] | None = _check_pairs(pairs)
        elif pairs is not None:
            raise _invalid(
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
        _check_min_classes(self.kind, k)
        table = self.class_map(k)
        too_big = sorted({c for pair in table.items() for c in pair if c >= k})
        if too_big:
            key = "pairs" if self.pairs is not None else "mapping"
            value = [list(p) for p in table.items()] if key == "pairs" else self.mapping
            raise _invalid(
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


def _truncated_normal(
    rng: np.random.Generator, n: int, mean: float, std: float, low: float, high: float
) -> np.ndarray:
    """``n`` draws of N(mean, std^2) restricted to [low, high] (by rejection)."""
    if std == 0.0:
        return np.full(n, mean)
    out = rng.normal(mean, std, size=n)
    bad = np.flatnonzero((out < low) | (out > high))
    while bad.size:  # with mean in [low, high] and std <= 1, >= 1/3 of draws are kept
        out[bad] = rng.normal(mean, std, size=bad.size)
        bad = bad[(out[bad] < low) | (out[bad] > high)]
    return out


class InstanceNoise(LabelNoise):
    """Part/instance-dependent label noise (``noise=instance``).

    Every sample ``i`` gets its own flip rate ``q_i``, drawn from a normal
    distribution of mean ``rate`` and standard deviation ``tau`` truncated to
    [0, 1]. One random projection ``W_c`` of shape ``[d, K]`` per class ``c``
    (d = the flattened input size; entries standard normal, ``W`` is
    ``[K, d, K]``) turns the features into scores ``s = x_i W_y`` for a sample
    of class ``y``. With ``s_y = -inf``, the noisy label is drawn from

    ``p = q_i * softmax(s)``, ``p_y = 1 - q_i``,

    so sample ``i`` keeps its label with probability ``1 - q_i`` and otherwise
    moves to a class its own features point at. The realised rate is about the
    mean of the truncated normal (``rate`` unless ``rate`` is within a few
    ``tau`` of 0 or 1). The projections are shared by the train and val splits;
    features are the split's flattened inputs as floats.

    Args:
        rate: mean flip rate in [0, 1].
        tau: standard deviation of the per-sample flip rates, in [0, 1].
        seed: seed of the noise (flip rates, projections and draws).

    Raises:
        ValueError: a bad parameter, or (at :meth:`apply`) inputs that are not
            held in memory as a tensor.

    References:
        Xia et al., "Part-dependent Label Noise: Towards Instance-dependent Label
        Noise", NeurIPS 2020.
        Cheng et al., "Learning with Instance-Dependent Label Noise: A Sample Sieve
        Approach", ICLR 2021.
    """

    kind = "instance"

    def __init__(self, rate: float = 0.2, tau: float = 0.1, seed: int = 0) -> None:
        super().__init__(rate=rate, seed=seed)
        self.tau = _check_fraction("tau", tau)

    def prepare(self, data: DataBundle) -> None:
        _check_min_classes(self.kind, data.num_classes)
        for name in ("train", "val"):
            if not isinstance(getattr(data, name).x, torch.Tensor):
                raise ValueError(
                    f"noise=instance needs in-memory inputs (a tensor), but the {name} split "
                    f"of data set '{data.name}' is served lazily from "
                    f"{type(getattr(data, name).x).__name__}; use a data set held in memory"
                )

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        if not isinstance(split.x, torch.Tensor):
            raise ValueError("noise=instance needs in-memory inputs (a tensor)")
        n = len(labels)
        q = _truncated_normal(rng, n, self.rate, self.tau, 0.0, 1.0)
        u = rng.random(n)
        features = split.x.detach().reshape(n, -1).cpu()  # [N, d]
        d = features.shape[1]
        projections = self.shared_rng()
        out = labels.copy()
        for c in range(num_classes):
            # drawn for every class, in order, so W does not depend on the split's classes
            w_c = projections.standard_normal((d, num_classes))  # [d, K]
            idx = np.flatnonzero(labels == c)
            if idx.size == 0:
                continue
            scores = features[torch.as_tensor(idx)].to(torch.float64).numpy() @ w_c  # [n_c, K]
            scores[:, c] = -np.inf
            scores -= scores.max(axis=1, keepdims=True)
            p = np.exp(scores)
            p *= (q[idx] / p.sum(axis=1))[:, None]
            p[:, c] = 1.0 - q[idx]
            cdf = np.cumsum(p, axis=1)
            cdf[:, -1] = 1.0
            out[idx] = (u[idx, None] >= cdf).sum(axis=1)  # first class whose cdf exceeds u
        return out

    def params(self) -> dict[str, Any]:
        return {"tau": self.tau}


_MATRIX_FORMATS = ".npy, .csv or whitespace-separated .txt"


def load_transition_matrix(file: str | Path) -> np.ndarray:
    """Read and check a row-stochastic matrix from ``.npy``, ``.csv`` or ``.txt``.

    Args:
        file: path of the matrix: ``.npy`` (numpy), ``.csv`` (comma-separated rows)
            or ``.txt`` (whitespace-separated rows).

    Returns:
        The square matrix as float64, rows summing to 1.

    Raises:
        ValueError: the file is missing or unreadable, the matrix is not square,
            has a non-finite or negative entry, or a row does not sum to 1 (within 1e-6).
    """
    path = Path(file).expanduser()
    if not path.is_file():
        raise _invalid(
            "file", str(file), f"no such file (a K x K row-stochastic matrix as {_MATRIX_FORMATS})"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            matrix = np.load(path, allow_pickle=False)
        elif suffix == ".csv":
            matrix = np.loadtxt(path, delimiter=",", ndmin=2)
        elif suffix == ".txt":
            matrix = np.loadtxt(path, ndmin=2)
        else:
            raise _invalid("file", str(file), f"unknown format '{suffix}': use {_MATRIX_FORMATS}")
        matrix = np.asarray(matrix, dtype=np.float64)
    except ValueError as exc:
        if str(exc).startswith("noise."):
            raise
        raise _invalid("file", str(file), f"cannot read a numeric matrix from it: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise _invalid(
            "file",
            str(file),
            f"the matrix has shape {tuple(matrix.shape)}; it must be square, K x K with K >= 2",
        )
    if not np.isfinite(matrix).all():
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise _invalid("file", str(file), f"row {row} has a non-finite entry: {matrix[row]}")
    if (matrix < 0).any():
        row, col = (int(v) for v in np.argwhere(matrix < 0)[0])
        raise _invalid(
            "file",
            str(file),
            f"row {row} has a negative entry T[{row}, {col}]={matrix[row, col]}; "
            "entries must be probabilities >= 0",
        )
    sums = matrix.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if off.size:
        row = int(off[0])
        raise _invalid(
            "file",
            str(file),
            f"row {row} sums to {sums[row]:.8g}; every row must sum to 1 (tolerance 1e-6)",
        )
    return matrix / sums[:, None]


class TransitionNoise(LabelNoise):
    """Label noise from a given transition matrix (``noise=transition``).

    ``T`` is a K x K row-stochastic matrix, ``T[i, j] = P(noisy=j | clean=i)``;
    every sample of clean class ``c`` draws its label from row ``c``. The nominal
    rate recorded is the expected flip rate on the training split,
    ``sum_c share_c (1 - T[c, c])``.

    Args:
        file: the matrix as ``.npy``, ``.csv`` or whitespace-separated ``.txt``;
            None (the YAML default) only builds the model: :meth:`apply` then fails.
        seed: seed of the noise.

    Raises:
        ValueError: a missing or malformed file (see :func:`load_transition_matrix`),
            or (at :meth:`apply`) no file or a matrix that is not K x K.

    References:
        Natarajan et al., "Learning with Noisy Labels", NeurIPS 2013.
        Patrini et al., "Making Deep Neural Networks Robust to Label Noise: a Loss
        Correction Approach", CVPR 2017.
    """

    kind = "transition"

    def __init__(self, file: str | None = None, seed: int = 0) -> None:
        super().__init__(rate=None, seed=seed)
        self.file = None if file is None else str(file)
        self.matrix = None if file is None else load_transition_matrix(file)

    def prepare(self, data: DataBundle) -> None:
        if self.matrix is None:
            raise ValueError(
                "noise=transition needs noise.file=<path of a K x K row-stochastic matrix "
                f"as {_MATRIX_FORMATS}>; it has no default"
            )
        k = data.num_classes
        if self.matrix.shape != (k, k):
            raise _invalid(
                "file",
                self.file,
                f"the matrix has shape {tuple(self.matrix.shape)} but the data set "
                f"'{data.name}' has K={k} classes: it must be {k} x {k}",
            )

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        assert self.matrix is not None  # checked by prepare
        cdf = np.cumsum(self.matrix, axis=1)
        cdf[:, -1] = 1.0
        u = rng.random(len(labels))
        return (u[:, None] >= cdf[labels]).sum(axis=1)  # first class whose cdf exceeds u

    def nominal_rate(self, data: DataBundle) -> float | None:
        if self.matrix is None or len(data.train) == 0 or self.matrix.shape[0] != data.num_classes:
            return None
        share = np.bincount(data.train.y_clean.numpy(), minlength=data.num_classes)
        share = share / share.sum()
        return float(share @ (1.0 - np.diag(self.matrix)))

    def params(self) -> dict[str, Any]:
        return {"file": self.file}


HUMAN_LABELS = {
    "aggre": "aggre_label",
    "rand1": "random_label1",
    "rand2": "random_label2",
    "rand3": "random_label3",
    "worst": "worse_label",
    "noisy100": "noisy_label",
}
"""``noise.label`` -> key of the CIFAR-N label file (CIFAR-10N: the first five; CIFAR-100N:
``noisy100``)."""

_CIFAR_N_SOURCE = (
    "the label files CIFAR-10_human.pt and CIFAR-100_human.pt come from the CIFAR-N "
    "release (http://www.noisylabels.com, https://github.com/UCSC-REAL/cifar-10-100n, "
    "folder data/) and are never bundled with losslab: download one and pass its path"
)


def _source_index(split: Split) -> np.ndarray:
    """Position of every sample of ``split`` in its source's official order."""
    if split.source_index is None:
        return np.arange(len(split))
    return split.source_index.cpu().numpy().astype(np.int64)


def _read_label_file(path: Path, shown: str) -> Mapping:
    """A dict saved with ``torch.save`` or pickle (or a ``.npy`` holding one)."""
    try:
        if path.suffix.lower() == ".npy":
            obj = np.load(path, allow_pickle=True)
            obj = obj.item() if obj.dtype == object and obj.ndim == 0 else obj
        else:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=False)
            except (RuntimeError, pickle.UnpicklingError):
                with path.open("rb") as fh:
                    obj = pickle.load(fh)
    except Exception as exc:
        raise _invalid("file", shown, f"cannot read a CIFAR-N label file from it: {exc}") from exc
    if not isinstance(obj, Mapping):
        raise _invalid(
            "file", shown, f"expected a dict of label arrays, found a {type(obj).__name__}"
        )
    return obj


def _label_array(obj: Mapping, key: str, shown: str) -> np.ndarray:
    arr = np.asarray(obj[key].cpu() if isinstance(obj[key], torch.Tensor) else obj[key])
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise _invalid(
            "file",
            shown,
            f"'{key}' must be a 1-D integer array, found shape {arr.shape} of {arr.dtype}",
        )
    return arr.astype(np.int64)


class HumanNoise(LabelNoise):
    """Real human label noise of CIFAR-10N / CIFAR-100N (``noise=human``).

    The CIFAR-N release re-annotated the 50,000 CIFAR training images on Amazon
    Mechanical Turk. Its label file is a ``torch.save``'d dict of arrays in the
    official training order; the noisy label of a sample is
    ``file[key][source_index]``. ``noise.label`` picks the annotation:

    - CIFAR-10N: ``aggre`` (majority vote, ~9 % noise), ``rand1``, ``rand2``,
      ``rand3`` (one annotator each, ~17 %), ``worst`` (a wrong one where any, ~40 %);
    - CIFAR-100N: ``noisy100`` (~40 %).

    The file's ``clean_label`` must equal the data set's clean labels at the
    aligned positions, or the file belongs to another data set. Human noise has no
    nominal rate (recorded as None); its realised rate is recorded. ``seed`` is
    kept for the record but draws nothing.

    Args:
        file: the label file (``CIFAR-10_human.pt`` or ``CIFAR-100_human.pt``, never
            bundled); None (the YAML default) only builds the model: :meth:`apply` fails.
        label: which annotation: ``aggre``, ``rand1``, ``rand2``, ``rand3``, ``worst``
            or ``noisy100``.
        seed: recorded with the run.

    Raises:
        ValueError: a bad ``label``, a missing or unreadable file or key, or (at
            :meth:`apply`) no file, a file shorter than ``max(source_index) + 1``, or a
            file whose clean labels disagree with the data set's.

    References:
        Wei et al., "Learning with Noisy Labels Revisited: A Study Using Real-World
        Human Annotations", ICLR 2022.
    """

    kind = "human"

    def __init__(self, file: str | None = None, label: str = "aggre", seed: int = 0) -> None:
        super().__init__(rate=None, seed=seed)
        self.label = _check_choice("label", label, tuple(HUMAN_LABELS))
        self.file = None if file is None else str(file)
        self.noisy_labels: np.ndarray | None = None
        self.clean_labels: np.ndarray | None = None
        if file is not None:
            self._load(Path(file).expanduser())

    def _load(self, path: Path) -> None:
        shown = self.file
        if not path.is_file():
            raise _invalid("file", shown, f"no such file; {_CIFAR_N_SOURCE}")
        obj = _read_label_file(path, shown)
        key = HUMAN_LABELS[self.label]
        if key not in obj and self.label == "noisy100" and "noise_label" in obj:
            key = "noise_label"  # the spelling of the release's .npy copy
        for needed in (key, "clean_label"):
            if needed not in obj:
                raise _invalid(
                    "file",
                    shown,
                    f"it has no key '{needed}' (needed by noise.label={self.label}); its keys: "
                    f"{sorted(map(str, obj))}. CIFAR-10N files hold aggre/rand1/rand2/rand3/"
                    "worst, CIFAR-100N files hold noisy100",
                )
        self.noisy_labels = _label_array(obj, key, shown)
        self.clean_labels = _label_array(obj, "clean_label", shown)
        if len(self.noisy_labels) != len(self.clean_labels):
            raise _invalid(
                "file",
                shown,
                f"'{key}' holds {len(self.noisy_labels)} labels but 'clean_label' holds "
                f"{len(self.clean_labels)}",
            )

    def prepare(self, data: DataBundle) -> None:
        if self.noisy_labels is None or self.clean_labels is None:
            raise ValueError(
                "noise=human needs noise.file=<path of CIFAR-10_human.pt or "
                f"CIFAR-100_human.pt>; it has no default: {_CIFAR_N_SOURCE}"
            )
        k = data.num_classes
        top = int(max(self.noisy_labels.max(initial=0), self.clean_labels.max(initial=0)))
        if top >= k or min(self.noisy_labels.min(initial=0), self.clean_labels.min(initial=0)) < 0:
            raise _invalid(
                "file",
                self.file,
                f"it holds labels up to {top} but the data set '{data.name}' has K={k} "
                f"classes (0..{k - 1}): it belongs to another data set",
            )
        for name in ("train", "val"):
            self._check_alignment(getattr(data, name), name, data.name)

    def _check_alignment(self, split: Split, name: str, dataset: str) -> None:
        """Fail unless ``split``'s samples sit in the file with matching clean labels."""
        assert self.noisy_labels is not None and self.clean_labels is not None
        n = len(split)
        if n == 0:
            return
        index = _source_index(split)
        length = len(self.noisy_labels)
        if index.min() < 0 or index.max() >= length:
            raise _invalid(
                "file",
                self.file,
                f"it holds {length} labels but the {name} split of '{dataset}' refers to "
                f"source index {int(index.max())} (needs at least {int(index.max()) + 1}); "
                "the file follows the official CIFAR training order (50,000 images)",
            )
        wrong = int((self.clean_labels[index] != split.y_clean.cpu().numpy()).sum())
        if wrong:
            raise _invalid(
                "file",
                self.file,
                f"its clean_label disagrees with the clean labels of '{dataset}' at {wrong} of "
                f"{n} {name} samples aligned by source_index: the file belongs to another data "
                "set (CIFAR-10N files go with cifar10, CIFAR-100N files with cifar100)",
            )

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        assert self.noisy_labels is not None  # checked by prepare
        return self.noisy_labels[_source_index(split)].copy()

    def params(self) -> dict[str, Any]:
        return {"file": self.file, "label": self.label}

    def nominal_rate(self, data: DataBundle) -> float | None:
        return None
