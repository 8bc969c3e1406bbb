"""The run record (``results.json``): its shape, how it is read, and what identifies a run.

This module is the contract between the code that writes a run's record
(:mod:`losslab.runner`) and every reader of it (``losslab compare``, the sweep
summary, a resumed job): one check of a record's shape (:func:`record_problem`),
one reader (:func:`read_record`), and one definition of which config values
determine a run's results (:data:`NOT_RESULTS`, :func:`fingerprint`), used alike
to decide whether a job may resume a directory and which runs ``compare`` pools.

Selection rules (:data:`SELECTIONS`): a completed record holds one summary per
rule, each ``{"epoch": n, "train": {...}, "val": {...}, "test": {...}}``:

- ``final``: the last epoch;
- ``best``: the epoch with the highest validation accuracy (on the validation
  labels the run has, noisy under synthetic label noise);
- ``best_clean_val``: the epoch with the highest accuracy on the clean
  validation labels (known under synthetic noise; the same epoch as ``best``
  when the labels are clean);
- ``oracle``: the epoch with the highest test accuracy, an optimistic rule
  (the test set chooses) that some published tables use.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS = "results.json"

#: Config keys (and everything below them) that change where or how a run is
#: computed or shown, never its results: a job may resume a run made with other
#: values of them, and ``compare`` pools such runs as one configuration.
NOT_RESULTS = (
    "logger",
    "objective",
    "study",  # a preset's options of losslab study (its runs never read them)
    "trainer.device",
    "trainer.num_workers",
    "dataset.root",
    "dataset.download",
    "dataset.loader",
    "dataset.memory_limit_mb",
    "eval.save_predictions",  # writes the test logits beside the results; changes none
)

#: The selection rules of a record, in the order tables list them.
SELECTIONS = ("final", "best", "best_clean_val", "oracle")

#: What each rule chooses, as tables say it.
SELECTION_WORDS = {
    "final": "last epoch",
    "best": "epoch of best validation accuracy (validation labels as trained, noisy under noise)",
    "best_clean_val": "epoch of best accuracy on the clean validation labels",
    "oracle": "epoch of best TEST accuracy: optimistic, the test set chooses",
}


@dataclass(frozen=True)
class Problem:
    """A run that is not part of a comparison: failed, unfinished, unreadable or malformed."""

    path: Path
    status: str
    error: str


#: Sections of a results record that are JSON objects when recorded.
RECORD_SECTIONS = (
    "config",
    "choices",
    *SELECTIONS,
    "noise",
    "timing",
    "versions",
    "reliability",
    "data",
)
RECORD_TEXTS = ("error", "traceback", "run_dir", "device", "fingerprint")
#: Splits of ``final`` and ``best`` (JSON objects when recorded).
RECORD_SPLITS = ("train", "val", "test")
#: ``timing`` fields: ISO 8601 timestamps, and durations or counts.
RECORD_TIMES = ("started_at", "finished_at")
RECORD_DURATIONS = ("total_s", "train_s", "eval_s", "epochs")


class _Absent:
    """Marks a value that is not there."""


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
    - ``config``, ``choices``, ``final``, ``best``, ``best_clean_val``, ``oracle``, ``noise``, ``timing``, ``versions``,
      ``reliability``, ``data``: objects;
    - ``config.seed``: a number, string or boolean (it labels the runs of a group);
    - ``choices``: each config group's option (``{"noise": "apl/sym40"}``): a
      string, an array of strings (a multi-select group) or null;
    - ``final``, ``best``, ``best_clean_val``, ``oracle``: ``epoch`` an integer, ``train``, ``val``, ``test`` objects;
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
    for check in (_status_problem, _field_problem, _selection_problem, _timing_problem):
        problem = check(record)
        if problem is not None:
            return problem
    return None


def _status_problem(record: dict[str, Any]) -> str | None:
    status = record.get("status")
    if status is None:
        return "status is missing"
    if not isinstance(status, str):
        return f"status is {_kind(status)}, not a string"
    if not status.strip():
        return "status is empty"
    return None


def _field_problem(record: dict[str, Any]) -> str | None:
    """``overrides``, the text fields, the sections, ``config.seed`` and ``choices``."""
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
    choices = record.get("choices") or {}
    bad = next((k for k, v in choices.items() if not _is_choice(v)), None)
    if bad is not None:
        return f"choices.{bad} is {_kind(choices[bad])}, not an option name"
    return None


def _selection_problem(record: dict[str, Any]) -> str | None:
    """The sections of :data:`SELECTIONS`: an integer epoch and object splits."""
    for name in SELECTIONS:
        section = record.get(name) or {}
        epoch = section.get("epoch")
        if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool)):
            return f"{name}.epoch is {_kind(epoch)}, not an integer"
        for split in RECORD_SPLITS:
            value = section.get(split)
            if value is not None and not isinstance(value, dict):
                return f"{name}.{split} is {_kind(value)}, not an object"
    return None


def _timing_problem(record: dict[str, Any]) -> str | None:
    timing = record.get("timing") or {}
    for name in RECORD_TIMES:
        value = timing.get(name)
        if value is not None and parse_timestamp(value) is None:
            shown = f"'{shorten(value, 40)}'" if isinstance(value, str) else _kind(value)
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


def _is_choice(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def shorten(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def is_result_key(key: str) -> bool:
    """Whether a flattened config key can change a run's results (see :data:`NOT_RESULTS`)."""
    return not any(key == k or key.startswith(k + ".") for k in NOT_RESULTS)


