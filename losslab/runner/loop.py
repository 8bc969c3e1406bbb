"""The training loop: train an epoch, evaluate val and test, record, checkpoint.

Per step (:mod:`losslab.runner.step`) it does forward, objective (loss +
weighted regularizer terms), backward and an optimizer step. The detached terms
of each step stay on the device in a list; they are summed (float64) once at
the end of the epoch, so the host waits for the device once per epoch, not per
step. Evaluation is :mod:`losslab.runner.evaluation`, the checkpoint and
metrics file :mod:`losslab.runner.checkpointing`.

Early stopping (``trainer.early_stopping``, :class:`Stopper`) is decided from the
epoch records alone, so a resumed run, whose records come from its checkpoint,
stops where the uninterrupted one does.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from losslab.datasets.loader import Batches
from losslab.datasets.mixing import Mixing
from losslab.runner import checkpointing, distributed
from losslab.runner.build import Parts, check_early_stopping
from losslab.runner.evaluation import evaluate, predict
from losslab.runner.records import (
    CHECKPOINT,
    CHECKPOINT_BEST,
    METRICS,
    PREDICTIONS,
    write_metrics,
    write_predictions,
)
from losslab.runner.settings import ConfigError, EarlyStopping, TrainerSettings
from losslab.runner.step import EpochTerms, Objective, Step, autocast_for, forwards, grad_scale

log = logging.getLogger(__name__)


class Reporter(Protocol):
    """Progress display (see :mod:`losslab.runner.console`)."""

    def start(self, epochs: int, batches: int, first_epoch: int) -> None: ...
    def step(self) -> None: ...
    def epoch_end(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def select_epoch(records: list[dict[str, Any]], key: str) -> int | None:
    """Index of the record with the highest number at ``key``; ties keep the earlier epoch.

    None when no record has a number there (e.g. no validation split).
    """
    best: int | None = None
    for i, record in enumerate(records):
        score = record.get(key)
        if isinstance(score, bool) or not isinstance(score, int | float) or score != score:
            continue
        if best is None or score > records[best][key]:
            best = i
    return best


@dataclass
class History:
    """Every epoch's record, and the epoch each selection rule chooses from them.

    The rules (named as in ``results.json``, see :mod:`losslab.report.record`):
    ``final`` the last epoch; ``best`` the highest ``val/acc``; ``best_clean_val`` the
    highest ``val/acc_clean`` (the validation accuracy on the clean labels, recorded
    when the validation labels are noisy; with clean labels it is ``best``);
    ``oracle`` the highest ``test/acc`` (optimistic). Ties keep the earlier epoch.
    All are computed from ``records``, so a history rebuilt from saved records
    answers the same.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    reliability: dict[str, Any] | None = None  # per-bin test calibration, last evaluation
    early_stopping: dict[str, Any] | None = None  # where early stopping stopped the run
    predictions: dict[str, Any] | None = None  # the predictions file written, if any

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    @property
    def best_index(self) -> int | None:
        """The epoch of ``best`` (0-based), or the first when no record has ``val/acc``."""
        index = select_epoch(self.records, "val/acc")
        return 0 if index is None and self.records else index

    @staticmethod
    def _summary(record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"epoch": record["epoch"], "train": {}, "val": {}, "test": {}}
        for key, value in record.items():
            split, _, name = key.partition("/")
            if split in ("train", "val", "test"):
                out[split][name] = value
        return out

    def _at(self, index: int | None) -> dict[str, Any] | None:
        return None if index is None else self._summary(self.records[index])

    @property
    def final(self) -> dict[str, Any] | None:
        return self._summary(self.records[-1]) if self.records else None

    @property
    def best(self) -> dict[str, Any] | None:
        return self._at(self.best_index)

    @property
    def best_clean_val(self) -> dict[str, Any] | None:
        if any("val/acc_clean" in r for r in self.records):
            return self._at(select_epoch(self.records, "val/acc_clean"))
        return self._at(select_epoch(self.records, "val/acc"))

    @property
    def oracle(self) -> dict[str, Any] | None:
        return self._at(select_epoch(self.records, "test/acc"))


