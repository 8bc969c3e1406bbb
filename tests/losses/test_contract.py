"""Every loss token honours the loss contract and is numerically sound.

Parametrised over ``conf/loss/*.yaml``: a new YAML is tested the moment it exists.
"""

from __future__ import annotations

import re

import pytest
import torch

from losslab.runner.catalog import short_reference
from tests.losses.conftest import make_loss

K = 10


def inputs(batch: int = 16, scale: float = 3.0, dtype=torch.float32, seed: int = 0):
    """Logits where half of the samples are confidently right, so every loss
    (including truncated ones) has a gradient."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, K, (batch,), generator=g)
    logits = torch.randn(batch, K, generator=g, dtype=torch.float64) * scale
    logits[::2] += 4 * scale * torch.nn.functional.one_hot(target[::2], K)
    return logits.to(dtype), target, torch.arange(batch)


def test_finite_scalar_with_finite_nonzero_gradient(token):
    loss_fn = make_loss(token)
    logits, target, index = inputs()
    logits.requires_grad_()
    value = loss_fn(logits, target, index=index)
    assert value.ndim == 0 and value.dtype == torch.float32 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0


def test_batch_permutation_invariance(token):
    logits, target, index = inputs()
    perm = torch.randperm(len(target), generator=torch.Generator().manual_seed(1))
    a = make_loss(token)(logits, target, index=index)
    b = make_loss(token)(logits[perm], target[perm], index=index[perm])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_batch_of_one(token):
    logits, target, index = inputs(batch=1)
    value = make_loss(token)(logits, target, index=index)
    assert value.ndim == 0 and torch.isfinite(value)


def test_float64_stays_float64(token):
    logits, target, index = inputs(dtype=torch.float64)
    logits.requires_grad_()
    value = make_loss(token)(logits, target, index=index)
    assert value.dtype == torch.float64 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_bf16_autocast(token):
    logits, target, index = inputs()
    weight = torch.eye(K, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = logits @ weight  # bf16 under autocast, as a model's output would be
        assert z.dtype == torch.bfloat16
        value = make_loss(token)(z, target, index=index)
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(weight.grad).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_extreme_logits_are_finite(token, dtype, scale):
    # p_y -> 0 for some samples and -> 1 for others, gaps of 2e4
    logits = torch.tensor([[1.0, -1.0, 0.0, 0.5] + [0.0] * (K - 4)] * 4, dtype=dtype) * scale
    target = torch.tensor([0, 1, 2, 3])
    logits.requires_grad_()
    value = make_loss(token)(logits, target, index=torch.arange(4))
    assert torch.isfinite(value), float(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_extreme_logits_under_bf16_autocast(token):
    logits = (torch.tensor([[1.0, -1.0] + [0.0] * (K - 2)] * 2) * 1e4).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = make_loss(token)(logits.bfloat16(), torch.tensor([0, 1]), index=torch.arange(2))
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_extreme_probabilities_have_no_nan(token):
    # p_y exactly 1 (to float precision) and exactly 0
    logits = torch.tensor([[200.0, 0.0, 0.0], [0.0, 200.0, 0.0]], requires_grad=True)
    value = make_loss(token, num_classes=3)(logits, torch.tensor([0, 0]), index=torch.arange(2))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_has_docstring_with_formula_and_reference(token):
    loss_fn = make_loss(token)
    doc = type(loss_fn).__doc__ or ""
    assert "math:" in doc, type(loss_fn).__name__
    reference = short_reference(doc)
    assert re.search(r"(19|20)\d\d", reference), (type(loss_fn).__name__, reference)
