"""The end of a multirun: what happened to every job of the sweep directory.

Jobs may run in this process (Hydra's basic launcher), in worker processes
(``hydra/launcher=local``) or on other machines (``hydra/launcher=slurm``), so
the summary does not rely on anything the jobs returned: it reads every job
directory's ``results.json``, and the outcome each job of this launch reported
(``SWEEP_DIR/.outcomes``). A completed job was skipped ("already completed")
when it says so, else when its record was finished before this launch started;
one without a record never finished (killed, or still waiting to be requeued).

A record that cannot be trusted (unreadable, not a JSON object, or a field of
the wrong type: :func:`losslab.report.record.record_problem`, the check that
``losslab compare`` applies too) makes its job unfinished, with the file and
what is wrong as the reason, so that a damaged sweep never exits 0. That
includes a ``timing.finished_at`` that is not an ISO 8601 timestamp: losslab
writes one with every record, so such a record was edited or corrupted after
the job, and nothing in it proves that the job was done, before this launch or
in it. A timestamp without a UTC offset is local time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from losslab.report.record import parse_timestamp, read_record
from losslab.runner.records import RESULTS, atomic_write_json, read_json

log = logging.getLogger("losslab")

STATUSES = ("completed", "failed", "skipped", "refused", "unfinished")

#: Shown for a job of each status that has no recorded reason.
_NO_REASON = {
    "failed": "no error recorded",
    "refused": "no reason recorded",
    "unfinished": f"no {RESULTS}: the job did not finish",
}


@dataclass
class SweepSummary:
    """Jobs of one sweep directory by outcome."""

    sweep_dir: str
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(job["status"] == status for job in self.jobs)

    @property
    def ok(self) -> bool:
        return all(self.count(s) == 0 for s in ("failed", "refused", "unfinished"))

    def lines(self) -> list[str]:
        always = ("completed", "failed", "skipped")
        counts = ", ".join(f"{self.count(s)} {s}" for s in STATUSES if s in always or self.count(s))
        out = [f"sweep: {counts} ({self.sweep_dir})"]
        for job in self.jobs:
            if job["status"] in ("failed", "refused", "unfinished"):
                reason = job.get("error") or _NO_REASON[job["status"]]
                out.append(f"  {job['status']}: {' '.join(job['overrides'])}: {reason}")
                out.append(f"    {job['run_dir']}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep_dir": self.sweep_dir,
            "counts": {s: self.count(s) for s in STATUSES},
            "jobs": self.jobs,
        }

    @classmethod
    def from_json(cls, data: Any) -> SweepSummary | None:
        """The summary :meth:`to_json` wrote; None for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("sweep_dir"), str):
            return None
        jobs = data.get("jobs")
        if not isinstance(jobs, list) or not all(
            isinstance(j, dict) and j.get("status") in STATUSES for j in jobs
        ):
            return None
        return cls(data["sweep_dir"], jobs)


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories: those holding Hydra's ``.hydra/`` record, in job-number order."""
    dirs = [p.parent for p in sweep_dir.glob("**/.hydra") if p.is_dir()]

    def key(path: Path) -> tuple:
        rel = path.relative_to(sweep_dir).parts
        return tuple((0, int(part), "") if part.isdecimal() else (1, 0, part) for part in rel)

    return sorted(dirs, key=key)


def _overrides(job_dir: Path) -> list[str]:
    """Hydra's record of the job's overrides; [] when it is missing or not a list."""
    import yaml

    try:
        overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return []
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def _aware(moment: datetime) -> datetime:
    """``moment`` with its time zone; a naive one is local time."""
    return moment if moment.tzinfo is not None else moment.astimezone()


def _from_record(job_dir: Path, launched_at: datetime, reported: str | None) -> dict[str, Any]:
    """The job of ``job_dir`` as its ``results.json`` and its reported outcome tell it."""
    path = job_dir / RESULTS
    record, problem = read_record(path)
    job: dict[str, Any] = {"run_dir": str(job_dir)}
    if problem is not None:
        job.update(status="unfinished", overrides=_overrides(job_dir))
        if problem.status != "missing":
            job["error"] = f"damaged {path}: {problem.error}; delete it to run the job again"
        return job
    status = record["status"]
    job["overrides"] = record.get("overrides") or _overrides(job_dir)
    if status == "failed":
        job.update(status="failed", error=record.get("error") or f"no error in {path}")
    elif status != "completed":
        job.update(status="unfinished", error=f"{path} says '{status}': the job did not finish")
    elif reported in ("skipped", "completed"):  # what the job saw: no clock to compare
        job["status"] = reported
    else:
        finished = parse_timestamp((record.get("timing") or {}).get("finished_at"))
        job["status"] = "skipped" if finished is not None and finished < launched_at else status
    return job


