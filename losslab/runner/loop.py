"""The training loop: train an epoch, evaluate val and test, record, checkpoint.

Per step it does forward, loss (+ weighted regularizer terms), backward and an
optimizer step, and adds the detached terms to a running sum on the device:
nothing is copied to the host until the epoch ends.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from losslab.datasets.loader import Batches
from losslab.datasets.mixing import Mixing
from losslab.metrics import (
    classification_metrics,
    metrics_and_reliability,
    noisy_label_diagnostics,
    search_temperature,
    temperature_scaled_metrics,
)
from losslab.runner import distributed
from losslab.runner.build import Parts
from losslab.runner.records import CHECKPOINT, METRICS, atomic_write, write_metrics
from losslab.runner.settings import ConfigError, TrainerSettings

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}


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


def _snapshot(obj: Any, into: Any = None) -> Any:
    """A copy of ``obj`` with every tensor copied to the host: a snapshot that training
    can go on changing the original of.

    Tensors are copied into those of an earlier snapshot ``into`` where shape, dtype
    and strides match (the next epoch's model and optimizer state), so that no new
    memory is touched each epoch; others get new host memory.
    """
    if isinstance(obj, Tensor):
        if (
            isinstance(into, Tensor)
            and into.shape == obj.shape
            and into.dtype == obj.dtype
            and into.stride() == obj.stride()
        ):
            return into.copy_(obj.detach())
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        # a copy of the same type (a scheduler's Counter of milestones stays a Counter)
        into = into if isinstance(into, dict) else {}
        out = copy.copy(obj)
        for k, v in obj.items():
            out[k] = _snapshot(v, into.get(k))
        return out
    if isinstance(obj, list | tuple):
        into = (
            into if isinstance(into, list | tuple) and len(into) == len(obj) else [None] * len(obj)
        )
        items = [_snapshot(v, w) for v, w in zip(obj, into, strict=True)]
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
            return type(obj)(*items)
        if type(obj) in (list, tuple):
            return type(obj)(items)
        out = copy.copy(obj)  # a list subclass: same type, same attributes
        out[:] = items
        return out
    return obj


class RecordWriter:
    """Writes each epoch's checkpoint.pt, then metrics.jsonl, in a background thread.

    Serialising and writing a ResNet-18 checkpoint takes a good share of a short
    GPU epoch; here it overlaps the next epoch. ``submit`` waits for the write
    before (one is in flight at a time), copies the state to the host, into the
    memory of the last copy, and starts the next; ``wait`` returns when it is
    written (and re-raises its error). A metrics file never lists an epoch its
    checkpoint does not hold.

    Every write is atomic (a rename), so a killed or preempted process leaves whole
    files. The fsync that a crash of the machine itself needs costs more than a
    short epoch's training on a CPU (the file system's journal), so it is made at
    most once every ``sync_interval`` seconds, and on the ``final`` write: a machine
    crash loses at most that much training, a preemption nothing.
    """

    def __init__(self, sync_interval: float = 60.0) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._snapshot: Any = None
        self.sync_interval = sync_interval
        self._last_sync = time.monotonic()

    def submit(
        self, ckpt_path: Path, state: dict, metrics_path: Path, records: list, final: bool
    ) -> None:
        self.wait()  # the last write is done with the snapshot it is written from
        snapshot = self._snapshot = _snapshot(state, self._snapshot)
        durable = final or time.monotonic() - self._last_sync >= self.sync_interval
        if durable:
            self._last_sync = time.monotonic()

        def work() -> None:
            try:
                atomic_write(ckpt_path, lambda f: torch.save(snapshot, f), durable)
                write_metrics(metrics_path, records, durable)
            except BaseException as exc:  # re-raised by wait()
                self._error = exc

        self._thread = threading.Thread(target=work, name="losslab-records")
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _epoch_sums(
    steps: list[tuple[Tensor, ...]], weights: list[float], width: int, device: torch.device
) -> Tensor:
    """Sums over an epoch's steps of each logged term (float64), each step weighted."""
    if not steps:
        return torch.zeros(width, device=device, dtype=torch.float64)
    table = torch.stack([torch.stack([s[j] for s in steps]) for j in range(width)], 1).double()
    if any(w != 1.0 for w in weights):
        table = table * torch.tensor(weights, dtype=torch.float64, device=device)[:, None]
    return table.sum(dim=0)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def evaluate(
    model: nn.Module,
    loaders: dict[str, Batches],
    autocast: Any,
    n_bins: int,
    data: Any,
    ctx: distributed.Context = distributed.SINGLE,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Metrics of one evaluation, keyed ``<split>/<metric>``, and the test reliability bins.

    Val and test get :func:`classification_metrics`; a temperature fitted on the
    validation logits gives ``test/temperature``, ``test/ece_ts`` and
    ``test/nll_ts``; under label noise a pass over the training set gives the
    memorisation diagnostics (``train/noisy_memorized``, ...).
    """
    out: dict[str, Any] = {}
    logits: dict[str, tuple[Tensor, Tensor]] = {}
    index: dict[str, Tensor] = {}
    reliability = None
    for split in ("val", "test"):
        if split in loaders:
            *logits[split], index[split] = predict(model, loaders[split], autocast, ctx)
            if split == "test":
                metrics, reliability = metrics_and_reliability(*logits[split], n_bins)
            else:
                metrics = classification_metrics(*logits[split], n_bins)
            out.update({f"{split}/{k}": v for k, v in metrics.items()})
    if "val" in logits and "test" in logits:
        # fitted on the validation labels the run has (noisy under label noise: what a
        # practitioner has), and, where those are noisy, also on the clean ones
        fits = {"": logits["val"][1]}
        clean = _clean_val_labels(data, index["val"], logits["val"][1])
        if clean is not None:
            out["val/acc_clean"] = float((logits["val"][0].argmax(1) == clean).float().mean())
            fits["_clean"] = clean
        for suffix, labels in fits.items():
            fit = search_temperature(logits["val"][0], labels)
            out[f"test/temperature{suffix}"] = fit.temperature
            out[f"test/temperature{suffix}_at_bound"] = fit.at_bound
            scaled = temperature_scaled_metrics(*logits["test"], fit.temperature, n_bins)
            out.update({f"test/{k}{suffix}": v for k, v in scaled.items()})
    if "train_eval" in loaders:
        train_logits, _, _ = predict(model, loaders["train_eval"], autocast, ctx)
        device = train_logits.device
        diagnostics = noisy_label_diagnostics(
            train_logits,
            data.train.y.to(device),
            data.train.y_clean.to(device),
            data.train.is_noisy.to(device),
        )
        out.update({f"train/{k.removeprefix('train_')}": v for k, v in diagnostics.items()})
    return out, reliability


def _clean_val_labels(data: Any, index: Tensor, labels: Tensor) -> Tensor | None:
    """The clean labels of the validation rows ``index`` (as :func:`predict` returns them);
    None when the validation labels are clean or do not line up with ``labels``."""
    val = getattr(data, "val", None)
    if val is None or not bool(val.is_noisy.any()):
        return None
    at = index.cpu().long()
    if at.numel() != len(val.y) or not torch.equal(val.y[at].to(labels.device), labels):
        return None  # rows are not positions in the split: no clean fit rather than a wrong one
    return val.y_clean[at].to(labels.device)


@torch.inference_mode()
def predict(
    model: nn.Module,
    loader: Batches,
    autocast: Any,
    ctx: distributed.Context = distributed.SINGLE,
) -> tuple[Tensor, Tensor]:
    """All logits (float32), labels and sample indices of a split, gathered on the device.

    Under data parallelism each rank predicts its shard; the shards are
    gathered and put back in sample order before anything is computed.
    """
    model.eval()
    logits, targets, indices = [], [], []
    for x, y, index in loader.batches():
        with autocast():
            logits.append(model(x).float())
        targets.append(y)
        indices.append(index)
    out, labels, index = torch.cat(logits), torch.cat(targets), torch.cat(indices)
    if ctx.enabled:
        index = distributed.gather_rows(ctx, index)
        order = index.argsort()
        out = distributed.gather_rows(ctx, out)[order]
        labels = distributed.gather_rows(ctx, labels)[order]
        index = index[order]
    return out, labels, index


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
) -> History:
    """Train for ``settings.epochs`` epochs, from ``checkpoint`` (the run's last checkpoint,
    read and validated by :func:`losslab.runner.rundir.read_checkpoint`) when given.

    After every epoch it appends the epoch's record to ``metrics.jsonl`` and
    atomically rewrites ``checkpoint.pt`` (model, optimizer, scheduler, loss and
    regularizer state, all RNG states, the history). Under data parallelism
    (``ctx``) every rank trains on its shard and only rank 0 writes.
    """
    model, loss_fn, regs, opt = parts.model, parts.loss, parts.regularizers, parts.optimizer
    device, data = parts.device, parts.data
    dtype = AUTOCAST_DTYPES[settings.precision]

    def autocast() -> contextlib.AbstractContextManager:
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    loaders = dict(parts.loaders)
    if parts.channels_last:
        loaders = {k: ChannelsLast(v) for k, v in loaders.items()}
    if ctx.enabled:  # each rank its chunk of every global batch
        loaders = {
            k: distributed.ShardedBatches(v, ctx, drop_small=k == "train")
            for k, v in loaders.items()
        }
    train_loader = loaders["train"]
    mixing = mixing if mixing is not None else Mixing()
    needs = {name: frozenset(getattr(r, "needs", ())) for name, r in regs.items()}
    use_features = any("features" in n for n in needs.values())
    # What a training step calls: the model, or a (features, logits) view of it for
    # regularizers that need features, wrapped in DDP across ranks.
    stepper = distributed.wrap(ctx, model, device, use_features)
    forward = torch.compile(model) if settings.compile else model
    train_forward = forward if stepper is model else stepper
    if settings.compile and stepper is not model:
        train_forward = torch.compile(stepper)
    stateful = {"loss": loss_fn, **{f"reg/{n}": r for n, r in regs.items()}}

    history = History()
    start_epoch = 0
    ckpt_path = run_dir / CHECKPOINT
    if checkpoint is not None:
        try:
            model.load_state_dict(checkpoint["model"])
            opt.load_state_dict(checkpoint["optimizer"])
            parts.scheduler.load_state_dict(checkpoint["scheduler"])
            for key, module in stateful.items():
                module.load_state_dict(checkpoint["modules"][key])
            for record in checkpoint["history"]:
                history.add(record)
            _set_rng_state(checkpoint["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise ConfigError(
                f"{ckpt_path} is damaged: its state does not fit this run "
                f"({type(exc).__name__}: {exc}); delete it to start this run again"
            ) from None
        history.reliability = checkpoint.get("reliability")
        start_epoch = int(checkpoint["epoch"])
        log.info("resuming from %s after epoch %d", ckpt_path, start_epoch)
    if ctx.is_main:
        write_metrics(run_dir / METRICS, history.records)  # drop lines past the checkpoint

    def objective_terms(logits, features, inputs, target, idx):
        loss = loss_fn(logits, target, index=idx)
        objective, terms = loss, [loss]
        available = {"features": features, "index": idx, "model": model, "inputs": inputs}
        for name, reg in regs.items():
            term = reg(logits, target, **{k: available[k] for k in needs[name]})
            objective = objective + reg.weight * term
            terms.append(term)
        return objective, terms

    def make_closure(inputs, y, index, mix, first, grad_scale=1.0):
        def closure() -> Tensor:
            # Optimizers call this once (SAM twice); it recomputes the objective.
            opt.zero_grad(set_to_none=True)
            with autocast():
                if use_features:
                    features, logits = train_forward(inputs)
                else:
                    features, logits = None, train_forward(inputs)
                objective, terms = objective_terms(logits, features, inputs, y, index)
                if mix is not None:
                    p = mix.perm
                    other, others = objective_terms(logits, features, inputs, y[p], index[p])
                    objective = mix.lam * objective + (1 - mix.lam) * other
                    terms = [
                        mix.lam * a + (1 - mix.lam) * b for a, b in zip(terms, others, strict=True)
                    ]
            # Across ranks: DDP averages gradients; weighting each rank's mean by its
            # share of the global batch makes that the mean over the global batch.
            (objective * grad_scale if grad_scale != 1.0 else objective).backward()
            if settings.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            if not first:  # statistics of the first evaluation, at the current weights
                first.append((objective.detach(), *(t.detach() for t in terms)))
            return objective

        return closure

    term_names = ["train/loss", *(f"train/reg/{n}" for n in regs)]
    writer = RecordWriter()
    reporter.start(settings.epochs, len(train_loader), start_epoch)
    try:
        for epoch in range(start_epoch, settings.epochs):
            for module in stateful.values():
                hook = getattr(module, "on_epoch_start", None)
                if hook is not None:
                    hook(epoch)
            t0 = time.perf_counter()
            model.train()
            lr = opt.param_groups[0]["lr"]
            # Every step's [objective, loss, reg terms...] stay on the device (no op per
            # step) and are summed once at the end of the epoch.
            steps: list[tuple[Tensor, ...]] = []
            weights: list[float] = []
            mixer = mixing.generator(seed, epoch) if mixing.enabled else None
            for x, y, index in train_loader.batches(epoch):
                # Mixup/CutMix: one mixed batch, the objective mixed over both label sets.
                mix = mixing.draw(x, mixer) if mixer is not None else None
                first: list[Tensor] = []
                scale = (
                    len(index) * ctx.world_size / train_loader.global_size if ctx.enabled else 1.0
                )
                closure = make_closure(
                    mix.inputs if mix is not None else x, y, index, mix, first, scale
                )
                opt.step(closure)
                if ctx.enabled:
                    distributed.sync_per_sample_state(
                        ctx, list(stateful.values()), index, train_loader.global_size
                    )
                steps.append(first[0])
                weights.append(scale)
                reporter.step()
            parts.scheduler.step()
            sums = _epoch_sums(steps, weights, 1 + len(term_names), device)
            sums = distributed.mean_over_ranks(ctx, sums / max(len(train_loader), 1))
            means = sums.tolist()  # one host sync per epoch
            if not all(np.isfinite(means)):
                raise FloatingPointError(
                    f"training diverged at epoch {epoch + 1}: non-finite train/loss "
                    f"({dict(zip(['train/objective', *term_names], means, strict=True))}); "
                    "lower optimizer.lr, set trainer.grad_clip (e.g. 5), or check the loss parameters"
                )
            t1 = time.perf_counter()

            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "train/objective": means[0]}
            record.update(zip(term_names, means[1:], strict=True))
            # Diagnostics of stateful losses/regularizers (e.g. ALDR-KL's lambda_i).
            for key, module in stateful.items():
                stats = getattr(module, "epoch_stats", None)
                if stats is not None:
                    prefix = f"train/{key}_stats" if key == "loss" else f"train/{key}/stats"
                    is_noisy = data.train.is_noisy if bool(data.train.is_noisy.any()) else None
                    record.update({f"{prefix}/{k}": v for k, v in stats(is_noisy).items()})
            metrics, history.reliability = evaluate(forward, loaders, autocast, n_bins, data, ctx)
            record.update(metrics)
            t2 = time.perf_counter()
            record["time/train_s"] = t1 - t0
            record["time/eval_s"] = t2 - t1
            history.add(record)
            if not ctx.is_main:  # rank 0 writes
                continue

            state = {
                "epoch": epoch + 1,
                "fingerprint": fingerprint,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": parts.scheduler.state_dict(),
                "modules": {key: module.state_dict() for key, module in stateful.items()},
                "rng": _rng_state(device),
                "history": list(history.records),
                "reliability": history.reliability,
            }
            writer.submit(
                ckpt_path,
                state,
                run_dir / METRICS,
                list(history.records),
                final=epoch + 1 == settings.epochs,
            )
            reporter.epoch_end(record)
            if logger is not None:
                logger.log(record, step=epoch + 1)
    finally:
        try:
            writer.wait()  # the last checkpoint is on disk before results.json
        finally:
            reporter.close()
    return history
