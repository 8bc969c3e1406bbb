"""Checks of the run's own settings (``trainer``, ``seed``, ``eval``), before any work."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")


class ConfigError(ValueError):
    """A bad value in the config: reported in one line, without a traceback."""


def _int(cfg: DictConfig, key: str, minimum: int) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"trainer.{key}={value!r} is invalid: must be an integer >= {minimum}")
    return value


@dataclass(frozen=True)
class TrainerSettings:
    """The validated ``trainer`` block."""

    epochs: int
    batch_size: int
    eval_batch_size: int
    device: str
    precision: str
    compile: bool
    num_workers: int
    grad_clip: float | None
    warmup_epochs: int


def resolve_device(requested: str) -> str:
    """``auto`` -> cuda, mps or cpu; an unavailable device is a :class:`ConfigError`."""
    import torch

    if requested not in DEVICES:
        raise ConfigError(f"trainer.device={requested!r} is invalid; choose one of {list(DEVICES)}")
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


def validate(cfg: DictConfig) -> TrainerSettings:
    """Validate ``seed``, ``eval`` and ``trainer``; raise :class:`ConfigError` on the first bad value."""
    seed = cfg.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r} is invalid: must be an integer >= 0")
    n_bins = cfg.eval.n_bins
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"eval.n_bins={n_bins!r} is invalid: must be an integer >= 1")
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
        device=resolve_device(t.device),
        precision=precision,
        compile=t.compile,
        num_workers=_int(t, "num_workers", 0),
        grad_clip=None if clip is None else float(clip),
        warmup_epochs=_int(t, "warmup_epochs", 0),
    )
