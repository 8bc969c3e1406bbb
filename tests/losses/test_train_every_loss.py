"""Every loss token trains through `losslab train loss=<token>` on digits."""

from __future__ import annotations

from tests.conftest import read_metrics, run_train


def test_token_trains_with_the_smoke_preset(tmp_path, token):
    # The same preset (2 epochs, gradient clipping at 5) for every loss.
    code, results = run_train(tmp_path, f"loss={token}", "experiment=smoke")
    assert code == 0, results and results.get("error")
    assert results["status"] == "completed"
    record = read_metrics(tmp_path)[0]
    assert record["train/loss"] == record["train/objective"]
    assert 0.0 <= results["final"]["test"]["acc"] <= 1.0


def test_aldr_logs_its_lambda_distribution(tmp_path):
    code, results = run_train(tmp_path, "loss=aldr", "trainer.epochs=2")
    assert code == 0, results.get("error")
    records = read_metrics(tmp_path)
    assert all("train/loss_stats/lam_mean" in r for r in records)
    assert 5.0 <= records[-1]["train/loss_stats/lam_mean"] <= 10.0
