"""Instantiate the parts of a run from the composed config.

Nothing here knows which loss, model or data set is in use: each part is built
by ``hydra.utils.instantiate`` from its ``_target_``, and run-time facts that
only exist after the data is loaded (``num_samples``, the class counts) are
offered to every constructor that declares a parameter of that name.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, replace
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from losslab.datasets.base import DataBundle
from losslab.datasets.loader import (
    MEMORY_LIMIT_MB,
    Batches,
    InMemoryLoader,
    StreamingLoader,
    check_loader,
    check_memory_limit,
    choose_loader,
    in_memory,
)
from losslab.datasets.noise import LabelNoise
from losslab.runner.settings import ConfigError, TrainerSettings

log = logging.getLogger(__name__)


def _accepted(target: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``context`` that ``target``'s signature names explicitly.

    A ``**kwargs`` catch-all does not count: ``nn.Module.__init__`` has one, and
    passing it unknown keys would fail.
    """
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    named = {
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return {k: v for k, v in context.items() if k in named}


def build(group: str, node: DictConfig, /, **context: Any) -> Any:
    """Instantiate config ``node`` of ``group``, passing the context it accepts.

    Errors raised by a constructor (a bad parameter value, say) become a
    :class:`ConfigError` that names the group and keeps the constructor's message.
    """
    if not OmegaConf.is_dict(node) or "_target_" not in node:
        raise ConfigError(f"config '{group}' has no _target_ to instantiate")
    try:
        target = get_object(node._target_)
    except Exception as exc:
        raise ConfigError(f"{group}: cannot import _target_ '{node._target_}': {exc}") from exc
    if node.get("_partial_", False):
        return instantiate(node)
    try:
        return instantiate(node, **_accepted(target, context))
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"{group}: {cause}") from exc


#: Dataset options that say how the inputs are served, not what they are.
SERVING_KEYS = ("loader", "memory_limit_mb")


def dataset_node(node: DictConfig) -> DictConfig:
    """The dataset config, resolved, without the serving options (:data:`SERVING_KEYS`).

    Those are offered by :func:`serving_options` to the data set functions that
    name them, so that a function without them can still be a ``_target_``.
    """
    plain = OmegaConf.to_container(node, resolve=True)
    for key in SERVING_KEYS:
        plain.pop(key, None)
    return OmegaConf.create(plain)


def serving_options(node: DictConfig) -> dict[str, Any]:
    """``dataset.loader`` and ``dataset.memory_limit_mb``, checked (a :class:`ConfigError`
    names a bad value and the valid ones); defaults ``auto`` and :data:`MEMORY_LIMIT_MB`."""
    try:
        return {
            "loader": check_loader(node.get("loader", "auto")),
            "memory_limit_mb": check_memory_limit(node.get("memory_limit_mb", MEMORY_LIMIT_MB)),
        }
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


@dataclass
class Parts:
    """Everything the training loop needs, built and placed on the device."""

    data: DataBundle
    noise: LabelNoise
    loaders: dict[str, Batches]
    loader_mode: str
    model: nn.Module
    loss: nn.Module
    regularizers: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    device: torch.device
    channels_last: bool = False  # conv net on a GPU: inputs go channels_last too


