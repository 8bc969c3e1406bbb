"""The run record as contract: recorded choices, one list of result-irrelevant keys for
resume and compare, and records of earlier versions still accepted."""

from __future__ import annotations

from losslab.report.comparison import compare
from losslab.report.record import fingerprint, fingerprints, record_fingerprints
from tests.conftest import run_train

FAST = ("trainer.epochs=1", "model.width=16")


def test_results_record_hydras_choices_nested_ones_included(tmp_path):
    code, results = run_train(tmp_path, *FAST, "noise=apl/sym40", "loss=gce")
    assert code == 0
    choices = results["choices"]
    assert choices["noise"] == "apl/sym40" and choices["loss"] == "gce"
    assert choices["dataset"] == "digits" and choices["model"] == "mlp"
    assert not any(k.startswith("hydra/") for k in choices)
    (group,) = compare([tmp_path]).groups
    assert group.labels["noise"] == "apl/sym40"


def test_a_completed_run_on_another_device_is_the_same_run(tmp_path, capsys):
    assert run_train(tmp_path, *FAST, "trainer.device=cpu")[0] == 0
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    # device, data root and loader do not change the results: resume and compare agree
    code, _ = run_train(tmp_path, *FAST, "trainer.device=auto", "dataset.loader=memory")
    assert code == 0 and "already completed" in capsys.readouterr().out
    assert (tmp_path / "checkpoint.pt").read_bytes() == checkpoint


def test_fingerprints_of_earlier_records_are_accepted():
    config = {
        "seed": 0,
        "trainer": {"epochs": 2, "device": "cpu", "num_workers": 0},
        "dataset": {"root": "/data", "loader": "memory"},
        "logger": {"x": 1},
    }
    other_device = {**config, "trainer": {**config["trainer"], "device": "cuda"}}
    assert fingerprint(config) == fingerprint(other_device)
    assert fingerprint(config) != fingerprint({**config, "seed": 1})
    # what a version that hashed device, root and loader wrote is still this run's
    earlier = fingerprint(config, ("logger", "objective", "trainer.num_workers"))
    assert earlier != fingerprint(config) and earlier in fingerprints(config)
    # a record's fingerprint is computed from its config, not trusted from the file
    assert record_fingerprints({"config": config, "fingerprint": "stale"}) == fingerprints(config)
    assert record_fingerprints({"fingerprint": "abc"}) == {"abc"}


def _drop(config: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        config = config[part]
    del config[last]


def test_a_run_recorded_before_the_newest_keys_is_still_the_same_run(tmp_path, capsys):
    """A completed run whose config predates trainer.early_stopping and
    eval.save_predictions (and cv) is skipped, not refused as another config."""
    import json

    assert run_train(tmp_path, *FAST)[0] == 0
    path = tmp_path / "results.json"
    record = json.loads(path.read_text())
    for dotted in ("trainer.early_stopping", "eval.save_predictions"):
        _drop(record["config"], dotted)
    path.write_text(json.dumps(record))
    capsys.readouterr()
    assert run_train(tmp_path, *FAST)[0] == 0
    assert "already completed" in capsys.readouterr().out
    del record["config"]["cv"]  # and one from before the cv section
    path.write_text(json.dumps(record))
    assert run_train(tmp_path, *FAST)[0] == 0
    assert "already completed" in capsys.readouterr().out
    # early stopping that is on is another run
    code, _ = run_train(tmp_path, *FAST, "trainer.early_stopping.patience=3")
    assert code == 1 and "different config" in capsys.readouterr().err
