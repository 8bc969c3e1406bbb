"""Reading the runs of a comparison: every ``results.json`` below some paths.

Runs whose ``status`` is not ``completed`` (failed, still running, killed: a job
directory with ``.hydra/``, ``metrics.jsonl`` or ``checkpoint.pt`` but no
``results.json``) are kept apart as :class:`~losslab.report.record.Problem` and
never enter a mean, and so are records that cannot be used (unreadable, not
JSON, a field of the wrong type: :func:`~losslab.report.record.record_problem`).

Duplicates:
    Two completed records with one fingerprint (the same results-relevant config
    *and* seed: :func:`~losslab.report.record.fingerprint`) are one run, however
    many times it was launched or copied: the newest (by ``timing.finished_at``,
    else the file's modification time) is kept, the others are listed as
    duplicates and never count as further seeds.

Group choices:
    A run's option of every config group (``loss=gce``, ``noise=apl/sym40``) is
    what Hydra chose, recorded as ``choices`` in ``results.json``. Records written
    before losslab recorded it fall back on what they hold: the ``KEY=VALUE``
    overrides of the command line, else the option of ``losslab/conf/<group>/``
    whose values fit the recorded config section best (:func:`legacy_choice`);
    :func:`find_runs` says so once.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losslab.report.record import (
    RESULTS,
    Problem,
    fingerprint,
    flatten,
    is_result_key,
    parse_timestamp,
    read_record,
)

#: Shown for a key a group does not have, a missing value, or no choice.
MISSING = "-"

#: Directories inside a run that hold no runs.
_SKIPPED_DIRS = ("wandb", "plots")


class CompareError(Exception):
    """A mistake in the command line or the inputs, reported in one line (exit code 2)."""


class _Absent:
    """Marks a key that a config does not have."""


@dataclass
class Run:
    """One completed run.

    Attributes:
        path: its ``results.json``.
        record: the parsed ``results.json``.
        config: the flattened resolved config without ``seed`` and the keys that
            do not change results (:data:`~losslab.report.record.NOT_RESULTS`).
        seed: the run's ``seed`` (None when not recorded).
        overrides: its ``KEY=VALUE`` overrides as a dict (``+``/``~`` prefixes dropped).
        choices: the option of every config group, as shown (``{"noise": "apl/sym40"}``).
        recorded_choices: whether ``choices`` come from the record (else from
            :func:`legacy_choice`).
        fingerprint: of the results-relevant config with the seed (None: unknown).
    """

    path: Path
    record: dict[str, Any]
    config: dict[str, Any]
    seed: Any
    overrides: dict[str, str]
    choices: dict[str, str] = field(default_factory=dict)
    recorded_choices: bool = True
    fingerprint: str | None = None


@dataclass
class Runs:
    """What :func:`find_runs` read: the runs, those left out, and remarks for the reader."""

    runs: list[Run]
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)


def parse_overrides(overrides: Iterable[Any]) -> dict[str, str]:
    """``["loss=gce", "+x.y=1"]`` -> ``{"loss": "gce", "x.y": "1"}``; Hydra's own keys are dropped."""
    out: dict[str, str] = {}
    for item in overrides:
        key, sep, value = str(item).partition("=")
        key = key.lstrip("+~").strip()
        if sep and key and not key.startswith("hydra"):
            out[key] = value.strip()
    return out


