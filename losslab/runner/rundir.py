"""A run directory belongs to one run: the checks a job makes before it writes anything.

A job may write into its run directory only when it holds the directory's lock
and what the directory already holds is its own run: the same config (checked
by the fingerprint of everything that determines the results), and files that
are whole. Every check here happens before the first write, so a refused
command changes nothing on disk, and each refusal says why and what to do.

The lock is an exclusive ``flock`` on ``RUN_DIR/.lock``: the kernel releases
it when its process ends, however it ends (SIGKILL included), so a lock is
never stale; the file only records the pid and host of its last holder, for
the message another process gets.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from losslab.report.record import read_record, result_config
from losslab.runner.records import CHECKPOINT, METRICS, RESULTS, atomic_write_bytes
from losslab.runner.settings import ConfigError

log = logging.getLogger("losslab")

LOCK = ".lock"
HYDRA_DIR = ".hydra"

#: What a checkpoint must hold to be resumed from.
CHECKPOINT_KEYS = ("epoch", "fingerprint", "model", "optimizer", "scheduler", "modules", "rng")

#: Temporary files of :func:`losslab.runner.records.atomic_write` (``.NAME.RANDOM.tmp``).
_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


class RunRefused(ConfigError):
    """This job must not touch its run directory; the message says why and what to do."""


def _flat(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            yield from _flat(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), obj


def config_difference(old: dict[str, Any], new: dict[str, Any], limit: int = 6) -> str:
    """``trainer.epochs: 3 -> 4, loss._target_: ...`` for the keys whose values differ."""
    a, b = dict(_flat(result_config(old))), dict(_flat(result_config(new)))
    missing = object()
    changed = [k for k in sorted(a.keys() | b.keys()) if a.get(k, missing) != b.get(k, missing)]

    def show(value: Any) -> str:
        return "(absent)" if value is missing else repr(value)

    parts = [f"{k}: {show(a.get(k, missing))} -> {show(b.get(k, missing))}" for k in changed]
    if len(parts) > limit:
        parts = [*parts[:limit], f"and {len(parts) - limit} more"]
    return ", ".join(parts) or "(no key differs; the record has another fingerprint)"


class DirLock:
    """The exclusive lock of a run directory (see the module docstring).

    ``acquire`` either takes the lock, or raises :class:`RunRefused` when another
    process holds it; in a directory that cannot be written it takes a shared
    view only (``writable`` is False): the caller may read but not write.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self.fd: int | None = None
        self.writable = True
        self.reason = ""
        self.created = False  # the lock file is this lock's own (it was not there before)

    def acquire(self) -> DirLock:
        import fcntl

        self.created = not self.path.exists()
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            self.writable, self.reason = False, os.strerror(exc.errno)
            try:  # a read-only directory that has a lock file can still be locked
                self.fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return self
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            os.close(self.fd)
            self.fd = None
            raise RunRefused(
                f"run directory {self.path.parent} is in use by {holder}; wait for it to "
                "finish, or choose another run directory (hydra.run.dir=...)"
            ) from None
        if self.writable:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return self

    def _holder(self) -> str:
        try:
            pid, _, host = self.path.read_text().strip().partition(" ")
        except OSError:
            pid = host = ""
        if not pid:
            return "another process"
        return f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")

    def discard(self) -> None:
        """Release the lock, and remove its file when this lock made it (a run that
        writes nothing leaves its directory as it found it)."""
        if self.fd is not None and self.created and self.writable:
            with contextlib.suppress(OSError):
                self.path.unlink()
        self.release()

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def read_previous(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``results.json``: None when there is none; refused when it is damaged
    (the check that ``losslab compare`` and the sweep summary make too)."""
    record, problem = read_record(Path(run_dir) / RESULTS)
    if problem is None:
        return record
    if problem.status == "missing":
        return None
    raise RunRefused(
        f"{problem.path} is damaged ({problem.error}); delete it to run again "
        f"(a checkpoint.pt beside it is kept and the run resumes from it)"
    )


def read_checkpoint(run_dir: Path, accepted: set[str], epochs: int) -> dict[str, Any] | None:
    """The run's last checkpoint, validated; None when there is none.

    Refused (nothing is written) when it is damaged (unreadable, keys missing,
    an epoch outside 1..``epochs`` or a history of another length) or belongs to a
    run with another config (a fingerprint not in ``accepted``: see
    :func:`losslab.report.record.fingerprints`). Loaded onto the CPU: ``load_state_dict`` moves each
    tensor to where its module or optimizer lives.
    """
    import torch

    path = Path(run_dir) / CHECKPOINT
    if not path.exists():
        return None

    def damaged(why: str) -> RunRefused:
        return RunRefused(f"{path} is damaged: {why}; delete it to start this run again")

    if not path.is_file():
        raise damaged("not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise damaged(f"cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict):
        raise damaged(f"holds a {type(ckpt).__name__}, not a checkpoint")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise damaged(f"no {', '.join(missing)}")
    if ckpt["fingerprint"] not in accepted:
        raise RunRefused(
            f"{path} belongs to a run with a different config; resume with the same "
            "overrides (losslab train resume=RUN_DIR), or choose another run directory"
        )
    epoch, history = ckpt["epoch"], ckpt.get("history")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= epochs:
        raise damaged(f"it claims epoch {epoch!r} of a run of {epochs} epochs")
    if not isinstance(history, list) or len(history) != epoch:
        count = len(history) if isinstance(history, list) else "no"
        raise damaged(f"it holds {count} epoch records for epoch {epoch}")
    return ckpt


def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Remove what a process killed mid-write left: ``.NAME.XXXX.tmp`` files (under the lock)."""
    removed = []
    for folder in (Path(run_dir), Path(run_dir) / HYDRA_DIR, Path(run_dir) / "plots"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _TMP.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        log.debug("removed unfinished writes: %s", ", ".join(p.name for p in removed))
    return removed


def write_hydra_record(run_dir: Path, task_cfg: Any, hydra_cfg: Any, overrides: list[str]) -> None:
    """``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml``, as Hydra writes them.

    Hydra's own writing is off (``hydra.output_subdir: null``) because it happens
    before the job can check that the directory is its own; the job writes the
    same three files once its checks have passed.
    """
    folder = Path(run_dir) / HYDRA_DIR
    files = {
        "config.yaml": task_cfg,
        "hydra.yaml": OmegaConf.create({"hydra": hydra_cfg}),
        "overrides.yaml": OmegaConf.create(overrides),
    }
    for name, node in files.items():
        atomic_write_bytes(folder / name, OmegaConf.to_yaml(node).encode(), durable=False)


def missing_derived(run_dir: Path, record: dict[str, Any]) -> list[str]:
    """Files of a completed run that can be rebuilt from its checkpoint but are missing or cut."""
    from losslab.report.plots import CURVES_PNG, PLOTS_DIR, RELIABILITY_PNG

    run_dir = Path(run_dir)
    missing = []
    epochs = (record.get("timing") or {}).get("epochs") or (record.get("final") or {}).get("epoch")
    if metrics_epochs(run_dir) != epochs:
        missing.append(METRICS)
    plots = [CURVES_PNG] + ([RELIABILITY_PNG] if record.get("reliability") else [])
    missing += [
        f"{PLOTS_DIR}/{name}" for name in plots if not (run_dir / PLOTS_DIR / name).is_file()
    ]
    return missing


def metrics_epochs(run_dir: Path) -> int | None:
    """Number of whole JSON records in the run's metrics.jsonl, None when it is missing or cut."""
    import json

    try:
        lines = (Path(run_dir) / METRICS).read_text().splitlines()
        for line in lines:
            json.loads(line)
    except (OSError, ValueError):
        return None
    return len(lines)


def saved_overrides(run_dir: Path) -> list[str]:
    """The overrides a run directory's ``.hydra/overrides.yaml`` records; a
    :class:`ConfigError` saying why when it is not a run directory or the file is damaged."""
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise ConfigError(
            "not a run directory (no .hydra/overrides.yaml); "
            "give the directory that holds the run's results.json and .hydra/"
        )
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
    except Exception as exc:
        raise ConfigError(f"{saved} cannot be read: {exc}") from None
    if not isinstance(loaded, list):
        raise ConfigError(f"{saved} is damaged (not a list of overrides)")
    return [str(o) for o in loaded]
