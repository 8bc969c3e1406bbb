"""``losslab train``: the Hydra application.

:func:`launch` is what the CLI calls with the words after ``train``; Hydra
composes the config (single run or ``-m`` multirun) and calls :func:`run` once
per job. A job never raises: it records its outcome in ``results.json``
(``completed`` or ``failed`` with the error) so that one bad job cannot take a
sweep down, and :func:`launch` turns failures into a non-zero exit code.

Outcomes come back as values, never through module state: :func:`run` returns
the job's record and appends its outcome to the list it is given (the one
:func:`launch`'s task function collects for the jobs of this process); a
multirun's summary, which also covers jobs run in other processes or on other
machines, is the file the ``SweepReport`` callback writes for :func:`launch`
(:func:`losslab.runner.sweep.read_summary`). What a run is made of is built in
one place, :func:`losslab.runner.build.build_run`; this module keeps the job's
lifecycle (admit, skip, train, record, interrupt).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from losslab.report.record import fingerprint, fingerprints, record_fingerprints
from losslab.runner import rundir
from losslab.runner.preflight import override_key
from losslab.runner.records import CHECKPOINT, METRICS, RESULTS, atomic_write_json, versions
from losslab.runner.settings import ConfigError
from losslab.runner.sweep import read_summary

log = logging.getLogger("losslab")


def _register_resolvers() -> None:
    # ${uid:} makes default run directories unique even for two launches in the
    # same second; cached, so every read of hydra.run.dir agrees.
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: os.urandom(3).hex(), use_cache=True)


_register_resolvers()


def _fingerprints(cfg: DictConfig) -> set[str]:
    """This config's fingerprint, and the one earlier versions wrote (:func:`fingerprints`)."""
    return fingerprints(OmegaConf.to_container(cfg, resolve=True))


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


#: Exit codes of a job stopped by a signal, as a shell reports them (128 + signal number).
INTERRUPTED_EXIT = {"SIGINT": 130, "SIGTERM": 143}


class RunResult(dict):
    """A job's results record that sweepers which optimise a number can read as one.

    ``float(result)`` is the metric named by ``objective`` in the config
    (``best.val.acc`` by default: validation accuracy of the best epoch), NaN
    for a failed run, so that e.g. the Optuna sweeper can maximise it.
    """

    def __init__(self, record: dict, objective: str = "best.val.acc") -> None:
        super().__init__(record)
        self.objective = objective

    def __float__(self) -> float:
        value: Any = self
        for key in self.objective.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return float(value) if isinstance(value, (int, float)) else float("nan")


