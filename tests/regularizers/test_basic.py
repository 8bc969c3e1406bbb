"""Regularizer terms against their formulas."""

import pytest
import torch

from losslab.regularizers.entropy import EntropyRegularizer
from losslab.regularizers.logit_l2 import LogitL2Regularizer

LOGITS = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
TARGET = torch.tensor([1, 0])


def entropy_formula(z: torch.Tensor) -> torch.Tensor:
    p = torch.exp(z) / torch.exp(z).sum(1, keepdim=True)
    return (-(p * torch.log(p)).sum(1)).mean()


def test_entropy_sign_for_both_modes():
    h = float(entropy_formula(LOGITS))
    assert h > 0
    assert float(EntropyRegularizer(mode="maximize")(LOGITS, TARGET)) == pytest.approx(-h, abs=1e-6)
    assert float(EntropyRegularizer(mode="minimize")(LOGITS, TARGET)) == pytest.approx(h, abs=1e-6)


def test_entropy_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='max'.*maximize"):
        EntropyRegularizer(mode="max")


def test_logit_l2_formula():
    want = float((LOGITS**2).sum(1).mean())
    assert float(LogitL2Regularizer()(LOGITS, TARGET)) == pytest.approx(want, abs=1e-6)


def test_negative_weight_rejected():
    with pytest.raises(ValueError, match="weight=-1"):
        LogitL2Regularizer(weight=-1)
