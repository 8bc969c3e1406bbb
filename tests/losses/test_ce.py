"""Cross-entropy against its formula, and sound at extreme logits."""

import pytest
import torch

from losslab.losses.ce import CrossEntropyLoss


def test_value_matches_formula():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
    target = torch.tensor([1, 0])
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    want = -(torch.log(p[0, 1]) + torch.log(p[1, 0])) / 2
    got = CrossEntropyLoss()(logits, target)
    assert got.ndim == 0
    assert float(got) == pytest.approx(float(want), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradient_at_extreme_logits(dtype):
    logits = (torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)).requires_grad_()
    loss = CrossEntropyLoss()(logits, torch.tensor([1, 0]), index=torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_bf16_autocast():
    logits = torch.randn(8, 5, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = CrossEntropyLoss()(logits.bfloat16(), torch.arange(8) % 5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