def run(cfg: DictConfig, outcomes: list[dict] | None = None) -> RunResult:
    """Run one job of ``cfg`` in Hydra's output directory; return its results record.

    The job's outcome (``completed``, ``failed``, ``skipped``, ``refused`` or
    ``interrupted``, with its directory and error) is appended to ``outcomes``.
    Before anything is written the job takes the directory's lock and checks what
    the directory holds (:mod:`losslab.runner.rundir`): a completed run of the same
    config is skipped (its missing plots or metrics file rebuilt), a damaged file,
    another process or another config's run is refused and nothing is touched.
    """
    from losslab.runner import distributed

    hc = HydraConfig.get()
    ctx = distributed.from_env()
    if ctx.enabled:  # torchrun: rank 0's run directory is the run's, only rank 0 writes
        distributed.setup(ctx, _device_type(cfg))
        run_dir = Path(distributed.broadcast_object(ctx, _output_dir(hc)))
        if not ctx.is_main:
            return _follow(cfg, run_dir, ctx)
    job = _Job(
        run_dir=Path(_output_dir(hc)),
        # unresolved, as given: an override may itself hold an interpolation
        overrides=[str(o) for o in OmegaConf.to_container(hc.overrides.task, resolve=False)],
        sweep_dir=str(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None,
        objective=_objective(cfg),
        job_num=_job_num(hc),
        outcomes=outcomes if outcomes is not None else [],
    )
    lock = rundir.DirLock(job.run_dir)
    try:
        admitted = _admit(cfg, job, lock)
        if ctx.enabled:  # the others read the checkpoint themselves
            resumes = admitted.get("checkpoint") is not None
            distributed.broadcast_object(ctx, {"skip": admitted.get("skip"), "resume": resumes})
    except rundir.RunRefused as exc:
        lock.release()
        if ctx.enabled:
            distributed.broadcast_object(ctx, {"refused": str(exc)})
        return job.refused(str(exc))
    try:
        if admitted.get("skip"):
            return _skip(job, admitted["skip"], lock)
        _share_cpu_threads(hc)
        try:  # a bad config writes nothing: its run directory is not made (or left as it was)
            built = _build(cfg, ctx, job.sweep_dir, with_logger=True)
        except ConfigError as exc:
            lock.discard()
            _remove_if_new(job.run_dir)
            return job.refused(str(exc), invalid=True)
        rundir.remove_stale_tmp(job.run_dir)
        rundir.write_hydra_record(job.run_dir, cfg, hc, job.overrides)
        with _run_log(job.run_dir):
            return _run_admitted(cfg, hc, job, admitted.get("checkpoint"), built)
    finally:
        lock.release()


@dataclass
class _Job:
    """One job of this process: where it runs and what it reports."""

    run_dir: Path
    overrides: list[str]
    sweep_dir: str | None
    objective: str

    job_num: int | None = None
    #: Where the job's outcome goes in this process (the caller's list).
    outcomes: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str | None:
        """``job N`` for a job of a multirun, whose lines interleave with the others'."""
        return (
            f"job {self.job_num}"
            if self.sweep_dir is not None and self.job_num is not None
            else None
        )

    @property
    def tag(self) -> str:
        """What starts the job's own lines: ``[job N] `` in a multirun, else nothing."""
        return f"[{self.label}] " if self.label else ""

    def outcome(self, status: str, error: str | None = None, **extra: Any) -> None:
        """Report what became of the job: to the caller's list, and in a sweep to the
        sweep's summary (a refused job leaves no trace in its own directory)."""
        entry = {
            "status": status,
            "run_dir": str(self.run_dir),
            "overrides": self.overrides,
            "error": error,
            "multirun": self.sweep_dir is not None,
            "sweep_dir": self.sweep_dir,
            **extra,
        }
        self.outcomes.append(entry)
        if self.sweep_dir is not None and self.job_num is not None:
            from losslab.runner.sweep import record_outcome

            record_outcome(self.sweep_dir, self.job_num, entry)

    def refused(self, reason: str, *, invalid: bool = False) -> RunResult:
        """Report a refusal; nothing was written. ``invalid``: the config has a bad value."""
        sys.stderr.write(
            f"losslab train: {reason}\n" if invalid else f"losslab train: refused: {reason}\n"
        )
        sys.stderr.flush()
        self.outcome("refused", reason, **({"invalid": True} if invalid else {}))
        record = {
            "status": "refused",
            "error": reason,
            "run_dir": str(self.run_dir),
            "overrides": self.overrides,
        }
        return RunResult(record, self.objective)


#: When this module was imported: before Hydra made the job's directory, in every
#: process that runs a job (here, a joblib worker, a SLURM job).
_IMPORTED_AT = time.time()


def _remove_if_new(run_dir: Path) -> None:
    """Remove ``run_dir`` and its parents up to the working directory when they are
    empty and were made after this process started (by Hydra, for this job)."""
    stop = Path.cwd().resolve()
    folder = run_dir.resolve()
    while folder != stop and stop in folder.parents:
        try:
            if any(folder.iterdir()) or folder.stat().st_mtime < _IMPORTED_AT:
                return
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _output_dir(hc: Any) -> str:
    """The job's directory as Hydra made it: taken literally (a ``${`` in a path is text)."""
    return str(OmegaConf.to_container(hc.runtime, resolve=False)["output_dir"])


def _job_num(hc: Any) -> int | None:
    num = OmegaConf.select(hc, "job.num", throw_on_resolution_failure=False)
    return num if isinstance(num, int) else None


def _objective(cfg: DictConfig) -> str:
    value = OmegaConf.select(cfg, "objective", throw_on_resolution_failure=False)
    return value if isinstance(value, str) and value else "best.val.acc"


def _resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config with every interpolation resolved; one that cannot be is a ConfigError."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        where = f" at '{key}'" if key else ""
        message = (exc.msg or str(exc)).splitlines()[0]
        raise ConfigError(f"cannot resolve the config{where}: {message}") from None
    except Exception as exc:  # a custom resolver that raised
        raise ConfigError(f"cannot resolve the config: {type(exc).__name__}: {exc}") from None


def _admit(cfg: DictConfig, job: _Job, lock: rundir.DirLock) -> dict[str, Any]:
    """What this job may do in its directory: ``{"skip": record}`` for a completed run of
    the same config, else ``{"checkpoint": ckpt_or_None}``; refused otherwise."""
    run_dir = job.run_dir
    try:
        resolved, problem = _resolved(cfg), None
    except ConfigError as exc:
        resolved, problem = None, str(exc)
    lock.acquire()
    previous = rundir.read_previous(run_dir)
    if previous is not None and previous["status"] == "completed":
        if problem:
            raise rundir.RunRefused(f"{problem}; {run_dir} holds a completed run, left as it is")
        old_config = previous.get("config") or {}
        if not record_fingerprints(previous) & fingerprints(resolved):
            raise rundir.RunRefused(
                f"{run_dir} holds a completed run with a different config "
                f"({rundir.config_difference(old_config, resolved)}); choose another run "
                f"directory (hydra.run.dir=...), or delete {run_dir} to run this config there"
            )
        return {"skip": previous}
    if not lock.writable:
        raise rundir.RunRefused(f"run directory {run_dir} is not writable ({lock.reason})")
    if not (run_dir / CHECKPOINT).exists():
        return {"checkpoint": None}
    if problem:
        raise rundir.RunRefused(
            f"{problem}; {run_dir} holds the checkpoint of an unfinished run, left as it is"
        )
    epochs = (resolved.get("trainer") or {}).get("epochs")
    epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else 0
    return {"checkpoint": rundir.read_checkpoint(run_dir, fingerprints(resolved), epochs)}


def _skip(job: _Job, record: dict, lock: rundir.DirLock) -> RunResult:
    """A completed run of this config: report it, rebuild what is missing, train nothing."""
    message = f"already completed: {job.run_dir} (delete its results.json to run again)"
    if not lock.writable:
        log.info(message)
        missing = rundir.missing_derived(job.run_dir, record)
        if missing:
            log.warning("not rebuilt (%s): %s", lock.reason, ", ".join(missing))
    else:
        with _run_log(job.run_dir):
            log.info(message)
            _rebuild(job, record)
    job.outcome("skipped")
    return RunResult(record, job.objective)


def _rebuild(job: _Job, record: dict) -> None:
    """Make the missing derived files of a completed run from its checkpoint's history."""
    from losslab.runner.loop import History
    from losslab.runner.records import write_metrics

    missing = rundir.missing_derived(job.run_dir, record)
    if not missing:
        return
    epochs = (record.get("final") or {}).get("epoch") or 0
    try:
        ckpt = rundir.read_checkpoint(job.run_dir, record_fingerprints(record), epochs)
    except rundir.RunRefused as exc:
        log.warning("cannot rebuild %s: %s", ", ".join(missing), exc)
        return
    if ckpt is None:
        log.warning("cannot rebuild %s: no %s", ", ".join(missing), CHECKPOINT)
        return
    if METRICS in missing:
        write_metrics(job.run_dir / METRICS, ckpt["history"])
    if any(m != METRICS for m in missing):
        history = History(records=list(ckpt["history"]), reliability=ckpt.get("reliability"))
        _plots(record, job.run_dir, history)
    log.info("rebuilt %s from %s", ", ".join(missing), CHECKPOINT)


def _run_admitted(
    cfg: DictConfig, hc: Any, job: _Job, checkpoint: dict | None, built: Any
) -> RunResult:
    """Train an admitted job; record its outcome in results.json whatever happens."""
    from losslab.runner.console import results_table, stdout_console

    run_dir = job.run_dir
    console = stdout_console()
    _use_rich_logging(console)
    started = time.time()
    results: dict = {
        "status": "running",
        "overrides": job.overrides,
        "run_dir": str(run_dir),
        "config": OmegaConf.to_container(cfg, resolve=False),
        "choices": _choices(hc),
        "timing": {"started_at": datetime.now(timezone.utc).isoformat()},
    }
    state = _RunState(sweep_dir=job.sweep_dir)
    try:
        results["versions"] = versions()
        results["config"] = _resolved(cfg)
        results["fingerprint"] = fingerprint(results["config"])
        _train(
            cfg, run_dir, results, console, state, checkpoint=checkpoint, built=built, job=job.label
        )
        results["status"] = "completed"
    except (KeyboardInterrupt, Terminated) as exc:
        name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else signal.Signals(exc.signum).name
        results.update(status="interrupted", error=f"interrupted by {name}")
        _finish(results, run_dir, started)
        _close_logger(state, results, run_dir)
        again = (
            "launch the same sweep again"
            if job.sweep_dir
            else f"losslab train resume={_quote_path(run_dir)}"
        )
        done = rundir.metrics_epochs(run_dir) or 0  # the checkpoint holds as many
        sys.stderr.write(
            f"losslab train: interrupted ({name}) after {done} epoch(s) on disk; "
            f"to continue: {again}\n"
        )
        job.outcome("interrupted", results["error"], signal=name)
        raise
    except ConfigError as exc:
        results.update(status="failed", error=str(exc))
        log.error("config error: %s", exc)
    except Exception as exc:  # recorded, not raised: a sweep goes on
        results.update(
            status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()
        )
        log.debug("traceback:\n%s", results["traceback"])
        log.error(
            "run failed: %s: %s (traceback in %s)", type(exc).__name__, exc, run_dir / "train.log"
        )
    if not _finish(results, run_dir, started):
        results.update(status="failed", error=results.get("error") or "results.json not written")
    _after(results, run_dir, state)
    if results["status"] == "completed" and hc.mode == RunMode.RUN:
        console.print(results_table(results))
    elif results["status"] == "completed":
        test = (results.get("final") or {}).get("test", {})
        shown = " ".join(
            f"{k} {test[k]:.4f}" for k in ("acc", "ece", "nll") if test.get(k) is not None
        )
        log.info("%scompleted: test %s", job.tag, shown)
    console.print(f"{job.tag}run directory: {run_dir}", soft_wrap=True, markup=False)
    job.outcome(results["status"], results.get("error"))
    return RunResult(results, job.objective)


def _choices(hc: Any) -> dict[str, Any]:
    """The option Hydra chose for every config group of the run (``{"noise": "apl/sym40"}``).

    Recorded so that ``losslab compare`` names groups by what was chosen, never by
    guessing from values; Hydra's own groups (``hydra/launcher``, ...) are left out.
    """
    choices = OmegaConf.to_container(hc.runtime.choices, resolve=False)
    return {k: v for k, v in choices.items() if not str(k).startswith("hydra/")}


@contextlib.contextmanager
def _run_log(run_dir: Path) -> Iterator[None]:
    """Full log records of the job in ``RUN_DIR/train.log`` while the block runs.

    Attached here, after the directory checks, rather than by Hydra's logging
    config, so that a refused command does not write into the directory.
    """
    handler = _QuietFileHandler(run_dir / "train.log")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


class _QuietFileHandler(logging.FileHandler):
    """A log file that, when it cannot be written (a full disk), stops without a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not getattr(self, "_failed", False):
            self._failed = True
            sys.stderr.write(f"losslab train: {self.baseFilename} can no longer be written\n")


def _share_cpu_threads(hc: Any) -> None:
    """Jobs run side by side by a parallel launcher share the CPU cores between them."""
    n_jobs = (hc.launcher or {}).get("n_jobs")
    if isinstance(n_jobs, int) and n_jobs > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_jobs))


def _device_type(cfg: DictConfig) -> str:
    import torch

    wanted = str(cfg.trainer.get("device", "auto"))
    return (
        "cuda"
        if wanted.startswith("cuda") or (wanted == "auto" and torch.cuda.is_available())
        else "cpu"
    )


def _follow(cfg: DictConfig, run_dir: Path, ctx: Any) -> RunResult:
    """A rank > 0 under torchrun: train its shard beside rank 0, write nothing."""
    from losslab.runner import distributed

    admitted = distributed.broadcast_object(ctx, None)
    objective = _objective(cfg)
    if "refused" in admitted:
        return RunResult({"status": "refused", "error": admitted["refused"]}, objective)
    if admitted.get("skip"):
        return RunResult(admitted["skip"], objective)
    results: dict = {"status": "running", "timing": {}}
    try:
        checkpoint = None
        if admitted.get("resume"):
            checkpoint = rundir.read_checkpoint(
                run_dir, _fingerprints(cfg), int(cfg.trainer.epochs)
            )
        _train(cfg, run_dir, results, None, _RunState(sweep_dir=None), ctx, checkpoint=checkpoint)
    except Exception as exc:  # rank 0 records the run; this rank only reports
        results.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        log.error("rank %d failed: %s", ctx.rank, results["error"])
    return RunResult(results, objective)


class _RunState:
    """What a job built that must be closed after results.json is written."""

    def __init__(self, sweep_dir: str | None) -> None:
        self.sweep_dir = sweep_dir
        self.logger = None
        self.history = None


def _after(results: dict, run_dir: Path, state: _RunState) -> None:
    """Plots, then the experiment logger's final summary; neither may fail the run."""
    if state.history is not None and state.history.records:
        _plots(results, run_dir, state.history)
    _close_logger(state, results, run_dir)


def _plots(results: dict, run_dir: Path, history: Any) -> None:
    try:
        from losslab.report.palette import color
        from losslab.report.plots import plot_run

        title = " ".join(results.get("overrides") or []) or "defaults"
        loss = (results.get("choices") or {}).get("loss") or "ce"
        plot_run(run_dir, history.records, history.reliability, title, color=color(str(loss)))
    except Exception as exc:
        log.warning("plots not written: %s: %s", type(exc).__name__, exc)


def _close_logger(state: _RunState, results: dict, run_dir: Path) -> None:
    if state.logger is not None:
        try:
            state.logger.finish(results, run_dir)
        except Exception as exc:
            log.warning("logger could not finish: %s: %s", type(exc).__name__, exc)
        state.logger = None


def _finish(results: dict, run_dir: Path, started: float) -> bool:
    """Write results.json; False (and a message) when it cannot be written."""
    results["timing"].update(
        finished_at=datetime.now(timezone.utc).isoformat(), total_s=time.time() - started
    )
    try:
        atomic_write_json(run_dir / RESULTS, results)
    except OSError as exc:
        log.error("%s not written: %s", run_dir / RESULTS, exc)
        return False
    return True


def _build(cfg: DictConfig, ctx: Any, sweep_dir: str | None, *, with_logger: bool) -> Any:
    """Check the run's values and build its parts (:func:`~losslab.runner.build.build_run`);
    a bad value is a :class:`ConfigError`, raised before any data is loaded."""
    from losslab.runner.build import build_run
    from losslab.runner.settings import validate

    return build_run(
        cfg,
        validate(cfg),
        local_rank=ctx.local_rank if ctx.enabled else None,
        sweep_dir=sweep_dir,
        with_logger=with_logger,
    )


def _train(
    cfg: DictConfig,
    run_dir: Path,
    results: dict,
    console,
    state: _RunState,
    ctx: Any = None,
    *,
    checkpoint: dict | None = None,
    built: Any = None,
    job: str | None = None,
) -> None:
    """Train the run ``built`` (:func:`_build` when None), from ``checkpoint`` when
    given; ``console`` None means a rank > 0 that writes nothing. ``job`` names the
    job on its epoch lines (a multirun's job number)."""
    from losslab.runner import distributed
    from losslab.runner.console import make_reporter
    from losslab.runner.loop import fit

    ctx = ctx or distributed.from_env()
    if built is None:
        built = _build(cfg, ctx, state.sweep_dir, with_logger=console is not None)

    def train(reporter: Any) -> Any:
        return fit(
            built.parts,
            built.settings,
            seed=built.seed,
            n_bins=built.n_bins,
            run_dir=run_dir,
            fingerprint=built.fingerprint,
            checkpoint=checkpoint,
            reporter=reporter,
            logger=built.logger,
            mixing=built.mixing,
            ctx=ctx,
            save_predictions=built.save_predictions,
        )

    if console is None:
        train(_Silent())
        return
    parts, logger = built.parts, built.logger
    results["data"] = {
        "loader": parts.loader_mode,
        "name": parts.data.name,
        "sizes": parts.data.sizes(),
        "num_classes": parts.data.num_classes,
        "input_shape": list(parts.data.input_shape),
    }
    if "cv" in parts.data.info:  # the cross-validation fold this run trains and validates on
        results["data"]["cv"] = parts.data.info["cv"]
    results["noise"] = parts.noise.summary(parts.data)
    # The empirical clean -> noisy matrix of the training labels, for inspection.
    atomic_write_json(
        run_dir / "noise.json",
        {**results["noise"], "transition_matrix": parts.noise.transition_matrix(parts.data)},
    )
    results["device"] = str(parts.device)
    log.info(
        "%s | model %s | loss %s | device %s | train/val/test %s",
        parts.data.name,
        type(parts.model).__name__,
        type(parts.loss).__name__,
        parts.device,
        "/".join(str(n) for n in parts.data.sizes().values()),
    )
    logger.start(results["config"], run_dir)
    state.logger = logger
    history = state.history = train(make_reporter(console, job=job))
    results["final"] = history.final
    results["best"] = history.best
    results["best_clean_val"] = history.best_clean_val
    results["oracle"] = history.oracle
    results["reliability"] = history.reliability
    results["early_stopping"] = history.early_stopping  # null: it did not stop the run
    if history.predictions:
        results["predictions"] = history.predictions
    epochs = history.records
    results["timing"]["train_s"] = sum(r["time/train_s"] for r in epochs)
    results["timing"]["eval_s"] = sum(r["time/eval_s"] for r in epochs)
    results["timing"]["epochs"] = len(epochs)
    results["status"] = "completed"


class _Silent:
    """The progress display of a rank > 0: nothing."""

    def start(self, epochs: int, batches: int, first_epoch: int) -> None: ...
    def step(self) -> None: ...
    def epoch_end(self, record: dict) -> None: ...
    def close(self) -> None: ...


def _use_rich_logging(console) -> None:
    """On a terminal, route console log lines through rich so they print above the progress bar."""
    if not console.is_terminal:
        return
    from rich.logging import RichHandler

    root = logging.getLogger()
    for handler in list(root.handlers):  # stdout's; warnings and errors stay on stderr
        if (
            type(handler) is logging.StreamHandler
            and getattr(handler, "stream", None) is sys.stdout
        ):
            root.removeHandler(handler)
            rich_handler = RichHandler(console=console, show_path=False, show_time=True)
            rich_handler.setLevel(handler.level)
            for kept in handler.filters:
                rich_handler.addFilter(kept)
            root.addHandler(rich_handler)


def _task(cfg: DictConfig, outcomes: list[dict]) -> RunResult:
    """One job, whatever happens: its outcome goes to ``outcomes``."""
    try:
        return run(cfg, outcomes)
    except Exception as exc:  # a fault of losslab itself: the job fails, a sweep goes on
        reason = _one_line(exc)
        log.debug("traceback:\n%s", traceback.format_exc())
        sys.stderr.write(f"losslab train: {reason}\n")
        outcomes.append({"status": "failed", "error": reason, "multirun": False})
        return RunResult({"status": "failed", "error": reason})


def _hydra_app(outcomes: list[dict]) -> Any:
    """The Hydra application of one launch: its jobs in this process report to ``outcomes``."""

    def task(cfg: DictConfig) -> RunResult:
        return _task(cfg, outcomes)

    return hydra.main(version_base="1.3", config_path="../conf", config_name="train")(task)


#: The override through which :func:`launch` tells the sweep report where to write.
_SUMMARY_OVERRIDE = "++hydra.callbacks.sweep_report.summary_path"


def _job_argv(argv: list[str], scratch: str | None, summary: Path) -> list[str]:
    """``argv`` as Hydra gets it: with the sweep summary's file for a launch that runs
    jobs, and for a torchrun rank > 0 (``scratch``) Hydra's own files going nowhere."""
    from losslab.runner.preflight import args_parser

    try:
        args = args_parser(quiet=True).parse_args(argv)
    except ValueError:  # Hydra reports the bad command line
        args = None
    shows = args is None or any(
        (args.help, args.hydra_help, args.version, args.cfg, args.info, args.shell_completion)
    )
    if not shows:  # overrides are one block: the sweep report's comes first, so a
        # command line that drops the callback (~hydra.callbacks.sweep_report) still can
        at = _block_start(argv, args.overrides)
        argv = [*argv[:at], f"{_SUMMARY_OVERRIDE}={quote_value(str(summary))}", *argv[at:]]
    if scratch is None:
        return argv
    return [  # torchrun rank > 0: Hydra's own files go nowhere visible
        *(a for a in argv if override_key(a) not in ("hydra.run.dir", "hydra.sweep.dir")),
        f"hydra.run.dir={scratch}",
        f"hydra.sweep.dir={scratch}",
        "hydra.output_subdir=null",
        "hydra/job_logging=disabled",
        "hydra/hydra_logging=disabled",
        "hydra.callbacks={}",
    ]


def _asks_version(argv: list[str]) -> bool:
    """Whether ``argv`` asks for the version (``--version`` as a flag, not a value)."""
    from losslab.runner.preflight import args_parser

    try:
        return bool(args_parser(quiet=True).parse_args(argv).version)
    except ValueError:
        return False


def _as_job_list(argv: list[str], jobs: list[list[str]], path: Path) -> list[str]:
    """``argv`` with its sweep written out as ``jobs`` (each with its own overrides), in
    the file ``path``, launched by the job list sweeper in place of Hydra's basic one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from losslab.runner.preflight import args_parser

    args = args_parser(quiet=True).parse_args(argv)
    path.write_text(json.dumps(jobs))
    given = args.overrides
    task = {
        line
        for line, o in zip(given, OverridesParser.create().parse_overrides(given), strict=True)
        if not (o.is_hydra_override() or o.key_or_group.startswith("hydra"))
    }
    at = _block_start(argv, given)  # the overrides stay one block, as argparse needs
    kept = [a for a in given if a not in task]
    listed = ["hydra/sweeper=jobs", f"hydra.sweeper.jobs={quote_value(str(path))}"]
    return [*argv[:at], *kept, *listed, *argv[at + len(given) :]]


def _block_start(argv: list[str], overrides: list[str]) -> int:
    """Where the block of ``overrides`` starts in ``argv`` (0 when there are none)."""
    if not overrides:
        return 0
    for at in range(len(argv) - len(overrides) + 1):
        if argv[at : at + len(overrides)] == overrides:
            return at
    return len(argv)


def _take_summary(path: Path) -> Any:
    """The sweep summary written to this launch's ``path`` (None when no multirun
    ended); its folder is removed."""
    summary = read_summary(path)
    shutil.rmtree(path.parent, ignore_errors=True)
    return summary


def _exit_code(outcomes: list[dict], summary: Any) -> int:
    """0 when every job of the launch did its work; 1 otherwise.

    A multirun's ``summary`` read every job's results.json (jobs of other processes
    too); the outcomes of this process's jobs count beside it.
    """
    not_ok = {"failed", "refused", "interrupted"}
    bad = [o for o in outcomes if o["status"] in not_ok]
    if summary is not None:
        return 0 if summary.ok and not bad else 1
    if bad and all(o.get("invalid") for o in bad):
        return 2  # a bad value in the config, as the checks before any job report it
    return 1 if bad else 0


def launch(argv: list[str]) -> int:
    """Run ``losslab train`` with ``argv`` (Hydra overrides and flags); return the exit code.

    ``resume=RUN_DIR`` re-runs the job recorded in ``RUN_DIR`` (its saved
    overrides, into that directory): it continues from the last checkpoint.
    """
    from losslab.runner.help import print_help
    from losslab.runner.preflight import check

    if _asks_version(argv):
        from losslab import __version__

        print(f"losslab {__version__} (Hydra {hydra.__version__})")
        return 0
    try:
        argv = resume_argv(argv)
    except ConfigError as exc:
        sys.stderr.write(f"losslab train: {exc}\n")
        return 2
    checked = check(argv)
    if checked.problem:
        sys.stderr.write(f"losslab train: {checked.problem}\n")
        return 2
    outcomes: list[dict] = []  # of the jobs run in this process
    # a multirun's summary comes back through a file of this launch
    summary_file = Path(tempfile.mkdtemp(prefix="losslab-launch-")) / "sweep.json"
    argv = _cfg_of_multirun(argv)
    if checked.jobs is not None:  # a key that exists for some of the sweep's options only
        argv = _as_job_list(argv, checked.jobs, summary_file.parent / "jobs.json")
    scratch = _rank_scratch_dir()
    argv = _job_argv(argv, scratch, summary_file)
    hydra_app = _hydra_app(outcomes)  # this launch's Hydra application
    summary = None
    saved = sys.argv
    sys.argv = ["losslab train", *argv]
    restore_sigterm = _raise_on_sigterm()
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    # Hydra's errors come here raw, to be reported in one line (Hydra itself would print
    # a traceback for anything that is not its own compact error).
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        if not print_help(argv):  # --help of the packaged config tree; anything else: Hydra
            hydra_app()
    except SystemExit as exc:  # Hydra's own reporting of a bad command line
        return exc.code if isinstance(exc.code, int) else 1
    except (KeyboardInterrupt, Terminated) as exc:
        return _interrupted(exc, outcomes)
    except Exception as exc:
        if full_error == "1":
            raise
        sys.stderr.write(f"losslab train: {_one_line(exc)}\n")
        return 1
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error
        restore_sigterm()
        sys.argv = saved
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        summary = _take_summary(summary_file)
        _leave_process_group()
    return _exit_code(outcomes, summary)


def _one_line(exc: Exception) -> str:
    """An error from Hydra or the file system, said in one line (plus Hydra's own cause)."""
    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, CompactHydraException):
        cause = exc.__cause__
        extra = f"\n{cause}" if isinstance(cause, OmegaConfBaseException) else ""
        return f"{exc}{extra}"
    if isinstance(exc, OSError) and exc.filename:
        return (
            f"cannot write {exc.filename} ({exc.strerror}); choose a writable directory "
            "(hydra.run.dir=... or hydra.sweep.dir=...)"
        )
    return (
        f"internal error: {type(exc).__name__}: {exc} "
        "(set HYDRA_FULL_ERROR=1 for the traceback; please report it)"
    )