#: :data:`NOT_RESULTS` of records and checkpoints written before it named device,
#: data root and loader: their fingerprints are still accepted (:func:`fingerprints`).
_NOT_RESULTS_BEFORE = ("logger", "objective", "trainer.num_workers")


def result_config(config: dict[str, Any], ignore: tuple[str, ...] = NOT_RESULTS) -> dict[str, Any]:
    """A copy of the resolved ``config`` without the keys in ``ignore``."""
    plain = json.loads(json.dumps(config, default=str))
    for dotted in ignore:
        *parents, last = dotted.split(".")
        node: Any = plain
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return plain


def fingerprint(config: dict[str, Any], ignore: tuple[str, ...] = NOT_RESULTS) -> str:
    """SHA-256 of everything in the resolved ``config`` that determines the results.

    The seed is part of it: two records with one fingerprint are the same run.
    """
    from omegaconf import OmegaConf

    text = OmegaConf.to_yaml(OmegaConf.create(result_config(config, ignore)))
    return hashlib.sha256(text.encode()).hexdigest()


#: ``_target_`` of ``augment`` (the config of earlier versions had none).
_AUGMENT_TARGET = "losslab.datasets.mixing.Mixing"
#: ``_target_`` of the combination losses, which earlier versions configured with
#: ``_recursive_: false`` right after it.
_WEIGHTED_SUM = "losslab.losses.combination.WeightedSum"
_VISION_LOADER = "losslab.datasets.vision.load_vision"


#: The data sets that earlier versions loaded with ``losslab.datasets.vision.<name>``, and
#: the keys their YAML gained when they became one loader described by it.
_VISION_SETS = ("mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100", "svhn")
_VISION_KEYS = ("name", "mean", "std", "crop_padding", "flip", "files")


def _vision_before(dataset: Any) -> dict[str, Any] | None:
    """A ``dataset`` section of :func:`losslab.datasets.vision.load_vision` as earlier
    versions composed it, None when there is none: only when the constants it gained
    are those of the packaged YAML (a run with other constants is another run)."""
    if not isinstance(dataset, dict) or dataset.get("_target_") != _VISION_LOADER:
        return None
    name = dataset.get("name")
    if name not in _VISION_SETS:
        return None
    from importlib.resources import files

    from omegaconf import OmegaConf

    packaged = OmegaConf.to_container(
        OmegaConf.create((files("losslab.conf") / "dataset" / f"{name}.yaml").read_text())
    )
    if any(dataset.get(k) != packaged.get(k) for k in _VISION_KEYS):
        return None
    rest = {k: v for k, v in dataset.items() if k not in ("_target_", *_VISION_KEYS)}
    return {"_target_": f"losslab.datasets.vision.{name}", **rest}


