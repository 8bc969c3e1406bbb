"""``losslab compare``: a head-to-head table of runs, grouped over seeds.

Every ``results.json`` below the given paths is read. Runs whose ``status`` is
not ``completed`` (failed, still running, killed: a job directory with
``.hydra/``, ``metrics.jsonl`` or ``checkpoint.pt`` but no ``results.json``)
are listed on their own and never enter a mean, and so are records that cannot
be used: unreadable, not JSON, or with a field of the wrong type
(:func:`record_problem`), one line each naming the file and the field.

Grouping:
    Runs whose resolved configs differ only in ``seed`` form one group. The
    group key is the flattened resolved ``config`` (dot-joined keys such as
    ``noise.rate``) without ``seed`` and without the keys that cannot change
    the results (:data:`IGNORED_KEYS`: ``logger.*``, ``trainer.device``,
    ``trainer.num_workers``, ``dataset.root``, ``dataset.download``,
    ``dataset.loader``, ``dataset.memory_limit_mb``).

Identifying columns:
    A config group (``loss``, ``noise``, ``dataset``, ... : a config section
    with a ``_target_``, a section of such sections like ``regularizer``, or a
    ``KEY=VALUE`` override whose key is not a leaf, like ``experiment``) shows
    as its option name: taken from the runs' ``overrides`` (``loss=gce``), else
    the option of ``losslab/conf/<group>/`` with the same ``_target_`` whose
    values fit the run's section best, else the ``_target_``'s last name. The
    columns of a table are the group choices that vary across groups, then the
    flattened keys that vary, except keys below a varying choice that the
    choice alone determines (``loss.q`` when every ``gce`` group has the same
    ``q``). Hidden keys come back if the shown ones do not tell the groups
    apart.

Sort order and ranks:
    Rows are sorted by the mean of the first metric. Its last name decides
    the direction (:func:`direction`): names starting with ``acc`` (and
    ``auroc``, ``f1``) are higher-is-better, sorted descending; names starting
    with ``ece``, ``mce``, ``nll``, ``brier``, ``aurc``, ``entropy``, ``loss``
    or ``err`` are lower-is-better, sorted ascending; any other metric (e.g.
    ``temperature``, ``noise.realised_rate``) is sorted descending and has no
    best value. Ranks are competition ranks (1, 2, 2, 4) of that order; the
    best mean of every metric with a direction is highlighted.

Statistics:
    Mean, sample standard deviation (``ddof=1``; none for one run) and ``n``
    per group. With ``--baseline KEY=VALUE`` every group is compared with the
    group that has the same values in all other identifying columns and
    ``KEY=VALUE``: the difference of means and the p-value of a paired t-test
    over runs with matching ``seed`` when both groups hold exactly the same
    seeds (``scipy.stats.ttest_rel``), Welch's t-test otherwise
    (``scipy.stats.ttest_ind(equal_var=False)``); none when either side has
    fewer than two values.

Stored values stay as they are in ``results.json`` (fractions in [0, 1]); the
terminal, Markdown and LaTeX tables show accuracy-like and calibration-error
fractions in percent (``--no-percent`` keeps fractions), the CSV never does.

Example:
    >>> from losslab.report.compare import main
    >>> main(["multirun/2026-11-22", "--baseline", "loss=ce"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import csv
import difflib
import functools
import json
import math
import os
import re
import statistics
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = "results.json"

#: Metrics shown when no ``--metric`` is given.
DEFAULT_METRICS = ("final.test.acc", "final.test.ece", "final.test.nll", "final.test.entropy")

#: Config keys (and everything below them) that never change a run's results.
IGNORED_KEYS = (
    "seed",
    "logger",
    "trainer.device",
    "trainer.num_workers",
    "dataset.root",
    "dataset.download",
    "dataset.loader",
    "dataset.memory_limit_mb",
)

#: Metric names (last path component) by prefix: higher is better / lower is better.
HIGHER_IS_BETTER = ("acc", "auroc", "f1")
LOWER_IS_BETTER = ("ece", "mce", "nll", "brier", "aurc", "entropy", "loss", "err")

#: Fractions shown in percent on screen, in Markdown and in LaTeX.
PERCENT_PREFIXES = ("acc", "ece", "mce", "aurc", "realised_rate")

#: Shown for a key a group does not have, a missing value, or no choice.
MISSING = "-"

#: Directories inside a run that hold no runs.
_SKIPPED_DIRS = ("wandb", "plots")


class CompareError(Exception):
    """A mistake in the command line or the inputs, reported in one line."""


# ---------------------------------------------------------------- reading runs


@dataclass
class Run:
    """One completed run.

    Attributes:
        path: its ``results.json``.
        record: the parsed ``results.json``.
        config: the flattened resolved config without :data:`IGNORED_KEYS`.
        seed: the run's ``seed`` (None when not recorded).
        overrides: its ``KEY=VALUE`` overrides as a dict (``+``/``~`` prefixes dropped).
    """

    path: Path
    record: dict[str, Any]
    config: dict[str, Any]
    seed: Any
    overrides: dict[str, str]


@dataclass(frozen=True)
class Problem:
    """A run that is not part of the comparison: failed, unfinished, unreadable or malformed."""

    path: Path
    status: str
    error: str


# ------------------------------------------------------- checking a record

#: Sections of a results record that are JSON objects when recorded.
RECORD_SECTIONS = ("config", "final", "best", "noise", "timing", "versions", "reliability", "data")
#: Fields of a results record that are strings when recorded.
RECORD_TEXTS = ("error", "traceback", "run_dir", "device", "fingerprint")
#: Splits of ``final`` and ``best`` (JSON objects when recorded).
RECORD_SPLITS = ("train", "val", "test")
#: ``timing`` fields: ISO 8601 timestamps, and durations or counts.
RECORD_TIMES = ("started_at", "finished_at")
RECORD_DURATIONS = ("total_s", "train_s", "eval_s", "epochs")


def _kind(value: Any) -> str:
    """The JSON type of ``value`` with its article: ``a number``, ``an array``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime, or None when ``value`` is not one.

    A timestamp without a UTC offset is taken as local time, the meaning Python
    gives naive datetimes (``datetime.astimezone``); losslab itself writes UTC
    with its offset. A trailing ``Z`` means UTC.

    Example:
        >>> parse_timestamp("2026-03-01T12:00:00Z").isoformat()
        '2026-03-01T12:00:00+00:00'
        >>> parse_timestamp("yesterday") is None
        True
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo is not None else parsed.astimezone()
    except (ValueError, OverflowError, OSError):  # OSError: out of the platform's range
        return None


