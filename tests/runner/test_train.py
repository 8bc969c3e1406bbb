"""`losslab train` end to end, in this process: records, determinism, failures, resume, sweeps."""

from __future__ import annotations

import json

import pytest
import torch

from losslab.runner import console
from tests.conftest import read_metrics, run_train, strip_times

FAST = ("trainer.epochs=3", "model.width=32")


def test_run_writes_every_record(tmp_path):
    code, results = run_train(tmp_path, *FAST)
    assert code == 0 and results["status"] == "completed"
    assert results["overrides"] == list(FAST)
    split_metrics = {
        "acc",
        "acc_top5",
        "nll",
        "brier",
        "ece",
        "mce",
        "ece_adaptive",
        "ece_classwise",
        "entropy",
        "entropy_correct",
        "entropy_incorrect",
        "aurc",
    }
    for key in ("final", "best", "best_clean_val", "oracle"):
        assert set(results[key]) == {"epoch", "train", "val", "test"}
        assert set(results[key]["val"]) == split_metrics
        # temperature scaling is fitted on val and evaluated on test
        scaled = {"temperature", "ece_ts", "nll_ts", "temperature_at_bound"}
        assert set(results[key]["test"]) == split_metrics | scaled
        assert {"loss", "objective"} <= set(results[key]["train"])
    assert results["final"]["test"]["temperature"] > 0
    reliability = results["reliability"]
    assert (
        reliability["n_bins"] == 15
        and sum(reliability["count"]) == results["data"]["sizes"]["test"]
    )
    assert (tmp_path / "plots" / "reliability.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "curves.png").stat().st_size > 1000
    assert results["final"]["epoch"] == 3
    assert results["best"]["val"]["acc"] == max(r["val/acc"] for r in read_metrics(tmp_path))
    assert results["noise"]["type"] == "none" and results["noise"]["realised_rate"] == 0.0
    assert {"torch", "python", "losslab"} <= set(results["versions"])
    assert results["timing"]["epochs"] == 3 and results["timing"]["total_s"] > 0
    records = read_metrics(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert {"lr", "train/loss", "train/objective", "val/acc", "test/ece", "time/train_s"} <= set(
        records[0]
    )
    assert (tmp_path / ".hydra" / "config.yaml").exists()
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 3 and {"model", "optimizer", "scheduler", "rng", "modules"} <= set(ckpt)


def test_same_command_gives_bitwise_identical_metrics(tmp_path):
    _, a = run_train(tmp_path / "a", *FAST)
    _, b = run_train(tmp_path / "b", *FAST)
    assert strip_times(a["final"]) == strip_times(b["final"]) and a["best"] == b["best"]
    assert strip_times(read_metrics(tmp_path / "a")) == strip_times(read_metrics(tmp_path / "b"))


def test_seed_and_split_seed_are_separate(tmp_path):
    _, base = run_train(tmp_path / "base", *FAST)
    _, seeded = run_train(tmp_path / "seed", *FAST, "seed=1")
    _, split = run_train(tmp_path / "split", *FAST, "dataset.split_seed=1")
    assert seeded["final"]["test"] != base["final"]["test"]
    # the seed changes initialisation and order, not the data: same labels
    assert seeded["noise"]["labels_sha"] == base["noise"]["labels_sha"]
    assert split["noise"]["labels_sha"] != base["noise"]["labels_sha"]


def test_regularizers_are_logged_separately(tmp_path):
    code, results = run_train(tmp_path, *FAST, "regularizer=[entropy,logit_l2]")
    assert code == 0, results.get("error")
    record = read_metrics(tmp_path)[0]
    assert {"train/reg/entropy", "train/reg/logit_l2"} <= set(record)
    assert record["train/reg/entropy"] < 0  # maximize mode: -H(p)
    expected = (
        record["train/loss"]
        + 0.1 * record["train/reg/entropy"]
        + 1e-3 * record["train/reg/logit_l2"]
    )
    assert record["train/objective"] == pytest.approx(expected, rel=1e-6)  # float32 terms


@pytest.mark.parametrize(
    "overrides",
    [
        ("model=cnn", "model.width=8"),
        ("model=resnet18", "model.width=4"),
        ("dataset=synthetic", "optimizer=adamw", "scheduler=none"),
        ("trainer.precision=bf16",),
    ],
    ids=["cnn", "resnet18", "synthetic-adamw", "bf16"],
)
def test_parts_combine(tmp_path, overrides):
    code, results = run_train(tmp_path, "trainer.epochs=1", *overrides)
    assert code == 0, results.get("error")
    assert 0.0 <= results["final"]["test"]["acc"] <= 1.0


def test_training_error_leaves_failed_results(tmp_path):
    code, results = run_train(tmp_path, "trainer.epochs=2", "optimizer.lr=1e12")
    assert code == 1
    assert results["status"] == "failed"
    assert "diverged" in results["error"] and "train/loss" in results["error"]
    assert "Traceback" in results["traceback"]


def test_bad_value_is_refused_before_training(tmp_path, capsys):
    code, results = run_train(tmp_path, "trainer.batch_size=0")
    assert code == 2 and results is None
    err = capsys.readouterr().err
    assert "trainer.batch_size=0 is invalid: must be an integer >= 1" in err
    assert list(tmp_path.iterdir()) == []


def test_interrupted_run_resumes_to_identical_results(tmp_path, monkeypatch):
    _, straight = run_train(tmp_path / "straight", "trainer.epochs=4", "model.dropout=0.2")

    original = console.PlainReporter.epoch_end

    def crash_after_two(self, record):
        original(self, record)
        if record["epoch"] == 2:
            raise RuntimeError("simulated preemption")

    monkeypatch.setattr(console.PlainReporter, "epoch_end", crash_after_two)
    code, crashed = run_train(tmp_path / "resumed", "trainer.epochs=4", "model.dropout=0.2")
    assert code == 1 and crashed["status"] == "failed" and "preemption" in crashed["error"]
    monkeypatch.setattr(console.PlainReporter, "epoch_end", original)

    code, resumed = run_train(tmp_path / "resumed", "trainer.epochs=4", "model.dropout=0.2")
    assert code == 0 and resumed["status"] == "completed"
    assert resumed["final"] == straight["final"] and resumed["best"] == straight["best"]
    assert strip_times(read_metrics(tmp_path / "resumed")) == strip_times(
        read_metrics(tmp_path / "straight")
    )


def test_resume_refuses_a_different_config(tmp_path, capsys):
    run_train(tmp_path, "trainer.epochs=1")
    (tmp_path / "results.json").unlink()
    code, results = run_train(tmp_path, "trainer.epochs=1", "seed=5")
    # refused before anything is written: no failed record over the unfinished run
    assert code == 1 and results is None
    assert "different config" in capsys.readouterr().err


def test_completed_run_is_not_run_again(tmp_path, capsys):
    run_train(tmp_path, "trainer.epochs=1")
    before = (tmp_path / "results.json").read_text()
    capsys.readouterr()
    code, _ = run_train(tmp_path, "trainer.epochs=1")
    assert code == 0 and (tmp_path / "results.json").read_text() == before
    assert "already completed" in capsys.readouterr().out


def test_multirun_through_the_dispatcher(tmp_path):
    from losslab.cli import main

    code = main(["train", "-m", "seed=0,1", "trainer.epochs=1", f"hydra.sweep.dir={tmp_path}"])
    assert code == 0
    results = [json.loads((tmp_path / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert [r["overrides"] for r in results] == [
        ["seed=0", "trainer.epochs=1"],
        ["seed=1", "trainer.epochs=1"],
    ]
    assert all(r["status"] == "completed" for r in results)


def test_failed_job_does_not_stop_the_sweep(tmp_path, capsys):
    from losslab.cli import main

    code = main(
        [
            "train",
            "-m",
            "optimizer.lr=1e12,0.1",  # the first job diverges
            "trainer.epochs=2",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert code == 1
    statuses = [
        json.loads((tmp_path / str(i) / "results.json").read_text())["status"] for i in (0, 1)
    ]
    assert statuses == ["failed", "completed"]
    assert "1 completed, 1 failed" in capsys.readouterr().out


def test_default_run_directories_are_unique(tmp_path, monkeypatch):
    from losslab.cli import main
    from losslab.runner import app

    def record_only(cfg, hc, job, checkpoint, built):  # no training: launches in one second
        job.outcome("completed")
        return app.RunResult({"status": "completed"})

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(app, "_run_admitted", record_only)
    for _ in range(2):  # two launches within the same second
        assert main(["train", "trainer.epochs=1"]) == 0
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 2


def test_noise_diagnostics_are_recorded(tmp_path):
    code, results = run_train(tmp_path, "trainer.epochs=2", "noise=symmetric", "noise.rate=0.4")
    assert code == 0, results.get("error")
    train = results["final"]["train"]
    for key in (
        "noisy_memorized",
        "noisy_recovered",
        "clean_acc",
        "entropy_clean",
        "entropy_noisy",
    ):
        assert 0.0 <= train[key] <= (1.0 if "entropy" not in key else 10.0), key
    # after two epochs the model mostly predicts the clean label of noisy samples
    assert train["noisy_recovered"] > train["noisy_memorized"]


def test_wandb_logger_writes_an_offline_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    code, results = run_train(tmp_path / "run", "trainer.epochs=2", "logger=wandb")
    assert code == 0, results.get("error")
    (offline,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    (log_file,) = offline.glob("run-*.wandb")
    assert log_file.stat().st_size > 0


def test_a_runs_reliability_diagram_has_its_losss_colour(tmp_path):
    """The run's own plots/reliability.png draws its bars in the loss's palette colour,
    as every figure of losslab compare does (it was the default blue for every loss)."""
    import numpy as np
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    from losslab.report.palette import color

    code, _ = run_train(tmp_path, "loss=gce", "trainer.epochs=1", "model.width=16")
    assert code == 0
    pixels = imread(tmp_path / "plots" / "reliability.png")[..., :3]

    def share(name: str) -> float:  # pixels of the colour, as drawn (alpha 0.9 on white)
        drawn = 0.9 * np.array(to_rgb(color(name))) + 0.1
        return float((np.abs(pixels - drawn).max(axis=-1) < 0.03).mean())

    assert share("gce") > 0.01 and share("ce") < 0.001
