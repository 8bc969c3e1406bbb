"""Build everything a run is made of from the composed config: :func:`build_run`.

This is the one place that knows how the pieces of a run fit together. Nothing
here knows which loss, model or data set is in use: each part is built by
``hydra.utils.instantiate`` from its ``_target_``.

Run values: facts that exist only once the run is under way (the size of the
training split, the class counts, the sweep directory) reach a constructor in
one way only. The ``_target_`` declares the names it takes in a ``run_values``
attribute (:data:`RUN_VALUES_ATTR`), e.g. ``run_values = ("num_samples",)`` on
a loss class, and :func:`build` passes exactly those, as keyword arguments, to
the node and to every nested ``_target_`` node that Hydra builds recursively
(the terms of a weighted-sum loss). The values the runner supplies are
:data:`RUN_VALUES`; a constructor that declares nothing receives nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from losslab.datasets.base import DataBundle
from losslab.datasets.folds import check_cv, cross_validation_fold
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
from losslab.report.record import fingerprint
from losslab.runner.settings import ConfigError, TrainerSettings

log = logging.getLogger(__name__)

#: The attribute of a ``_target_`` (class or function) that names the run values it takes.
RUN_VALUES_ATTR = "run_values"

#: The run values the runner supplies, and what each one is.
RUN_VALUES = {
    "num_samples": "size of the training split (int)",
    "num_classes": "number of classes K (int)",
    "class_counts": "training labels per class, bincount of the (noisy) train labels, [K]",
    "sweep_dir": "the multirun sweep directory, None for a single run (str | None)",
    # of data set functions (losslab.datasets.base.serves_with), checked by serving_options
    "loader": "dataset.loader: auto | memory | dataloader (str)",
    "memory_limit_mb": "dataset.memory_limit_mb: the in-memory budget (number)",
}


def declared_run_values(target: Any) -> tuple[str, ...]:
    """The run values ``target`` declares in its ``run_values`` attribute (none when absent)."""
    names = getattr(target, RUN_VALUES_ATTR, ())
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"{getattr(target, '__qualname__', target)}.{RUN_VALUES_ATTR} must be a tuple of "
            f"names, got {names!r}"
        )
    return tuple(names)


def _target_object(group: str, path: Any) -> Any:
    try:
        return get_object(path)
    except Exception as exc:
        raise ConfigError(f"{group}: cannot import _target_ '{path}': {exc}") from exc


def _target_nodes(node: Any) -> Iterator[dict[str, Any]]:
    """``node`` and the nested ``_target_`` mappings Hydra instantiates with it, outermost
    first, in a plain (resolved) config.

    Below a node with ``_recursive_: false`` Hydra builds nothing, so nothing is yielded.
    """
    if isinstance(node, dict):
        if "_target_" in node:
            yield node
            if node.get("_recursive_", True) is False:
                return
        children = [v for k, v in node.items() if not str(k).startswith("_")]
    elif isinstance(node, list):
        children = node
    else:
        return
    for child in children:
        yield from _target_nodes(child)


def with_run_values(group: str, node: DictConfig, values: dict[str, Any]) -> dict[str, Any]:
    """``node`` resolved into a plain mapping in which every ``_target_`` node holds the
    run values its target declares (:func:`declared_run_values`), taken from ``values``."""
    out = OmegaConf.to_container(node, resolve=True)
    for sub in _target_nodes(out):
        target = _target_object(group, sub["_target_"])
        for name in declared_run_values(target):
            if name in values:
                sub[name] = values[name]
    return out


def build(group: str, node: DictConfig, /, **values: Any) -> Any:
    """Instantiate config ``node`` of ``group`` with the run ``values`` its targets declare.

    Every ``_target_`` node (the node and the nested ones Hydra builds with it)
    receives those of ``values`` that its target names in ``run_values``; the
    others are not passed. Errors raised by a constructor (a bad parameter
    value, say) become a :class:`ConfigError` that names the group and keeps the
    constructor's message.
    """
    if not OmegaConf.is_dict(node) or "_target_" not in node:
        raise ConfigError(f"config '{group}' has no _target_ to instantiate")
    _target_object(group, node._target_)
    if node.get("_partial_", False):
        return instantiate(node)
    try:
        return instantiate(with_run_values(group, node, values))
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"{group}: {cause}") from exc


#: Dataset options that say how the inputs are served, not what they are.
SERVING_KEYS = ("loader", "memory_limit_mb")


def dataset_node(node: DictConfig) -> DictConfig:
    """The dataset config, resolved, without the serving options (:data:`SERVING_KEYS`).

    Those are passed by :func:`build_data` (checked by :func:`serving_options`) to
    the data set functions that take them, so that a function without them can
    still be a ``_target_``.
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


def _device(settings: TrainerSettings, local_rank: int | None) -> torch.device:
    device = torch.device(settings.device)
    if local_rank is not None and device.type == "cuda":
        device = torch.device("cuda", local_rank)
    return device


def build_data(cfg: DictConfig, settings: TrainerSettings) -> DataBundle:
    """Load the data set of ``cfg.dataset`` and choose how it is served (``info["loader"]``)."""
    serving = serving_options(cfg.dataset)  # bad values fail before any data is loaded
    # the serving options are run values of the data set functions that declare them
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
    info = {
        "loader": mode,
        "loader_requested": serving["loader"],
        "memory_limit_mb": serving["memory_limit_mb"],
    }
    return replace(data, info={**data.info, **info})