def record_problem(record: Any) -> str | None:
    """What is wrong with a ``results.json`` record read from disk; None when it is usable.

    The one check of a record's shape for every reader (``losslab compare``, the
    sweep summary), so that code after it can index the record without guarding
    against types. Required: a JSON object with a non-empty string ``status``.
    Every other field may be absent or null (not recorded); when recorded:

    - ``overrides``: an array of strings;
    - ``error``, ``traceback``, ``run_dir``, ``device``, ``fingerprint``: strings;
    - ``config``, ``final``, ``best``, ``noise``, ``timing``, ``versions``,
      ``reliability``, ``data``: objects;
    - ``config.seed``: a number, string or boolean (it labels the runs of a group);
    - ``final`` and ``best``: ``epoch`` an integer, ``train``, ``val``, ``test`` objects;
    - ``timing``: ``started_at`` and ``finished_at`` ISO 8601 timestamps
      (:func:`parse_timestamp`), ``total_s``, ``train_s``, ``eval_s``, ``epochs`` numbers.

    Metric values are not checked: a value that is not a finite number counts as
    missing (:func:`metric_value`). Fields not named here are not checked.

    Args:
        record: the parsed JSON.

    Returns:
        One line naming the first malformed field and what it holds, or None.

    Example:
        >>> record_problem({"status": "completed", "overrides": 5})
        'overrides is a number, not an array of strings'
    """
    if not isinstance(record, dict):
        return f"not a JSON object ({_kind(record)})"
    status = record.get("status")
    if status is None:
        return "status is missing"
    if not isinstance(status, str):
        return f"status is {_kind(status)}, not a string"
    if not status.strip():
        return "status is empty"
    overrides = record.get("overrides")
    if overrides is not None:
        if not isinstance(overrides, list):
            return f"overrides is {_kind(overrides)}, not an array of strings"
        bad = next((o for o in overrides if not isinstance(o, str)), _Absent)
        if bad is not _Absent:
            return f"overrides holds {_kind(bad)}, not only strings"
    for name in RECORD_TEXTS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name} is {_kind(value)}, not a string"
    for name in RECORD_SECTIONS:
        value = record.get(name)
        if value is not None and not isinstance(value, dict):
            return f"{name} is {_kind(value)}, not an object"
    seed = (record.get("config") or {}).get("seed")
    if isinstance(seed, list | dict):
        return f"config.seed is {_kind(seed)}, not a number or string"
    for name in ("final", "best"):
        section = record.get(name) or {}
        epoch = section.get("epoch")
        if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool)):
            return f"{name}.epoch is {_kind(epoch)}, not an integer"
        for split in RECORD_SPLITS:
            value = section.get(split)
            if value is not None and not isinstance(value, dict):
                return f"{name}.{split} is {_kind(value)}, not an object"
    timing = record.get("timing") or {}
    for name in RECORD_TIMES:
        value = timing.get(name)
        if value is not None and parse_timestamp(value) is None:
            shown = f"'{_shorten(value, 40)}'" if isinstance(value, str) else _kind(value)
            return f"timing.{name} is {shown}, not an ISO 8601 timestamp"
    for name in RECORD_DURATIONS:
        value = timing.get(name)
        if value is not None and not _is_number(value):
            return f"timing.{name} is {_kind(value)}, not a number"
    return None


def read_record(path: Path) -> tuple[dict[str, Any] | None, Problem | None]:
    """Read and check one ``results.json``.

    Args:
        path: the file.

    Returns:
        ``(record, None)`` for a usable record (:func:`record_problem`), else
        ``(None, problem)`` whose ``status`` is ``"missing"`` (no such file),
        ``"unreadable"`` (a directory, an I/O error, not JSON) or ``"malformed"``
        (JSON of the wrong shape), and whose ``error`` says what is wrong.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, Problem(path, "missing", f"no {path.name}")
    except IsADirectoryError:
        return None, Problem(path, "unreadable", "a directory, not a file")
    except OSError as exc:
        return None, Problem(path, "unreadable", f"cannot be read: {exc.strerror or exc}")
    except RecursionError:
        return None, Problem(path, "unreadable", "not valid JSON: nested too deeply")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        return None, Problem(path, "unreadable", f"not valid JSON: {exc}")
    problem = record_problem(record)
    if problem is not None:
        return None, Problem(path, "malformed", problem)
    return record, None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dot-joined keys; empty dicts vanish, lists stay leaves.

    Args:
        tree: a nested dict, e.g. a resolved config.
        prefix: prepended to every key.

    Returns:
        ``{"noise.rate": 0.4, ...}``.

    Example:
        >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": {}})
        {'a.b': 1, 'a.c': [1, 2]}
    """
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def is_ignored(key: str) -> bool:
    """Whether a flattened config key is left out of the group key (see :data:`IGNORED_KEYS`)."""
    return any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS)


