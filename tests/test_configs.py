"""Every option of every config group composes, instantiates and honours its contract.

Options are globbed from the config tree, so a new YAML file is tested the
moment it exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import losslab
from losslab.datasets.base import DataBundle
from losslab.runner.build import build, dataset_node

CONF = Path(losslab.__file__).parent / "conf"
GROUPS = [
    "dataset",
    "model",
    "loss",
    "regularizer",
    "noise",
    "optimizer",
    "scheduler",
    "logger",
    "experiment",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


ALL = [(g, o) for g in GROUPS for o in options(g)]


def compose_with(*overrides: str):
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def test_every_group_has_options():
    for group in GROUPS:
        assert options(group), f"config group {group} is empty"


@pytest.mark.parametrize(("group", "option"), ALL, ids=[f"{g}={o}" for g, o in ALL])
def test_option_composes_and_resolves(group, option):
    selection = f"{group}=[{option}]" if group == "regularizer" else f"{group}={option}"
    cfg = compose_with(selection)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    assert cfg.trainer.epochs >= 1
    if group == "regularizer":
        assert option in cfg.regularizer, "a regularizer nests under its own name"


def test_defaults():
    cfg = compose_with()
    choices = {g: cfg[g]._target_.rsplit(".", 1)[-1] for g in ("dataset", "model", "loss", "noise")}
    assert choices == {
        "dataset": "load_digits",
        "model": "MLP",
        "loss": "CrossEntropyLoss",
        "noise": "NoNoise",
    }
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.momentum == 0.9
    assert cfg.scheduler._target_.endswith("CosineAnnealingLR")
    assert dict(cfg.regularizer) == {}


def test_regularizers_stack():
    regs = options("regularizer")
    cfg = compose_with(f"regularizer=[{','.join(regs)}]")
    assert sorted(cfg.regularizer) == regs
    for name in regs:
        assert cfg.regularizer[name].weight >= 0


# Options that read files (a data root or path, a noise file) are built in their own
# tests, from small files written in each source's format; here they only compose.
def needs_files(node) -> bool:
    return any(node.get(key) is not None for key in ("root", "path", "file", "data_id")) or (
        "file" in node and node.get("file") is None
    )


@pytest.mark.parametrize("option", options("dataset"))
def test_dataset_builds_and_matches_its_declaration(option):
    cfg = compose_with(f"dataset={option}")
    if needs_files(cfg.dataset) or "name" in cfg.dataset:
        pytest.skip(f"dataset={option} reads files; built in tests/datasets/")
    data = build("dataset", dataset_node(cfg.dataset))
    assert isinstance(data, DataBundle)
    assert data.num_classes == cfg.dataset.num_classes
    assert list(data.input_shape) == list(cfg.dataset.input_shape)
    for split in (data.train, data.val, data.test):
        assert split.x.shape[1:] == data.input_shape
        assert split.y.dtype == torch.int64 and len(split.y) == split.x.shape[0]
        assert torch.equal(split.y, split.y_clean) and not split.is_noisy.any()
    assert set(data.train.y.unique().tolist()) == set(range(data.num_classes))


@pytest.mark.parametrize("option", options("model"))
def test_model_contract(option):
    node = compose_with(f"model={option}").model
    small = [  # a small width wherever the model (or a sub-model of model=auto) has one
        f"model.{path}width=8"
        for path, sub in [("", node), *((f"{k}.", v) for k, v in node.items())]
        if hasattr(sub, "keys") and "width" in sub
    ]
    cfg = compose_with(f"model={option}", *small)
    torch.manual_seed(0)
    model = build("model", cfg.model).eval()
    x = torch.randn(5, *cfg.dataset.input_shape)
    features = model.forward_features(x)
    assert features.ndim == 2 and features.shape[0] == 5
    logits = model(x)
    assert logits.shape == (5, cfg.dataset.num_classes)
    torch.testing.assert_close(model.head(features), logits)


@pytest.mark.parametrize("option", options("loss"))
def test_loss_contract(option):
    cfg = compose_with(f"loss={option}")
    loss_fn = build("loss", cfg.loss, num_samples=16, num_classes=cfg.dataset.num_classes)
    target = torch.arange(16) % cfg.dataset.num_classes
    # confident on the label, so truncated losses have a gradient too; seeded, so that a
    # hinge loss (ww) cannot meet every margin on one draw and none on another
    noise = torch.randn(16, cfg.dataset.num_classes, generator=torch.Generator().manual_seed(0))
    logits = noise + 4 * torch.eye(cfg.dataset.num_classes)[target]
    logits.requires_grad_()
    value = loss_fn(logits, target, index=torch.arange(16))
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("option", options("regularizer"))
def test_regularizer_contract(option):
    cfg = compose_with(f"regularizer=[{option}]")
    # the context the runner offers to every constructor
    context = {"num_samples": 16, "num_classes": 10, "class_counts": torch.full((10,), 2)}
    reg = build(f"regularizer.{option}", cfg.regularizer[option], **context)
    assert reg.weight == cfg.regularizer[option].weight
    model = build("model", cfg.model)
    x = torch.randn(16, *cfg.dataset.input_shape)
    features = model.forward_features(x)
    logits = model.head(features)
    available = {"features": features, "index": torch.arange(16), "model": model, "inputs": x}
    term = reg(logits, torch.arange(16) % 10, **{k: available[k] for k in reg.needs})
    assert term.ndim == 0 and torch.isfinite(term)


@pytest.mark.parametrize("option", options("noise"))
def test_noise_builds_and_keeps_test_clean(option):
    # 26 classes: every shipped mapping (up to the 26 letters) fits
    cfg = compose_with(f"noise={option}", "dataset=synthetic", "dataset.num_classes=26")
    if needs_files(cfg.noise):
        pytest.skip(f"noise={option} reads a label file; applied in tests/datasets/test_noise.py")
    data = build("dataset", dataset_node(cfg.dataset))
    noisy = build("noise", cfg.noise).apply(data)
    assert torch.equal(noisy.test.y, data.test.y)
    assert torch.equal(noisy.train.y_clean, data.train.y_clean)


@pytest.mark.parametrize("option", options("optimizer"))
def test_optimizer_and_every_scheduler_build(option):
    for scheduler in options("scheduler"):
        cfg = compose_with(f"optimizer={option}", f"scheduler={scheduler}")
        w = torch.nn.Parameter(torch.ones(3))
        opt = build("optimizer", cfg.optimizer)([w])
        sched = build("scheduler", cfg.scheduler)(opt)

        def closure(opt=opt, w=w):  # the runner always steps with a closure (SAM: twice)
            opt.zero_grad()
            loss = (w**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        sched.step()
        assert float((w**2).sum()) < 3.0


@pytest.mark.parametrize("option", options("logger"))
def test_logger_builds(option, tmp_path):
    cfg = compose_with(f"logger={option}")
    logger = build("logger", cfg.logger)
    logger.start({}, tmp_path)
    logger.log({"epoch": 1, "val/acc": 0.5}, step=1)
    logger.finish({"status": "completed"}, tmp_path)
