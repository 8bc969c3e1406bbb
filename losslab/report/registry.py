"""Published results shipped with losslab: the numbers papers report, beside reproduced ones.

A registry holds the results of one paper, as the paper (or its official
repository) reports them, in a YAML file. The shipped ones live in
``losslab/report/published/``; the file stem is the registry's name
(``losslab compare DIR --published apl``). Any YAML file of the same schema can
be loaded by its path.

Schema of a file::

    paper: "Authors. Title. Venue year."      # required
    url: https://arxiv.org/abs/...            # optional
    source: "Table 2"                          # where every cell comes from, unless a cell says
    protocol:                                  # defaults of every cell; a cell may override any
      model: resnet34                          # free text or a losslab model option
      epochs: 120
      selection: final                         # one of SELECTIONS
      seeds: 3                                 # runs behind each mean
      metric: test.acc                         # <train|val|test>.<metric name>
    cells:
      - dataset: cifar10                       # a stem of losslab/conf/dataset/*.yaml
        noise: {type: symmetric, rate: 0.4, params: {include_true: false}}
        loss: gce                              # a stem of losslab/conf/loss/*.yaml
        loss_params: {q: 0.7}                  # optional: the loss's settings in the paper
        value: 0.8333                          # fractions for acc/ece-like metrics
        std: 0.0039                            # optional, same unit
        source: "Table 2, row GCE"             # optional override
        note: "..."                            # optional

``noise.type`` is what a run records as ``results.json`` ``noise.type``;
``noise.rate`` is the nominal rate as a fraction (0 for ``none``; omitted for
``human`` noise, which has none, and optional for ``transition`` noise);
``noise.params`` is matched as a subset of the run's ``noise.params``.
``loss_params`` keys are dotted paths into the loss option's YAML (``q``,
``terms.rce.A``); they document how the paper set the loss and are not used by
:func:`lookup`.

Selection rules (:data:`SELECTIONS`): ``final`` is the last epoch, ``best`` the
epoch of best (noisy) validation accuracy, ``best_clean_val`` the epoch chosen on
clean validation labels, ``oracle`` the epoch of best test accuracy.

Every problem of a file is a :class:`RegistryError` whose one-line message
names the file, the cell, the field, the bad value and the valid choices.

Example:
    >>> from losslab.report.registry import load, lookup
    >>> reg = load("apl")
    >>> [c.value for c in lookup(reg, dataset="cifar10", loss="nce_rce", noise_type="symmetric",
    ...     noise_rate=0.4, noise_params={"include_true": False, "exact": False},
    ...     metric="test.acc")]
    [0.8602]
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: Selection rules a cell may name (how the paper picked the reported epoch).
SELECTIONS = ("final", "best", "best_clean_val", "oracle")

#: Noise types, as a run records them in ``results.json`` ``noise.type``.
NOISE_TYPES = ("none", "symmetric", "asymmetric", "instance", "transition", "human")

#: Keys of ``noise.params`` each noise type records (``LabelNoise.params()``).
NOISE_PARAMS: dict[str, tuple[str, ...]] = {
    "none": (),
    "symmetric": ("include_true", "exact"),
    "asymmetric": ("mapping", "pairs"),
    "instance": ("tau",),
    "transition": ("file",),
    "human": ("file", "label"),
}

#: Values of ``noise.params.mapping`` an asymmetric run records (``auto`` is resolved).
ASYMMETRIC_MAPPINGS = ("cifar10", "cifar100", "mnist", "cyclic", "pairs")

#: Values of ``noise.params.label`` of human (CIFAR-N) noise.
HUMAN_LABELS = ("aggre", "rand1", "rand2", "rand3", "worst", "noisy100")

#: Noise types whose cells must state a nominal rate.
RATED_NOISE = ("symmetric", "asymmetric", "instance")

#: Metric names of a run's record (the same everywhere in losslab).
METRIC_NAMES = (
    "acc",
    "acc_top5",
    "nll",
    "brier",
    "ece",
    "ece_adaptive",
    "ece_classwise",
    "mce",
    "ece_ts",
    "nll_ts",
    "temperature",
    "entropy",
    "entropy_correct",
    "entropy_incorrect",
    "aurc",
)

#: Sections of a selection summary a metric path starts with.
METRIC_SECTIONS = ("train", "val", "test")

#: Metrics whose last name starts with one of these are fractions in [0, 1].
FRACTION_PREFIXES = ("acc", "ece", "mce", "aurc")

#: Absolute tolerance of :func:`lookup` on noise rates and numeric noise parameters.
RATE_TOLERANCE = 1e-9

TOP_FIELDS = ("paper", "url", "source", "protocol", "cells")
PROTOCOL_FIELDS = ("model", "epochs", "selection", "seeds", "metric")
CELL_FIELDS = (
    "dataset",
    "noise",
    "loss",
    "loss_params",
    "value",
    "std",
    "source",
    "note",
    *PROTOCOL_FIELDS,
)
NOISE_FIELDS = ("type", "rate", "params")

PUBLISHED = Path(__file__).resolve().parent / "published"
CONF = Path(__file__).resolve().parents[1] / "conf"


class RegistryError(ValueError):
    """A registry that cannot be used: a one-line message naming the file, the cell
    (index and loss/dataset), the field, the bad value and the valid choices."""


@dataclass(frozen=True)
class PublishedCell:
    """One reported number and the setting it belongs to.

    Attributes:
        paper_name: the registry's name (its file stem, e.g. ``apl``).
        paper: the citation.
        source: where the number is printed (a table, or a repository and file).
        dataset: a losslab dataset option.
        model: the paper's network (free text or a losslab model option), or None.
        noise_type: one of :data:`NOISE_TYPES`.
        noise_rate: nominal rate as a fraction; 0.0 for clean labels; None where the
            noise has no stated nominal rate (human noise).
        noise_params: matched as a subset of a run's ``noise.params``.
        loss: a losslab loss option.
        loss_params: the loss's settings in the paper (dotted keys of the option's YAML).
        metric: metric path below the selection rule, e.g. ``test.acc``.
        value: the reported mean, in the unit losslab stores (fractions for acc/ece).
        std: the reported spread, same unit, or None.
        epochs: training epochs, or None.
        selection: one of :data:`SELECTIONS`.
        seeds: runs behind the mean, or None when the paper does not say.
        note: protocol details that matter for a comparison, or None.
    """

    paper_name: str
    paper: str
    source: str
    dataset: str
    model: str | None
    noise_type: str
    noise_rate: float | None
    noise_params: dict[str, Any]
    loss: str
    loss_params: dict[str, Any]
    metric: str
    value: float
    std: float | None
    epochs: int | None
    selection: str
    seeds: int | None
    note: str | None


@dataclass(frozen=True)
class Registry:
    """The published results of one paper.

    Attributes:
        name: the file stem (``apl``), the name ``--published`` takes.
        paper: the citation.
        url: where to read the paper, or None.
        cells: every reported number, in file order.
    """

    name: str
    paper: str
    url: str | None
    cells: tuple[PublishedCell, ...]


# ------------------------------------------------------------------ public API


def names() -> list[str]:
    """The shipped registries (stems of ``losslab/report/published/*.yaml``), sorted."""
    return sorted(p.stem for p in PUBLISHED.glob("*.yaml"))


def load(name: str | os.PathLike[str]) -> Registry:
    """A shipped registry by name, or a registry file by its path.

    Args:
        name: a name of :func:`names` (``apl``), or the path of a ``.yaml``/``.yml`` file.

    Returns:
        The validated registry.

    Raises:
        RegistryError: an unknown name (the message lists the valid ones), or any problem
            of the file (see :func:`load_file`).
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    explicit = path.suffix in (".yaml", ".yml") or "/" in text or os.sep in text
    known = names()
    if text in known and not explicit:
        return load_file(PUBLISHED / f"{text}.yaml")
    if explicit or path.is_file():
        return load_file(path)
    raise RegistryError(
        f"unknown published registry '{text}'; valid names: {', '.join(known) or '(none)'} "
        f"or the path of a .yaml file{_suggest(text, known)}"
    )


def load_file(path: str | os.PathLike[str]) -> Registry:
    """Read and validate one registry file; the registry is named after the file stem.

    Args:
        path: the YAML file.

    Returns:
        The registry, every cell with the protocol defaults applied.

    Raises:
        RegistryError: the file is missing or unreadable, is not valid YAML (or repeats a
            key), or breaks the schema: a missing required field, an unknown field, a value
            of the wrong type or out of range, an unknown dataset/loss option, noise type,
            noise parameter, metric or selection rule, or a duplicate cell.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise RegistryError(f"{where}: no such registry file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{where}: cannot be read: {_one_line(exc)}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{where}: not valid YAML: {_yaml_problem(exc)}") from None
    return _parse(data, path.stem, where)


def lookup(
    registry: Registry,
    *,
    dataset: str,
    loss: str,
    noise_type: str,
    noise_rate: float | None,
    noise_params: Mapping[str, Any] | None,
    metric: str,
) -> list[PublishedCell]:
    """The cells of ``registry`` that report ``metric`` for one setting of a run.

    A cell matches when its dataset, loss, noise type and metric equal the given
    ones, its nominal rate equals ``noise_rate`` within :data:`RATE_TOLERANCE`
    (a cell without a rate, as human noise has none, matches any rate; for clean
    labels None and 0 are the same), and every entry of its ``noise_params`` is in
    ``noise_params`` with an equal value (numbers within the tolerance): the run
    may record more parameters than the paper states.

    Args:
        registry: from :func:`load`.
        dataset: the run's dataset option.
        loss: the run's loss option.
        noise_type: the run's ``noise.type``.
        noise_rate: the run's nominal ``noise.rate`` (None where it has none).
        noise_params: the run's ``noise.params`` (None: no parameters).
        metric: a metric path as in the cells (``test.acc``); a leading selection rule
            (``final.test.acc``) is ignored: the cell's ``selection`` says which epoch the
            paper reports.

    Returns:
        The matching cells, in file order (several when the paper reports the setting
        for more than one model).
    """
    wanted = _strip_selection(metric)
    run_params = dict(noise_params or {})
    found = []
    for cell in registry.cells:
        if (cell.dataset, cell.loss, cell.noise_type, cell.metric) != (
            dataset,
            loss,
            noise_type,
            wanted,
        ):
            continue
        if _rates_match(cell.noise_type, cell.noise_rate, noise_rate) and _subset(
            cell.noise_params, run_params
        ):
            found.append(cell)
    return found


# ------------------------------------------------------------------ matching


def _strip_selection(metric: str) -> str:
    parts = metric.split(".")
    if len(parts) > 2 and parts[0] in SELECTIONS:
        return ".".join(parts[1:])
    return metric


def _rates_match(noise_type: str, cell_rate: float | None, run_rate: Any) -> bool:
    if noise_type == "none":
        cell_rate = 0.0 if cell_rate is None else cell_rate
        run_rate = 0.0 if run_rate is None else run_rate
    if cell_rate is None:
        return True
    if not _is_number(run_rate):
        return False
    return abs(float(run_rate) - cell_rate) <= RATE_TOLERANCE


def _subset(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    return all(key in actual and _same(value, actual[key]) for key, value in expected.items())


def _same(expected: Any, actual: Any) -> bool:
    if _is_number(expected) and _is_number(actual):
        return abs(float(expected) - float(actual)) <= RATE_TOLERANCE
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return expected.keys() == actual.keys() and _subset(expected, actual)
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(map(_same, expected, actual))
    return type(expected) is type(actual) and expected == actual


# ------------------------------------------------------------------ parsing


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' is given twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Where:
    """Where a problem is, for messages: ``file: cells[3] (loss=gce, dataset=cifar10)``."""

    def __init__(self, file: str, index: int | None = None, raw: Any = None) -> None:
        self.file = file
        self.index = index
        self.label = ""
        if index is not None:
            bits = []
            if isinstance(raw, Mapping):
                bits = [f"{k}={raw[k]}" for k in ("loss", "dataset") if k in raw]
            self.label = f"cells[{index}]" + (f" ({', '.join(bits)})" if bits else "")

    def error(self, message: str) -> RegistryError:
        prefix = f"{self.file}: {self.label}: " if self.label else f"{self.file}: "
        return RegistryError(_one_line(prefix + message))


def _parse(data: Any, name: str, file: str) -> Registry:
    top = _Where(file)
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise top.error(
            f"the file is {kind}; expected a mapping with the fields {_list(TOP_FIELDS)}"
        )
    _check_fields(top, data, TOP_FIELDS, "a registry field")
    paper = _required_text(top, data, "paper")
    url = _text(top, data, "url")
    default_source = _text(top, data, "source")
    protocol = data.get("protocol") or {}
    if not isinstance(protocol, Mapping):
        raise top.error(
            f"protocol: expected a mapping of {_list(PROTOCOL_FIELDS)}, got {_show(protocol)}"
        )
    _check_fields(top, protocol, PROTOCOL_FIELDS, "a protocol field", prefix="protocol.")
    if "cells" not in data:
        raise top.error("missing required field 'cells' (a list of reported numbers)")
    raw_cells = data["cells"]
    if not isinstance(raw_cells, list) or not raw_cells:
        raise top.error(f"cells: expected a non-empty list of cells, got {_show(raw_cells)}")
    cells = []
    seen: dict[tuple[Any, ...], int] = {}
    for index, raw in enumerate(raw_cells):
        where = _Where(file, index, raw)
        cell = _parse_cell(where, raw, name, paper, default_source, protocol)
        key = (
            cell.dataset,
            cell.noise_type,
            cell.noise_rate,
            repr(sorted(cell.noise_params.items())),
            cell.loss,
            cell.metric,
            cell.model,
        )
        if key in seen:
            raise where.error(
                f"duplicates cells[{seen[key]}]: the same dataset, noise, loss, metric and "
                f"model ({cell.dataset}, {cell.noise_type} {cell.noise_rate}, {cell.loss}, "
                f"{cell.metric}, {cell.model})"
            )
        seen[key] = index
        cells.append(cell)
    return Registry(name=name, paper=paper, url=url, cells=tuple(cells))


def _parse_cell(
    where: _Where,
    raw: Any,
    name: str,
    paper: str,
    default_source: str | None,
    protocol: Mapping[str, Any],
) -> PublishedCell:
    if not isinstance(raw, Mapping):
        raise where.error(f"expected a mapping of cell fields, got {_show(raw)}")
    _check_fields(where, raw, CELL_FIELDS, "a cell field")
    merged = {**protocol, **raw}
    dataset = _option(where, raw, "dataset", _options("dataset"), "a losslab dataset option")
    loss = _option(where, raw, "loss", _options("loss"), "a losslab loss option")
    noise_type, noise_rate, noise_params = _noise(where, raw)
    loss_params = _loss_params(where, raw.get("loss_params"), loss)
    metric = _metric(where, merged)
    value = _measure(where, raw, "value", metric)
    if value is None:
        raise where.error(f"missing required field 'value' (the reported {metric})")
    std = _measure(where, raw, "std", metric)
    source = _text(where, raw, "source") or default_source
    if source is None:
        raise where.error(
            "missing required field 'source' (give it at the top of the file for every cell, "
            "or in the cell)"
        )
    selection = merged.get("selection")
    if selection is None:
        raise where.error(
            f"missing required field 'selection' (in protocol or the cell); valid: "
            f"{_list(SELECTIONS)}"
        )
    if selection not in SELECTIONS:
        raise where.error(
            f"selection {_show(selection)} is not a selection rule; valid: {_list(SELECTIONS)}"
            f"{_suggest(selection, SELECTIONS)}"
        )
    return PublishedCell(
        paper_name=name,
        paper=paper,
        source=source,
        dataset=dataset,
        model=_text(where, merged, "model"),
        noise_type=noise_type,
        noise_rate=noise_rate,
        noise_params=noise_params,
        loss=loss,
        loss_params=loss_params,
        metric=metric,
        value=value,
        std=std,
        epochs=_count(where, merged, "epochs"),
        selection=selection,
        seeds=_count(where, merged, "seeds"),
        note=_text(where, raw, "note"),
    )


def _noise(where: _Where, raw: Mapping[str, Any]) -> tuple[str, float | None, dict[str, Any]]:
    if "noise" not in raw:
        raise where.error(
            "missing required field 'noise' (e.g. {type: symmetric, rate: 0.4}; "
            "{type: none} for clean labels)"
        )
    noise = raw["noise"]
    if not isinstance(noise, Mapping):
        raise where.error(f"noise: expected a mapping of {_list(NOISE_FIELDS)}, got {_show(noise)}")
    _check_fields(where, noise, NOISE_FIELDS, "a noise field", prefix="noise.")
    if "type" not in noise:
        raise where.error(f"missing required field 'noise.type'; valid: {_list(NOISE_TYPES)}")
    kind = noise["type"]
    if kind not in NOISE_TYPES:
        raise where.error(
            f"noise.type {_show(kind)} is not a noise type; valid: {_list(NOISE_TYPES)}"
            f"{_suggest(kind, NOISE_TYPES)}"
        )
    rate = _noise_rate(where, noise, kind)
    params = _noise_params(where, noise, kind)
    return kind, rate, copy.deepcopy(dict(params))


def _noise_rate(where: _Where, noise: Mapping[str, Any], kind: str) -> float | None:
    """``noise.rate`` as a fraction in [0, 1]: required for rated noise, 0 for none."""
    rate = noise.get("rate")
    if rate is None:
        if kind in RATED_NOISE:
            raise where.error(
                f"missing required field 'noise.rate' (the nominal {kind} rate as a fraction)"
            )
        return 0.0 if kind == "none" else None
    if isinstance(rate, str) or not _is_number(rate):
        raise where.error(
            f"noise.rate {_show(rate)} is not a number; give the nominal rate as a "
            "fraction, e.g. 0.4"
        )
    rate = float(rate)
    if not 0.0 <= rate <= 1.0:
        hint = f" ({rate / 100:g} for {rate:g} %)" if 1.0 < rate <= 100.0 else ""
        raise where.error(
            f"noise.rate {_show(noise['rate'])} is not a fraction in [0, 1]; give the "
            f"nominal rate as a fraction{hint}"
        )
    if kind == "none" and rate != 0.0:
        raise where.error(f"noise.rate {_show(noise['rate'])} with noise.type none; must be 0")
    return rate


def _noise_params(where: _Where, noise: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """``noise.params``: only the parameters a run of ``kind`` noise records, valid values."""
    params = noise.get("params") or {}
    if not isinstance(params, Mapping):
        raise where.error(f"noise.params: expected a mapping, got {_show(params)}")
    valid = NOISE_PARAMS[kind]
    for key in params:
        if key not in valid:
            raise where.error(
                f"noise.params.{key} is not a parameter {kind} noise records; valid: "
                f"{_list(valid) or '(none)'}{_suggest(str(key), valid)}"
            )
    mapping = params.get("mapping")
    if kind == "asymmetric" and "mapping" in params and mapping not in ASYMMETRIC_MAPPINGS:
        raise where.error(
            f"noise.params.mapping {_show(mapping)} is not a mapping a run records; valid: "
            f"{_list(ASYMMETRIC_MAPPINGS)}{_suggest(str(mapping), ASYMMETRIC_MAPPINGS)}"
        )
    label = params.get("label")
    if kind == "human" and "label" in params and label not in HUMAN_LABELS:
        raise where.error(
            f"noise.params.label {_show(label)} is not a CIFAR-N label set; valid: "
            f"{_list(HUMAN_LABELS)}{_suggest(str(label), HUMAN_LABELS)}"
        )
    return params


def _loss_params(where: _Where, raw: Any, loss: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise where.error(f"loss_params: expected a mapping, got {_show(raw)}")
    valid = _loss_keys(loss)
    for key, value in raw.items():
        if not isinstance(key, str) or key not in valid:
            raise where.error(
                f"loss_params.{key} is not a setting of loss option '{loss}' "
                f"(conf/loss/{loss}.yaml); valid: {_list(valid) or '(none)'}"
                f"{_suggest(str(key), valid)}"
            )
        if not (value is None or isinstance(value, (str, bool)) or _is_number(value)):
            raise where.error(
                f"loss_params.{key}: expected a number, text or bool, got {_show(value)}"
            )
    return dict(raw)


def _metric(where: _Where, merged: Mapping[str, Any]) -> str:
    if merged.get("metric") is None:
        raise where.error(
            "missing required field 'metric' (in protocol or the cell), e.g. test.acc"
        )
    metric = merged["metric"]
    if not isinstance(metric, str):
        raise where.error(f"metric {_show(metric)} is not a metric path like test.acc")
    parts = metric.split(".")
    if len(parts) == 3 and parts[0] in SELECTIONS:
        raise where.error(
            f"metric {_show(metric)} names a selection rule; give the path below it "
            f"({'.'.join(parts[1:])}) and the rule as selection: {parts[0]}"
        )
    if len(parts) != 2 or parts[0] not in METRIC_SECTIONS:
        raise where.error(
            f"metric {_show(metric)} is not a metric path <{'|'.join(METRIC_SECTIONS)}>.<name>, "
            "e.g. test.acc"
        )
    if parts[1] not in METRIC_NAMES:
        raise where.error(
            f"metric {_show(metric)}: '{parts[1]}' is not a losslab metric; valid: "
            f"{_list(METRIC_NAMES)}{_suggest(parts[1], METRIC_NAMES)}"
        )
    return metric


def _measure(where: _Where, raw: Mapping[str, Any], field: str, metric: str) -> float | None: ...
def _measure(where: _Where, raw: Mapping[str, Any], field: str, metric: str) -> float | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, str) or not _is_number(value):
        hint = ""
        if isinstance(value, str) and _is_fraction_metric(metric):
            hint = f" (a fraction for {metric}: 0.871 for 87.1 %)"
        raise where.error(f"{field} {_show(value)} is not a number; give a number{hint}")
    value = float(value)
    if field == "std" and value < 0:
        raise where.error(f"std {_show(raw[field])} is negative; give the spread, >= 0")
    if _is_fraction_metric(metric) and not 0.0 <= value <= 1.0:
        hint = f" ({value / 100:g} for {value:g} %)" if 1.0 < value <= 100.0 else ""
        raise where.error(
            f"{field} {_show(raw[field])} is outside [0, 1]: {metric} is stored as a fraction{hint}"
        )
    return value


def _count(where: _Where, merged: Mapping[str, Any], field: str) -> int | None:
    value = merged.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise where.error(f"{field} {_show(value)} is not a whole number >= 1")
    return value


def _option(
    where: _Where, raw: Mapping[str, Any], field: str, valid: tuple[str, ...], what: str
) -> str:
    if field not in raw:
        raise where.error(f"missing required field '{field}' ({what})")
    value = raw[field]
    if value not in valid:
        raise where.error(
            f"{field} {_show(value)} is not {what}; valid: {_list(valid)}"
            f"{_suggest(str(value), valid)}"
        )
    return value


def _text(where: _Where, raw: Mapping[str, Any], field: str) -> str | None:
    value = raw.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise where.error(f"{field} {_show(value)} is not a non-empty text")
    return value


def _required_text(where: _Where, raw: Mapping[str, Any], field: str) -> str:
    value = _text(where, raw, field)
    if value is None:
        raise where.error(f"missing required field '{field}'")
    return value


def _check_fields(
    where: _Where, raw: Mapping[Any, Any], valid: tuple[str, ...], what: str, prefix: str = ""
) -> None:
    for key in raw:
        if key not in valid:
            raise where.error(
                f"{prefix}{key} is not {what}; valid: {_list(valid)}{_suggest(str(key), valid)}"
            )


# ------------------------------------------------------------------ helpers


@functools.cache
def _options(group: str) -> tuple[str, ...]:
    """Stems of ``losslab/conf/<group>/*.yaml``: the options of a config group."""
    return tuple(sorted(p.stem for p in (CONF / group).glob("*.yaml")))


@functools.cache
def _loss_keys(loss: str) -> tuple[str, ...]:
    """Dotted keys of a loss option's YAML, without Hydra's ``_target_``-like keys."""
    try:
        data = yaml.safe_load((CONF / "loss" / f"{loss}.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return ()
    return tuple(sorted(_flatten(data if isinstance(data, Mapping) else {})))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in data.items():
        if not isinstance(key, str) or key.startswith("_") or key == "defaults":
            continue
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_fraction_metric(metric: str) -> bool:
    return metric.rsplit(".", 1)[-1].lower().startswith(FRACTION_PREFIXES)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _list(values: Iterable[str]) -> str:
    return ", ".join(values)


def _suggest(value: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(valid), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _one_line(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value)).strip()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or _one_line(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return _one_line(problem)