def natural_key(path: Path) -> list[Any]:
    """Sort ``.../2/...`` before ``.../10/...``."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(path))]


def walk_runs(paths: Sequence[str | Path]) -> tuple[dict[Path, Path], dict[Path, Path]]:
    """The ``results.json`` files below ``paths``, and the run directories without one,
    each keyed by its resolved path (a run reached twice counts once)."""
    files: dict[Path, Path] = {}
    unfinished: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CompareError(f"no such file or directory: {path}")
        if path.is_file():
            if path.name != RESULTS:
                raise CompareError(f"{path} is neither a directory nor a {RESULTS}")
            files.setdefault(path.resolve(), path)
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            here = Path(dirpath)
            if RESULTS in filenames or RESULTS in dirnames:  # a directory: listed as unreadable
                files.setdefault((here / RESULTS).resolve(), here / RESULTS)
            elif ".hydra" in dirnames or {"metrics.jsonl", "checkpoint.pt"} & set(filenames):
                unfinished.setdefault(here.resolve(), here)
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".") and d not in _SKIPPED_DIRS and d != RESULTS
            )
    return files, unfinished


def find_runs(paths: Sequence[str | Path]) -> Runs:
    """Read every ``results.json`` below ``paths``.

    Args:
        paths: directories (searched recursively) or ``results.json`` files.

    Returns:
        The completed runs (duplicates removed) and the others (failed, running,
        unfinished, unreadable, malformed, duplicate), both in natural path order.

    Raises:
        CompareError: when a path does not exist or no ``results.json`` is found.
    """
    files, unfinished = walk_runs(paths)
    if not files:
        where = ", ".join(str(p) for p in paths)
        extra = (
            f" ({len(unfinished)} run directories without one: unfinished or still running)"
            if unfinished
            else ""
        )
        raise CompareError(f"no {RESULTS} found under {where}{extra}")

    runs: list[Run] = []
    problems = [
        Problem(d, "unfinished", f"no {RESULTS}: still running, or the job was killed")
        for d in unfinished.values()
    ]
    for path in files.values():
        record, problem = read_record(path)
        if problem is not None:
            problems.append(problem)
            continue
        status = record["status"]
        if status != "completed":
            error = record.get("error") or (
                "not finished: still running, or the job was killed" if status == "running" else ""
            )
            problems.append(Problem(path, status, error))
            continue
        runs.append(run_of(path, record))
    runs, duplicates = _drop_duplicates(runs)
    problems += duplicates
    runs.sort(key=lambda r: natural_key(r.path))
    problems.sort(key=lambda p: natural_key(p.path))
    notes = []
    legacy = sum(not r.recorded_choices for r in runs)
    if legacy:
        notes.append(
            f"{legacy} of {len(runs)} runs were recorded before results.json held the config "
            "choices: their option names come from the command line, else from the packaged "
            "option whose values fit best"
        )
    if duplicates:
        notes.append(
            f"{len(duplicates)} duplicate runs (same config and seed as a newer one) left out"
        )
    return Runs(runs, problems, notes)


def _finished(run: Run) -> tuple[float, float]:
    stamp = parse_timestamp((run.record.get("timing") or {}).get("finished_at"))
    try:
        mtime = run.path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return (stamp.timestamp() if stamp else mtime, mtime)


def _drop_duplicates(runs: list[Run]) -> tuple[list[Run], list[Problem]]:
    """The newest run of every fingerprint, and a problem line for each of the others."""
    newest: dict[str, Run] = {}
    for run in runs:
        if run.fingerprint is None:
            continue
        kept = newest.get(run.fingerprint)
        if kept is None or _finished(run) > _finished(kept):
            newest[run.fingerprint] = run
    kept_runs, duplicates = [], []
    for run in runs:
        winner = newest.get(run.fingerprint) if run.fingerprint else None
        if winner is None or winner is run:
            kept_runs.append(run)
        else:
            duplicates.append(
                Problem(
                    run.path,
                    "duplicate",
                    f"same config and seed as the newer {winner.path}: one run, not another seed",
                )
            )
    return kept_runs, duplicates


def run_of(path: Path, record: dict[str, Any]) -> Run:
    """The :class:`Run` of one completed, checked record."""
    overrides = parse_overrides(record.get("overrides") or [])
    config = record.get("config")
    if isinstance(config, dict):
        flat = flatten(config)
        seed = config.get("seed", overrides.get("seed"))
        print_ = fingerprint(config)
    else:  # no resolved config recorded: fall back on the command line
        flat = dict(overrides)
        seed = overrides.get("seed")
        print_ = record.get("fingerprint")
    flat = {k: v for k, v in flat.items() if k != "seed" and is_result_key(k)}
    run = Run(path, record, flat, seed, overrides, fingerprint=print_)
    recorded = record.get("choices")
    if isinstance(recorded, dict) and recorded:
        run.choices = {
            str(k): _choice_label(v)
            for k, v in recorded.items()
            if "@" not in str(k) and str(k) not in DERIVED_GROUPS and is_result_key(str(k))
        }
    else:
        run.recorded_choices = False
        run.choices = {name: legacy_choice(run, name) for name in _legacy_names(run)}
    return run


#: Groups whose option follows from other choices: ``protocol`` holds a preset's values
#: per data set and loss, selected by ``${experiment}/${dataset}``; Hydra records it
#: (``None/digits/loss/ce`` without a preset) but it never tells two runs apart.
DERIVED_GROUPS = ("protocol",)


def _choice_label(value: Any) -> str:
    """``"apl/sym40"`` as it is, ``["entropy", "logz"]`` as ``entropy,logz``, null as ``-``."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or MISSING
    return _normalize_choice(str(value)) if value is not None else MISSING


