"""Search spaces declared beside the losses: ``conf/space/<group>/<option>.yaml``.

A loss ``conf/loss/gce.yaml`` may have ``conf/space/loss/gce.yaml``::

    # GCE (Zhang & Sabuncu, NeurIPS 2018)
    source: "github.com/DixianZhu/LDR, experiment.py: the grid of q"
    params:
      q: [0.1, 0.3, 0.5, 0.7, 0.9]               # values: a grid, or TPE's categories
      # lr: {low: 1.0e-3, high: 0.3, log: true}  # a range: TPE only

Keys of ``params`` are the option's own config keys (a dotted path for a nested
one, ``terms.agce.a``); a study prefixes them with the group (``loss.q``,
``optimizer.lr``, ``regularizer.entropy.beta``). Parameters that a source varies
together are one key naming them all, with a list of value tuples::

      alpha,beta: [[0.1, 9.9], [5.0, 5.0], [9.9, 0.1]]   # beta = 10 - alpha ``source`` names where the
values come from. An option without a file has nothing of its own to tune.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from losslab.runner.settings import ConfigError

#: The folder of the config tree that holds the spaces.
SPACE_DIR = "space"


@dataclass(frozen=True)
class Interval:
    """A range of numbers, searched by TPE only (a grid cannot enumerate it)."""

    low: float
    high: float
    log: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass
class Space:
    """The parameters one option of a group searches, and where their values come from.

    Attributes:
        group: ``loss``, ``optimizer`` or ``regularizer.<name>`` (the override prefix).
        option: the option of the group (``gce``).
        params: key (relative to the group's node) -> list of values or :class:`Interval`.
        source: where the values come from; None for a space given on the command line.
        path: the file it was read from.
    """

    group: str
    option: str
    params: dict[str, list[Any] | Interval] = field(default_factory=dict)
    source: str | None = None
    path: str | None = None

    def full(self, key: str) -> str:
        """The override key(s) of ``key``: ``loss.q``; ``loss.alpha,loss.beta`` for a tied one."""
        if not self.group:  # a space of full keys (the command line's)
            return key
        return ",".join(f"{self.group}.{part}" for part in key.split(","))

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "option": self.option,
            "source": self.source,
            "file": self.path,
            "params": {
                self.full(k): v.to_json() if isinstance(v, Interval) else list(v)
                for k, v in self.params.items()
            },
        }


def describe(values: list[Any] | Interval) -> str:
    """A parameter's values as tables show them: ``{0.05, 0.7, 0.95}``, ``[0.001, 0.3] log``."""
    if isinstance(values, Interval):
        return f"[{values.low:g}, {values.high:g}]{' log' if values.log else ''}"
    return "{" + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values) + "}"


def grid_size(params: dict[str, list[Any] | Interval]) -> int | None:
    """The number of points of the grid of ``params``; None when a range makes it infinite."""
    if any(isinstance(v, Interval) for v in params.values()):
        return None
    return math.prod(len(v) for v in params.values())


def grid(params: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``params``, the first key varying slowest."""
    keys = list(params)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*params.values())]


def expand(values: dict[str, Any]) -> dict[str, Any]:
    """A trial's values with tied keys (``loss.alpha,loss.beta`` -> ``[0.1, 9.9]``) split."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if "," in key:
            out.update(zip(key.split(","), value, strict=True))
        else:
            out[key] = value
    return out


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, numbers.Real))


def _values(where: str, key: str, value: Any) -> list[Any]:
    """The list of values of ``key`` (of tuples, for a tied key), checked."""
    width = len(key.split(","))
    if width == 1:
        ok = isinstance(value, list) and value and all(_scalar(v) for v in value)
    else:
        ok = (
            isinstance(value, list)
            and value
            and all(
                isinstance(v, list) and len(v) == width and all(_scalar(x) for x in v)
                for v in value
            )
        )
    if not ok:
        shape = "values" if width == 1 else f"lists of {width} values (one per name)"
        raise ConfigError(
            f"{where}: {key}={value!r} must be a non-empty list of {shape}"
            + (" or a range {low, high, log}" if width == 1 else "")
        )
    return [list(v) if isinstance(v, list) else v for v in value]


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _interval(where: str, key: str, value: dict) -> Interval:
    unknown = set(value) - {"low", "high", "log"}
    low, high, log = value.get("low"), value.get("high"), value.get("log", False)
    if unknown or not _number(low) or not _number(high) or not isinstance(log, bool):
        raise ConfigError(
            f"{where}: {key}={value!r} is not a range: write {{low: <number>, high: <number>}} "
            "with an optional log: true"
        )
    if not low < high or (log and low <= 0):
        raise ConfigError(
            f"{where}: {key}={value!r} is an empty range: needs low < high (and low > 0 with log)"
        )
    return Interval(float(low), float(high), log)


def parse_params(where: str, params: Any) -> dict[str, list[Any] | Interval]:
    """The ``params`` mapping of a space, checked; ``where`` names it in errors."""
    if not isinstance(params, dict) or not params:
        raise ConfigError(
            f"{where}: the space is empty: 'params' must map each parameter to a list of "
            "values or a range {low, high, log}"
        )
    out: dict[str, list[Any] | Interval] = {}
    for key, value in params.items():
        key = str(key).replace(" ", "")
        if isinstance(value, dict) and "," not in key:
            out[key] = _interval(where, key, value)
        else:
            out[key] = _values(where, key, value)
    return out


def space_file(trees: list[Traversable | Path], group: str, option: str) -> Any:
    """The space file of ``option`` of ``group`` in the first of ``trees`` that has one."""
    for tree in trees:
        path = tree.joinpath(SPACE_DIR, group, f"{option}.yaml")
        if path.is_file():
            return path
    return None


def load_space(trees: list[Traversable | Path], group: str, option: str, prefix: str) -> Space:
    """The space of ``option`` of ``group`` (empty when it declares none), its keys
    prefixed ``prefix`` (``loss``, ``regularizer.entropy``)."""
    path = space_file(trees, group, option)
    if path is None:
        return Space(prefix, option)
    where = f"{SPACE_DIR}/{group}/{option}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot be read: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"source", "params"}:
        raise ConfigError(f"{where}: must hold 'source' and 'params' only")
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{where}: 'source' must name where the values come from")
    return Space(prefix, option, parse_params(where, data.get("params")), source, str(path))


def missing_keys(space: Space, node: dict[str, Any]) -> list[str]:
    """The keys of ``space`` that the config ``node`` of its option does not have."""
    missing = []
    for key in (part for k in space.params for part in k.split(",")):
        at: Any = node
        for part in key.split("."):
            if not isinstance(at, dict) or part not in at or part.startswith("_"):
                missing.append(key)
                break
            at = at[part]
    return missing


def parameters(node: dict[str, Any], prefix: str = "") -> list[str]:
    """The tunable keys of a config ``node``: its values, nested ones dotted, not ``_target_``."""
    out = []
    for key, value in node.items():
        if str(key).startswith("_") or key == "defaults":
            continue
        if isinstance(value, dict):
            out += parameters(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def check_space(space: Space, node: dict[str, Any]) -> None:
    """A :class:`ConfigError` when ``space`` names a parameter its option does not have."""
    missing = missing_keys(space, node)
    if missing:
        raise ConfigError(
            f"{SPACE_DIR}/{space.group.split('.')[0]}/{space.option}.yaml names "
            f"{', '.join(missing)}, which {space.group}={space.option} does not have. "
            f"Its parameters: {', '.join(parameters(node)) or 'none'}"
        )
