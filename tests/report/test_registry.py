"""The registry of published results: shipped files, schema validation, lookup."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from losslab.report import registry as reg
from losslab.report.registry import RegistryError, load, load_file, lookup, names

#: Reported numbers the shipped registries hold together, at least.
MIN_CELLS = 40


def base() -> dict[str, Any]:
    """A valid one-cell registry, as data to mutate."""
    return {
        "paper": "Doe. A Paper. 2024.",
        "url": "https://example.org/paper",
        "source": "Table 1",
        "protocol": {
            "model": "resnet18",
            "epochs": 10,
            "selection": "final",
            "seeds": 3,
            "metric": "test.acc",
        },
        "cells": [
            {
                "dataset": "cifar10",
                "noise": {"type": "symmetric", "rate": 0.4, "params": {"include_true": False}},
                "loss": "gce",
                "loss_params": {"q": 0.7},
                "value": 0.8713,
                "std": 0.0012,
            }
        ],
    }


def write(tmp_path: Path, data: Any, name: str = "paper.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------ shipped files


@pytest.mark.parametrize("name", names())
def test_shipped_registry_loads_and_validates(name: str) -> None:
    registry = load(name)
    assert registry.name == name
    assert registry.paper and registry.cells
    for cell in registry.cells:
        assert cell.paper_name == name and cell.paper == registry.paper
        assert cell.source.strip()
        assert math.isfinite(cell.value)
        assert cell.selection in reg.SELECTIONS


@pytest.mark.parametrize("name", names())
def test_every_shipped_cell_is_found_by_its_own_setting(name: str) -> None:
    registry = load(name)
    for cell in registry.cells:
        found = lookup(
            registry,
            dataset=cell.dataset,
            loss=cell.loss,
            noise_type=cell.noise_type,
            noise_rate=cell.noise_rate,
            noise_params=cell.noise_params,
            metric=cell.metric,
        )
        assert any(f is cell for f in found)


def test_shipped_registries_hold_enough_cells() -> None:
    shipped = names()
    assert shipped == sorted(shipped)
    assert len(shipped) >= 2
    assert sum(len(load(n).cells) for n in shipped) >= MIN_CELLS


def test_apl_numbers_are_fractions_of_the_printed_percent() -> None:
    # plot_results.ipynb@fdd52a2, CIFAR-10-Sym, NCE+RCE at 0.4: 86.02±0.09
    (cell,) = lookup(
        load("apl"),
        dataset="cifar10",
        loss="nce_rce",
        noise_type="symmetric",
        noise_rate=0.4,
        noise_params={"include_true": False, "exact": False},
        metric="test.acc",
    )
    assert (cell.value, cell.std, cell.seeds, cell.selection) == (0.8602, 0.0009, 3, "final")
    assert cell.loss_params["terms.rce.A"] == pytest.approx(-math.log(1e-4))


# ------------------------------------------------------------------ constants vs losslab


def test_noise_vocabulary_matches_the_noise_models() -> None:
    from losslab.datasets import noise

    models = [
        noise.NoNoise(),
        noise.SymmetricNoise(),
        noise.AsymmetricNoise(mapping="cifar10"),
        noise.InstanceNoise(),
        noise.TransitionNoise(),
        noise.HumanNoise(),
    ]
    assert tuple(m.kind for m in models) == reg.NOISE_TYPES
    for model in models:
        params = model.params()
        if model.kind == "asymmetric":
            params = {**params, "pairs": None}  # recorded with mapping=pairs only
        assert set(params) == set(reg.NOISE_PARAMS[model.kind])
    assert set(reg.HUMAN_LABELS) == set(noise.HUMAN_LABELS)
    assert set(reg.ASYMMETRIC_MAPPINGS) == set(noise.ASYMMETRIC_MAPPINGS) - {"auto"}


def test_metric_and_selection_vocabulary_matches_the_record() -> None:
    from losslab.metrics.classification import METRIC_KEYS
    from losslab.report.record import SELECTIONS

    assert set(METRIC_KEYS) | {"ece_ts", "nll_ts", "temperature"} == set(reg.METRIC_NAMES)
    assert reg.SELECTIONS == SELECTIONS


# ------------------------------------------------------------------ validation


def drop(path: str):
    """A mutation that deletes the dotted ``path`` (``cells.0.value``)."""

    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return apply


def put(path: str, value: Any):
    """A mutation that sets the dotted ``path`` to ``value``."""

    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return apply


def rename(path: str, new: str):
    """A mutation that renames the last key of the dotted ``path`` to ``new``."""

    def apply(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[new] = node.pop(last)

    return apply


def duplicate_cell(data: dict[str, Any]) -> None:
    data["cells"].append(copy.deepcopy(data["cells"][0]))
    data["cells"][1]["value"] = 0.5


def no_source_anywhere(data: dict[str, Any]) -> None:
    del data["source"]


BAD = [
    # missing required fields
    ("missing paper", drop("paper"), ["'paper'"]),
    ("missing source", no_source_anywhere, ["cells[0]", "'source'"]),
    ("missing cells", drop("cells"), ["'cells'"]),
    ("empty cells", put("cells", []), ["cells", "non-empty list"]),
    ("missing dataset", drop("cells.0.dataset"), ["cells[0]", "'dataset'"]),
    ("missing noise", drop("cells.0.noise"), ["cells[0]", "'noise'"]),
    ("missing noise.type", drop("cells.0.noise.type"), ["noise.type", "symmetric, asymmetric"]),
    ("missing rate", drop("cells.0.noise.rate"), ["noise.rate"]),
    ("missing loss", drop("cells.0.loss"), ["'loss'"]),
    ("missing value", drop("cells.0.value"), ["'value'", "test.acc"]),
    ("missing metric", drop("protocol.metric"), ["'metric'", "test.acc"]),
    ("missing selection", drop("protocol.selection"), ["'selection'", "final, best"]),
    # unknown fields, with a suggestion
    ("unknown top field", rename("cells", "cels"), ["cels", "did you mean 'cells'", "paper"]),
    ("unknown cell field", rename("cells.0.value", "vale"), ["vale", "did you mean 'value'"]),
    ("unknown protocol field", rename("protocol.epochs", "epoch"), ["epoch", "'epochs'"]),
    ("unknown noise field", rename("cells.0.noise.rate", "rat"), ["rat", "'rate'"]),
    # wrong types and ranges
    ("value as text", put("cells.0.value", "87.1"), ["'87.1'", "not a number", "0.871"]),
    ("rate in percent", put("cells.0.noise.rate", 40), ["40", "fraction", "0.4"]),
    ("rate as text", put("cells.0.noise.rate", "0.4"), ["'0.4'", "not a number"]),
    ("value in percent", put("cells.0.value", 87.13), ["87.13", "outside [0, 1]", "0.8713"]),
    ("std in percent", put("cells.0.std", 1.2), ["std", "outside [0, 1]"]),
    ("negative std", put("cells.0.std", -0.01), ["std", "negative"]),
    ("epochs as text", put("protocol.epochs", "120"), ["epochs", "'120'", "whole number"]),
    ("bool seeds", put("protocol.seeds", True), ["seeds", "True"]),
    ("rate with no noise", put("cells.0.noise", {"type": "none", "rate": 0.2}), ["must be 0"]),
    # unknown choices
    ("unknown dataset", put("cells.0.dataset", "cifar"), ["'cifar'", "cifar10", "letter"]),
    ("unknown loss", put("cells.0.loss", "gcee"), ["'gcee'", "did you mean 'gce'"]),
    (
        "unknown noise type",
        put("cells.0.noise.type", "symetric"),
        ["'symetric'", "none, symmetric, asymmetric, instance, transition, human"],
    ),
    (
        "unknown selection",
        put("protocol.selection", "last"),
        ["'last'", "final, best, best_clean_val, oracle"],
    ),
    ("unknown metric", put("protocol.metric", "test.accuracy"), ["'accuracy'", "acc, acc_top5"]),
    ("metric with rule", put("protocol.metric", "final.test.acc"), ["test.acc", "selection"]),
    ("metric without split", put("protocol.metric", "acc"), ["'acc'", "test.acc"]),
    (
        "unknown noise param",
        put("cells.0.noise.params", {"include_tru": False}),
        ["include_tru", "include_true, exact"],
    ),
    (
        "unknown human label",
        put("cells.0.noise", {"type": "human", "params": {"label": "worse"}}),
        ["'worse'", "aggre", "did you mean 'worst'"],
    ),
    (
        "unknown mapping",
        put("cells.0.noise", {"type": "asymmetric", "rate": 0.2, "params": {"mapping": "auto"}}),
        ["'auto'", "cifar10, cifar100"],
    ),
    (
        "unknown loss setting",
        put("cells.0.loss_params", {"qq": 0.7}),
        ["loss_params.qq", "did you mean 'q'"],
    ),
    ("duplicate cell", duplicate_cell, ["cells[1]", "duplicates cells[0]"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_error(tmp_path: Path, mutate, expected: list[str]) -> None:
    data = base()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(RegistryError) as info:
        load_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_cell_errors_name_the_cell_by_index_and_options(tmp_path: Path) -> None:
    data = base()
    cell = {**copy.deepcopy(data["cells"][0]), "loss": "ce", "value": "0.9"}
    del cell["loss_params"]
    data["cells"].append(cell)
    with pytest.raises(RegistryError, match=r"cells\[1\] \(loss=ce, dataset=cifar10\): value"):
        load_file(write(tmp_path, data))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("paper: [unclosed\ncells: []\n", "not valid YAML: line"),
        ("paper: a\npaper: b\ncells: []\n", "'paper' is given twice"),
        ("", "the file is empty"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
    ids=["syntax", "repeated key", "empty", "list"],
)
def test_unreadable_yaml_names_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(RegistryError) as info:
        load_file(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_missing_file_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no such registry file"):
        load(tmp_path / "absent.yaml")


def test_defaults_and_overrides(tmp_path: Path) -> None:
    data = base()
    data["cells"].append(
        {
            "dataset": "cifar100",
            "noise": {"type": "none"},
            "loss": "ce",
            "value": 1.53,
            "metric": "test.nll",
            "model": "resnet34",
            "epochs": 200,
            "selection": "best",
            "seeds": 5,
            "source": "Table 3",
            "note": "NLL is not a fraction",
        }
    )
    registry = load(write(tmp_path, data, "mine.yaml"))
    first, second = registry.cells
    assert registry.name == "mine" and registry.url == "https://example.org/paper"
    assert (first.model, first.epochs, first.selection, first.seeds) == ("resnet18", 10, "final", 3)
    assert (first.source, first.metric, first.noise_rate, first.std) == (
        "Table 1",
        "test.acc",
        0.4,
        0.0012,
    )
    assert (second.model, second.epochs, second.selection, second.seeds) == (
        "resnet34",
        200,
        "best",
        5,
    )
    assert (second.source, second.metric, second.noise_type, second.noise_rate) == (
        "Table 3",
        "test.nll",
        "none",
        0.0,
    )
    assert second.std is None and second.noise_params == {} and second.loss_params == {}


def test_human_noise_needs_no_rate(tmp_path: Path) -> None:
    data = base()
    data["cells"][0]["noise"] = {"type": "human", "params": {"label": "worst"}}
    (cell,) = load_file(write(tmp_path, data)).cells
    assert (cell.noise_type, cell.noise_rate, cell.noise_params) == (
        "human",
        None,
        {"label": "worst"},
    )


# ------------------------------------------------------------------ lookup


def registry_of(tmp_path: Path) -> reg.Registry:
    data = base()
    more = [
        ("gce", "symmetric", 0.3, {"include_true": False}, "resnet18", 0.80),
        ("gce", "symmetric", 0.3, {"include_true": False}, "resnet34", 0.82),
        ("ce", "none", None, {}, None, 0.93),
        ("ce", "human", None, {"label": "worst"}, None, 0.77),
        ("ce", "asymmetric", 0.2, {"mapping": "pairs", "pairs": [[0, 1], [1, 0]]}, None, 0.85),
    ]
    for loss, kind, rate, params, model, value in more:
        noise: dict[str, Any] = {"type": kind, "params": params}
        if rate is not None:
            noise["rate"] = rate
        data["cells"].append(
            {"dataset": "cifar10", "noise": noise, "loss": loss, "value": value, "model": model}
        )
    return load_file(write(tmp_path, data))


def find(registry: reg.Registry, **kwargs: Any) -> list[float]:
    query = {
        "dataset": "cifar10",
        "loss": "gce",
        "noise_type": "symmetric",
        "noise_rate": 0.4,
        "noise_params": {"include_true": False, "exact": False},
        "metric": "test.acc",
    }
    return [c.value for c in lookup(registry, **{**query, **kwargs})]


def ce(kind: str, rate: float | None, params: dict[str, Any] | None) -> dict[str, Any]:
    """A query for the ce cells of :func:`registry_of`."""
    return {"loss": "ce", "noise_type": kind, "noise_rate": rate, "noise_params": params}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [0.8713]),
        ({"noise_rate": 0.4 + 3e-12}, [0.8713]),  # float noise in a recorded rate
        ({"noise_rate": 0.1 + 0.2}, [0.80, 0.82]),  # 0.30000000000000004, two models
        ({"noise_rate": 0.41}, []),
        ({"noise_rate": None}, []),
        ({"metric": "final.test.acc"}, [0.8713]),  # a leading selection rule is ignored
        ({"metric": "test.ece"}, []),
        ({"dataset": "cifar100"}, []),
        ({"loss": "ce"}, []),
        ({"noise_params": {"include_true": True, "exact": False}}, []),
        ({"noise_params": {"exact": False}}, []),  # the paper's parameter is missing
        ({"noise_params": None}, []),
        (ce("none", 0.0, {}), [0.93]),
        (ce("none", None, None), [0.93]),  # clean labels: no rate is rate 0
        (ce("human", None, {"file": "/data/CIFAR-10_human.pt", "label": "worst"}), [0.77]),
        (ce("human", None, {"file": "x.pt", "label": "aggre"}), []),
        (ce("asymmetric", 0.2, {"mapping": "pairs", "pairs": [[0, 1], [1, 0]]}), [0.85]),
        (ce("asymmetric", 0.2, {"mapping": "pairs", "pairs": [[0, 1]]}), []),
        (ce("asymmetric", 0.2, {"mapping": "cifar10"}), []),
    ],
)
def test_lookup(tmp_path: Path, query: dict[str, Any], expected: list[float]) -> None:
    assert find(registry_of(tmp_path), **query) == expected


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(RegistryError) as info:
        load("apll")
    message = str(info.value)
    assert "'apll'" in message and "did you mean 'apl'" in message
    for name in names():
        assert name in message


def test_load_accepts_a_path(tmp_path: Path) -> None:
    path = write(tmp_path, base(), "own.yaml")
    assert load(str(path)).name == "own"
    assert load(path).cells[0].value == 0.8713