def build_parts(
    cfg: DictConfig, settings: TrainerSettings, *, local_rank: int | None = None
) -> Parts:
    """Load the data, apply label noise, and build model, loss, regularizers,
    optimizer and scheduler, in an order that makes initialisation depend only
    on ``seed``. ``local_rank``: under torchrun, the GPU of this process."""
    device = torch.device(settings.device)
    if local_rank is not None and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    serving = serving_options(cfg.dataset)  # bad values fail before any data is loaded
    data = build("dataset", dataset_node(cfg.dataset), **serving)
    if not isinstance(data, DataBundle):
        raise ConfigError(f"dataset: _target_ must return a DataBundle, got {type(data).__name__}")
    if len(data.train) == 0 or len(data.test) == 0:
        raise ConfigError(f"dataset '{data.name}': empty split, sizes {data.sizes()}")
    # The one decision of the serving path; a data set that read its inputs into memory
    # itself made it with the same function, so the two agree.
    mode = choose_loader(
        serving["loader"], [data.train, data.val, data.test], serving["memory_limit_mb"]
    )
    if mode == "memory":  # decode lazy sources once, with the DataLoader workers
        data = in_memory(data, settings.num_workers)
    data = replace(
        data,
        info={
            **data.info,
            "loader": mode,
            "loader_requested": serving["loader"],
            "memory_limit_mb": serving["memory_limit_mb"],
        },
    )
    noise = build("noise", cfg.noise)
    try:
        data = noise.apply(data)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(f"noise: {exc}") from exc
    loaders = make_loaders(data, settings, device, mode, seed=cfg.seed)

    context = {
        "num_samples": len(data.train),
        "num_classes": data.num_classes,
        "class_counts": torch.bincount(data.train.y, minlength=data.num_classes),
    }
    torch.manual_seed(cfg.seed)  # model initialisation depends on the seed only
    model = build("model", cfg.model).to(device)
    channels_last = device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss = build("loss", cfg.loss, **context).to(device)
    regularizers = {
        name: build(f"regularizer.{name}", node, **context).to(device)
        for name, node in cfg.get("regularizer", {}).items()
    }
    params = list(model.parameters()) + [
        p for m in (loss, *regularizers.values()) for p in m.parameters()
    ]
    try:
        optimizer = build("optimizer", cfg.optimizer)(params)
        scheduler = build_schedule(cfg, settings, optimizer)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"optimizer/scheduler: {exc}") from exc
    return Parts(
        data,
        noise,
        loaders,
        mode,
        model,
        loss,
        regularizers,
        optimizer,
        scheduler,
        device,
        channels_last,
    )


def make_loaders(
    data: DataBundle, settings: TrainerSettings, device: torch.device, mode: str, *, seed: int
) -> dict[str, Batches]:
    """Training (shuffled, augmented) and evaluation loaders for every non-empty split."""
    cls = InMemoryLoader if mode == "memory" else StreamingLoader
    extra = {} if mode == "memory" else {"num_workers": settings.num_workers}
    loaders: dict[str, Batches] = {
        "train": cls(
            data.train,
            settings.batch_size,
            device,
            transform=data.transform,
            shuffle=True,
            seed=seed,
            **extra,
        )
    }
    if bool(data.train.is_noisy.any()):  # memorisation diagnostics need train predictions
        loaders["train_eval"] = cls(
            data.train, settings.eval_batch_size, device, transform=data.transform, **extra
        )
    for split in ("val", "test"):
        if len(getattr(data, split)) > 0:
            loaders[split] = cls(
                getattr(data, split),
                settings.eval_batch_size,
                device,
                transform=data.transform,
                **extra,
            )
    return loaders


def build_schedule(cfg: DictConfig, settings: TrainerSettings, optimizer: Any) -> Any:
    """The learning-rate schedule of ``cfg.scheduler``, after ``trainer.warmup_epochs`` of
    linear warm-up (from lr/(w+1)) when set; stepped once per epoch."""
    scheduler = build("scheduler", cfg.scheduler)(optimizer)
    if settings.warmup_epochs > 0:
        warmup = torch.optim.lr_scheduler.LinearLR(
            optimizer,
            start_factor=1 / (settings.warmup_epochs + 1),
            total_iters=settings.warmup_epochs,
        )
        scheduler = torch.optim.lr_scheduler.SequentialLR(
            optimizer, [warmup, scheduler], milestones=[settings.warmup_epochs]
        )
    return scheduler


def check_schedule(cfg: DictConfig, settings: TrainerSettings) -> None:
    """Step the run's whole schedule on a throwaway optimizer before any data is loaded.

    A value that breaks the schedule (``scheduler.T_max=0`` divides by zero at the
    first step) or makes the learning rate non-finite or negative is reported here,
    not after the first epoch of training.
    """
    import math
    import warnings

    values = ", ".join(
        f"scheduler.{k}={v}" for k, v in cfg.scheduler.items() if not str(k).startswith("_")
    )
    probe = [nn.Parameter(torch.zeros(1))]
    try:
        optimizer = build("optimizer", cfg.optimizer)(probe)
        scheduler = build_schedule(cfg, settings, optimizer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
            for epoch in range(1, settings.epochs + 1):
                rates = [group["lr"] for group in optimizer.param_groups]
                bad = [r for r in rates if not math.isfinite(float(r)) or float(r) < 0]
                if bad:
                    raise ValueError(f"learning rate {bad[0]} at epoch {epoch}")
                scheduler.step()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"scheduler: the learning-rate schedule fails within the {settings.epochs} "
            f"epochs of this run ({type(exc).__name__}: {exc}); check {values or 'its values'}"
        ) from None
