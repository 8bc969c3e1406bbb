"""SAM against its two-step formula on a tiny quadratic."""

import pytest
import torch

from losslab.optimizers.sam import SAM

A = torch.tensor([[3.0, 0.5], [0.5, 1.0]], dtype=torch.float64)


def quadratic(w):
    return 0.5 * w @ A @ w


def grad(w):
    return A @ w


@pytest.mark.parametrize("adaptive", [False, True])
def test_one_step_equals_the_formula(adaptive):
    w0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    opt = SAM([w], base="sgd", lr=0.1, rho=0.05, adaptive=adaptive, base_kwargs={})
    calls = []

    def closure():
        opt.zero_grad()
        loss = quadratic(w)
        loss.backward()
        calls.append(w.detach().clone())
        return loss

    opt.step(closure)
    g = grad(w0)
    t = w0.abs() if adaptive else torch.ones(2, dtype=torch.float64)
    eps = 0.05 * t**2 * g / (t * g).norm()
    expected = w0 - 0.1 * grad(w0 + eps)
    assert len(calls) == 2 and torch.allclose(calls[1], w0 + eps)
    assert torch.allclose(w.detach(), expected, atol=1e-12)


def test_schedulers_reach_the_base_optimizer_and_state_round_trips():
    w = torch.nn.Parameter(torch.ones(2))
    opt = SAM([w], base="adamw", lr=1.0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=0.1)
    sched.step()
    assert opt.base.param_groups[0]["lr"] == pytest.approx(0.1)
    opt.step(lambda: (opt.zero_grad(), (w**2).sum().backward(), (w**2).sum())[-1])
    other = SAM([torch.nn.Parameter(torch.ones(2))], base="adamw", lr=1.0)
    other.load_state_dict(opt.state_dict())
    assert other.base.state_dict()["state"][0]["step"] == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="optimizer.base='lion'"):
        SAM([torch.nn.Parameter(torch.ones(1))], base="lion")
    with pytest.raises(ValueError, match="optimizer.rho=0"):
        SAM([torch.nn.Parameter(torch.ones(1))], rho=0)
    with pytest.raises(ValueError, match="closure"):
        SAM([torch.nn.Parameter(torch.ones(1))]).step()
