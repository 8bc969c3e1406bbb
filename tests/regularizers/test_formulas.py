"""The newer regularizer terms against their formulas, state and side effects."""

import numpy as np
import pytest
import torch

from losslab.regularizers.elr import ELRRegularizer
from losslab.regularizers.logz import LogZRegularizer
from losslab.regularizers.opl import OPLRegularizer
from losslab.regularizers.prior_kl import PriorKLRegularizer
from losslab.regularizers.vat import VATRegularizer

Z = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]], dtype=torch.float64)
Y = torch.tensor([1, 0, 2])


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_logz_formula():
    want = np.mean(np.log(np.exp(Z.numpy()).sum(1)) ** 2)
    assert float(LogZRegularizer()(Z, Y)) == pytest.approx(want, abs=1e-6)


def test_prior_kl_formula_and_zero_at_the_prior():
    p_bar = softmax(Z.numpy()).mean(0)
    want = np.sum(p_bar * np.log(p_bar * 3))
    assert float(PriorKLRegularizer()(Z, Y)) == pytest.approx(want, abs=1e-6)
    assert float(PriorKLRegularizer()(torch.zeros(4, 3), Y[:1])) == pytest.approx(0.0, abs=1e-9)
    counts = torch.tensor([1, 1, 2])
    reg = PriorKLRegularizer(prior="class_frequency", class_counts=counts)
    pi = np.array([0.25, 0.25, 0.5])
    assert float(reg(Z, Y)) == pytest.approx(np.sum(p_bar * np.log(p_bar / pi)), abs=1e-6)
    with pytest.raises(ValueError, match="prior='zipf'"):
        PriorKLRegularizer(prior="zipf")


def test_elr_state_update_and_term():
    reg = ELRRegularizer(num_samples=5, num_classes=3, beta=0.7)
    index = torch.tensor([4, 0, 2])

    def clamped(z):
        p = np.clip(softmax(z), 1e-4, 1 - 1e-4)
        return p / p.sum(1, keepdims=True)

    t = np.zeros((5, 3))
    for z in (Z.numpy(), Z.numpy() * 0.5):
        p = clamped(z)
        t[index.numpy()] = 0.7 * t[index.numpy()] + 0.3 * p
        want = np.mean(np.log(1 - np.sum(t[index.numpy()] * p, axis=1)))
        assert float(reg(torch.tensor(z), Y, index=index)) == pytest.approx(want, abs=1e-6)
        np.testing.assert_allclose(reg.targets.numpy(), t, atol=1e-6)
    assert torch.all(reg.targets[[1, 3]] == 0)
    other = ELRRegularizer(num_samples=5, num_classes=3)
    other.load_state_dict(reg.state_dict())
    assert torch.equal(other.targets, reg.targets)
    with pytest.raises(ValueError, match="needs index"):
        reg(Z, Y)
    with pytest.raises(ValueError, match="beta=1"):
        ELRRegularizer(num_samples=1, num_classes=2, beta=1)


def test_opl_on_hand_made_features():
    y = torch.tensor([0, 0, 1, 1])
    orthogonal = torch.tensor([[1.0, 0], [2.0, 0], [0, 1.0], [0, 3.0]])
    assert float(OPLRegularizer()(None, y, features=orthogonal)) == pytest.approx(0.0, abs=1e-7)
    identical = torch.ones(4, 2)
    assert float(OPLRegularizer(gamma=0.5)(None, y, features=identical)) == pytest.approx(
        0.5, abs=1e-6
    )
    with pytest.raises(ValueError, match="gamma=-1"):
        OPLRegularizer(gamma=-1)


def test_vat_perturbation_norm_and_no_side_effects():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    model.train()
    x = torch.randn(6, 4)
    logits = model(x)
    bn = model[1]
    mean_before, var_before = bn.running_mean.clone(), bn.running_var.clone()
    reg = VATRegularizer(eps=0.5)
    r = reg.perturbation(model, x, logits)
    torch.testing.assert_close(r.flatten(1).norm(dim=1), torch.full((6,), 0.5))
    assert all(p.grad is None for p in model.parameters())
    term = reg(logits, torch.zeros(6, dtype=torch.long), model=model, inputs=x)
    assert torch.equal(bn.running_mean, mean_before) and torch.equal(bn.running_var, var_before)
    assert term >= 0 and torch.isfinite(term)
    term.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match="eps=0"):
        VATRegularizer(eps=0)
