"""``losslab evaluate RUN_DIR``: a saved run evaluated without training, and
``checkpoint_best.pt``, the model of its best epoch."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from losslab.cli import main
from losslab.runner.checkpointing import BEST_KEYS
from tests.conftest import read_metrics, run_train

#: A run whose best validation epoch is not its last (the learning rate is too high).
ARGS = ("trainer.epochs=3", "model.width=16", "optimizer.lr=0.4", "scheduler=none")
#: digits-shaped synthetic data: 10 classes, 1x8x8 inputs.
SYNTHETIC = ("dataset=synthetic", "dataset.num_classes=10", "dataset.input_shape=[1,8,8]")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("run")
    code, results = run_train(run_dir, *ARGS)
    assert code == 0 and results["status"] == "completed"
    return run_dir, results


def _files(run_dir: Path) -> dict[str, tuple[str, int]]:
    """Every file of the run but the evaluations: its hash and mtime."""
    return {
        str(p.relative_to(run_dir)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and "evaluate" not in p.relative_to(run_dir).parts
    }


def _evaluate(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _evaluation(out_dir: Path) -> dict:
    return json.loads((out_dir / "evaluation.json").read_text())


def test_evaluating_a_completed_run_reproduces_its_final_test_metrics(run, capsys, tmp_path):
    run_dir, results = run
    before = _files(run_dir)
    code, out, err = _evaluate(capsys, run_dir, "--out", tmp_path / "eval")
    assert code == 0, err
    record = _evaluation(tmp_path / "eval")
    assert record["checkpoint"] == "checkpoint.pt" and record["epoch"] == results["final"]["epoch"]
    assert record["test"] == results["final"]["test"]  # every metric, exactly
    assert record["val"] == results["final"]["val"]
    assert record["reliability"] == results["reliability"]
    assert record["same_config_as_run"] is True
    assert (tmp_path / "eval" / "reliability.png").stat().st_size > 1000
    assert f"{results['final']['test']['acc']:.4f}" in out and "ece_ts" in out
    assert _files(run_dir) == before  # the run's files are untouched
    assert not (run_dir / "evaluate").exists()  # --out: nothing new in the run directory


def test_best_checkpoint_holds_the_best_epoch(run, capsys):
    run_dir, results = run
    best = torch.load(run_dir / "checkpoint_best.pt", weights_only=False)
    assert set(best) == set(BEST_KEYS)
    epoch = results["best"]["epoch"]
    assert best["epoch"] == epoch < results["final"]["epoch"]  # the run went past its best
    assert best["record"] == read_metrics(run_dir)[epoch - 1]
    last = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert best["fingerprint"] == last["fingerprint"]
    assert any(not torch.equal(best["model"][k], last["model"][k]) for k in last["model"])

    before = _files(run_dir)
    code, _, err = _evaluate(capsys, run_dir, "--best")
    assert code == 0, err
    record = _evaluation(run_dir / "evaluate" / "digits-best")
    assert record["epoch"] == epoch and record["checkpoint"] == "checkpoint_best.pt"
    assert record["test"]["acc"] == results["best"]["test"]["acc"]
    assert record["test"] == results["best"]["test"]
    # a second evaluation goes to a new folder; the run's own files stay as they were
    assert _evaluate(capsys, run_dir, "--best")[0] == 0
    assert (run_dir / "evaluate" / "digits-best-2" / "evaluation.json").is_file()
    assert _files(run_dir) == before


def test_another_data_set_of_the_same_shape_is_evaluated(run, capsys, tmp_path):
    run_dir, results = run
    before = _files(run_dir)
    code, _, err = _evaluate(capsys, run_dir, *SYNTHETIC, "--out", tmp_path / "syn")
    assert code == 0, err
    record = _evaluation(tmp_path / "syn")
    assert record["data"]["name"] == "synthetic" and record["overrides"] == list(SYNTHETIC)
    assert set(record["test"]) == set(results["final"]["test"])
    assert 0 <= record["test"]["acc"] <= 1 and record["test"] != results["final"]["test"]
    assert record["same_config_as_run"] is False
    assert sum(record["reliability"]["count"]) == record["data"]["sizes"]["test"]
    assert _files(run_dir) == before


def test_a_data_set_of_other_classes_or_shape_is_refused(run, capsys, tmp_path):
    run_dir, _ = run
    before = _files(run_dir)
    code, out, err = _evaluate(capsys, run_dir, "dataset=synthetic", "--out", tmp_path / "x")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'synthetic' has 4 classes" in err and "10 classes" in err
    code, _, err = _evaluate(
        capsys, run_dir, "dataset=synthetic", "dataset.num_classes=10", "dataset.input_shape=[16]"
    )
    assert code == 2 and "inputs of shape [16]" in err and "[1, 8, 8]" in err
    assert not (tmp_path / "x").exists() and _files(run_dir) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (("{empty}",), ": not a run directory (no .hydra/overrides.yaml)"),
        (("{missing}",), "is not a directory"),
        (("{run}", "dataset=nope"), "Could not find 'dataset/nope'"),
        (("{run}", "trainer.eval_batch_size=0"), "trainer.eval_batch_size=0 is invalid"),
        (("{run}", "--bogus"), "unrecognized arguments: --bogus"),
        (("{run}", "--predictions", "{run}/predictions.npz"), "is a file of the run itself"),
        (("{run}", "--out", "{run}"), "is the run directory"),
        (("{nobest}", "--best"), "no checkpoint_best.pt in"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(run, capsys, tmp_path, args, message):
    run_dir, _ = run
    nobest = tmp_path / "nobest"
    shutil.copytree(
        run_dir, nobest, ignore=shutil.ignore_patterns("checkpoint_best.pt", "evaluate")
    )
    (tmp_path / "empty").mkdir()
    paths = {"run": run_dir, "empty": tmp_path / "empty", "missing": tmp_path / "missing"}
    before = _files(run_dir)
    code, out, err = _evaluate(capsys, *(a.format(**paths, nobest=nobest) for a in args))
    assert code == 2 and out == ""
    assert err.startswith("losslab evaluate: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert _files(run_dir) == before
