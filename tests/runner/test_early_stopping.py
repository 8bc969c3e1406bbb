"""``trainer.early_stopping``: where a run stops, what it records, and that resuming agrees."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from losslab.metrics import METRIC_KEYS
from losslab.runner import console
from losslab.runner.settings import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    NO_DIRECTION,
    VAL_METRICS,
    ConfigError,
    EarlyStopping,
    validate,
)
from tests.conftest import REPO, read_metrics, run_train, strip_times

FAST = ("model.width=16", "trainer.epochs=8")
#: A learning rate of 0: the weights, hence every validation metric, never change.
FROZEN = (*FAST, "optimizer.lr=0")


def _expected_stop(records: list[dict], metric: str, patience: int, mode: str, delta: float):
    """Where early stopping stops, computed from metrics.jsonl independently of the loop."""
    best, wait = None, 0
    for record in records:
        value = record[metric]
        better = best is None or (value > best + delta if mode == "max" else value < best - delta)
        if value is not None and math.isfinite(value) and better:
            best, wait = value, 0
        else:
            wait += 1
        if wait >= patience:
            return record["epoch"]
    return None


def test_no_improvement_stops_after_patience_plus_one_evaluations(tmp_path):
    code, results = run_train(tmp_path, *FROZEN, "trainer.early_stopping.patience=2")
    assert code == 0 and results["status"] == "completed"
    records = read_metrics(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert len({r["val/acc"] for r in records}) == 1  # it never improved
    assert results["early_stopping"] == {
        "stopped_epoch": 3,
        "best_epoch": 1,
        "best_value": records[0]["val/acc"],
        "metric": "val/acc",
        "mode": "max",
        "patience": 2,
        "min_delta": 0.0,
    }
    assert results["final"]["epoch"] == 3 and results["timing"]["epochs"] == 3
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 3


def test_off_by_default_and_recorded_as_null(tmp_path):
    code, results = run_train(tmp_path, "model.width=16", "trainer.epochs=3", "optimizer.lr=0")
    assert code == 0 and results["early_stopping"] is None
    assert len(read_metrics(tmp_path)) == 3


def test_stop_epoch_agrees_with_metrics_history(tmp_path):
    """A learning run watching val/nll: the loop stops where the history says it must."""
    code, results = run_train(
        tmp_path,
        *FAST,
        "optimizer.lr=0.5",
        "trainer.early_stopping.patience=1",
        "trainer.early_stopping.metric=val/nll",
        "trainer.early_stopping.min_delta=0.01",
    )
    assert code == 0
    records = read_metrics(tmp_path)
    stop = _expected_stop(records, "val/nll", 1, "min", 0.01)
    assert stop == records[-1]["epoch"]  # it stopped, at the first epoch it should have
    assert results["early_stopping"]["stopped_epoch"] == stop
    assert results["early_stopping"]["mode"] == "min"  # derived from the metric
    nll = [r["val/nll"] for r in records]
    assert results["early_stopping"]["best_value"] == min(nll)


def test_resumed_run_stops_at_the_same_epoch(tmp_path, monkeypatch):
    args = (*FAST, "model.dropout=0.2", "trainer.early_stopping.patience=1")
    _, straight = run_train(tmp_path / "straight", *args)
    assert straight["early_stopping"] is not None

    original = console.PlainReporter.epoch_end

    def crash_after_one(self, record):
        original(self, record)
        if record["epoch"] == 1:
            raise RuntimeError("simulated preemption")

    monkeypatch.setattr(console.PlainReporter, "epoch_end", crash_after_one)
    code, crashed = run_train(tmp_path / "resumed", *args)
    assert code == 1 and "preemption" in crashed["error"]
    monkeypatch.setattr(console.PlainReporter, "epoch_end", original)

    code, resumed = run_train(tmp_path / "resumed", *args)
    assert code == 0 and resumed["status"] == "completed"
    assert resumed["early_stopping"] == straight["early_stopping"]
    assert resumed["final"] == straight["final"] and resumed["best"] == straight["best"]
    assert strip_times(read_metrics(tmp_path / "resumed")) == strip_times(
        read_metrics(tmp_path / "straight")
    )


def test_run_ended_at_its_stopping_epoch_resumes_to_the_same_stop(tmp_path, monkeypatch):
    """Killed after the stopping epoch's checkpoint, before results.json: the resumed
    run trains nothing more (the stop is derived from the saved history)."""
    args = (*FROZEN, "trainer.early_stopping.patience=2")
    _, straight = run_train(tmp_path / "straight", *args)

    original = console.PlainReporter.epoch_end

    def crash_at_three(self, record):
        original(self, record)
        if record["epoch"] == 3:
            raise RuntimeError("simulated preemption")

    monkeypatch.setattr(console.PlainReporter, "epoch_end", crash_at_three)
    code, _ = run_train(tmp_path / "resumed", *args)
    assert code == 1
    monkeypatch.setattr(console.PlainReporter, "epoch_end", original)
    checkpoint = (tmp_path / "resumed" / "checkpoint.pt").read_bytes()

    code, resumed = run_train(tmp_path / "resumed", *args)
    assert code == 0 and resumed["early_stopping"] == straight["early_stopping"]
    assert resumed["final"] == straight["final"]
    assert (tmp_path / "resumed" / "checkpoint.pt").read_bytes() == checkpoint  # no epoch 4
    assert len(read_metrics(tmp_path / "resumed")) == 3


def test_metric_list_matches_the_metric_code():
    names = set(HIGHER_IS_BETTER) | set(LOWER_IS_BETTER) | set(NO_DIRECTION)
    assert names == set(METRIC_KEYS) | {"acc_clean"}
    assert len(VAL_METRICS) == len(names)


TRAIN_YAML = REPO / "losslab" / "conf" / "train.yaml"


def _cfg(**early) -> OmegaConf:
    cfg = OmegaConf.load(TRAIN_YAML)
    cfg.trainer.early_stopping.update(early)
    return cfg


@pytest.mark.parametrize(
    "early, expected",
    [
        ({}, None),  # the default: off
        ({"patience": 3}, EarlyStopping("val/acc", 3, "max", 0.0)),
        ({"patience": 3, "metric": "val/ece"}, EarlyStopping("val/ece", 3, "min", 0.0)),
        ({"patience": 1, "metric": "nll", "min_delta": 1}, EarlyStopping("val/nll", 1, "min", 1.0)),
        (
            {"patience": 2, "metric": "val/entropy", "mode": "max"},
            EarlyStopping("val/entropy", 2, "max", 0.0),
        ),
    ],
)
def test_settings(early, expected):
    assert validate(_cfg(**early), resolve=False).early_stopping == expected


@pytest.mark.parametrize(
    "early, message",
    [
        ({"patience": 0}, "trainer.early_stopping.patience=0 is invalid"),
        ({"patience": True}, "trainer.early_stopping.patience=True is invalid"),
        ({"patience": 2, "metric": "test/acc"}, "'test/acc' is invalid; choose one of"),
        ({"metric": "val/accuracy"}, "'val/accuracy' is invalid; choose one of ['val/acc'"),
        ({"patience": 2, "mode": "up"}, "mode='up' is invalid; choose null"),
        ({"patience": 2, "metric": "val/entropy"}, "mode=null is invalid for metric"),
        ({"patience": 2, "min_delta": -0.1}, "min_delta=-0.1 is invalid: must be a number >= 0"),
    ],
)
def test_bad_settings_are_named(early, message):
    with pytest.raises(ConfigError) as info:
        validate(_cfg(**early), resolve=False)
    assert message in str(info.value)


def test_validation_without_resolving_imports_no_torch():
    code = (
        "import sys; from omegaconf import OmegaConf; "
        "from losslab.runner.settings import validate; "
        f"cfg = OmegaConf.load({str(TRAIN_YAML)!r}); "
        "cfg.trainer.early_stopping.patience = 4; "
        "assert validate(cfg, resolve=False).early_stopping.patience == 4; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr


def test_eval_save_predictions_and_the_block_itself_are_checked():
    cfg = OmegaConf.load(TRAIN_YAML)
    cfg.eval.save_predictions = "yes"
    with pytest.raises(ConfigError, match=r"eval.save_predictions='yes' is invalid"):
        validate(cfg, resolve=False)
    cfg.eval.save_predictions = True
    cfg.trainer.early_stopping = 5
    with pytest.raises(ConfigError, match="trainer.early_stopping=5 is invalid"):
        validate(cfg, resolve=False)


def test_bad_value_on_the_command_line_fails_before_any_job(tmp_path, capsys):
    code, results = run_train(tmp_path, "trainer.early_stopping.patience=-1")
    assert code == 2 and results is None
    assert "trainer.early_stopping.patience=-1 is invalid" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.parametrize(
    "mode, delta, values, stop",
    [
        ("max", 0.0, [0.5, 0.6, 0.6, 0.6, 0.7], 4),  # ties are no improvement
        ("max", 0.05, [0.5, 0.54, 0.56, 0.58, 0.7], None),  # 0.56 and 0.7 improve
        ("max", 0.05, [0.5, 0.54, 0.53, 0.6], 3),  # +0.04 is not more than 0.05
        ("min", 0.0, [2.0, 1.0, 1.5, 0.9, 0.95, 0.92], 6),
        ("min", 0.0, [float("nan"), None, 1.0, 1.0], 2),  # not finite: no improvement
    ],
)
def test_stopper_against_the_reference(mode, delta, values, stop):
    from losslab.runner.loop import Stopper

    records = [{"epoch": i + 1, "val/x": v} for i, v in enumerate(values)]
    stopper = Stopper(EarlyStopping("val/x", 2, mode, delta))
    stopped = next((r["epoch"] for r in records if stopper.update(r)), None)
    assert stopped == stop
    if stop is not None:
        # the reference on finite values only (NaN and None never improve)
        assert _expected_stop(records, "val/x", 2, mode, delta) == stop


def test_a_metric_the_run_does_not_record_is_an_error_before_training(tmp_path, capsys):
    code, _ = run_train(
        tmp_path,
        "trainer.epochs=2",
        "trainer.early_stopping.patience=2",
        "trainer.early_stopping.metric=val/acc_clean",
    )
    assert code != 0
    assert "recorded only when the validation labels are noisy" in capsys.readouterr().err
    assert not (tmp_path / "checkpoint.pt").exists()