def _as_written_before(config: dict[str, Any]) -> dict[str, Any] | None:
    """``config`` as earlier versions composed the same run, None when it is the same.

    They composed ``augment`` without its ``_target_``, a weighted-sum ``loss``
    with ``_recursive_: false`` as its second key, and the torchvision-family data
    sets as one function each, without the constants their YAML now holds
    (:func:`_vision_before`).
    """
    plain = json.loads(json.dumps(config, default=str))
    changed = False
    dataset = _vision_before(plain.get("dataset"))
    if dataset is not None:
        plain["dataset"] = dataset
        changed = True
    augment = plain.get("augment")
    if isinstance(augment, dict) and augment.get("_target_") == _AUGMENT_TARGET:
        del augment["_target_"]
        changed = True
    loss = plain.get("loss")
    if (
        isinstance(loss, dict)
        and next(iter(loss), None) == "_target_"
        and loss["_target_"] == _WEIGHTED_SUM
        and "_recursive_" not in loss
    ):
        items = list(loss.items())
        plain["loss"] = dict([items[0], ("_recursive_", False), *items[1:]])
        changed = True
    return plain if changed else None


#: Keys that later versions added to every config, with the value that means "as
#: before", in the order they were added (one entry per version): a config holding
#: exactly those values is the run that earlier versions composed without the keys.
_ADDED_SECTIONS: tuple[dict[str, Any], ...] = (
    {"cv": {"folds": None, "fold": 0}},
    {
        "trainer.early_stopping": {
            "patience": None,
            "metric": "val/acc",
            "mode": None,
            "min_delta": 0.0,
        },
        "eval.save_predictions": False,
    },
)


def _without(config: dict[str, Any], dotted: str, neutral: Any) -> dict[str, Any] | None:
    """``config`` without the key ``dotted`` when it holds ``neutral`` (as it is when it
    has no such key); None when it holds another value."""
    *parents, last = dotted.split(".")
    node: Any = config
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or last not in node:
        return config
    if node[last] != neutral:
        return None
    plain = json.loads(json.dumps(config, default=str))
    node = plain
    for part in parents:
        node = node[part]
    del node[last]
    return plain


def _without_added_sections(config: dict[str, Any]) -> list[dict[str, Any]]:
    """``config`` as each earlier version composed it: without the keys of the newest
    version in :data:`_ADDED_SECTIONS`, then of the one before too, and so on, as long
    as they hold their neutral values."""
    older: list[dict[str, Any]] = []
    current: dict[str, Any] | None = config
    for added in reversed(_ADDED_SECTIONS):
        for dotted, neutral in added.items():
            if current is not None:
                current = _without(current, dotted, neutral)
        if current is None:
            break
        if current != (older[-1] if older else config):
            older.append(current)
    return older


def fingerprints(config: dict[str, Any]) -> set[str]:
    """The fingerprint of ``config``, and those records written by earlier versions hold
    (another :data:`NOT_RESULTS`, the config as they composed it, without the sections
    added since)."""
    variants = [config, *_without_added_sections(config)]
    for variant in list(variants):
        before = _as_written_before(variant)
        if before is not None:
            variants.append(before)
    return {
        fingerprint(c, ignore) for c in variants for ignore in (NOT_RESULTS, _NOT_RESULTS_BEFORE)
    }


def record_fingerprints(record: dict[str, Any]) -> set[str]:
    """The fingerprints of the run a record describes (:func:`fingerprints` of its config).

    Computed from the config as recorded rather than read, so that records of
    earlier versions (another :data:`NOT_RESULTS`) compare with today's; the stored
    ``fingerprint`` only when no config was recorded.
    """
    config = record.get("config")
    if isinstance(config, dict):
        return fingerprints(config)
    stored = record.get("fingerprint")
    return {stored} if isinstance(stored, str) else set()


def read_metrics_records(path: Path) -> list[dict[str, Any]] | None:
    """The whole JSON objects of ``metrics.jsonl`` (a line cut by a kill ends it); None
    when there is no such file."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    out = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            break
        if isinstance(record, dict):
            out.append(record)
    return out