@dataclass
class Stopper:
    """Early stopping: whether a run stops after an evaluation, from the records alone.

    A run stopped by it before its last epoch records :meth:`summary` as
    ``early_stopping`` in results.json; one that reaches its last epoch records null.

    An evaluation improves when its ``settings.metric`` beats the best value so far
    by more than ``min_delta`` (above it for ``mode="max"``, below for ``"min"``);
    the first finite value is an improvement, a missing or non-finite one never.
    The run stops at the evaluation that makes ``patience`` in a row without one.
    """

    settings: EarlyStopping
    best_value: float | None = None
    best_epoch: int | None = None
    wait: int = 0  # evaluations since the last improvement

    def update(self, record: dict[str, Any]) -> bool:
        """Take the next epoch's record; True when the run stops after it."""
        s = self.settings
        if s.metric not in record:
            raise ConfigError(
                f"trainer.early_stopping.metric={s.metric!r} is not recorded by this run "
                f"(its validation metrics: {sorted(k for k in record if k.startswith('val/'))})"
            )
        value = record[s.metric]
        improved = isinstance(value, int | float) and math.isfinite(value)
        if improved and self.best_value is not None:
            if s.mode == "max":
                improved = value > self.best_value + s.min_delta
            else:
                improved = value < self.best_value - s.min_delta
        if improved:
            self.best_value, self.best_epoch, self.wait = float(value), int(record["epoch"]), 0
        else:
            self.wait += 1
        return self.wait >= s.patience

    def summary(self, stopped_epoch: int) -> dict[str, Any]:
        """What results.json records as ``early_stopping`` of a run stopped at ``stopped_epoch``."""
        s = self.settings
        return {
            "stopped_epoch": stopped_epoch,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "metric": s.metric,
            "mode": s.mode,
            "patience": s.patience,
            "min_delta": s.min_delta,
        }


def _stopper(settings: TrainerSettings, parts: Parts, history: History) -> Stopper | None:
    """The early stopping of the run, replayed over the records it resumes from."""
    if settings.early_stopping is None:
        return None
    check_early_stopping(settings, parts.data)
    stopper = Stopper(settings.early_stopping)
    for record in history.records:
        if stopper.update(record) and record["epoch"] < settings.epochs:
            history.early_stopping = stopper.summary(int(record["epoch"]))
            break
    return stopper


class ChannelsLast:
    """A loader whose image batches come in the channels_last layout of the model."""

    def __init__(self, loader: Batches) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # global_size etc. of the wrapped loader
        return getattr(self.loader, name)

    def batches(self, epoch: int = 0):
        for x, y, index in self.loader.batches(epoch):
            if x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y, index


def _loaders(parts: Parts, ctx: distributed.Context) -> dict[str, Any]:
    """The run's loaders, in the model's memory layout, and each rank's shard of them."""
    loaders = dict(parts.loaders)
    if parts.channels_last:
        loaders = {k: ChannelsLast(v) for k, v in loaders.items()}
    if ctx.enabled:  # each rank its chunk of every global batch
        loaders = {
            k: distributed.ShardedBatches(v, ctx, drop_small=k == "train")
            for k, v in loaders.items()
        }
    return loaders


def _start_epoch(stateful: dict[str, nn.Module], epoch: int) -> None:
    """Tell the losses and regularizers that keep state that ``epoch`` (0-based) starts."""
    for module in stateful.values():
        hook = getattr(module, "on_epoch_start", None)
        if hook is not None:
            hook(epoch)


