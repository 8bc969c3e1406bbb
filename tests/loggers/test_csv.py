"""``logger=csv``: metrics.csv holds the values of metrics.jsonl, one row per epoch, also
after a resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from losslab.cli import main
from losslab.loggers import CsvLogger
from losslab.loggers.csv import cell
from tests.conftest import read_metrics, run_train

FAST = ("model.width=16", "trainer.batch_size=64", "logger=csv")


def read_csv(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def assert_csv_equals_jsonl(run_dir: Path) -> None:
    """Same epochs, same columns (union of keys, epoch first), same values cell by cell."""
    records = read_metrics(run_dir)
    header, rows = read_csv(run_dir)
    assert header[0] == "epoch"
    assert set(header) == {k for r in records for k in r}
    assert [int(r["epoch"]) for r in rows] == [r["epoch"] for r in records]
    for row, record in zip(rows, records, strict=True):
        for key in header:
            value = record.get(key)
            if value is None:
                assert row[key] == ""
            elif isinstance(value, float):
                assert float(row[key]) == value, key  # full precision
            else:
                assert row[key] == cell(value), key


def test_real_run_writes_the_values_of_metrics_jsonl(tmp_path):
    code, results = run_train(tmp_path / "run", *FAST, "trainer.epochs=3")
    assert code == 0 and results["status"] == "completed"
    assert results["choices"]["logger"] == "csv"
    assert_csv_equals_jsonl(tmp_path / "run")
    _, rows = read_csv(tmp_path / "run")
    assert float(rows[-1]["test/acc"]) == results["final"]["test"]["acc"]
    # rewritten through a temporary file: nothing is left beside it
    assert not list((tmp_path / "run").glob(".metrics.csv.*"))


def test_resumed_run_has_every_epoch_once(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    overrides = [*FAST, "trainer.epochs=4"]
    log = CsvLogger.log

    def interrupt_after_two(self, record, step):
        log(self, record, step)
        if step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(CsvLogger, "log", interrupt_after_two)
    code, interrupted = run_train(run_dir, *overrides)
    assert code != 0 and interrupted["status"] == "interrupted"
    _, rows = read_csv(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    first_two = rows

    monkeypatch.setattr(CsvLogger, "log", log)
    assert main(["train", f"resume={run_dir}"]) == 0
    assert json.loads((run_dir / "results.json").read_text())["status"] == "completed"
    assert_csv_equals_jsonl(run_dir)
    _, rows = read_csv(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[:2] == first_two  # the rows before the resume are kept as written


def test_a_repeated_epoch_replaces_its_row_and_later_ones(tmp_path):
    """A run killed after its metrics but before its checkpoint trains epoch 3 again."""
    old = [{"epoch": e, "train/loss": 1.0 / e, "val/acc": 0.1 * e} for e in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    logger = CsvLogger()
    logger.start({}, tmp_path)
    logger.log({"epoch": 3, "train/loss": 0.3, "val/acc": 0.33}, step=3)
    logger.log({"epoch": 4, "train/loss": 0.25, "val/acc": 0.4}, step=4)
    logger.finish({"status": "completed"}, tmp_path)
    _, rows = read_csv(tmp_path)
    assert [(r["epoch"], r["val/acc"]) for r in rows] == [
        ("1", "0.1"),
        ("2", "0.2"),
        ("3", "0.33"),
        ("4", "0.4"),
    ]


def test_rows_come_from_an_earlier_csv_without_metrics_jsonl(tmp_path):
    first = CsvLogger()
    first.start({}, tmp_path)
    first.log({"epoch": 1, "val/acc": 0.5}, step=1)
    second = CsvLogger()
    second.start({}, tmp_path)
    second.log({"epoch": 2, "val/acc": 0.6}, step=2)
    _, rows = read_csv(tmp_path)
    assert rows == [{"epoch": "1", "val/acc": "0.5"}, {"epoch": "2", "val/acc": "0.6"}]


def test_a_key_that_appears_later_adds_a_column(tmp_path):
    logger = CsvLogger()
    logger.start({}, tmp_path)
    logger.log({"epoch": 1, "train/loss": 0.5, "val/acc": None}, step=1)
    logger.log({"epoch": 2, "train/loss": 0.25, "train/reg/entropy": 0.125, "val/acc": 0.75}, 2)
    header, rows = read_csv(tmp_path)
    assert header == ["epoch", "train/loss", "val/acc", "train/reg/entropy"]
    assert rows[0] == {"epoch": "1", "train/loss": "0.5", "val/acc": "", "train/reg/entropy": ""}
    assert rows[1]["train/reg/entropy"] == "0.125"


def test_cells():
    assert cell(0.1 + 0.2) == "0.30000000000000004"
    assert (cell(None), cell(True), cell(3), cell([1, 2])) == ("", "true", "3", "[1, 2]")


def test_not_started_writes_nothing(tmp_path):
    logger = CsvLogger()
    logger.log({"epoch": 1}, step=1)
    logger.finish({"status": "completed"}, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["", "../metrics.csv", "sub/metrics.csv"])
def test_filename_must_stay_in_the_run_directory(name):
    with pytest.raises(ValueError, match="logger.filename must be a plain file name"):
        CsvLogger(filename=name)
