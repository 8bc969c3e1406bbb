"""The stateful accumulator equals the one-shot computation."""

import pytest
import torch

from losslab.metrics import MetricCollector, classification_metrics


@pytest.mark.parametrize("sizes", [[1, 99, 37, 163], [300], [7] * 42 + [6]])
def test_uneven_batches_equal_one_shot_exactly(sizes):
    torch.manual_seed(len(sizes))
    logits, target = torch.randn(300, 9) * 2, torch.randint(0, 9, (300,))
    collector = MetricCollector()
    for z, y in zip(logits.split(sizes), target.split(sizes), strict=True):
        collector.update(z, y)
    assert len(collector) == 300
    assert collector.compute() == classification_metrics(logits, target)
    assert collector.compute(n_bins=7) == classification_metrics(logits, target, n_bins=7)


def test_reset_and_reuse():
    collector = MetricCollector()
    collector.update(torch.randn(5, 3), torch.randint(0, 3, (5,)))
    collector.reset()
    assert len(collector) == 0
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    collector.update(logits, target)
    assert collector.compute() == classification_metrics(logits, target)


def test_stores_detached_batches():
    logits = torch.randn(4, 3, requires_grad=True)
    collector = MetricCollector()
    collector.update(logits * 2, torch.tensor([0, 1, 2, 0]))
    assert not collector._logits[0].requires_grad


def test_errors():
    collector = MetricCollector()
    with pytest.raises(ValueError, match="before any update"):
        collector.compute()
    with pytest.raises(ValueError, match="expected logits"):
        collector.update(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    collector.update(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="classes"):
        collector.update(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))