def choice_names(runs: Sequence[Run]) -> list[str]:
    """The config groups of ``runs`` (``loss``, ``noise``, ...), in the order first seen."""
    return list(dict.fromkeys(name for run in runs for name in run.choices))


def choice_of(run: Run, name: str) -> str:
    """The option ``run`` chose for config group ``name`` (``-`` when none)."""
    return run.choices.get(name, MISSING)


# ------------------------------------------------- records without choices


def _legacy_names(run: Run) -> list[str]:
    """The config groups of a record without ``choices``: sections with a ``_target_``, a
    section of such sections (``regularizer``), and non-dotted overrides (``experiment``)."""
    names: dict[str, None] = {}
    config = run.record.get("config")
    for key, value in (config if isinstance(config, dict) else {}).items():
        if is_result_key(key) and _is_selected_section(value):
            names.setdefault(key, None)
    for key in run.overrides:
        if "." not in key and is_result_key(key) and key != "seed" and key not in run.config:
            names.setdefault(key, None)
    return list(names)


def _is_selected_section(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if "_target_" in value:
        return True
    return bool(value) and all(isinstance(v, dict) and "_target_" in v for v in value.values())


def _normalize_choice(value: str) -> str:
    text = value.strip().strip("[]").replace(" ", "")
    return text if text and text not in ("null", "None") else MISSING


def legacy_choice(run: Run, name: str) -> str:
    """The option of group ``name`` for a record without ``choices``.

    The override ``name=VALUE`` when the command line had one; else the option of
    ``losslab/conf/<name>/`` with the section's ``_target_`` whose values fit best;
    else the ``_target_``'s last name.
    """
    if name in run.overrides:
        return _normalize_choice(run.overrides[name])
    config = run.record.get("config")
    section = config.get(name) if isinstance(config, dict) else None
    if not _is_selected_section(section):
        return MISSING
    if "_target_" not in section:
        return ",".join(section)
    return _option_for(name, section)


def _option_for(group: str, section: dict[str, Any]) -> str:
    """The option of ``conf/<group>/`` with the section's ``_target_`` that fits its values best."""
    target = section["_target_"]
    values = flatten(section)
    best: tuple[int, str] | None = None
    for name, option in sorted(_conf_options(group).items()):
        if option.get("_target_") != target:
            continue
        score = sum(
            1 if same_value(values.get(k, _Absent), v) else -1
            for k, v in option.items()
            if k != "_target_" and not (isinstance(v, str) and ("${" in v or v == "???"))
        )
        if best is None or score > best[0]:
            best = (score, name)
    return best[1] if best else str(target).rsplit(".", 1)[-1]


@functools.cache
def _conf_options(group: str) -> dict[str, dict[str, Any]]:
    """Every option of the packaged config group ``group``, flattened, defaults merged."""
    root = Path(__file__).resolve().parents[1] / "conf" / group
    if not group.isidentifier() or not root.is_dir():
        return {}
    import yaml

    def load(stem: str, seen: frozenset[str]) -> dict[str, Any]:
        try:
            data = yaml.safe_load((root / f"{stem}.yaml").read_text())
        except (OSError, yaml.YAMLError):
            return {}
        if not isinstance(data, dict):
            return {}
        merged: dict[str, Any] = {}
        for parent in data.pop("defaults", None) or []:
            if isinstance(parent, str) and parent != "_self_" and parent not in seen:
                merged.update(load(parent, seen | {stem}))
        merged.update(flatten(data))
        return merged

    return {f.stem: load(f.stem, frozenset()) for f in sorted(root.glob("*.yaml"))}


def same_value(a: Any, b: Any) -> bool:
    """Equal config values: numbers by value (``1 == 1.0``), booleans by identity, else as JSON."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