def cv_setting(cfg: DictConfig) -> tuple[int, int] | None:
    """``(cv.folds, cv.fold)`` of the run, checked; None without cross-validation."""
    node = cfg.get("cv") or {}
    try:
        return check_cv(node.get("folds"), node.get("fold", 0))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def run_values(data: DataBundle, *, sweep_dir: str | None = None) -> dict[str, Any]:
    """The run values (:data:`RUN_VALUES`) of a run on ``data``, its labels as trained."""
    return {
        "num_samples": len(data.train),
        "num_classes": data.num_classes,
        "class_counts": torch.bincount(data.train.y, minlength=data.num_classes),
        "sweep_dir": sweep_dir,
    }


def build_run_data(cfg: DictConfig, settings: TrainerSettings) -> tuple[DataBundle, LabelNoise]:
    """The data as the run trains on it: loaded (:func:`build_data`), label noise applied,
    and the cross-validation fold taken (``cv``); with the run's label noise."""
    cv = cv_setting(cfg)  # a bad value fails before any data is loaded
    data = build_data(cfg, settings)
    noise = build("noise", cfg.noise)
    try:
        data = noise.apply(data)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(f"noise: {exc}") from exc
    if cv is not None:  # folds of the labels the run trains on, noisy ones included
        try:
            data = cross_validation_fold(data, *cv, seed=cfg.dataset.get("split_seed", 0))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    return data, noise


def build_model(cfg: DictConfig, device: torch.device) -> tuple[nn.Module, bool]:
    """The model of ``cfg.model`` on ``device``, initialised from ``seed``; and whether it
    is a conv net on a GPU, which runs in the channels_last layout (inputs too)."""
    torch.manual_seed(cfg.seed)  # model initialisation depends on the seed only
    model = build("model", cfg.model).to(device)
    channels_last = device.type == "cuda" and any(isinstance(m, nn.Conv2d) for m in model.modules())
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, channels_last


def build_parts(
    cfg: DictConfig, settings: TrainerSettings, *, local_rank: int | None = None
) -> Parts:
    """Load the data, apply label noise, and build model, loss, regularizers,
    optimizer and scheduler, in an order that makes initialisation depend only
    on ``seed``. ``local_rank``: under torchrun, the GPU of this process."""
    device = _device(settings, local_rank)
    data, noise = build_run_data(cfg, settings)
    mode = data.info["loader"]
    loaders = make_loaders(data, settings, device, mode, seed=cfg.seed)

    values = run_values(data)
    model, channels_last = build_model(cfg, device)
    loss = build("loss", cfg.loss, **values).to(device)
    regularizers = {
        name: build(f"regularizer.{name}", node, **values).to(device)
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


@dataclass
class Run:
    """Everything a run is made of, built from the config by :func:`build_run`.

    ``parts`` are what the training loop steps; ``mixing`` the batch procedure
    of ``augment``; ``fingerprint`` identifies the run's results (stored in its
    checkpoints); ``logger`` is the experiment logger of ``logger``, None in a
    process that writes nothing (a torchrun rank > 0).
    """

    parts: Parts
    settings: TrainerSettings
    mixing: Any
    fingerprint: str
    seed: int
    n_bins: int
    logger: Any = None
    save_predictions: bool = False  # eval.save_predictions: the final test logits to a file


def check_early_stopping(settings: TrainerSettings, data: DataBundle) -> None:
    """A :class:`ConfigError` when ``trainer.early_stopping`` watches a metric that the run
    on ``data`` does not record (no validation split; clean validation labels)."""
    if settings.early_stopping is None:
        return
    metric = settings.early_stopping.metric
    if len(data.val) == 0:
        raise ConfigError(
            f"trainer.early_stopping watches {metric}, but data set '{data.name}' has no "
            "validation split; give it one, or set trainer.early_stopping.patience=null"
        )
    if metric == "val/acc_clean" and not bool(data.val.is_noisy.any()):
        raise ConfigError(
            "trainer.early_stopping.metric='val/acc_clean' is recorded only when the "
            "validation labels are noisy; use val/acc"
        )


def build_run(
    cfg: DictConfig,
    settings: TrainerSettings,
    *,
    local_rank: int | None = None,
    sweep_dir: str | None = None,
    with_logger: bool = True,
) -> Run:
    """Build the run of ``cfg``: the schedule is checked and ``augment`` built before any
    data is loaded, then the parts (:func:`build_parts`), then the logger (given the run
    value ``sweep_dir``) unless ``with_logger`` is false."""
    check_schedule(cfg, settings)
    mixing = build("augment", cfg.augment)
    parts = build_parts(cfg, settings, local_rank=local_rank)
    check_early_stopping(settings, parts.data)
    logger = build("logger", cfg.logger, sweep_dir=sweep_dir) if with_logger else None
    return Run(
        parts=parts,
        settings=settings,
        mixing=mixing,
        fingerprint=fingerprint(OmegaConf.to_container(cfg, resolve=True)),
        seed=cfg.seed,
        n_bins=cfg.eval.n_bins,
        logger=logger,
        save_predictions=bool(cfg.eval.get("save_predictions", False)),
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
    except ConfigError:
        raise
    except Exception as exc:  # a bad optimizer value (optimizer.lr=-1), not the schedule's
        given = ", ".join(
            f"optimizer.{k}={v}" for k, v in cfg.optimizer.items() if not str(k).startswith("_")
        )
        raise ConfigError(f"optimizer: {type(exc).__name__}: {exc}; check {given}") from None
    try:
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
