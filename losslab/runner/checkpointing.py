"""The checkpoint of a run: what it holds, restoring from it, and writing it (with
``metrics.jsonl``) in a background thread after every epoch.

A checkpoint holds the keys of :data:`losslab.runner.rundir.CHECKPOINT_KEYS`
(epoch, fingerprint, model, optimizer, scheduler, modules, rng) and the
history and reliability bins: enough to resume a run bit for bit.

Beside it, ``checkpoint_best.pt`` holds the model of the ``best`` epoch (the
highest validation accuracy, as ``best`` in results.json): see :func:`best_state`.
It is written, in the same background write and before ``checkpoint.pt``,
after every epoch that is a new best.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from losslab.runner.build import Parts
from losslab.runner.records import atomic_write, write_metrics
from losslab.runner.settings import ConfigError


def rng_state(device: torch.device) -> dict[str, Any]:
    """The state of every random number generator training draws from."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def state(
    epoch: int,
    fingerprint: str,
    parts: Parts,
    stateful: dict[str, nn.Module],
    records: list[dict[str, Any]],
    reliability: dict[str, Any] | None,
) -> dict[str, Any]:
    """The checkpoint after ``epoch`` epochs (the live state: :class:`RecordWriter` copies it).

    ``stateful``: the loss and regularizers by checkpoint key (``loss``, ``reg/<name>``).
    """
    return {
        "epoch": epoch,
        "fingerprint": fingerprint,
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "modules": {key: module.state_dict() for key, module in stateful.items()},
        "rng": rng_state(parts.device),
        "history": list(records),
        "reliability": reliability,
    }


#: What ``checkpoint_best.pt`` holds (see :func:`best_state`).
BEST_KEYS = ("epoch", "fingerprint", "model", "modules", "record", "reliability", "selection")


def best_state(state: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """``checkpoint_best.pt`` of the checkpoint ``state`` of a best epoch whose record is
    ``record``.

    Keys (:data:`BEST_KEYS`): ``epoch`` (1-based), ``fingerprint`` (of the run's
    config, as in ``checkpoint.pt``), ``model`` (the model's state_dict),
    ``modules`` (the loss's and regularizers' state, by ``loss`` / ``reg/<name>``),
    ``record`` (the epoch's line of metrics.jsonl: its val and test metrics),
    ``reliability`` (its test reliability bins) and ``selection`` (``"val/acc"``,
    the rule that chose it). No optimizer or RNG state: it evaluates the model, it
    does not resume training. The model is built from the run's config
    (``losslab evaluate RUN_DIR --best`` does it).
    """
    out = {k: state[k] for k in ("epoch", "fingerprint", "model", "modules", "reliability")}
    out.update(record=dict(record), selection="val/acc")
    return out


def drop_stale_best(path: Path, epoch: int) -> None:
    """Remove a ``checkpoint_best.pt`` written for an epoch after ``epoch``, the epoch a
    run resumes from (the process ended between the two writes of that epoch): the
    resumed run writes it again when it gets there."""
    if not path.is_file():
        return
    try:
        best = torch.load(path, map_location="cpu", weights_only=False)
        stale = not isinstance(best, dict) or int(best.get("epoch", 0)) > epoch
    except Exception:  # unreadable: a partial file cannot be, but a foreign one may
        stale = True
    if stale:
        path.unlink(missing_ok=True)


def restore(
    checkpoint: dict[str, Any], parts: Parts, stateful: dict[str, nn.Module], path: Path
) -> list[dict[str, Any]]:
    """Load ``checkpoint`` (read from ``path``) into the run; returns its epoch records.

    Raises ConfigError ("is damaged") when its state does not fit the run's parts.
    """
    try:
        parts.model.load_state_dict(checkpoint["model"])
        parts.optimizer.load_state_dict(checkpoint["optimizer"])
        parts.scheduler.load_state_dict(checkpoint["scheduler"])
        for key, module in stateful.items():
            module.load_state_dict(checkpoint["modules"][key])
        records = list(checkpoint["history"])
        set_rng_state(checkpoint["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise ConfigError(
            f"{path} is damaged: its state does not fit this run "
            f"({type(exc).__name__}: {exc}); delete it to start this run again"
        ) from None
    return records


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
        self.sync_interval = sync_interval  # seconds
        self._last_sync = time.monotonic()

    def submit(
        self,
        ckpt_path: Path,
        state: dict,
        metrics_path: Path,
        records: list,
        final: bool,
        best_path: Path | None = None,
    ) -> None:
        """Write ``state`` to ``ckpt_path`` and ``records`` to ``metrics_path``; with
        ``best_path``, first the :func:`best_state` of this epoch (the last record) there:
        a checkpoint.pt never holds a best epoch that checkpoint_best.pt has not."""
        self.wait()  # the last write is done with the snapshot it is written from
        snapshot = self._snapshot = _snapshot(state, self._snapshot)
        durable = final or time.monotonic() - self._last_sync >= self.sync_interval
        if durable:
            self._last_sync = time.monotonic()
        best = best_state(snapshot, records[-1]) if best_path is not None else None

        def work() -> None:
            try:
                if best_path is not None:
                    atomic_write(best_path, lambda f: torch.save(best, f), durable)
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
