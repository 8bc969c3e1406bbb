"""Cluster-scale sweeps: resume after SIGKILL and after a SLURM-style time-out, sweep
re-launch, the sweep summary, the launchers (local parallel, submitit, Optuna)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from losslab.cli import main
from tests.conftest import read_metrics, run_cli, run_train, strip_times, wait_for_epochs

# A stateful loss (ALDR-KL's lambda_i) and regularizer (ELR's targets), dropout for
# the RNG state, and small batches so that an epoch lasts long enough to be killed in.
STATEFUL = ("loss=aldr", "regularizer=[elr]", "model.dropout=0.2", "trainer.batch_size=16")


def _final_metrics(results: dict) -> dict:
    return {k: strip_times(results[k]) for k in ("final", "best", "reliability")}


def test_sigkill_mid_training_then_resume_is_bitwise_identical(tmp_path):
    overrides = [*STATEFUL, "trainer.epochs=6"]
    code, straight = run_train(tmp_path / "straight", *overrides)
    assert code == 0, straight.get("error")

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "losslab", "train", f"hydra.run.dir={killed}", *overrides],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_epochs(killed, 2, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = len(read_metrics(killed))
    assert 2 <= done < 6 and not (killed / "results.json").exists()

    code = main(["train", f"resume={killed}"])
    resumed = json.loads((killed / "results.json").read_text())
    assert code == 0 and resumed["status"] == "completed"
    assert f"after epoch {done}" in (killed / "train.log").read_text()
    assert _final_metrics(resumed) == _final_metrics(straight)
    assert strip_times(read_metrics(killed)) == strip_times(read_metrics(tmp_path / "straight"))


def test_resume_needs_a_run_directory(tmp_path, capsys):
    assert main(["train", f"resume={tmp_path / 'nowhere'}"]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and "nowhere" in err
    assert main(["train", "-m", f"resume={tmp_path}"]) == 2
    assert "launch the same sweep again" in capsys.readouterr().err


def test_resume_keeps_the_saved_overrides(tmp_path):
    code, first = run_train(tmp_path, "trainer.epochs=2", "seed=3", "loss=gce")
    assert code == 0
    (tmp_path / "results.json").unlink()  # as if killed after its last checkpoint
    # Without seed=3 and loss=gce the checkpoint would be refused as another config.
    assert main(["train", f"resume={tmp_path}"]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["overrides"] == ["trainer.epochs=2", "seed=3", "loss=gce"]
    assert _final_metrics(again) == _final_metrics(first)
    assert "resuming from" in (tmp_path / "train.log").read_text()


def test_sweep_relaunch_skips_completed_and_resumes_unfinished(tmp_path, capsys):
    sweep = ["train", "-m", "seed=0,1", "trainer.epochs=2", f"hydra.sweep.dir={tmp_path}"]
    assert main(sweep) == 0
    first = [json.loads((tmp_path / str(i) / "results.json").read_text()) for i in (0, 1)]
    # Job 1 was "preempted": its record is gone, its checkpoint is there.
    (tmp_path / "1" / "results.json").unlink()
    capsys.readouterr()

    assert main(sweep) == 0
    out = capsys.readouterr().out
    assert "sweep: 1 completed, 0 failed, 1 skipped" in out
    assert "already completed" in (tmp_path / "0" / "train.log").read_text()
    assert "resuming from" in (tmp_path / "1" / "train.log").read_text()
    again = json.loads((tmp_path / "1" / "results.json").read_text())
    assert _final_metrics(again) == _final_metrics(first[1])
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["counts"] == {
        "completed": 1,
        "failed": 0,
        "skipped": 1,
        "refused": 0,
        "unfinished": 0,
    }


def test_sweep_summary_names_the_failed_job_and_its_reason(tmp_path, capsys):
    code = main(
        [
            "train",
            "-m",
            "optimizer.lr=0.1,1e12",  # the second job diverges
            "trainer.epochs=2",
            f"hydra.sweep.dir={tmp_path}",
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "sweep: 1 completed, 1 failed, 0 skipped" in out
    # the job's overrides as Hydra's sweep writes them (1e12 as 1000000000000.0), its error
    assert "failed: optimizer.lr=" in out
    assert "trainer.epochs=2: FloatingPointError: training diverged" in out
    assert str(tmp_path / "1") in out
    jobs = json.loads((tmp_path / "sweep.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["completed", "failed"]


def test_local_parallel_launcher_runs_two_jobs(tmp_path):
    proc = run_cli(
        "train",
        "-m",
        "hydra/launcher=local",
        "hydra.launcher.n_jobs=2",
        "loss=ce,gce",
        "trainer.epochs=1",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sweep: 2 completed, 0 failed, 0 skipped" in proc.stdout
    results = [json.loads((tmp_path / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert [r["overrides"][0] for r in results] == ["loss=ce", "loss=gce"]
    assert all(r["status"] == "completed" for r in results)


def test_slurm_launcher_config_composes_with_the_sweep(tmp_path):
    proc = run_cli(
        "train",
        "-m",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "loss=ce,gce",
        "seed=range(3)",
        "--cfg",
        "hydra",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    hydra = yaml.safe_load(proc.stdout)["hydra"]
    launcher = hydra["launcher"]
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert launcher["partition"] == "gpu" and launcher["gpus_per_node"] == 1
    for key in ("cpus_per_task", "mem_gb", "timeout_min", "array_parallelism", "setup"):
        assert key in launcher
    assert launcher["max_num_timeout"] > 0  # requeued after time-outs / preemption
    assert hydra["mode"] == "MULTIRUN"
    assert hydra["sweeper"]["params"] == {"loss": "ce,gce", "seed": "range(3)"}


def test_submitit_requeue_after_timeout_signal_resumes_the_job(tmp_path):
    """The SLURM path end to end on this machine: submitit's local executor runs the job;
    the time-out signal makes submitit checkpoint and requeue it, and the requeued job
    continues from the epoch checkpoint to the same results as an uninterrupted run."""
    overrides = [*STATEFUL, "trainer.epochs=5"]
    code, straight = run_train(tmp_path / "straight", *overrides)
    assert code == 0

    sweep_dir = tmp_path / "sweep"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "losslab",
            "train",
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            f"hydra.sweep.dir={sweep_dir}",
            *overrides,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        wait_for_epochs(sweep_dir / "0", 2, proc)
        # The submitit controller's job id is its pid; the training task is its child.
        (controller,) = [
            int(p.name) for p in (sweep_dir / ".submitit").iterdir() if p.name.isdigit()
        ]
        task = int(
            subprocess.run(
                ["pgrep", "-P", str(controller)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
        os.kill(task, signal.SIGUSR2)  # what SLURM sends before the time limit
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "sweep: 1 completed" in out
    logs = "".join(p.read_text() for p in (sweep_dir / ".submitit").glob("*/*_log.*"))
    assert "Requeued job" in logs
    assert "resuming from" in (sweep_dir / "0" / "train.log").read_text()
    resumed = json.loads((sweep_dir / "0" / "results.json").read_text())
    assert _final_metrics(resumed) == _final_metrics(straight)


def test_optuna_sweeper_maximises_validation_accuracy(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    proc = run_cli(
        "train",
        "-m",
        "experiment=optuna_gce",
        "hydra.sweeper.n_trials=3",
        "trainer.epochs=1",
        f"hydra.sweep.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    runs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert len(runs) == 3
    accs = [r["best"]["val"]["acc"] for r in runs]
    assert found["best_value"] == pytest.approx(max(accs))
    best = runs[accs.index(max(accs))]
    assert best["config"]["loss"]["q"] == pytest.approx(found["best_params"]["loss.q"])


def test_unknown_launcher_lists_the_installed_ones(capsys):
    assert main(["train", "-m", "hydra/launcher=slurmm"]) == 2
    err = capsys.readouterr().err
    assert "unknown hydra/launcher 'slurmm'" in err
    for option in ("basic", "local", "slurm", "submitit_local"):
        assert option in err


def test_epoch_lines_of_a_multirun_name_their_job(tmp_path, capsys):
    """Jobs side by side (a parallel launcher) interleave their lines: each says its job."""
    code = main(["train", "-m", "seed=0,1", "trainer.epochs=1", f"hydra.sweep.dir={tmp_path}"])
    assert code == 0
    out = capsys.readouterr().out
    assert "[job 0] epoch 1/1" in out and "[job 1] epoch 1/1" in out


def test_epoch_lines_of_a_single_run_have_no_job_label(tmp_path, capsys):
    code, _ = run_train(tmp_path, "trainer.epochs=1")
    assert code == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "[job" not in out
