"""Selection rules of the run history on synthetic epoch records, and in a real run."""

from __future__ import annotations

import pytest

from losslab.runner.loop import History, select_epoch
from tests.conftest import run_train


def rec(epoch: int, val: float | None, test: float, clean: float | None = None) -> dict:
    out = {"epoch": epoch, "val/acc": val, "test/acc": test, "train/loss": 1.0 / epoch}
    if clean is not None:
        out["val/acc_clean"] = clean
    return out


def history(*records: dict) -> History:
    h = History()
    for r in records:
        h.add(r)
    return h


def test_each_rule_picks_its_epoch():
    h = history(
        rec(1, 0.5, 0.6, 0.7), rec(2, 0.7, 0.5, 0.6), rec(3, 0.6, 0.9, 0.8), rec(4, 0.6, 0.4, 0.5)
    )
    assert h.final["epoch"] == 4
    assert h.best["epoch"] == 2 and h.best["val"]["acc"] == 0.7
    assert h.best_clean_val["epoch"] == 3 and h.best_clean_val["val"]["acc_clean"] == 0.8
    assert h.oracle["epoch"] == 3 and h.oracle["test"]["acc"] == 0.9


def test_ties_keep_the_earlier_epoch_and_missing_values_are_skipped():
    h = history(rec(1, None, 0.5), rec(2, 0.6, 0.7), rec(3, 0.6, 0.7), rec(4, None, 0.2))
    assert h.best["epoch"] == 2 and h.oracle["epoch"] == 2
    assert select_epoch(h.records, "nope") is None


def test_clean_validation_labels_make_best_clean_val_the_best():
    h = history(rec(1, 0.5, 0.6), rec(2, 0.7, 0.5))
    assert h.best_clean_val == h.best and h.best["epoch"] == 2


def test_no_validation_split():
    h = history({"epoch": 1, "test/acc": 0.3}, {"epoch": 2, "test/acc": 0.2})
    assert h.best["epoch"] == 1  # as before: the first epoch when nothing is validated
    assert h.best_clean_val is None and h.oracle["epoch"] == 1
    assert History().final is None and History().oracle is None


def test_a_history_rebuilt_from_records_answers_the_same():
    records = [rec(1, 0.5, 0.6, 0.7), rec(2, 0.7, 0.5, 0.6), rec(3, 0.6, 0.9, 0.8)]
    built, rebuilt = history(*records), History(records=list(records))
    for rule in ("final", "best", "best_clean_val", "oracle"):
        assert getattr(built, rule) == getattr(rebuilt, rule)


def test_a_noisy_run_records_clean_validation_and_both_temperature_fits(tmp_path):
    code, results = run_train(
        tmp_path, "trainer.epochs=2", "model.width=16", "noise=symmetric", "noise.rate=0.4"
    )
    assert code == 0
    for rule in ("final", "best", "best_clean_val", "oracle"):
        assert results[rule]["epoch"] in (1, 2)
    val, test = results["final"]["val"], results["final"]["test"]
    assert val["acc_clean"] != pytest.approx(val["acc"], abs=0.02)
    for key in ("temperature", "ece_ts", "nll_ts"):
        assert isinstance(test[key], float) and isinstance(test[f"{key}_clean"], float)
    assert test["temperature_at_bound"] in (True, False)
    assert test["temperature_clean_at_bound"] in (True, False)


def test_a_clean_run_has_no_clean_fit(tmp_path):
    code, results = run_train(tmp_path, "trainer.epochs=1", "model.width=16")
    assert code == 0
    assert "acc_clean" not in results["final"]["val"]
    assert "temperature_clean" not in results["final"]["test"]
    assert results["best_clean_val"]["epoch"] == results["best"]["epoch"]
