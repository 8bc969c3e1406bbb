"""Every regularizer composes with every loss for one optimisation step (globbed).

A new YAML in conf/loss/ or conf/regularizer/ is covered the moment it exists.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import losslab
from losslab.models.mlp import MLP
from losslab.runner.build import build
from tests.losses.conftest import TOKENS as LOSSES
from tests.losses.conftest import make_loss

REGULARIZERS = sorted(
    p.stem for p in (Path(losslab.__file__).parent / "conf" / "regularizer").glob("*.yaml")
)
N, K, D = 24, 4, 6


@functools.cache
def _reg_config(token: str) -> dict:
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"regularizer=[{token}]"])
    return OmegaConf.to_container(cfg, resolve=True)["regularizer"][token]


@pytest.mark.parametrize("reg_token", REGULARIZERS)
@pytest.mark.parametrize("loss_token", LOSSES)
def test_one_step(loss_token, reg_token):
    torch.manual_seed(0)
    model = MLP(input_shape=[D], num_classes=K, width=8, depth=1)
    loss_fn = make_loss(loss_token, num_samples=N, num_classes=K)
    reg = build(
        f"regularizer.{reg_token}",
        OmegaConf.create(_reg_config(reg_token)),
        num_samples=N,
        num_classes=K,
        class_counts=torch.full((K,), N // K),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y, index = torch.randn(N, D), torch.arange(N) % K, torch.arange(N)
    features = model.forward_features(x)
    logits = model.head(features)
    available = {"features": features, "index": index, "model": model, "inputs": x}
    term = reg(logits, y, **{k: available[k] for k in reg.needs})
    objective = loss_fn(logits, y, index=index) + reg.weight * term
    opt.zero_grad()
    objective.backward()
    assert torch.isfinite(objective) and torch.isfinite(term)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    opt.step()
