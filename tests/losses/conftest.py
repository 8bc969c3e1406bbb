"""Build losses exactly as a run does: compose ``loss=<token>`` and instantiate it."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import losslab
from losslab.runner.build import build

TOKENS = sorted(p.stem for p in (Path(losslab.__file__).parent / "conf" / "loss").glob("*.yaml"))


@functools.cache
def _composed(token: str, overrides: tuple[str, ...]):
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"loss={token}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)["loss"]


def make_loss(token: str, *overrides: str, num_samples: int = 64, num_classes: int = 10):
    """A fresh loss for ``loss=<token>`` with ``loss.<key>=<value>`` overrides."""
    node = OmegaConf.create(_composed(token, tuple(f"loss.{o}" for o in overrides)))
    return build("loss", node, num_samples=num_samples, num_classes=num_classes)


@pytest.fixture(params=TOKENS)
def token(request) -> str:
    return request.param
