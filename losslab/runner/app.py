"""``losslab train``: the Hydra application.

:func:`launch` is what the CLI calls with the words after ``train``; Hydra
composes the config (single run or ``-m`` multirun) and calls :func:`run` once
per job. A job never raises: it records its outcome in ``results.json``
(``completed`` or ``failed`` with the error) so that one bad job cannot take a
sweep down, and :func:`launch` turns failures into a non-zero exit code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from losslab.runner.records import RESULTS, atomic_write_json, read_json, versions
from losslab.runner.settings import ConfigError

log = logging.getLogger("losslab")

#: Outcome of every job run in this process ("completed" / "failed" / "skipped").
OUTCOMES: list[dict] = []


def _register_resolvers() -> None:
    # ${uid:} makes default run directories unique even for two launches in the
    # same second; cached, so every read of hydra.run.dir agrees.
    if not OmegaConf.has_resolver("uid"):
        OmegaConf.register_new_resolver("uid", lambda: os.urandom(3).hex(), use_cache=True)


_register_resolvers()


def _fingerprint(cfg: DictConfig) -> str:
    """Hash of everything that determines the results (not where they run or how they are shown)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in ("logger",):
        plain.pop(key, None)
    plain.get("trainer", {}).pop("num_workers", None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(plain)).encode()).hexdigest()