def summarize(
    sweep_dir: str | Path, launched_at: datetime, only: set[Path] | None = None
) -> SweepSummary:
    """Outcome of every job under ``sweep_dir`` for a launch that began at ``launched_at``;
    of the jobs in the directories ``only`` when given (the jobs a job list launched)."""
    sweep_dir = Path(sweep_dir)
    launched_at = _aware(launched_at)
    summary = SweepSummary(str(sweep_dir))
    reported = read_outcomes(sweep_dir)
    seen = set()
    dirs = _job_dirs(sweep_dir)
    if only is not None:
        dirs = [d for d in dirs if d in only]
    for job_dir in dirs:
        seen.add(str(job_dir))
        outcome = reported.get(str(job_dir))
        if outcome is not None and outcome["status"] in ("refused", "interrupted"):
            # the job's own directory holds another run, or no final record yet
            summary.jobs.append(_from_outcome(job_dir, outcome))
            continue
        status = outcome["status"] if outcome is not None else None
        summary.jobs.append(_from_record(job_dir, launched_at, status))
    for run_dir, outcome in reported.items():  # refused before it could make its directory
        if run_dir not in seen and outcome["status"] == "refused":
            summary.jobs.append(_from_outcome(Path(run_dir), outcome))
    return summary


def _from_outcome(job_dir: Path, outcome: dict[str, Any]) -> dict[str, Any]:
    """A job as it reported itself: refused, or interrupted (unfinished)."""
    return {
        "run_dir": str(job_dir),
        "status": "refused" if outcome["status"] == "refused" else "unfinished",
        "overrides": outcome.get("overrides") or _overrides(job_dir),
        "error": outcome.get("error"),
    }


class SweepReport(Callback):
    """Hydra callback: at the end of a multirun, print the sweep summary and write ``sweep.json``.

    Enabled in ``train.yaml`` under ``hydra.callbacks``; it runs in the process
    that launched the sweep, whatever the launcher.

    Args:
        summary_path: where to write the summary a second time, for the caller
            of the sweep (``losslab train`` passes a file of its own with
            ``hydra.callbacks.sweep_report.summary_path=...`` and reads it back for
            the exit code: :func:`read_summary`); None writes only ``sweep.json``.
    """

    def __init__(self, summary_path: str | None = None) -> None:
        self.launched_at: datetime | None = None
        self.summary_path = summary_path

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.launched_at = datetime.now().astimezone()
        clear_outcomes(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        launched_at = self.launched_at or datetime.now().astimezone()
        summary = summarize(config.hydra.sweep.dir, launched_at, listed_dirs(config))
        if self.summary_path:
            try:
                atomic_write_json(Path(self.summary_path), summary.to_json())
            except OSError as exc:
                log.warning("sweep summary not written to %s: %s", self.summary_path, exc)
        try:
            atomic_write_json(Path(config.hydra.sweep.dir) / SWEEP_JSON, summary.to_json())
        except OSError as exc:
            log.warning("%s not written: %s", SWEEP_JSON, exc)
        print("\n".join(summary.lines()), flush=True)


def listed_dirs(config: DictConfig) -> set[Path] | None:
    """The directories of the jobs a job list launched (``hydra/sweeper=jobs``: those
    of ``losslab study``, whose sweep directory holds its earlier launches too); None
    for any other sweeper."""
    from omegaconf import OmegaConf

    jobs = OmegaConf.select(config, "hydra.sweeper.jobs")
    if not jobs:
        return None
    from hydra_plugins.losslab_jobs.job_list_sweeper import read_jobs

    prefix = "hydra.sweep.subdir="
    sweep_dir = Path(config.hydra.sweep.dir)
    return {
        sweep_dir / o[len(prefix) :] for job in read_jobs(jobs) for o in job if o.startswith(prefix)
    }


#: The sweep's summary in the sweep directory (:meth:`SweepSummary.to_json`).
SWEEP_JSON = "sweep.json"


def read_summary(path: str | Path) -> SweepSummary | None:
    """The summary :class:`SweepReport` wrote to ``path``; None when there is none."""
    return SweepSummary.from_json(read_json(Path(path)))


#: Folder of the sweep directory where each job of the current launch reports its outcome.
OUTCOMES_DIR = ".outcomes"


def record_outcome(sweep_dir: str | Path, job_num: int, outcome: dict[str, Any]) -> None:
    """Record what became of job ``job_num`` in this launch, for the sweep's summary.

    A job refused because its directory holds another run leaves that directory
    untouched, so only this record can tell the summary that it was not skipped.
    """
    path = Path(sweep_dir) / OUTCOMES_DIR / f"{job_num}.json"
    try:
        atomic_write_json(path, {**outcome, "job_num": job_num})
    except OSError as exc:
        log.warning("outcome of job %d not recorded: %s", job_num, exc)


def read_outcomes(sweep_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The outcomes recorded by the jobs of this launch, by run directory."""
    folder = Path(sweep_dir) / OUTCOMES_DIR
    out: dict[str, dict[str, Any]] = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            entry = read_json(path)
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("run_dir"), str)
                and entry.get("status") in (*STATUSES, "refused", "interrupted")
            ):
                overrides = entry.get("overrides")
                if not isinstance(overrides, list) or not all(
                    isinstance(o, str) for o in overrides
                ):
                    entry["overrides"] = None  # the job directory's .hydra/ tells them
                if not isinstance(entry.get("error"), str):
                    entry["error"] = None
                out[entry["run_dir"]] = entry
    return out


def clear_outcomes(sweep_dir: str | Path) -> None:
    """Forget the outcomes of an earlier launch into the same sweep directory."""
    import shutil

    shutil.rmtree(Path(sweep_dir) / OUTCOMES_DIR, ignore_errors=True)
