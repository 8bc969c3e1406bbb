"""``logger=wandb``: Weights & Biases, offline by default."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from losslab.loggers.none import summary_of

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")


class WandbLogger:
    """``logger=wandb``: log to Weights & Biases, offline by default.

    Offline runs need no account: they are written under
    ``<dir>/wandb/offline-run-<time>-<id>/`` (``dir`` defaults to the run
    directory) and can be uploaded later with ``wandb sync <that directory>``: the
    exact command is logged when the run finishes.
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

    #: Run values the runner passes at construction (see :mod:`losslab.loggers`).
    run_values = ("sweep_dir",)

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
        where = self._run.url if self.mode == "online" else offline_run_dir(self._run)
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
        offline_dir = offline_run_dir(run) if self.mode == "offline" else None
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
        if offline_dir is not None:
            log.info("wandb offline run saved; to upload it: %s", sync_command(offline_dir))


def offline_run_dir(run: Any) -> Path:
    """The directory of an offline W&B run (``.../wandb/offline-run-<time>-<id>``).

    ``run.dir`` is its ``files/`` subdirectory; the run directory is what
    ``wandb sync`` takes.
    """
    return Path(run.dir).resolve().parent


def sync_command(offline_dir: str | os.PathLike[str]) -> str:
    """``wandb sync <offline_dir>``, quoted for a POSIX shell."""
    import shlex

    return f"wandb sync {shlex.quote(str(offline_dir))}"
