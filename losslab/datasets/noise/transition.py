"""Label noise from a given K x K transition matrix (``noise=transition``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from losslab.datasets.base import DataBundle, Split
from losslab.datasets.noise.base import LabelNoise, invalid

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
        raise invalid(
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
            raise invalid("file", str(file), f"unknown format '{suffix}': use {_MATRIX_FORMATS}")
        matrix = np.asarray(matrix, dtype=np.float64)
    except ValueError as exc:
        if str(exc).startswith("noise."):
            raise
        raise invalid("file", str(file), f"cannot read a numeric matrix from it: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise invalid(
            "file",
            str(file),
            f"the matrix has shape {tuple(matrix.shape)}; it must be square, K x K with K >= 2",
        )
    if not np.isfinite(matrix).all():
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise invalid("file", str(file), f"row {row} has a non-finite entry: {matrix[row]}")
    if (matrix < 0).any():
        row, col = (int(v) for v in np.argwhere(matrix < 0)[0])
        raise invalid(
            "file",
            str(file),
            f"row {row} has a negative entry T[{row}, {col}]={matrix[row, col]}; "
            "entries must be probabilities >= 0",
        )
    sums = matrix.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if off.size:
        row = int(off[0])
        raise invalid(
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
            raise invalid(
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
