"""A Hydra sweeper that launches a given list of jobs, each with its own overrides.

Hydra's basic sweeper launches a Cartesian product, its Optuna sweeper one
trial per job. ``losslab study`` needs neither: it decides which runs to train
(a trial of a loss on one cross-validation fold, a re-run with another seed),
writes them to a JSON file, and launches them all at once through whatever
launcher is configured (in-process, joblib, SLURM)::

    losslab train -m hydra/sweeper=jobs hydra.sweeper.jobs=round-0.json hydra.sweep.dir=STUDY

The file holds a list of jobs, each a list of override strings; the command
line's overrides apply to every job and come first, a job's own come after.
A job's run directory is ``hydra.sweep.dir/hydra.sweep.subdir``, so a job that
names ``hydra.sweep.subdir=trials/gce/3/fold0`` among its overrides always runs
in the same directory, which is what lets a study skip and resume its runs.

Plugins are discovered by Hydra in the ``hydra_plugins`` package, so this module
imports nothing but Hydra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


def read_jobs(path: str | Path) -> list[list[str]]:
    """The jobs of the file at ``path``: a JSON list of lists of override strings."""
    try:
        jobs = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"hydra.sweeper.jobs: cannot read {path}: {exc}") from exc
    if not isinstance(jobs, list) or not all(
        isinstance(job, list) and all(isinstance(o, str) for o in job) for job in jobs
    ):
        raise ValueError(f"hydra.sweeper.jobs: {path} must hold a JSON list of lists of strings")
    return jobs


class JobListSweeper(Sweeper):
    """Launch the jobs listed in the file ``jobs``, ``max_batch_size`` at a time (all when None).

    ``params``, a preset's sweep (``hydra.sweeper.params``), is not swept: the
    listed jobs are the whole launch (``losslab study`` reads a preset's sweep itself).
    """

    def __init__(
        self,
        jobs: str | None = None,
        max_batch_size: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.jobs = jobs
        self.params = dict(params or {})
        self.max_batch_size = max_batch_size
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        if not self.jobs:
            raise ValueError("hydra/sweeper=jobs needs hydra.sweeper.jobs=<file of jobs>")
        batch = [[*arguments, *job] for job in read_jobs(self.jobs)]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        size = self.max_batch_size or len(batch) or 1
        returns = []
        for start in range(0, len(batch), size):
            chunk = batch[start : start + size]
            self.validate_batch_is_legal(chunk)
            returns.append(self.launcher.launch(chunk, initial_job_idx=start))
        return returns
