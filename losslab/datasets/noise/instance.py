"""Part/instance-dependent label noise (``noise=instance``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from losslab.datasets.base import DataBundle, Split
from losslab.datasets.noise.base import LabelNoise, check_fraction, check_min_classes


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
        self.tau = check_fraction("tau", tau)

    def prepare(self, data: DataBundle) -> None:
        check_min_classes(self.kind, data.num_classes)
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