def _epoch_means(
    terms: EpochTerms, batches: int, ctx: distributed.Context, epoch: int, names: list[str]
) -> list[float]:
    """The objective's and each term's mean over the epoch's ``batches`` steps (each step
    a batch mean; across ranks weighted by the rank's share of the batch, then averaged).

    Raises FloatingPointError when any is not finite: training diverged.
    """
    sums = distributed.mean_over_ranks(ctx, terms.sums() / max(batches, 1))
    means = sums.tolist()  # the epoch's one host sync
    if not all(np.isfinite(means)):
        raise FloatingPointError(
            f"training diverged at epoch {epoch + 1}: non-finite train/loss "
            f"({dict(zip(['train/objective', *names], means, strict=True))}); "
            "lower optimizer.lr, set trainer.grad_clip (e.g. 5), or check the loss parameters"
        )
    return means


def _module_stats(stateful: dict[str, nn.Module], data: Any) -> dict[str, Any]:
    """Diagnostics of stateful losses and regularizers (e.g. ALDR-KL's lambda_i)."""
    out: dict[str, Any] = {}
    for key, module in stateful.items():
        stats = getattr(module, "epoch_stats", None)
        if stats is not None:
            prefix = f"train/{key}_stats" if key == "loss" else f"train/{key}/stats"
            is_noisy = data.train.is_noisy if bool(data.train.is_noisy.any()) else None
            out.update({f"{prefix}/{k}": v for k, v in stats(is_noisy).items()})
    return out