def parse_overrides(overrides: Iterable[Any]) -> dict[str, str]:
    """``["loss=gce", "+x.y=1"]`` -> ``{"loss": "gce", "x.y": "1"}``; Hydra's own keys are dropped."""
    out: dict[str, str] = {}
    for item in overrides:
        key, sep, value = str(item).partition("=")
        key = key.lstrip("+~").strip()
        if sep and key and not key.startswith("hydra"):
            out[key] = value.strip()
    return out


def _natural_key(path: Path) -> list[Any]:
    """Sort ``.../2/...`` before ``.../10/...``."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(path))]


def find_runs(paths: Sequence[str | Path]) -> tuple[list[Run], list[Problem]]:
    """Read every ``results.json`` below ``paths``.

    Args:
        paths: directories (searched recursively) or ``results.json`` files.

    Returns:
        The completed runs and the others (failed, running, unfinished,
        unreadable, malformed: see :func:`read_record`), both in natural path order.

    Raises:
        CompareError: when a path does not exist or no ``results.json`` is found.
    """
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
        runs.append(_run_of(path, record))
    runs.sort(key=lambda r: _natural_key(r.path))
    problems.sort(key=lambda p: _natural_key(p.path))
    return runs, problems


def _run_of(path: Path, record: dict[str, Any]) -> Run:
    overrides = parse_overrides(record.get("overrides") or [])
    config = record.get("config")
    if isinstance(config, dict):
        flat = flatten(config)
        seed = config.get("seed", overrides.get("seed"))
    else:  # no resolved config recorded: fall back on the command line
        flat = dict(overrides)
        seed = overrides.get("seed")
    flat = {k: v for k, v in flat.items() if not is_ignored(k)}
    return Run(path=path, record=record, config=flat, seed=seed, overrides=overrides)


# ------------------------------------------------------------- group choices


def choice_names(runs: Sequence[Run]) -> list[str]:
    """The config groups of ``runs`` that are shown by option name, in config order.

    A top-level config section with a ``_target_`` (``loss``, ``noise``, ...),
    a non-empty section whose children all have one (``regularizer``), or an
    override ``KEY=VALUE`` whose key is neither dotted nor a config leaf
    (``experiment=smoke``).
    """
    names: dict[str, None] = {}
    for run in runs:
        config = run.record.get("config")
        for key, value in (config if isinstance(config, dict) else {}).items():
            if not is_ignored(key) and _is_selected_section(value):
                names.setdefault(key, None)
    for run in runs:
        for key in run.overrides:
            if "." not in key and not is_ignored(key) and key not in run.config:
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


def choice_of(run: Run, name: str) -> str:
    """The option chosen for config group ``name`` in ``run`` (see the module docstring)."""
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
            1 if _same(values.get(k, _Absent), v) else -1
            for k, v in option.items()
            if k != "_target_" and not (isinstance(v, str) and ("${" in v or v == "???"))
        )
        if best is None or score > best[0]:
            best = (score, name)
    return best[1] if best else str(target).rsplit(".", 1)[-1]


class _Absent:
    """Marks a key that a config does not have."""


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


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def format_value(value: Any) -> str:
    """A config value as shown in tables: strings as they are, the rest as JSON (Hydra syntax)."""
    if value is _Absent:
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return json.dumps(value, default=str)


# -------------------------------------------------------------------- groups


@dataclass
class Stat:
    """Summary of one metric over the runs of a group.

    Attributes:
        mean: mean over the runs that have the metric (None when none has).
        std: sample standard deviation (``ddof=1``); None for fewer than two values.
        n: number of values.
        values: ``(seed, value)`` of every run that has the metric.
    """

    mean: float | None
    std: float | None
    n: int
    values: list[tuple[Any, float]]


@dataclass
class Versus:
    """One group against its baseline for one metric.

    Attributes:
        diff: mean of the group minus mean of the baseline.
        p: two-sided p-value, None when not computable.
        test: ``"paired t"``, ``"Welch t"`` or None.
    """

    diff: float | None
    p: float | None
    test: str | None


@dataclass(eq=False)
class Group:
    """Runs whose configs differ only in ``seed``.

    Attributes:
        runs: the completed runs.
        values: raw value of every flattened config key and every group choice.
        labels: the same as display strings.
        stats: per metric path.
        rank: by the first metric (None when the group lacks it).
        baseline: the group it is compared with (itself for a baseline group).
        versus: per metric, against ``baseline``.
    """

    runs: list[Run]
    values: dict[str, Any]
    labels: dict[str, str]
    stats: dict[str, Stat] = field(default_factory=dict)
    rank: int | None = None
    baseline: Group | None = None
    versus: dict[str, Versus] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of runs."""
        return len(self.runs)

    @property
    def seeds(self) -> list[Any]:
        """The runs' seeds, sorted."""
        return sorted((r.seed for r in self.runs), key=_sort_key)

    def label(self, columns: Sequence[str]) -> str:
        """``loss=gce noise.rate=0.4`` for the given identifying columns."""
        return " ".join(f"{c}={self.labels[c]}" for c in columns) or "all runs"


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers numerically, then strings, then missing values."""
    if value is None or value == MISSING:
        return (2, 0.0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def group_runs(runs: Sequence[Run], choices: Sequence[str]) -> list[Group]:
    """Group ``runs`` by their config without seed (see the module docstring).

    Args:
        runs: completed runs.
        choices: config group names to label by option (:func:`choice_names`).

    Returns:
        Groups in the order of their first run.
    """
    buckets: dict[tuple[tuple[str, str], ...], list[Run]] = {}
    for run in runs:
        key = tuple(
            sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in run.config.items())
        )
        buckets.setdefault(key, []).append(run)
    keys = list(dict.fromkeys(k for run in runs for k in run.config))
    groups = []
    for members in buckets.values():
        values: dict[str, Any] = {k: members[0].config.get(k, _Absent) for k in keys}
        labels = {k: format_value(v) for k, v in values.items()}
        for name in choices:
            option = Counter(choice_of(r, name) for r in members).most_common(1)[0][0]
            values[name] = labels[name] = option
        groups.append(Group(runs=list(members), values=values, labels=labels))
    return groups


def identifying_columns(groups: Sequence[Group], choices: Sequence[str]) -> list[str]:
    """The columns that tell ``groups`` apart (see the module docstring)."""
    if len(groups) < 2:
        return []
    keys = [k for k in groups[0].labels if k not in choices]

    def varies(key: str) -> bool:
        return len({g.labels[key] for g in groups}) > 1

    varying_choices = [c for c in choices if varies(c)]
    varying_keys = [k for k in keys if varies(k)]

    def determined(key: str) -> bool:
        owner = next((c for c in varying_choices if key.startswith(c + ".")), None)
        if owner is None:
            return False
        seen: dict[str, str] = {}
        return all(seen.setdefault(g.labels[owner], g.labels[key]) == g.labels[key] for g in groups)

    columns = varying_choices + [k for k in varying_keys if not determined(k)]

    def distinct(cols: Sequence[str]) -> bool:
        return len({tuple(g.labels[c] for c in cols) for g in groups}) == len(groups)

    for key in varying_keys:
        if distinct(columns):
            break
        if key not in columns:
            columns.append(key)
    order = {k: i for i, k in enumerate([*varying_choices, *varying_keys])}
    return sorted(columns, key=order.__getitem__)


# ------------------------------------------------------------------ metrics


def direction(metric: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when neither (by the last name)."""
    name = metric.rsplit(".", 1)[-1].lower()
    if name.startswith(HIGHER_IS_BETTER):
        return 1
    if name.startswith(LOWER_IS_BETTER):
        return -1
    return 0


