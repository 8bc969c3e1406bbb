"""``eval.save_predictions``: the final model's test logits in ``predictions.npz``."""

from __future__ import annotations

import numpy as np
import pytest

from losslab.cli import main
from tests.conftest import run_train

ARGS = ("trainer.epochs=2", "model.width=16")


def _softmax_metrics(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and NLL (nats) of float logits, in float64, independently of losslab."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    acc = float((logits.argmax(axis=1) == labels).mean())
    nll = float(-log_p[np.arange(len(labels)), labels].mean())
    return acc, nll


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    code, results = run_train(run_dir, *ARGS, "eval.save_predictions=true")
    assert code == 0 and results["status"] == "completed"
    return run_dir, results


def test_predictions_reproduce_the_final_test_metrics(run):
    run_dir, results = run
    saved = np.load(run_dir / "predictions.npz")
    assert set(saved.files) == {"logits", "labels", "index", "epoch", "split"}
    logits, labels, index = saved["logits"], saved["labels"], saved["index"]
    n, k = results["data"]["sizes"]["test"], results["data"]["num_classes"]
    assert logits.dtype == np.float32 and logits.shape == (n, k)
    assert labels.shape == index.shape == (n,) and len(set(index.tolist())) == n
    assert int(saved["epoch"]) == results["final"]["epoch"] == 2 and str(saved["split"]) == "test"
    acc, nll = _softmax_metrics(logits, labels)
    assert acc == results["final"]["test"]["acc"]
    assert nll == pytest.approx(results["final"]["test"]["nll"], rel=1e-9, abs=1e-12)
    assert results["predictions"] == {
        "file": "predictions.npz",
        "split": "test",
        "epoch": 2,
        "rows": n,
        "classes": k,
    }


def test_evaluate_writes_the_same_predictions(run, tmp_path, capsys):
    run_dir, _ = run
    out = tmp_path / "again.npz"
    assert (
        main(["evaluate", str(run_dir), "--out", str(tmp_path / "e"), "--predictions", str(out)])
        == 0
    )
    assert f"predictions: {out}" in capsys.readouterr().out
    a, b = np.load(run_dir / "predictions.npz"), np.load(out)
    for key in ("logits", "labels", "index", "epoch"):
        assert np.array_equal(a[key], b[key]), key


def test_off_by_default(tmp_path):
    code, results = run_train(tmp_path, "trainer.epochs=1", "model.width=16")
    assert code == 0 and "predictions" not in results
    assert not (tmp_path / "predictions.npz").exists()


def test_with_early_stopping_they_are_of_the_stopping_epoch(tmp_path):
    code, results = run_train(
        tmp_path,
        "trainer.epochs=6",
        "model.width=16",
        "optimizer.lr=0",
        "trainer.early_stopping.patience=1",
        "eval.save_predictions=true",
    )
    assert code == 0 and results["early_stopping"]["stopped_epoch"] == 2
    saved = np.load(tmp_path / "predictions.npz")
    assert int(saved["epoch"]) == 2 == results["final"]["epoch"]
    acc, _ = _softmax_metrics(saved["logits"], saved["labels"])
    assert acc == results["final"]["test"]["acc"]
