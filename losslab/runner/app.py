"""``losslab train``: the Hydra application.

:func:`launch` is what the CLI calls with the words after ``train``; Hydra
composes the config (single run or ``-m`` multirun) and calls :func:`run` once
per job. A job never raises: it records its outcome in ``results.json``
(``completed`` or ``failed`` with the error) so that one bad job cannot take a
sweep down, and :func:`launch` turns failures into a non-zero exit code.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
    for key in ("logger", "objective"):
        plain.pop(key, None)
    plain.get("trainer", {}).pop("num_workers", None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(plain)).encode()).hexdigest()


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


def run(cfg: DictConfig) -> RunResult:
    """Run one job of ``cfg`` in Hydra's output directory; return its results record."""
    from losslab.runner import distributed
    from losslab.runner.console import results_table, stdout_console

    hc = HydraConfig.get()
    ctx = distributed.from_env()
    if ctx.enabled:  # torchrun: rank 0's run directory is the run's, only rank 0 writes
        distributed.setup(ctx, _device_type(cfg))
        run_dir = Path(distributed.broadcast_object(ctx, str(hc.runtime.output_dir)))
        if not ctx.is_main:
            return _follow(cfg, run_dir, ctx)
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    previous = read_json(run_dir / RESULTS)
    if ctx.enabled:
        distributed.broadcast_object(ctx, previous)
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
        return RunResult(previous, cfg.get("objective") or "best.val.acc")

    _share_cpu_threads(hc)
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
    return RunResult(results, cfg.get("objective") or "best.val.acc")


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

    previous = distributed.broadcast_object(ctx, None)
    objective = cfg.get("objective") or "best.val.acc"
    if previous and previous.get("status") == "completed":
        return RunResult(previous, objective)
    results: dict = {"status": "running", "timing": {}}
    try:
        _train(cfg, run_dir, results, None, _RunState(sweep_dir=None), ctx)
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


def _train(
    cfg: DictConfig, run_dir: Path, results: dict, console, state: _RunState, ctx: Any = None
) -> None:
    """Build the parts and train; ``console`` None means a rank > 0 that writes nothing."""
    from losslab.runner import distributed
    from losslab.runner.build import build, build_parts
    from losslab.runner.console import make_reporter
    from losslab.runner.loop import fit
    from losslab.runner.settings import validate

    ctx = ctx or distributed.from_env()
    settings = validate(cfg)  # bad values fail here, before any data is loaded
    parts = build_parts(cfg, settings, local_rank=ctx.local_rank if ctx.enabled else None)

    def train(reporter: Any, logger: Any = None) -> Any:
        return fit(
            parts,
            settings,
            seed=cfg.seed,
            n_bins=cfg.eval.n_bins,
            run_dir=run_dir,
            fingerprint=_fingerprint(cfg),
            reporter=reporter,
            logger=logger,
            mixing=_mixing(cfg),
            ctx=ctx,
        )

    if console is None:
        train(_Silent())
        return
    logger = build("logger", cfg.logger, sweep_dir=state.sweep_dir)
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
    history = state.history = train(make_reporter(console), logger)
    results["final"] = history.final
    results["best"] = history.best
    results["reliability"] = history.reliability
    epochs = history.records
    results["timing"]["train_s"] = sum(r["time/train_s"] for r in epochs)
    results["timing"]["eval_s"] = sum(r["time/eval_s"] for r in epochs)
    results["timing"]["epochs"] = len(epochs)
    results["status"] = "completed"


def _mixing(cfg: DictConfig) -> Any:
    from losslab.datasets.mixing import Mixing

    try:
        return Mixing(cfg.augment.mixup_alpha, cfg.augment.cutmix_alpha)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


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
    """Run ``losslab train`` with ``argv`` (Hydra overrides and flags); return the exit code.

    ``resume=RUN_DIR`` re-runs the job recorded in ``RUN_DIR`` (its saved
    overrides, into that directory): it continues from the last checkpoint.
    """
    from losslab.runner import sweep
    from losslab.runner.preflight import HELP_FLAGS, check_argv, one_repository_copy

    try:
        argv = resume_argv(argv)
    except ConfigError as exc:
        sys.stderr.write(f"losslab train: {exc}\n")
        return 2
    problem = check_argv(argv)
    if problem:
        sys.stderr.write(f"losslab train: {problem}\n")
        return 2
    argv = _cfg_of_multirun(argv)
    OUTCOMES.clear()
    sweep.LAST.clear()
    scratch = _rank_scratch_dir()
    if scratch is not None:  # torchrun rank > 0: Hydra's own files go nowhere visible
        argv = [
            *(a for a in argv if _override_key(a) not in ("hydra.run.dir", "hydra.sweep.dir")),
            f"hydra.run.dir={scratch}",
            f"hydra.sweep.dir={scratch}",
            "hydra.output_subdir=null",
            "hydra/job_logging=disabled",
            "hydra/hydra_logging=disabled",
            "hydra.callbacks={}",
        ]
    saved = sys.argv
    sys.argv = ["losslab train", *argv]
    try:
        helping = any(flag in argv for flag in HELP_FLAGS)
        with one_repository_copy() if helping else contextlib.nullcontext():
            _hydra_main()
    except SystemExit as exc:  # Hydra's own reporting of a bad command line
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        _leave_process_group()
    if sweep.LAST:  # a multirun: its summary read every job's results.json
        return 0 if all(s.ok for s in sweep.LAST) else 1
    return 1 if any(o["status"] == "failed" for o in OUTCOMES) else 0


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
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise ConfigError(
            f"resume={run_dir}: not a run directory (no {saved}); "
            "give the directory that holds the run's results.json and .hydra/"
        )
    rest = [a for a in argv if not a.startswith("resume=")]
    given_keys = {_override_key(a) for a in rest}
    overrides = [o for o in map(str, OmegaConf.load(saved)) if _override_key(o) not in given_keys]
    return [*overrides, *rest, f"hydra.run.dir={run_dir}"]


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


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")
