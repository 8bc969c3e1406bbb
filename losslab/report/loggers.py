"""Experiment loggers selected with ``logger=<token>``.

A logger receives the resolved config once, every epoch's record, and the
final results; the run directory's own files (metrics.jsonl, results.json)
are written by the runner whatever logger is chosen.

The interface (duck-typed, see :class:`NullLogger`):

- ``start(config, run_dir)``: once, before training, with the resolved config;
- ``log(record, step)``: after every evaluation, with the epoch's flat record
  (``train/loss``, ``val/acc``, ...) and the epoch number as the step;
- ``finish(results, run_dir)``: once, after ``results.json`` and the plots are
  written, also for failed runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from numbers import Real
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")


class NullLogger:
    """``logger=none``: nothing beyond the run directory's files."""

    def __init__(self, **_: Any) -> None:
        pass

    def start(self, config: dict[str, Any], run_dir: Path) -> None:
        """Called once before training with the resolved config."""

    def log(self, record: dict[str, Any], step: int) -> None:
        """Called after every evaluation with the epoch's record."""

    def finish(self, results: dict[str, Any], run_dir: Path) -> None:
        """Called once with the final results (also for failed runs)."""


def summary_of(results: dict[str, Any]) -> dict[str, Any]:
    """The flat run summary of a ``results.json`` record.

    Keys: ``status`` (and ``error`` when failed), ``final/epoch``,
    ``best/epoch``, and ``final/<split>/<metric>`` / ``best/<split>/<metric>``
    for every numeric metric of every split (``train``, ``val``, ``test``).

    Args:
        results: the runner's results record (``final`` and ``best`` may be None).

    Returns:
        A flat dict of JSON scalars.
    """
    out: dict[str, Any] = {"status": results.get("status", "unknown")}
    if results.get("error"):
        out["error"] = str(results["error"])
    for which in ("final", "best"):
        summary = results.get(which) or {}
        if summary.get("epoch") is not None:
            out[f"{which}/epoch"] = summary["epoch"]
        for split, metrics in summary.items():
            if not isinstance(metrics, dict):
                continue
            for name, value in metrics.items():
                if isinstance(value, Real) and not isinstance(value, bool):
                    out[f"{which}/{split}/{name}"] = value
    return out


class WandbLogger:
    """``logger=wandb``: log to Weights & Biases, offline by default.

    Offline runs need no account: they are written under
    ``<dir>/wandb/offline-run-<time>-<id>/`` (``dir`` defaults to the run
    directory) and can be uploaded later with ``wandb sync <that directory>``.
    ``mode="online"`` streams to the server and needs a logged-in user
    (``wandb login`` or ``WANDB_API_KEY``).

    Every epoch's record is logged at ``step=epoch`` under the same flat names
    as in ``metrics.jsonl``; the final summary (``final/<split>/<metric>``,
    ``best/<split>/<metric>``, ``best/epoch``, ``status``) goes into the run
    summary and the PNGs of ``run_dir/plots/`` are logged as images. A failed
    run is finished with exit code 1, so it shows as failed.

    Args:
        project: W&B project.
        entity: W&B user or team; None uses the default entity of the login.
        group: run group; None groups the jobs of one Hydra multirun together
            under the sweep directory's name (single runs stay ungrouped).
        tags: run tags (a single string is one tag).
        mode: ``offline`` (written locally), ``online`` (streamed to the server) or
            ``disabled`` (nothing logged, as with ``logger=none``).
        name: run display name; None lets W&B choose one.
        dir: directory under which W&B writes its ``wandb/`` folder; None uses the
            run directory.
        sweep_dir: the multirun sweep directory, passed by the runner.

    Raises:
        ValueError: for a ``mode`` other than ``offline``, ``online`` or ``disabled``.
    """

    def __init__(
        self,
        project: str = "losslab",
        entity: str | None = None,
        group: str | None = None,
        tags: Iterable[str] = (),
        mode: str = "offline",
        name: str | None = None,
        dir: str | os.PathLike[str] | None = None,
        sweep_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if mode not in WANDB_MODES:
            raise ValueError(
                f"logger.mode must be one of {', '.join(WANDB_MODES)}, got {mode!r} "
                "(offline needs no account; online needs `wandb login` or WANDB_API_KEY)"
            )
        self.project = project
        self.entity = entity
        self.group = group if group else (Path(sweep_dir).name if sweep_dir else None)
        self.tags = [tags] if isinstance(tags, str) else [str(t) for t in (tags or ())]
        self.mode = mode
        self.name = name
        self.dir = Path(dir) if dir is not None else None
        self._run: Any = None

    def start(self, config: dict[str, Any], run_dir: Path) -> None:
        """Start the W&B run with the resolved config.

        Args:
            config: the resolved config (a plain dict).
            run_dir: the run directory (default home of W&B's files).
        """
        if self.mode == "disabled":
            return  # logging switched off: no run, no files, wandb not even imported
        import wandb

        root = self.dir if self.dir is not None else Path(run_dir)
        root.mkdir(parents=True, exist_ok=True)
        if self.mode == "offline":
            # Offline means no network at all: W&B's usage telemetry follows the
            # process-wide mode rather than the run's, and would otherwise try to
            # reach the server at interpreter exit.
            wandb.setup(settings=wandb.Settings(mode="offline"))
        self._run = wandb.init(
            project=self.project,
            entity=self.entity,
            group=self.group,
            tags=self.tags,
            mode=self.mode,
            name=self.name,
            dir=str(root),
            config=config,
            # Several jobs run in one process in a multirun: a run left open by a
            # job that died is finished rather than silently reused.
            reinit="finish_previous",
            # No banners, and no capture of stdout/stderr (the runner's console owns them).
            settings=wandb.Settings(silent=True, console="off"),
        )
        where = self._run.url if self.mode == "online" else Path(self._run.dir).parent
        log.info("wandb %s run %s: %s", self.mode, self._run.id, where)

    def log(self, record: dict[str, Any], step: int) -> None:
        """Log one epoch's record at ``step``; None values are left out.

        Args:
            record: the flat per-epoch record.
            step: the epoch number.
        """
        if self._run is None:
            return
        self._run.log({k: v for k, v in record.items() if v is not None}, step=step)

    def finish(self, results: dict[str, Any], run_dir: Path) -> None:
        """Write the final summary, log the run's plots and finish the run.

        Args:
            results: the results record written to ``results.json``.
            run_dir: the run directory (its ``plots/*.png`` are logged as images).
        """
        if self._run is None:
            return
        import wandb

        run, self._run = self._run, None
        try:
            run.summary.update(summary_of(results))
            images = {
                f"plots/{p.stem}": wandb.Image(str(p))
                for p in sorted((Path(run_dir) / "plots").glob("*.png"))
            }
            if images:
                run.log(images)
        finally:
            run.finish(exit_code=1 if results.get("status") == "failed" else 0)