def is_percent(metric: str) -> bool:
    """Whether the metric is a fraction that tables may show in percent."""
    return metric.rsplit(".", 1)[-1].lower().startswith(PERCENT_PREFIXES)


def metric_value(record: dict[str, Any], path: str) -> float | None:
    """The finite number at dotted ``path`` of a results record, else None."""
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node) if math.isfinite(node) else None


def numeric_paths(records: Iterable[dict[str, Any]]) -> list[str]:
    """Every dotted path to a number in ``records`` (config, timing and versions left out)."""
    found: dict[str, None] = {}
    for record in records:
        for key, value in flatten(record).items():
            if key.split(".", 1)[0] in ("config", "timing", "versions", "reliability"):
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                found.setdefault(key, None)
    return list(found)


def resolve_metrics(requested: Sequence[str], runs: Sequence[Run]) -> list[str]:
    """Check metric paths against the runs; a bare name ``ece`` means ``final.test.ece``.

    Raises:
        CompareError: for a path no completed run has a number at, listing available ones.
    """
    out: list[str] = []
    for raw in requested:
        path = raw.strip()
        if not path:
            continue
        candidates = [path] if "." in path else [f"final.test.{path}", path]
        hit = next(
            (c for c in candidates if any(metric_value(r.record, c) is not None for r in runs)),
            None,
        )
        if hit is None:
            available = numeric_paths(r.record for r in runs)
            close = difflib.get_close_matches(candidates[0], available, n=5, cutoff=0.5)
            shown = list(
                dict.fromkeys([*close, *[a for a in available if a.startswith("final.test.")]])
            )
            raise CompareError(
                f"unknown metric '{path}': no completed run has a number there. "
                f"Available, e.g.: {', '.join(shown[:10]) or 'none'}"
            )
        if hit not in out:
            out.append(hit)
    if not out:
        raise CompareError("no metric given")
    return out


def summarize(group: Group, metric: str) -> Stat:
    """Mean, sample std and n of ``metric`` over the group's runs."""
    values = [(r.seed, v) for r in group.runs if (v := metric_value(r.record, metric)) is not None]
    numbers = [v for _, v in values]
    mean = statistics.fmean(numbers) if numbers else None
    std = statistics.stdev(numbers) if len(numbers) >= 2 else None
    return Stat(mean=mean, std=std, n=len(numbers), values=values)


def t_test(group: Stat, baseline: Stat) -> Versus:
    """Difference of means and its p-value: paired over equal seeds, Welch otherwise.

    Paired (``scipy.stats.ttest_rel``) when both sides hold the same seeds, each
    once; otherwise Welch's unequal-variance test (``scipy.stats.ttest_ind`` with
    ``equal_var=False``). The p-value is None with fewer than two values on a
    side or when the test is undefined (e.g. zero variance).
    """
    if group.mean is None or baseline.mean is None:
        return Versus(None, None, None)
    diff = group.mean - baseline.mean
    a = dict(group.values)
    b = dict(baseline.values)
    paired = len(a) == len(group.values) and len(b) == len(baseline.values) and a.keys() == b.keys()
    if (paired and len(a) < 2) or (not paired and min(group.n, baseline.n) < 2):
        return Versus(diff, None, None)
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if paired:
            order = sorted(a, key=_sort_key)
            p = stats.ttest_rel([a[s] for s in order], [b[s] for s in order]).pvalue
            test = "paired t"
        else:
            p = stats.ttest_ind(
                [v for _, v in group.values], [v for _, v in baseline.values], equal_var=False
            ).pvalue
            test = "Welch t"
    p = float(p)
    return Versus(diff, p if math.isfinite(p) else None, test)


