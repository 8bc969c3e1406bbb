"""The protocol of ``losslab study``: tune every loss with the same budget, select,
re-run with several seeds, record it all in ``study.json``.

1. **Trials.** Each loss gets ``study.trials`` trials (:mod:`.search`). A trial is
   one run on the validation split (noisy where noise is on, as the papers
   select), or ``study.folds`` runs, one per fold of the training split
   (``cv.folds``/``cv.fold``: the same folds for every loss); its score is the
   objective (``final.val.acc``), averaged over the folds. A trial that fails
   counts against its loss's budget and is listed; it does not stop the study.
2. **Selection.** The trial with the best score (the first on a tie).
3. **Re-runs.** The selected configuration of each loss, with seeds ``seed+1`` to
   ``seed+study.seeds`` (not the seed it was selected on), on the full training
   split, compared with ``losslab compare``.

Every trial and re-run is an ordinary run directory under the study's
directory (``trials/<loss>/<n>[/fold<i>]``, ``reruns/<loss>/seed<s>``),
launched in rounds through ``hydra/sweeper=jobs`` and the configured launcher.
Before a round the study reads what each directory holds: a finished run (its
``results.json`` completed or failed, with the same overrides) is not launched
again, an interrupted one resumes from its checkpoint. A study that is run again
proposes the same trials (:mod:`.search`), so it finds done what was done.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from losslab.report.comparison import metric_value
from losslab.report.record import read_record
from losslab.runner.records import atomic_write_json
from losslab.runner.study.options import StudyOptions
from losslab.runner.study.search import Search
from losslab.runner.study.spaces import Space

#: The study's record in its directory.
STUDY_JSON = "study.json"
#: Folders of the trials and of the re-runs in the study's directory.
TRIALS, RERUNS = "trials", "reruns"


def format_value(value: Any) -> str:
    """A value as an override takes it (``0.3``, ``true``, ``'a b'``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    from losslab.runner.app import quote_value

    return quote_value(str(value))


@dataclass
class Job:
    """One run of the study: its directory below the study's and its own overrides."""

    subdir: str
    overrides: list[str]
    status: str = "pending"  # pending | completed | failed | unfinished
    record: dict[str, Any] | None = None
    error: str | None = None

    def argv(self) -> list[str]:
        return [*self.overrides, f"hydra.sweep.subdir={self.subdir}"]

    def seconds(self) -> float:
        timing = (self.record or {}).get("timing") or {}
        return float(timing.get("train_s") or 0.0) + float(timing.get("eval_s") or 0.0)


@dataclass
class Trial:
    """One configuration of one loss: its values and its runs (one per fold)."""

    loss: str
    number: int
    values: dict[str, Any]
    jobs: list[Job]

    @property
    def status(self) -> str:
        states = {job.status for job in self.jobs}
        if "failed" in states:
            return "failed"
        return "completed" if states == {"completed"} else "unfinished"

    def scores(self, objective: str) -> list[float | None]:
        return [metric_value(job.record or {}, objective) for job in self.jobs]

    def score(self, objective: str) -> float | None:
        """The objective, averaged over the folds; None unless every run has it."""
        scores = self.scores(objective)
        if self.status != "completed" or any(s is None for s in scores):
            return None
        return statistics.fmean(scores)  # type: ignore[arg-type]

    def error(self, objective: str) -> str | None:
        for job in self.jobs:
            if job.status == "failed":
                return f"{job.subdir}: {job.error}"
        if self.status == "completed" and self.score(objective) is None:
            return f"no {objective} in its results.json"
        return None

    def seconds(self) -> float:
        return sum(job.seconds() for job in self.jobs)

    def to_json(self, objective: str) -> dict[str, Any]:
        return {
            "number": self.number,
            "values": self.values,
            "status": "failed" if self.error(objective) else self.status,
            "score": self.score(objective),
            "fold_scores": self.scores(objective) if len(self.jobs) > 1 else None,
            "error": self.error(objective),
            "seconds": self.seconds(),
            "runs": [job.subdir for job in self.jobs],
        }


@dataclass
class LossStudy:
    """The tuning of one loss: its spaces, its search, its trials, its choice, its re-runs."""

    loss: str
    spaces: list[Space]
    fixed: list[str]
    search: Search
    trials: list[Trial] = field(default_factory=list)
    reruns: list[Job] = field(default_factory=list)

    def selected(self, options: StudyOptions) -> Trial | None:
        scored = [(t.score(options.objective), t) for t in self.trials]
        scored = [(s, t) for s, t in scored if s is not None]
        if not scored:
            return None
        sign = 1 if options.direction == "maximize" else -1
        return max(scored, key=lambda st: (sign * st[0], -st[1].number))[1]

    def budget(self, options: StudyOptions) -> dict[str, Any]:
        return {
            "trials": self.search.budget,
            "requested": options.trials,
            "completed": sum(t.score(options.objective) is not None for t in self.trials),
            "failed": sum(t.error(options.objective) is not None for t in self.trials),
            "seconds": sum(t.seconds() for t in self.trials),
            "search": self.search.method,
            "grid_points": self.search.size,
        }


def job_state(run_dir: Path, expected: list[str]) -> tuple[str, dict | None, str | None]:
    """What ``run_dir`` holds for a job whose recorded overrides must be ``expected``:
    ``completed`` or ``failed`` (a finished run of that job), else ``pending`` (nothing,
    an interrupted run, or another run's record: the launch resumes or refuses it)."""
    record, problem = read_record(run_dir / "results.json")
    recorded = record.get("overrides") if problem is None else None
    # the order of the overrides is the command line's, which a study does not fix
    if not isinstance(recorded, list) or sorted(map(str, recorded)) != sorted(expected):
        return "pending", None, None
    status = record.get("status")
    if status == "completed":
        return "completed", record, None
    if status == "failed":
        return "failed", record, str(record.get("error") or "failed")
    return "pending", None, None


def selection_rule(options: StudyOptions) -> str:
    """The selection rule, in words (the table's header and study.json)."""
    where = (
        f"mean over {options.folds}-fold cross-validation on the training split"
        if options.folds
        else "on the validation split"
    )
    return (
        f"{options.direction} {options.objective} ({where}, labels as trained: noisy "
        f"where noise is on); ties: the earlier trial"
    )


def study_record(
    command: list[str],
    options: StudyOptions,
    studies: list[LossStudy],
    status: str,
    root: Path,
    run_seed: int,
) -> dict[str, Any]:
    """The contents of ``study.json``."""
    losses = {}
    for st in studies:
        chosen = st.selected(options)
        losses[st.loss] = {
            "spaces": [s.to_json() for s in st.spaces],
            "fixed_by_command_line": st.fixed,
            "budget": st.budget(options),
            "trials": [t.to_json(options.objective) for t in st.trials],
            "selected": None
            if chosen is None
            else {
                "trial": chosen.number,
                "values": chosen.values,
                "score": chosen.score(options.objective),
            },
            "reruns": [
                {
                    "run_dir": job.subdir,
                    "status": job.status,
                    "error": job.error,
                    "test_acc": metric_value(job.record or {}, "final.test.acc"),
                }
                for job in st.reruns
            ],
        }
    return {
        "version": 1,
        "status": status,
        "updated_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
        "dir": str(root),
        "options": options.to_json(),
        "selection": selection_rule(options),
        "trial_seed": run_seed,
        "reruns": f"the selected configuration with seeds {run_seed + 1}..{run_seed + options.seeds}",
        "losses": losses,
    }


def write_record(root: Path, record: dict[str, Any]) -> None:
    atomic_write_json(root / STUDY_JSON, record)
