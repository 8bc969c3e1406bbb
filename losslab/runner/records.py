"""What a run leaves on disk: metrics.jsonl, results.json, checkpoint.pt,
checkpoint_best.pt and (with ``eval.save_predictions``) predictions.npz.

Every file that a reader may find half-written is written atomically: to a
temporary file in the same directory, flushed, then renamed over the target.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from losslab.report.record import RESULTS as RESULTS  # the one name of the run record

METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
#: The model at the ``best`` epoch (highest val/acc): see :func:`losslab.runner.checkpointing.best_state`.
CHECKPOINT_BEST = "checkpoint_best.pt"
#: Test logits of the final model (``eval.save_predictions``): see :func:`write_predictions`.
PREDICTIONS = "predictions.npz"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN/inf by None so the file stays strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class DiskFull(OSError):
    """A write that failed because its file system is full (or over quota)."""


#: errno values that mean "no room on this file system".
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _no_space(exc: BaseException) -> bool:
    """Whether ``exc`` or anything in its chain is a "no space left" error.

    ``torch.save`` reports a full disk as a ``RuntimeError`` ("unexpected pos")
    whose context is the ``OSError`` of the failed write.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_error(path: Path) -> DiskFull:
    """The error for a write of ``path`` that found no space, naming its file system."""
    path = Path(path).absolute()
    try:
        stats = os.statvfs(path.parent)
        free = f"{stats.f_bavail * stats.f_frsize / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return DiskFull(
        errno.ENOSPC,
        f"no space left on the device of {path.parent} ({_mount_point(path.parent)}, {free}); "
        f"{path.name} was not written and its last complete version is kept",
        str(path),
    )


def _mount_point(path: Path) -> str:
    """The mount point that holds ``path`` (as far as the path itself shows)."""
    path = path.resolve()
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return f"file system mounted at {path}"


def atomic_write(path: Path, write: Callable[[BinaryIO], Any], durable: bool = True) -> None:
    """Write ``path`` through ``write(file)`` so that readers see the old or the new
    file, never a mix.

    The rename is atomic for every process, so a killed or preempted run leaves
    one whole file either way. ``durable`` also fsyncs the data before the rename,
    which it needs to survive a crash of the machine itself. A full file system
    raises :class:`DiskFull` (naming the device) and leaves the old file as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        if _no_space(exc):
            raise disk_full_error(path) from exc
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if _no_space(exc):
            raise disk_full_error(path) from exc
        raise


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    """:func:`atomic_write` of ``data``."""
    atomic_write(path, lambda f: f.write(data), durable)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented, strict JSON (NaN/inf become null)."""
    text = json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def write_metrics(path: Path, history: list[dict], durable: bool = True) -> None:
    """Atomically (re)write metrics.jsonl: one JSON object per evaluation."""
    lines = [json.dumps(_finite(h), default=_json_default, allow_nan=False) for h in history]
    atomic_write_bytes(path, ("\n".join(lines) + "\n" if lines else "").encode(), durable)


def write_predictions(
    path: Path, logits: Any, labels: Any, index: Any, *, epoch: int, split: str = "test"
) -> dict[str, Any]:
    """Atomically write the predictions of one split as a compressed ``.npz``.

    The file holds ``logits`` (float32 ``[N, K]``), ``labels`` (int64 ``[N]``, the
    split's labels), ``index`` (int64 ``[N]``, each row's sample index in the data
    set), ``epoch`` (the epoch of the model that made them, 1-based; 0 when unknown)
    and ``split`` (its name). Read it with ``numpy.load(path)``.

    Returns:
        What results.json records of the file: ``{"file", "split", "epoch", "rows", "classes"}``.
    """
    import numpy as np

    logits = np.asarray(logits, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    index = np.asarray(index, dtype=np.int64)
    if logits.ndim != 2 or labels.shape != (len(logits),) or index.shape != (len(logits),):
        raise ValueError(
            f"predictions of mismatched shapes: logits {logits.shape}, labels {labels.shape}, "
            f"index {index.shape}"
        )
    arrays = {
        "logits": logits,
        "labels": labels,
        "index": index,
        "epoch": np.asarray(epoch, dtype=np.int64),
        "split": np.asarray(split),
    }
    atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    return {
        "file": Path(path).name,
        "split": split,
        "epoch": epoch,
        "rows": len(logits),
        "classes": int(logits.shape[1]),
    }


def read_json(path: Path) -> dict | None:
    """The JSON object at ``path``, else None.

    None when the file is missing, a directory or unreadable, is not valid
    JSON (or nested too deeply to parse), or holds JSON that is not an object
    (``[1, 2]``, ``3``, ``null``): callers may use the result as a dict without
    checking its type. The fields inside are not checked (see
    :func:`losslab.report.record.record_problem` for a results record).
    """
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON or bad UTF-8
        return None
    return data if isinstance(data, dict) else None


def versions() -> dict[str, str]:
    """Versions of what produced a result, for results.json."""
    import hydra
    import numpy
    import omegaconf
    import torch

    import losslab

    out = {
        "losslab": losslab.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "hydra": hydra.__version__,
        "omegaconf": omegaconf.__version__,
        "platform": platform.platform(),
    }
    if torch.cuda.is_available():
        out["cuda"] = str(torch.version.cuda)
        out["gpu"] = torch.cuda.get_device_name()
    return out