# ---------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """Everything ``losslab compare`` shows.

    Attributes:
        groups: sorted by the first metric (see :func:`direction`).
        columns: the identifying columns.
        metrics: metric paths, the first one sorts.
        problems: runs left out.
        choices: config group names shown by option.
        keys: every key a group can be selected by (choices, then config keys).
        baseline: the ``(KEY, VALUE)`` of ``--baseline``, if any.
        notes: remarks for the reader (ambiguous baselines, ...).
    """

    groups: list[Group]
    columns: list[str]
    metrics: list[str]
    problems: list[Problem]
    choices: list[str]
    keys: list[str]
    baseline: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_runs(self) -> int:
        """Number of completed runs in the comparison."""
        return sum(g.n for g in self.groups)

    def shared(self) -> dict[str, str]:
        """Group choices that all groups share, e.g. ``{"dataset": "digits"}``."""
        if not self.groups:
            return {}
        first = self.groups[0].labels
        return {
            c: first[c]
            for c in self.choices
            if c not in self.columns
            and first[c] != MISSING
            and all(g.labels[c] == first[c] for g in self.groups)
        }


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """``"loss=ce"`` -> ``("loss", "ce")``.

    Raises:
        CompareError: without ``=`` or with an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CompareError(f"{option} expects KEY=VALUE (e.g. loss=ce), got '{text}'")
    return key.strip(), value.strip()


