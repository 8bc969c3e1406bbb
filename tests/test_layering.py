"""The layering of the package: Hydra only in the runner, run values declared, not sniffed."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import losslab
from losslab.report.record import fingerprint, fingerprints
from losslab.runner.build import RUN_VALUES, build, declared_run_values

PACKAGE = Path(losslab.__file__).parent
#: The subpackages whose constructors may take run values.
CONSTRUCTED = ("losses", "regularizers", "loggers")


def _hydra_imports(path: Path) -> list[str]:
    """``import hydra...`` / ``from hydra... import`` anywhere in the file, functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "hydra"]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found += [node.module] if (node.module or "").split(".")[0] == "hydra" else []
    return found


def test_only_the_runner_imports_hydra():
    offenders = {
        str(path.relative_to(PACKAGE.parent)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if "runner" not in path.relative_to(PACKAGE).parts[:1]
        for names in [_hydra_imports(path)]
        if names
    }
    assert offenders == {}, f"leaf libraries import Hydra: {offenders}"


def _classes() -> list[type]:
    out = []
    for sub in CONSTRUCTED:
        package = importlib.import_module(f"losslab.{sub}")
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            out += [
                c
                for c in vars(module).values()
                if inspect.isclass(c) and c.__module__ == module.__name__
            ]
    return out


CLASSES = _classes()


def test_the_classes_are_found():
    names = {c.__name__ for c in CLASSES}
    assert {"ALDRKLLoss", "WeightedSum", "ELRRegularizer", "WandbLogger"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_constructors_declare_the_run_values_they_take(cls):
    taken = set(inspect.signature(cls.__init__).parameters) & set(RUN_VALUES)
    declared = set(declared_run_values(cls))
    assert taken <= declared, f"{cls.__name__} takes {sorted(taken - declared)} undeclared"
    assert declared <= set(RUN_VALUES), f"{cls.__name__} declares unknown run values"
    assert declared <= taken, f"{cls.__name__} declares run values its __init__ does not take"


def _dataset_targets() -> list[object]:
    from hydra.utils import get_object
    from omegaconf import OmegaConf

    targets = {
        OmegaConf.load(path).get("_target_")
        for path in (PACKAGE / "conf" / "dataset").glob("*.yaml")
    }
    return [get_object(t) for t in sorted(targets - {None})]


@pytest.mark.parametrize("fn", _dataset_targets(), ids=lambda f: f.__qualname__)
def test_data_set_functions_declare_the_serving_options_they_take(fn):
    from losslab.runner.build import SERVING_KEYS

    taken = set(inspect.signature(fn).parameters) & set(SERVING_KEYS)
    assert set(declared_run_values(fn)) == taken, f"{fn.__qualname__} takes {sorted(taken)}"


def test_the_runner_sniffs_no_signature():
    text = (PACKAGE / "runner" / "build.py").read_text()
    assert "signature" not in text


def test_leaf_libraries_do_not_sniff_signatures():
    text = (PACKAGE / "losses" / "combination.py").read_text()
    assert "signature" not in text and "instantiate" not in text


def _weighted_sum(**term: object) -> object:
    return OmegaConf.create(
        {
            "_target_": "losslab.losses.combination.WeightedSum",
            "alpha": 1.0,
            "terms": {
                "aldr": {"_target_": "losslab.losses.ldr.ALDRKLLoss", **term},
                "ce": {"_target_": "losslab.losses.ce.CrossEntropyLoss"},
            },
            "weights": {"aldr": "${..alpha}", "ce": 0.5},
        }
    )


def test_a_nested_term_gets_the_run_values_it_declares():
    node = _weighted_sum(lam0=5.0)
    loss = build("loss", node, num_samples=7, num_classes=3, class_counts=torch.ones(3))
    aldr = loss.terms["aldr"]
    assert aldr.num_samples == 7
    assert loss.weights == {"aldr": 1.0, "ce": 0.5}
    assert "num_samples" not in node.terms.aldr, "the config itself is left as it was"
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert torch.isfinite(loss(logits, target, index=torch.arange(4)))


def test_a_term_that_is_not_built_is_refused():
    from losslab.losses.ce import CrossEntropyLoss
    from losslab.losses.combination import WeightedSum

    with pytest.raises(TypeError, match="loss.terms.b is dict"):
        WeightedSum(
            terms={"a": CrossEntropyLoss(), "b": {"_target_": "x"}}, weights={"a": 1, "b": 1}
        )


def test_configs_of_earlier_versions_keep_their_fingerprints():
    """``augment`` gained its ``_target_`` and the combination losses lost
    ``_recursive_: false``: runs recorded before that are the same runs."""
    now = {
        "seed": 0,
        "augment": {"_target_": "losslab.datasets.mixing.Mixing", "mixup_alpha": 0.0},
        "loss": {"_target_": "losslab.losses.combination.WeightedSum", "alpha": 1.0},
    }
    before = {
        "seed": 0,
        "augment": {"mixup_alpha": 0.0},
        "loss": {
            "_target_": "losslab.losses.combination.WeightedSum",
            "_recursive_": False,
            "alpha": 1.0,
        },
    }
    assert fingerprint(before) in fingerprints(now)
    assert fingerprints(before) & fingerprints(now)
    assert fingerprint({**before, "seed": 1}) not in fingerprints(now)


def test_runs_recorded_before_cross_validation_existed_keep_their_fingerprints():
    """Every config gained ``cv: {folds: null, fold: 0}``: a record without it is the same
    run (also one of the versions before augment's ``_target_``); a fold is another run."""
    now = {
        "seed": 0,
        "augment": {"_target_": "losslab.datasets.mixing.Mixing", "mixup_alpha": 0.0},
        "cv": {"folds": None, "fold": 0},
    }
    without_cv = {k: v for k, v in now.items() if k != "cv"}
    assert fingerprint(without_cv) in fingerprints(now)
    assert fingerprint({"seed": 0, "augment": {"mixup_alpha": 0.0}}) in fingerprints(now)
    fold = {**now, "cv": {"folds": 3, "fold": 1}}
    assert fingerprint(without_cv) not in fingerprints(fold)
    assert fingerprint(now) not in fingerprints(fold)


def test_a_presets_study_section_is_not_part_of_a_run():
    run = {"seed": 0, "loss": {"_target_": "x", "q": 0.7}}
    assert fingerprint({**run, "study": {"folds": 5, "trials": 3}}) == fingerprint(run)


def test_vision_runs_of_earlier_versions_keep_their_fingerprints():
    """The torchvision-family data sets became one loader described by their YAML:
    a run recorded with ``losslab.datasets.vision.cifar10`` is the same run, one with
    other constants (here its normalisation) is not."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        now = OmegaConf.to_container(compose("train", ["dataset=cifar10"]), resolve=True)
    # dataset/cifar10.yaml as it was written before
    old_keys = ("num_classes", "input_shape", "root", "download", "augment", "split_seed")
    before = {
        **now,
        "augment": {k: v for k, v in now["augment"].items() if k != "_target_"},
        "dataset": {
            "_target_": "losslab.datasets.vision.cifar10",
            **{k: now["dataset"][k] for k in (*old_keys, "val_fraction", "loader")},
        },
    }
    assert fingerprint(before) in fingerprints(now)
    other = {**now, "dataset": {**now["dataset"], "mean": [0.5, 0.5, 0.5]}}
    assert fingerprint(before) not in fingerprints(other)


def test_sweep_summary_reaches_the_launch_through_its_file(tmp_path):
    from losslab.runner.sweep import SweepReport, read_summary

    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "0" / ".hydra").mkdir(parents=True)
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}})
    report = SweepReport(summary_path=str(tmp_path / "summary.json"))
    report.on_multirun_start(config)
    report.on_multirun_end(config)
    summary = read_summary(tmp_path / "summary.json")
    assert summary is not None and summary.count("unfinished") == 1 and not summary.ok
    assert read_summary(tmp_path / "missing.json") is None
