"""``losslab study`` end to end on digits: the same budget for every loss, selection,
re-runs, study.json, identical folds, resumption, failures, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from losslab.cli import main
from tests.conftest import run_cli

FAST = ["trainer.epochs=1", "noise=symmetric", "noise.rate=0.4"]


def _study(tmp_path: Path, *args: str) -> int:
    return main(["study", f"study.dir={tmp_path / 's'}", *FAST, *args])


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def _finished(root: Path) -> dict[str, str]:
    return {
        str(p.parent.relative_to(root)): json.loads(p.read_text())["timing"]["finished_at"]
        for p in root.glob("**/results.json")
    }


def test_every_loss_gets_the_budget_the_best_trial_is_rerun_and_study_json_says_it(
    tmp_path, capsys
):
    args = ["loss=ce,gce", "study.trials=2", "study.seeds=2", "study.space.optimizer.lr=[0.01,0.1]"]
    assert _study(tmp_path, *args) == 0
    root = tmp_path / "s"
    study = json.loads((root / "study.json").read_text())
    assert study["status"] == "completed"
    assert "final.val.acc" in study["selection"] and "validation split" in study["selection"]
    for loss, method in (("ce", "grid"), ("gce", "tpe")):
        entry = study["losses"][loss]
        assert entry["budget"]["trials"] == 2 and entry["budget"]["completed"] == 2
        assert entry["budget"]["search"] == method and entry["budget"]["failed"] == 0
        scores = {}
        for trial in entry["trials"]:
            (run,) = trial["runs"]
            record = _record(root / run)
            assert record["status"] == "completed"
            assert record["config"]["optimizer"]["lr"] == trial["values"]["optimizer.lr"]
            assert trial["score"] == record["final"]["val"]["acc"]  # the selection metric
            scores[trial["number"]] = trial["score"]
        best = max(scores, key=lambda n: (scores[n], -n))
        assert entry["selected"]["trial"] == best
        seeds = []
        for rerun in entry["reruns"]:
            record = _record(root / rerun["run_dir"])
            assert record["status"] == "completed"
            for key, value in entry["selected"]["values"].items():
                group, name = key.split(".", 1)
                assert record["config"][group][name] == value
            seeds.append(record["config"]["seed"])
        assert seeds == [1, 2]  # not the seed the trials were selected on
        assert entry["budget"]["seconds"] > 0
    out = capsys.readouterr().out
    assert "selected" in out and "trials ok/failed/budget" in out and "2/0/2" in out
    assert "optimizer.lr=" in out
    # the same command again: everything is done, nothing trains
    before = _finished(root)
    assert _study(tmp_path, *args) == 0
    assert "nothing trained" in capsys.readouterr().out
    assert _finished(root) == before
    # the same study written in another order finds its runs too
    reordered = ["study", *reversed(args), *reversed(FAST), f"study.dir={root}"]
    assert main(reordered) == 0
    assert "nothing trained" in capsys.readouterr().out
    assert _finished(root) == before


def test_cross_validation_uses_the_same_folds_for_every_loss(tmp_path):
    args = ["loss=ce,gce", "study.folds=3", "study.trials=1", "study.seeds=1"]
    assert _study(tmp_path, *args, "study.space.optimizer.lr=[0.1]") == 0
    root = tmp_path / "s"
    study = json.loads((root / "study.json").read_text())
    assert "3-fold cross-validation" in study["selection"]
    shas, folds = set(), []
    for loss in ("ce", "gce"):
        (trial,) = study["losses"][loss]["trials"]
        assert len(trial["runs"]) == 3
        accs = []
        for i, run in enumerate(trial["runs"]):
            record = _record(root / run)
            cv = record["data"]["cv"]
            assert (cv["folds"], cv["fold"]) == (3, i)
            shas.add(cv["membership_sha"])
            folds.append(record["data"]["sizes"]["val"])
            accs.append(record["final"]["val"]["acc"])
        assert trial["fold_scores"] == accs
        assert trial["score"] == pytest.approx(sum(accs) / 3)
        (rerun,) = study["losses"][loss]["reruns"]
        assert "cv" not in _record(root / rerun["run_dir"])["data"]  # the full training split
    assert len(shas) == 1  # one partition for every loss and fold
    assert (
        sum(folds[:3])
        == _record(root / study["losses"]["ce"]["reruns"][0]["run_dir"])["data"]["sizes"]["train"]
    )


def test_failed_trials_count_against_the_budget_and_a_loss_without_one_success_is_reported(
    tmp_path, capsys
):
    # q must be in (0, 1]: q=-1 fails when the loss is built; tgce's k must be in [0, 1)
    args = [
        "loss=gce,tgce",
        "study.trials=2",
        "study.seeds=1",
        "study.space.loss.q=[-1.0,0.5]",
        "study.space.loss.k=[2.0]",
        "study.space.optimizer.lr=[0.1]",
    ]
    assert _study(tmp_path, *args) == 1  # a loss without a result
    study = json.loads((tmp_path / "s" / "study.json").read_text())
    gce = study["losses"]["gce"]
    assert gce["budget"] == {**gce["budget"], "trials": 2, "completed": 1, "failed": 1}
    failed = [t for t in gce["trials"] if t["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["values"]["loss.q"] == -1.0
    assert "q" in failed[0]["error"]
    assert gce["selected"]["values"]["loss.q"] == 0.5 and len(gce["reruns"]) == 1
    tgce = study["losses"]["tgce"]  # every trial failed: no selection, no re-run
    assert tgce["budget"] == {**tgce["budget"], "trials": 2, "completed": 0, "failed": 2}
    assert tgce["selected"] is None and tgce["reruns"] == []
    out = capsys.readouterr().out
    assert "failed: gce trial" in out and "every trial failed" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["loss=ce,gce", "study.trials=0"], "study.trials=0 is invalid: must be an integer >= 1"),
        (["loss=ce", "study.folds=1"], "study.folds=1 is invalid: must be an integer >= 2 or null"),
        (["loss=ce,nope"], "unknown loss nope. Valid losses: agce, aldr"),
        (
            ["loss=ce", "study.trails=3"],
            "unknown study option study.trails (the command line). Valid: study.trials",
        ),
        (
            ["loss=gce", "study.space.loss.qq=[0.1]"],
            "study.space.loss.qq: the runs have no loss.qq",
        ),
        (["loss=gce", "study.space.loss.q=[]"], "loss.q=[] must be a non-empty list"),
        (["loss=ce", "seed=0,1"], "seed=0,1 is a sweep"),
        (["loss=ce", "trainer.epochz=3"], "trainer.epochz"),
        (["loss=ce", "trainer.epochs=0"], "trainer.epochs=0 is invalid"),
        (
            ["loss=ce", "study.direction=up"],
            "study.direction='up' is invalid: choose maximize or minimize",
        ),
        (["study.trials=2"], "name the losses to compare: loss=ce,gce"),
        (["experiment=ldr_benchmark", "dataset=letter"], "the preset sweeps noise=none,ldr/sym30"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_on_disk(
    tmp_path, monkeypatch, capsys, args, message
):
    monkeypatch.chdir(tmp_path)
    assert main(["study", *args]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no study directory, no run directory


def test_a_bad_space_file_is_refused_before_anything_trains(tmp_path, monkeypatch, capsys):
    conf = tmp_path / "conf" / "space" / "loss"
    conf.mkdir(parents=True)
    (conf / "gce.yaml").write_text('source: "mine"\nparams:\n  qq: [0.1, 0.2]\n')
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["study", "--config-dir", str(tmp_path / "conf"), "loss=gce"]) == 2
    err = capsys.readouterr().err
    assert "space/loss/gce.yaml names qq, which loss=gce does not have. Its parameters: q" in err
    assert list(work.iterdir()) == []


def test_the_help_names_the_options():
    out = run_cli("study", "--help")
    assert out.returncode == 0
    for option in ("study.trials", "study.seeds", "study.folds", "study.space", "study.dir"):
        assert option in out.stdout


def test_a_killed_study_resumes_without_training_completed_trials_again(tmp_path):
    root = tmp_path / "s"
    args = [
        "study",
        f"study.dir={root}",
        "loss=ce",
        "study.trials=3",
        "study.seeds=1",
        "study.space.optimizer.lr=[0.01,0.03,0.1]",
        "noise=symmetric",
        "noise.rate=0.4",
        "trainer.epochs=3",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "losslab", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            done = [
                p
                for p in root.glob("trials/*/*/results.json")
                if json.loads(p.read_text()).get("status") == "completed"
            ]
            if len(done) >= 1:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the study ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = {
        k: v for k, v in _finished(root).items() if _record(root / k).get("status") == "completed"
    }
    assert 1 <= len(before) < 3  # killed with trials left to train
    again = run_cli(*args, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    after = _finished(root)
    assert {k: after[k] for k in before} == before  # completed trials were not trained again
    study = json.loads((root / "study.json").read_text())
    assert study["status"] == "completed"
    assert len(study["losses"]["ce"]["reruns"]) == 1
    assert [t["status"] for t in study["losses"]["ce"]["trials"]] == ["completed"] * 3


def test_a_regularizers_space_joins_the_search_and_a_value_set_on_the_command_line_is_fixed(
    tmp_path, monkeypatch
):
    from losslab.runner.study.run import plan

    conf = tmp_path / "conf" / "space" / "regularizer"
    conf.mkdir(parents=True)
    (conf / "entropy.yaml").write_text('source: "mine"\nparams:\n  weight: [0.01, 0.1]\n')
    monkeypatch.chdir(tmp_path)
    study = plan(
        [
            "--config-dir",
            str(tmp_path / "conf"),
            "loss=gce",
            "regularizer=[entropy]",
            "optimizer.weight_decay=5e-4",
            "study.trials=4",
        ]
    )
    (gce,) = study.studies
    assert set(gce.search.params) == {"loss.q", "optimizer.lr", "regularizer.entropy.weight"}
    assert gce.fixed == ["optimizer.weight_decay"]  # set on the command line: not searched
    assert gce.search.method == "tpe" and gce.search.budget == 4  # 3 x 2 x 2 points > 4
    only_loss = plan(["loss=gce", "study.search=[loss]", "study.trials=4"]).studies[0]
    assert set(only_loss.search.params) == {"loss.q"}
    assert (only_loss.search.method, only_loss.search.budget) == ("grid", 3)
    assert list(tmp_path.iterdir()) == [tmp_path / "conf"]  # planning writes nothing


def test_a_study_runs_through_a_parallel_launcher(tmp_path):
    """Hydra's own overrides (the launcher) are not among a run's recorded overrides:
    the study still recognises its finished runs."""
    args = [
        "loss=ce",
        "study.trials=2",
        "study.seeds=1",
        "study.batch=2",
        "study.space.optimizer.lr=[0.01,0.1]",
        "hydra/launcher=local",
        "hydra.launcher.n_jobs=2",
    ]
    assert _study(tmp_path, *args) == 0
    study = json.loads((tmp_path / "s" / "study.json").read_text())
    assert study["status"] == "completed"
    assert [t["status"] for t in study["losses"]["ce"]["trials"]] == ["completed"] * 2
    assert len(study["losses"]["ce"]["reruns"]) == 1


def test_the_launcher_does_not_change_which_study_a_command_is(tmp_path, monkeypatch):
    from losslab.runner.study.run import plan

    monkeypatch.chdir(tmp_path)
    local = plan(["loss=ce", "trainer.epochs=2"]).root
    assert local.parent == Path("studies") and local.name.startswith("ce-")
    assert plan(["loss=ce", "trainer.epochs=2", "hydra/launcher=local"]).root == local
    assert plan(["trainer.epochs=2", "loss=ce"]).root == local  # nor the order
    assert plan(["loss=ce", "trainer.epochs=3"]).root != local
