"""Checks of the run's own settings (``trainer``, ``seed``, ``eval``), before any work."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")

#: Validation metrics early stopping can watch, by the direction that is better
#: (the names of :data:`losslab.metrics.METRIC_KEYS`, and ``acc_clean``, recorded when
#: the validation labels are noisy). Entropies have no better direction: they need a mode.
HIGHER_IS_BETTER = ("acc", "acc_top5", "acc_clean")
LOWER_IS_BETTER = ("nll", "brier", "ece", "ece_adaptive", "ece_classwise", "mce", "aurc")
NO_DIRECTION = ("entropy", "entropy_correct", "entropy_incorrect")
VAL_METRICS = tuple(f"val/{m}" for m in (*HIGHER_IS_BETTER, *LOWER_IS_BETTER, *NO_DIRECTION))
MODES = ("max", "min")


class ConfigError(ValueError):
    """A bad value in the config: reported in one line, without a traceback."""


def _int(cfg: DictConfig, key: str, minimum: int) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"trainer.{key}={value!r} is invalid: must be an integer >= {minimum}")
    return value


@dataclass(frozen=True)
class EarlyStopping:
    """The validated ``trainer.early_stopping`` block of a run that uses it.

    The run stops after the evaluation at which ``metric`` has gone ``patience``
    evaluations without improving on its best value by more than ``min_delta``
    (higher is better for ``mode="max"``, lower for ``"min"``).
    """

    metric: str
    patience: int
    mode: str
    min_delta: float


@dataclass(frozen=True)
class TrainerSettings:
    """The validated ``trainer`` block (``early_stopping`` None when it is off)."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    device: str
    precision: str
    compile: bool
    num_workers: int
    grad_clip: float | None
    warmup_epochs: int
    early_stopping: EarlyStopping | None = None


def resolve_device(requested: str) -> str:
    """``auto`` -> cuda, mps or cpu; an unavailable device is a :class:`ConfigError`."""
    import torch

    _device_name(requested)
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        raise ConfigError(
            "trainer.device='cuda' but no CUDA GPU is available; use trainer.device=cpu or auto"
        )
    if requested == "mps" and not mps:
        raise ConfigError(
            "trainer.device='mps' but the MPS backend is not available; use trainer.device=cpu or auto"
        )
    return requested


def _device_name(requested: str) -> str:
    if requested not in DEVICES:
        raise ConfigError(f"trainer.device={requested!r} is invalid; choose one of {list(DEVICES)}")
    return requested


def _early_stopping(node: DictConfig | None) -> EarlyStopping | None:
    """``trainer.early_stopping`` checked; None when it is off (``patience: null``)."""
    where = "trainer.early_stopping"
    if node is None:
        return None
    if not OmegaConf.is_dict(node):
        raise ConfigError(
            f"{where}={node!r} is invalid: set its keys, e.g. {where}.patience=10 "
            "(patience, metric, mode, min_delta)"
        )
    patience = node.get("patience")
    if patience is not None and (
        isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
    ):
        raise ConfigError(
            f"{where}.patience={patience!r} is invalid: must be null (off) or an integer >= 1"
        )
    metric = node.get("metric", "val/acc")
    if isinstance(metric, str) and f"val/{metric}" in VAL_METRICS:
        metric = f"val/{metric}"  # the split may go without saying
    if metric not in VAL_METRICS:
        raise ConfigError(
            f"{where}.metric={metric!r} is invalid; choose one of {list(VAL_METRICS)}"
        )
    name = metric.removeprefix("val/")
    mode = node.get("mode")
    if mode is None:
        if name in NO_DIRECTION:
            raise ConfigError(
                f"{where}.mode=null is invalid for metric {metric!r} (no better direction); "
                f"choose one of {list(MODES)}"
            )
        mode = "max" if name in HIGHER_IS_BETTER else "min"
    elif mode not in MODES:
        raise ConfigError(
            f"{where}.mode={mode!r} is invalid; choose null (from the metric) or one of "
            f"{list(MODES)}"
        )
    delta = node.get("min_delta", 0.0)
    if (
        isinstance(delta, bool)
        or not isinstance(delta, int | float)
        or not delta >= 0
        or delta == float("inf")
    ):
        raise ConfigError(f"{where}.min_delta={delta!r} is invalid: must be a number >= 0")
    if patience is None:  # off; its other values are checked all the same
        return None
    return EarlyStopping(metric=metric, patience=patience, mode=mode, min_delta=float(delta))


def validate(cfg: DictConfig, *, resolve: bool = True) -> TrainerSettings:
    """Validate ``seed``, ``eval`` and ``trainer``; raise :class:`ConfigError` on the first bad value.

    ``resolve=False`` checks the values without importing torch (the command-line
    check before any job starts): ``trainer.device`` is then only checked to be one
    of :data:`DEVICES`, not to be available.
    """
    seed = cfg.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r} is invalid: must be an integer >= 0")
    n_bins = cfg.eval.n_bins
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"eval.n_bins={n_bins!r} is invalid: must be an integer >= 1")
    save_predictions = cfg.eval.get("save_predictions", False)
    if not isinstance(save_predictions, bool):
        raise ConfigError(
            f"eval.save_predictions={save_predictions!r} is invalid: must be true or false"
        )
    t = cfg.trainer
    precision = t.precision
    if precision not in PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision!r} is invalid; choose one of {list(PRECISIONS)}"
        )
    if not isinstance(t.compile, bool):
        raise ConfigError(f"trainer.compile={t.compile!r} is invalid: must be true or false")
    clip = t.grad_clip
    if clip is not None and (
        isinstance(clip, bool) or not isinstance(clip, int | float) or clip <= 0
    ):
        raise ConfigError(f"trainer.grad_clip={clip!r} is invalid: must be null or a number > 0")
    return TrainerSettings(
        epochs=_int(t, "epochs", 1),
        batch_size=_int(t, "batch_size", 1),
        eval_batch_size=_int(t, "eval_batch_size", 1),
        device=resolve_device(t.device) if resolve else _device_name(t.device),
        precision=precision,
        compile=t.compile,
        num_workers=_int(t, "num_workers", 0),
        grad_clip=None if clip is None else float(clip),
        warmup_epochs=_int(t, "warmup_epochs", 0),
        early_stopping=_early_stopping(t.get("early_stopping")),
    )
