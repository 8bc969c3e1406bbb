"""The one normalisation-statistics helper: images and vectors, in memory or lazy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab.datasets.stats import channel_stats, sample_rows
from tests.runner.fake_images import TensorSource


def test_same_statistics_in_memory_and_lazy():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8, generator=g)
    rows = sample_rows(len(x), 20, seed=3)
    assert channel_stats(x, rows, chunk=7) == channel_stats(TensorSource(x), rows, chunk=7)
    ref = x[torch.from_numpy(rows)].double().numpy() / 255
    mean, std = channel_stats(x, rows)
    assert mean == pytest.approx(tuple(ref.mean(axis=(0, 2, 3))), abs=1e-12)
    assert std == pytest.approx(tuple(ref.std(axis=(0, 2, 3))), abs=1e-12)


def test_vectors_per_feature_with_a_floor_for_constant_features():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    assert channel_stats(x, scale=1.0) == ((2.0, 5.0), (1.0, 0.0))
    assert channel_stats(x, scale=1.0, min_std=1e-6) == ((2.0, 5.0), (1.0, 1.0))


def test_rounding_and_sampling():
    x = torch.full((4, 1, 2, 2), 100, dtype=torch.uint8)
    assert channel_stats(x, decimals=6) == ((round(100 / 255, 6),), (0.0,))
    assert np.array_equal(sample_rows(10, 4, 0), sample_rows(10, 4, 0))
    assert list(sample_rows(3, 10, 0)) == [0, 1, 2]  # all rows when there are fewer
    with pytest.raises(ValueError, match="empty training split"):
        channel_stats(x[:0])