def fit(
    parts: Parts,
    settings: TrainerSettings,
    *,
    seed: int,
    n_bins: int,
    run_dir: Path,
    fingerprint: str,
    checkpoint: dict[str, Any] | None = None,
    reporter: Reporter,
    logger: Any = None,
    mixing: Any = None,
    ctx: distributed.Context = distributed.SINGLE,
    save_predictions: bool = False,
) -> History:
    """Train for ``settings.epochs`` epochs, from ``checkpoint`` (the run's last checkpoint,
    read and validated by :func:`losslab.runner.rundir.read_checkpoint`) when given.

    After every epoch it appends the epoch's record to ``metrics.jsonl`` and
    atomically rewrites ``checkpoint.pt`` (model, optimizer, scheduler, loss and
    regularizer state, all RNG states, the history), and ``checkpoint_best.pt``
    when the epoch is a new ``best``. With ``settings.early_stopping`` it stops
    early (``history.early_stopping`` says where); with ``save_predictions`` it
    writes the last evaluation's test logits to ``predictions.npz``. Under data
    parallelism (``ctx``) every rank trains on its shard and only rank 0 writes.
    """
    model, opt, data, device = parts.model, parts.optimizer, parts.data, parts.device
    autocast = autocast_for(settings.precision, device)
    loaders = _loaders(parts, ctx)
    train_loader = loaders["train"]
    mixing = mixing if mixing is not None else Mixing()
    objective = Objective(parts.loss, parts.regularizers, model)
    forward, train_forward = forwards(model, ctx, device, objective.use_features, settings.compile)
    step = Step(opt, train_forward, objective, autocast, model, settings.grad_clip)
    # checkpoint keys of the modules that keep state, and the names of the logged terms
    stateful = {"loss": parts.loss, **{f"reg/{n}": r for n, r in parts.regularizers.items()}}
    term_names = ["train/loss", *(f"train/reg/{n}" for n in parts.regularizers)]

    history, start_epoch = History(), 0
    ckpt_path = run_dir / CHECKPOINT
    if checkpoint is not None:
        records = checkpointing.restore(checkpoint, parts, stateful, ckpt_path)
        history = History(records=records, reliability=checkpoint.get("reliability"))
        start_epoch = int(checkpoint["epoch"])
        log.info("resuming from %s after epoch %d", ckpt_path, start_epoch)
    if ctx.is_main:
        write_metrics(run_dir / METRICS, history.records)  # drop lines past the checkpoint
        checkpointing.drop_stale_best(run_dir / CHECKPOINT_BEST, start_epoch)
    stopper = _stopper(settings, parts, history)  # a resumed run that had stopped stays so
    end_epoch = start_epoch if history.early_stopping else settings.epochs
    outputs: dict[str, Any] = {}  # the last evaluation's logits, labels and indices

    writer = checkpointing.RecordWriter()
    reporter.start(settings.epochs, len(train_loader), start_epoch)
    try:
        for epoch in range(start_epoch, end_epoch):
            _start_epoch(stateful, epoch)
            t0 = time.perf_counter()
            model.train()
            lr = opt.param_groups[0]["lr"]
            terms = EpochTerms(1 + len(term_names), device)  # objective, loss, reg terms
            # Mixup/CutMix draws from its own generator, seeded by (seed, epoch), not the global RNG
            mixer = mixing.generator(seed, epoch) if mixing.enabled else None
            for x, y, index in train_loader.batches(epoch):
                mix = mixing.draw(x, mixer) if mixer is not None else None
                scale = grad_scale(ctx, index, train_loader)
                batch_terms = step(x, y, index, mix, scale)
                if ctx.enabled:
                    distributed.sync_per_sample_state(
                        ctx, list(stateful.values()), index, train_loader.global_size
                    )
                terms.add(batch_terms, scale)
                reporter.step()
            parts.scheduler.step()  # the schedule advances once per epoch
            means = _epoch_means(terms, len(train_loader), ctx, epoch, term_names)
            t1 = time.perf_counter()

            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "train/objective": means[0]}
            record.update(zip(term_names, means[1:], strict=True))
            record.update(_module_stats(stateful, data))
            metrics, history.reliability = evaluate(
                forward, loaders, autocast, n_bins, data, ctx, outputs
            )
            record.update(metrics)
            t2 = time.perf_counter()
            record["time/train_s"] = t1 - t0  # seconds: the epoch's steps and its means
            record["time/eval_s"] = t2 - t1  # seconds: the evaluation of every split
            history.add(record)
            # every rank decides alike (the same records); at the last epoch it changes nothing
            stop = stopper is not None and stopper.update(record) and epoch + 1 < settings.epochs
            if ctx.is_main:  # rank 0 writes
                state = checkpointing.state(
                    epoch + 1, fingerprint, parts, stateful, history.records, history.reliability
                )
                final = stop or epoch + 1 == settings.epochs
                is_best = history.best_index == len(history.records) - 1
                writer.submit(
                    ckpt_path,
                    state,
                    run_dir / METRICS,
                    list(history.records),
                    final,
                    best_path=run_dir / CHECKPOINT_BEST if is_best else None,
                )
                reporter.epoch_end(record)
                if logger is not None:
                    logger.log(record, step=epoch + 1)
            if stop:
                history.early_stopping = stopper.summary(epoch + 1)
                log.info(
                    "early stopping after epoch %d: %s has not improved by more than %g for "
                    "%d evaluations (best %.6g at epoch %d)",
                    epoch + 1,
                    stopper.settings.metric,
                    stopper.settings.min_delta,
                    stopper.settings.patience,
                    stopper.best_value if stopper.best_value is not None else math.nan,
                    stopper.best_epoch or 0,
                )
                break
        if save_predictions and history.records:
            history.predictions = _write_predictions(
                forward, loaders, autocast, outputs, history, run_dir, ctx
            )
    finally:
        try:
            writer.wait()  # the last checkpoint is on disk before results.json
        finally:
            reporter.close()
    return history


def _write_predictions(
    forward: Any,
    loaders: dict[str, Any],
    autocast: Any,
    outputs: dict[str, Any],
    history: History,
    run_dir: Path,
    ctx: distributed.Context,
) -> dict[str, Any]:
    """``predictions.npz``: the test logits of the final model, those its last evaluation
    scored (predicted again when this process trained no epoch: a resumed finished run)."""
    if "test" not in outputs:
        outputs["test"] = predict(forward, loaders["test"], autocast, ctx)
    if not ctx.is_main:
        return {}
    logits, labels, index = (t.cpu().numpy() for t in outputs["test"])
    epoch = int(history.records[-1]["epoch"])
    return write_predictions(run_dir / PREDICTIONS, logits, labels, index, epoch=epoch)