def _check_key(key: str, keys: Sequence[str], option: str, columns: Sequence[str]) -> None:
    if key in keys:
        return
    close = difflib.get_close_matches(key, keys, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    shown = list(dict.fromkeys([*columns, *keys]))
    raise CompareError(
        f"unknown key '{key}' for {option}.{hint} Valid keys: {', '.join(shown[:25])}"
        + (f" (and {len(shown) - 25} more)" if len(shown) > 25 else "")
    )


def _matches(group: Group, key: str, text: str) -> bool:
    if group.labels.get(key) == text:
        return True
    raw = group.values.get(key, _Absent)
    if raw is _Absent or isinstance(raw, str):
        return False
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return _same(raw, parsed)


def compare(
    paths: Sequence[str | Path],
    metrics: Sequence[str] = DEFAULT_METRICS,
    baseline: str | None = None,
    where: Sequence[str] = (),
) -> Comparison:
    """Read, group, summarise and rank the runs below ``paths``.

    Args:
        paths: directories or ``results.json`` files.
        metrics: metric paths into ``results.json``; the first one sorts.
        baseline: ``KEY=VALUE`` selecting the baseline groups.
        where: ``KEY=VALUE`` filters; only groups matching all of them are kept.

    Returns:
        The comparison (no completed run: no groups, problems only).

    Raises:
        CompareError: for missing paths, no results, unknown metrics or keys.
    """
    runs, problems = find_runs(paths)
    choices = choice_names(runs)
    groups = group_runs(runs, choices)
    keys = list(dict.fromkeys([*choices, *(k for g in groups for k in g.labels)]))
    if not runs:
        return Comparison([], [], list(metrics), problems, choices, keys)
    metric_paths = resolve_metrics(metrics, runs)
    for condition in where:
        key, value = parse_assignment(condition, "--where")
        _check_key(key, keys, "--where", identifying_columns(groups, choices))
        kept = [g for g in groups if _matches(g, key, value)]
        if not kept:
            raise CompareError(
                f"--where {key}={value} matches no group; values: "
                + ", ".join(sorted({g.labels.get(key, MISSING) for g in groups}, key=_sort_key))
            )
        groups = kept
    columns = identifying_columns(groups, choices)
    for group in groups:
        group.stats = {m: summarize(group, m) for m in metric_paths}
    comparison = Comparison(groups, columns, metric_paths, problems, choices, keys)
    if where:
        comparison.notes.append("only groups with " + ", ".join(where))
    if baseline:
        _apply_baseline(comparison, *parse_assignment(baseline, "--baseline"))
    _rank(comparison)
    return comparison


def _apply_baseline(comparison: Comparison, key: str, value: str) -> None:
    groups, columns = comparison.groups, comparison.columns
    _check_key(key, comparison.keys, "--baseline", columns)
    bases = [g for g in groups if _matches(g, key, value)]
    if not bases:
        raise CompareError(
            f"--baseline {key}={value} matches no group; values of {key}: "
            + ", ".join(sorted({g.labels.get(key, MISSING) for g in groups}, key=_sort_key))
        )
    comparison.baseline = (key, value)
    others = [c for c in columns if c != key and not c.startswith(key + ".")]
    unmatched = 0
    for group in groups:
        same = [b for b in bases if all(b.labels[c] == group.labels[c] for c in others)]
        if len(same) != 1:
            unmatched += 1
            if len(same) > 1:
                comparison.notes.append(
                    f"{group.label(columns)}: {len(same)} groups fit {key}={value}; not compared"
                )
            continue
        group.baseline = same[0]
        group.versus = {m: t_test(group.stats[m], same[0].stats[m]) for m in comparison.metrics}
    if unmatched:
        comparison.notes.append(f"{unmatched} group(s) have no {key}={value} counterpart")


def _rank(comparison: Comparison) -> None:
    metric = comparison.metrics[0]
    sign = direction(metric) or 1

    def order(group: Group) -> tuple[bool, float]:
        mean = group.stats[metric].mean
        return (mean is None, -sign * mean if mean is not None else 0.0)

    comparison.groups.sort(key=order)
    previous: float | None = None
    rank = 0
    for i, group in enumerate(comparison.groups, start=1):
        mean = group.stats[metric].mean
        if mean is None:
            group.rank = None
            continue
        if mean != previous:
            rank, previous = i, mean
        group.rank = rank


def best_groups(groups: Sequence[Group], metric: str) -> set[int]:
    """``id`` of the groups with the best mean of ``metric`` (none for metrics without direction)."""
    sign = direction(metric)
    means = [(id(g), g.stats[metric].mean) for g in groups if g.stats[metric].mean is not None]
    if not sign or not means:
        return set()
    best = max(sign * m for _, m in means)
    return {i for i, m in means if sign * m == best}


# ------------------------------------------------------------------- tables


@dataclass
class Cell:
    """One table cell: text, or a mean with its std, maybe the best of its column."""

    text: str
    std: str | None = None
    best: bool = False

    @property
    def plain(self) -> str:
        """``97.21 ± 0.31``."""
        return self.text if self.std is None else f"{self.text} ± {self.std}"


@dataclass
class TableData:
    """A table independent of its rendering (terminal, Markdown, LaTeX)."""

    title: str
    headers: list[str]
    rows: list[list[Cell]]
    right: list[bool]
    notes: list[str] = field(default_factory=list)


def _fmt(x: float | None, metric: str, percent: bool, signed: bool = False) -> str:
    if x is None:
        return MISSING
    scale = 100.0 if percent and is_percent(metric) else 1.0
    digits = 2 if scale == 100.0 else 4
    return f"{scale * x:{'+' if signed else ''}.{digits}f}"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _headers(metrics: Sequence[str]) -> tuple[list[str], str]:
    """Short metric headers and the common prefix they drop (``final.test``)."""
    parts = [m.split(".") for m in metrics]
    common = 0
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    return [".".join(p[common:]) for p in parts], ".".join(parts[0][:common])


def _unit_note(metrics: Sequence[str], percent: bool) -> str | None:
    shown = [m for m in metrics if is_percent(m)]
    if not percent or not shown:
        return None
    names = ", ".join(dict.fromkeys(m.rsplit(".", 1)[-1] for m in shown))
    return f"{names} in percent (stored as fractions in [0, 1])"


def summary_table(comparison: Comparison, percent: bool = True) -> TableData:
    """The long table: one row per group, mean ± std per metric, differences to the baseline."""
    metrics = comparison.metrics
    short, prefix = _headers(metrics)
    columns = comparison.columns or []
    headers = ["rank", *(columns or ["group"]), "n", *short]
    right = [True, *([False] * max(1, len(columns))), True, *([True] * len(metrics))]
    if comparison.baseline:
        headers += [f"Δ{s}" for s in short]
        right += [True] * len(metrics)
    best = {m: best_groups(comparison.groups, m) for m in metrics}
    rows = []
    for g in comparison.groups:
        row = [Cell(str(g.rank) if g.rank is not None else MISSING)]
        row += [Cell(g.labels[c]) for c in columns] or [Cell("all runs")]
        row.append(Cell(str(g.n)))
        for m in metrics:
            s = g.stats[m]
            std = _fmt(s.std, m, percent) if s.std is not None else None
            row.append(Cell(_fmt(s.mean, m, percent), std, id(g) in best[m]))
        if comparison.baseline:
            for m in metrics:
                if g.baseline is g:
                    row.append(Cell("baseline"))
                elif g.baseline is None or g.versus[m].diff is None:
                    row.append(Cell(MISSING))
                else:
                    v = g.versus[m]
                    row.append(Cell(f"{_fmt(v.diff, m, percent, signed=True)} ({_fmt_p(v.p)})"))
        rows.append(row)
    n_seeds = {g.n for g in comparison.groups}
    title = f"{comparison.n_runs} runs in {len(comparison.groups)} groups"
    if prefix:
        title += f", {prefix} metrics"
    notes = [
        f"mean ± sample std over seeds (n = {next(iter(n_seeds))} per group)"
        if len(n_seeds) == 1
        else "mean ± sample std over seeds (n per group in column n)",
        f"sorted by {metrics[0]} ({_direction_words(metrics[0])}); best of each column highlighted",
    ]
    if comparison.baseline:
        key, value = comparison.baseline
        notes.append(
            f"Δ: difference of means to the {key}={value} group with the same other columns; "
            "p: paired t-test over equal seeds, else Welch's t-test"
        )
    shared = comparison.shared()
    if shared:
        notes.append("all groups: " + ", ".join(f"{k}={v}" for k, v in shared.items()))
    notes += [n for n in [_unit_note(metrics, percent)] if n] + comparison.notes
    return TableData(title, headers, rows, right, notes)


def _direction_words(metric: str) -> str:
    return {1: "higher is better", -1: "lower is better", 0: "descending"}[direction(metric)]


def _parse_keys(text: str | None) -> list[str]:
    return [k.strip() for k in (text or "").split(",") if k.strip()]


def pivot_table(
    comparison: Comparison,
    rows: Sequence[str],
    cols: Sequence[str],
    metric: str,
    percent: bool = True,
) -> TableData:
    """The paper-style grid: ``rows`` x ``cols`` of mean ± std of one metric.

    Args:
        comparison: the summarised comparison.
        rows: keys whose values label the rows (group choices or config keys).
        cols: keys whose values label the columns.
        metric: one of ``comparison.metrics``.
        percent: show fractions in percent.

    Returns:
        The grid; the best cell of every column is highlighted.

    Raises:
        CompareError: when a key is unknown or two groups fall into one cell.
    """
    for option, keys in (("--rows", rows), ("--cols", cols)):
        for key in keys:
            _check_key(key, comparison.keys, option, comparison.columns)
    cells: dict[tuple[tuple[str, ...], tuple[str, ...]], Group] = {}
    for g in comparison.groups:
        at = (
            tuple(g.labels.get(k, MISSING) for k in rows),
            tuple(g.labels.get(k, MISSING) for k in cols),
        )
        if at in cells:
            other = [c for c in comparison.columns if c not in rows and c not in cols]
            where = ", ".join(
                f"{k}={v}" for k, v in zip([*rows, *cols], [*at[0], *at[1]], strict=True)
            )
            raise CompareError(
                f"more than one group falls into the cell {where or '(all)'}; "
                f"these keys also vary: {', '.join(other) or 'none shown'}. "
                "Add them to --rows/--cols or fix them with --where KEY=VALUE"
            )
        cells[at] = g

    def ordered(index: int) -> list[tuple[str, ...]]:
        labels = {at[index] for at in cells}
        return sorted(labels, key=lambda t: [_sort_key(x) for x in t])

    row_labels, col_labels = ordered(0), ordered(1)
    sign = direction(metric)
    best: set[int] = set()
    for c in col_labels:
        column = [cells[(r, c)] for r in row_labels if (r, c) in cells]
        best |= best_groups(column, metric) if sign else set()
    corner = " / ".join(rows) or metric.rsplit(".", 1)[-1]
    if cols:
        corner += " \\ " + " / ".join(cols)
    headers = [corner, *(" / ".join(c) for c in col_labels)] if cols else [corner, metric]
    table_rows = []
    for r in row_labels:
        row = [Cell(" / ".join(r) if rows else metric)]
        for c in col_labels:
            g = cells.get((r, c))
            if g is None:
                row.append(Cell(MISSING))
                continue
            s = g.stats[metric]
            std = _fmt(s.std, metric, percent) if s.std is not None else None
            row.append(Cell(_fmt(s.mean, metric, percent), std, id(g) in best))
        table_rows.append(row)
    n_seeds = {g.stats[metric].n for g in cells.values()}
    notes = [
        f"{metric}: mean ± sample std over seeds, "
        + (
            f"n = {next(iter(n_seeds))} per cell"
            if len(n_seeds) == 1
            else f"n from {min(n_seeds)} to {max(n_seeds)} per cell"
        ),
        f"best of each column highlighted ({_direction_words(metric)})" if sign else "",
    ]
    shared = comparison.shared()
    if shared:
        notes.append("all groups: " + ", ".join(f"{k}={v}" for k, v in shared.items()))
    notes += [n for n in [_unit_note([metric], percent)] if n] + comparison.notes
    right = [False, *([True] * (len(headers) - 1))]
    return TableData(metric, headers, table_rows, right, [n for n in notes if n])


def problems_table(problems: Sequence[Problem]) -> TableData:
    """The runs left out: path, status and error."""
    rows = [[Cell(str(p.path)), Cell(p.status), Cell(_shorten(p.error, 160))] for p in problems]
    return TableData(
        f"{len(problems)} runs not included", ["path", "status", "error"], rows, [False] * 3
    )


def _shorten(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def to_rich(table: TableData) -> Any:
    """The table as a rich renderable: best cells in bold green, the notes beneath."""
    from rich.console import Group as Stack
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    out = Table(title=escape(table.title))
    for header, right in zip(table.headers, table.right, strict=True):
        out.add_column(Text(header), justify="right" if right else "left")
    for row in table.rows:
        out.add_row(*(Text(c.plain, style="bold green" if c.best else "") for c in row))
    if not table.notes:
        return out
    return Stack(out, Text("\n".join(table.notes), style="dim"))


def to_markdown(table: TableData) -> str:
    """A GitHub-flavoured Markdown table with the best cells in bold and the notes beneath."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def cell(c: Cell) -> str:
        return f"**{esc(c.plain)}**" if c.best else esc(c.plain)

    lines = [f"### {esc(table.title)}", ""]
    lines.append("| " + " | ".join(esc(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if r else ":---" for r in table.right) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines += ["", *(f"- {esc(n)}" for n in table.notes)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "Δ": r"$\Delta$",
    "±": r"$\pm$",
    "…": r"\ldots{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: TableData) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); best cells' means in bold."""

    def cell(c: Cell) -> str:
        mean = latex_escape(c.text)
        if c.best:
            mean = rf"\textbf{{{mean}}}"
        return mean if c.std is None else rf"{mean} $\pm$ {latex_escape(c.std)}"

    spec = "".join("r" if r else "l" for r in table.right)
    lines = [f"% {latex_escape(table.title)}"]
    lines += [f"% {latex_escape(n)}" for n in table.notes]
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(latex_escape(h) for h in table.headers) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(cell(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_csv(comparison: Comparison, path: Path) -> Path:
    """Write the comparison as CSV, one row per group in table order.

    Columns: ``rank``, the identifying columns, ``n``, ``seeds`` (``;``-joined), then
    per metric ``<metric>_mean``, ``<metric>_std`` (blank for n=1) and, with a
    baseline, ``<metric>_diff``, ``<metric>_p`` (blank when not computable) and
    ``<metric>_test``. Values are stored as recorded: fractions stay in [0, 1].

    Args:
        comparison: the summarised comparison.
        path: the CSV file; parent directories are created.

    Returns:
        ``path``.
    """
    columns = comparison.columns
    fields = ["rank", *columns, "n", "seeds"]
    for m in comparison.metrics:
        fields += [f"{m}_mean", f"{m}_std"]
        if comparison.baseline:
            fields += [f"{m}_diff", f"{m}_p", f"{m}_test"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for g in comparison.groups:
            row: dict[str, Any] = {"rank": g.rank, "n": g.n}
            row.update({c: g.labels[c] for c in columns})
            row["seeds"] = ";".join(str(s) for s in g.seeds)
            for m in comparison.metrics:
                row[f"{m}_mean"] = _repr(g.stats[m].mean)
                row[f"{m}_std"] = _repr(g.stats[m].std)
                if comparison.baseline:
                    v = g.versus.get(m)
                    row[f"{m}_diff"] = _repr(v.diff) if v else ""
                    row[f"{m}_p"] = _repr(v.p) if v else ""
                    row[f"{m}_test"] = (
                        ("baseline" if g.baseline is g else v.test or "") if v else ""
                    )
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def _repr(x: float | None) -> str:
    return "" if x is None else repr(float(x))


# ---------------------------------------------------------------------- CLI

_EPILOG = """\
grouping: runs whose resolved configs differ only in `seed` form a group (logger.*,
  trainer.device, trainer.num_workers, dataset.root/download/loader/memory_limit_mb are
  ignored). Columns are the keys that vary across groups; config groups show their option
  (loss=gce). Failed and unfinished runs, and results.json files that are unreadable or
  malformed (a field of the wrong type), are listed apart and never enter a mean.
sorting: by the first metric; acc* descending; ece*, mce*, nll*, brier*, aurc*, entropy*,
  loss*, err* ascending (lower is better); anything else descending.
p-values (--baseline): paired t-test when both groups hold the same seeds, Welch otherwise.
exit codes: 0 ok; 1 no completed run or an output could not be written; 2 usage errors.

examples:
  losslab compare multirun/2026-11-22
  losslab compare multirun --baseline loss=ce --metric final.test.acc,best.test.ece_ts
  losslab compare multirun --rows loss --cols noise.rate --metric final.test.acc
  losslab compare multirun --csv table.csv --latex table.tex --plots figures/
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="losslab compare",
        description="Head-to-head table of runs: groups over seeds with mean ± std,\n"
        "p-values against a baseline, paper-style pivots, CSV/Markdown/LaTeX and plots.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="run or sweep directories, or results.json files"
    )
    parser.add_argument(
        "--metric",
        action="append",
        metavar="PATH",
        help="metric path into results.json, repeatable or comma-separated "
        f"(default: {','.join(DEFAULT_METRICS)}); a bare name means final.test.<name>",
    )
    parser.add_argument(
        "--baseline",
        metavar="KEY=VALUE",
        help="compare every group with its KEY=VALUE counterpart, e.g. loss=ce",
    )
    parser.add_argument("--rows", metavar="KEYS", help="pivot: keys labelling the rows, e.g. loss")
    parser.add_argument(
        "--cols", metavar="KEYS", help="pivot: keys labelling the columns, e.g. noise.rate"
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep only groups with KEY=VALUE (repeatable)",
    )
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write one row per group as CSV")
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="write the table(s) as Markdown"
    )
    parser.add_argument(
        "--latex", type=Path, metavar="FILE", help="write the table(s) as a booktabs tabular"
    )
    parser.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write accuracy-vs-ECE, reliability and noise-rate figures",
    )
    parser.add_argument(
        "--percent",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show accuracy and calibration fractions in percent (default: on)",
    )
    return parser


def main(argv: list[str]) -> int:
    """``losslab compare``: print the comparison and write the requested files.

    Args:
        argv: the words after ``compare``.

    Returns:
        0 on success, 1 when no run completed or a file could not be written,
        2 for a usage error (missing path, no results, unknown metric or key).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _main(args)
    except CompareError as exc:
        sys.stderr.write(f"losslab compare: {exc}\n")
        return 2


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 220)


def _main(args: argparse.Namespace) -> int:
    metrics = [m for item in (args.metric or [",".join(DEFAULT_METRICS)]) for m in item.split(",")]
    rows, cols = _parse_keys(args.rows), _parse_keys(args.cols)
    comparison = compare(args.paths, metrics, args.baseline, args.where)
    console = _console()
    if not comparison.groups:
        console.print(to_rich(problems_table(comparison.problems)))
        sys.stderr.write("losslab compare: no completed run to compare\n")
        return 1
    tables = (
        [pivot_table(comparison, rows, cols, m, args.percent) for m in comparison.metrics]
        if rows or cols
        else []
    )
    if not tables or comparison.baseline:
        tables.append(summary_table(comparison, args.percent))
    for table in tables:
        console.print(to_rich(table))
    if comparison.problems:
        console.print(to_rich(problems_table(comparison.problems)))
    try:
        if args.csv:
            console.print(f"wrote {write_csv(comparison, args.csv)}", markup=False)
        for path, render in ((args.markdown, to_markdown), (args.latex, to_latex)):
            if path:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("\n".join(render(t) for t in tables))
                console.print(f"wrote {path}", markup=False)
        if args.plots:
            from losslab.report.compare_plots import write_plots

            written, skipped = write_plots(comparison, args.plots, args.percent)
            for path in written:
                console.print(f"wrote {path}", markup=False)
            for note in skipped:
                console.print(f"skipped {note}", markup=False)
    except OSError as exc:
        sys.stderr.write(f"losslab compare: cannot write output: {exc}\n")
        return 1
    return 0