def run(cfg: DictConfig) -> dict:
    """Run one job of ``cfg`` in Hydra's output directory; return its results record."""
    from losslab.runner.console import results_table, stdout_console

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    previous = read_json(run_dir / RESULTS)
    if previous and previous.get("status") == "completed":
        log.info("already completed: %s (delete its results.json to run again)", run_dir)
        OUTCOMES.append(
            {
                "status": "skipped",
                "run_dir": str(run_dir),
                "overrides": overrides,
                "multirun": hc.mode == RunMode.MULTIRUN,
            }
        )
        return previous

    console = stdout_console()
    _use_rich_logging(console)
    started = time.time()
    results: dict = {
        "status": "running",
        "overrides": overrides,
        "run_dir": str(run_dir),
        "config": OmegaConf.to_container(cfg, resolve=False),
        "timing": {"started_at": datetime.now(timezone.utc).isoformat()},
    }
    state = _RunState(sweep_dir=str(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None)
    try:
        results["versions"] = versions()
        results["config"] = OmegaConf.to_container(cfg, resolve=True)
        _train(cfg, run_dir, results, console, state)
        results["status"] = "completed"
    except KeyboardInterrupt:
        results.update(status="failed", error="interrupted (KeyboardInterrupt)")
        _finish(results, run_dir, started)
        _after(results, run_dir, state)
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
    _finish(results, run_dir, started)
    _after(results, run_dir, state)
    if results["status"] == "completed" and hc.mode == RunMode.RUN:
        console.print(results_table(results))
    elif results["status"] == "completed":
        test = (results.get("final") or {}).get("test", {})
        shown = " ".join(
            f"{k} {test[k]:.4f}" for k in ("acc", "ece", "nll") if test.get(k) is not None
        )
        log.info("completed: test %s", shown)
    console.print(f"run directory: {run_dir}", soft_wrap=True, markup=False)
    OUTCOMES.append(
        {
            "status": results["status"],
            "run_dir": str(run_dir),
            "overrides": overrides,
            "error": results.get("error"),
            "multirun": hc.mode == RunMode.MULTIRUN,
        }
    )
    return results


class _RunState:
    """What a job built that must be closed after results.json is written."""

    def __init__(self, sweep_dir: str | None) -> None:
        self.sweep_dir = sweep_dir
        self.logger = None
        self.history = None


def _after(results: dict, run_dir: Path, state: _RunState) -> None:
    """Plots, then the experiment logger's final summary; neither may fail the run."""
    if state.history is not None and state.history.records:
        try:
            from losslab.report.plots import plot_run

            title = " ".join(results.get("overrides") or []) or "defaults"
            plot_run(run_dir, state.history.records, state.history.reliability, title)
        except Exception as exc:
            log.warning("plots not written: %s: %s", type(exc).__name__, exc)
    if state.logger is not None:
        try:
            state.logger.finish(results, run_dir)
        except Exception as exc:
            log.warning("logger could not finish: %s: %s", type(exc).__name__, exc)


def _finish(results: dict, run_dir: Path, started: float) -> None:
    results["timing"].update(
        finished_at=datetime.now(timezone.utc).isoformat(), total_s=time.time() - started
    )
    atomic_write_json(run_dir / RESULTS, results)


def _train(cfg: DictConfig, run_dir: Path, results: dict, console, state: _RunState) -> None:
    from losslab.runner.build import build, build_parts
    from losslab.runner.console import make_reporter
    from losslab.runner.loop import fit
    from losslab.runner.settings import validate

    settings = validate(cfg)  # bad values fail here, before any data is loaded
    logger = build("logger", cfg.logger, sweep_dir=state.sweep_dir)
    parts = build_parts(cfg, settings)
    results["data"] = {
        "loader": parts.loader_mode,
        "name": parts.data.name,
        "sizes": parts.data.sizes(),
        "num_classes": parts.data.num_classes,
        "input_shape": list(parts.data.input_shape),
    }
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
    from losslab.datasets.mixing import Mixing

    try:
        mixing = Mixing(cfg.augment.mixup_alpha, cfg.augment.cutmix_alpha)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    history = state.history = fit(
        parts,
        settings,
        seed=cfg.seed,
        n_bins=cfg.eval.n_bins,
        run_dir=run_dir,
        fingerprint=_fingerprint(cfg),
        reporter=make_reporter(console),
        logger=logger,
        mixing=mixing,
    )
    results["final"] = history.final
    results["best"] = history.best
    results["reliability"] = history.reliability
    epochs = history.records
    results["timing"]["train_s"] = sum(r["time/train_s"] for r in epochs)
    results["timing"]["eval_s"] = sum(r["time/eval_s"] for r in epochs)
    results["timing"]["epochs"] = len(epochs)
    results["status"] = "completed"


def _use_rich_logging(console) -> None:
    """On a terminal, route console log lines through rich so they print above the progress bar."""
    if not console.is_terminal:
        return
    from rich.logging import RichHandler

    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (
            sys.stdout,
            sys.stderr,
        ):
            root.removeHandler(handler)
            rich_handler = RichHandler(console=console, show_path=False, show_time=True)
            rich_handler.setLevel(handler.level)
            root.addHandler(rich_handler)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> dict:
    return run(cfg)


def launch(argv: list[str]) -> int:
    """Run ``losslab train`` with ``argv`` (Hydra overrides and flags); return the exit code."""
    from losslab.runner.preflight import check_argv

    problem = check_argv(argv)
    if problem:
        sys.stderr.write(f"losslab train: {problem}\n")
        return 2
    OUTCOMES.clear()
    saved = sys.argv
    sys.argv = ["losslab train", *argv]
    try:
        _hydra_main()
    except SystemExit as exc:  # Hydra's own reporting of a bad command line
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
    failed = [o for o in OUTCOMES if o["status"] == "failed"]
    if any(o["multirun"] for o in OUTCOMES):
        _sweep_summary(OUTCOMES)
    return 1 if failed else 0


def _sweep_summary(outcomes: list[dict]) -> None:
    counts = {
        s: sum(o["status"] == s for o in outcomes) for s in ("completed", "failed", "skipped")
    }
    print(
        f"sweep: {counts['completed']} completed, {counts['failed']} failed, {counts['skipped']} skipped"
    )
    for o in outcomes:
        if o["status"] == "failed":
            print(f"  failed: {' '.join(o['overrides'])}: {o.get('error')} ({o['run_dir']})")