def _raise_on_sigterm() -> Any:
    """Make SIGTERM end the job like Ctrl-C (recorded, resumable); returns the undo.

    Only where nobody else handles SIGTERM: a process run by submitit on SLURM has
    its own handlers (checkpoint and requeue), which stay as they are.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _interrupted(exc: BaseException, outcomes: list[dict]) -> int:
    """Ctrl-C or SIGTERM: the job recorded itself as interrupted (in ``outcomes``, those of
    this process's jobs); a sweep prints its summary."""
    from losslab.runner import sweep

    name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else signal.Signals(exc.signum).name
    sweeps = [o["sweep_dir"] for o in outcomes if o.get("sweep_dir")]
    if sweeps:
        try:
            summary = sweep.summarize(sweeps[-1], datetime.now().astimezone())
            print("\n".join(summary.lines()), flush=True)
        except Exception as error:  # the summary is a courtesy here; the exit code says it
            log.warning("no sweep summary: %s: %s", type(error).__name__, error)
    elif not outcomes:
        sys.stderr.write(f"losslab train: interrupted ({name}) before any job started\n")
    return INTERRUPTED_EXIT.get(name, 1)


def _rank_scratch_dir() -> str | None:
    """A temporary directory for a torchrun rank > 0 (None for rank 0 or a single process)."""
    # read from the environment here: importing torch would slow down --help
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    rank = int(os.environ.get("RANK", "0"))
    return None if rank == 0 else tempfile.mkdtemp(prefix=f"losslab-rank{rank}-")


def _leave_process_group() -> None:
    if "torch" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def resume_argv(argv: list[str]) -> list[str]:
    """Expand ``resume=RUN_DIR`` into the run's saved overrides and ``hydra.run.dir=RUN_DIR``.

    Further overrides on the command line follow the saved ones (a change that
    alters the results is refused when the checkpoint is read).
    """
    given = [a for a in argv if a.startswith("resume=")]
    if not given:
        return argv
    if len(given) > 1:
        raise ConfigError("resume= given more than once")
    if "-m" in argv or "--multirun" in argv:
        raise ConfigError(
            "resume= continues one run; to continue a sweep, launch the same sweep again "
            "(hydra.sweep.dir=DIR): completed jobs are skipped and unfinished ones resume"
        )
    run_dir = Path(given[0].split("=", 1)[1]).expanduser()
    try:
        loaded = rundir.saved_overrides(run_dir)
    except ConfigError as exc:
        raise ConfigError(f"resume={run_dir}: {exc}") from None
    rest = [a for a in argv if not a.startswith("resume=")]
    given_keys = {override_key(a) for a in rest}
    overrides = [o for o in loaded if override_key(o) not in given_keys]
    return [*overrides, *rest, f"hydra.run.dir={quote_value(str(run_dir))}"]


def quote_value(value: str) -> str:
    """``value`` as one quoted value of Hydra's override grammar, taken literally.

    Quotes and backslashes are escaped for the grammar, and ``${`` for OmegaConf,
    so that a path with spaces, commas, quotes, ``=`` or ``$`` arrives unchanged.
    """
    out = []
    for i, ch in enumerate(value):
        if ch == "'":
            out.append("\\'")
        elif ch == "\\" and (i + 1 == len(value) or value[i + 1] in "'\\"):
            out.append("\\\\")
        elif ch == "$" and value[i + 1 : i + 2] == "{":
            out.append("\\$")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _quote_path(path: Path) -> str:
    """A path as the shell takes it, in the message that says how to resume."""
    return shlex.quote(str(path))


def _cfg_of_multirun(argv: list[str]) -> list[str]:
    """``-m ... --cfg hydra``: show the multirun's config, which Hydra alone refuses.

    Hydra accepts only one of ``--multirun`` and ``--cfg``; here ``-m`` becomes
    ``hydra.mode=MULTIRUN`` and each command-line sweep (``loss=ce,gce``) joins
    ``hydra.sweeper.params``, which is where the sweeper reads it from too.
    """
    multirun = {"-m", "--multirun"}
    if not multirun & set(argv) or not {"-c", "--cfg"} & set(argv):
        return argv
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out = ["hydra.mode=MULTIRUN"]
    for arg in argv:
        if arg in multirun:
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:  # a flag or its value (--cfg hydra, -p key)
            out.append(arg)
            continue
        if override.is_sweep_override():
            value = arg.split("=", 1)[1].replace("'", "\\'")
            out.append(f"++hydra.sweeper.params.{override.key_or_group}='{value}'")
        else:
            out.append(arg)
    return out
