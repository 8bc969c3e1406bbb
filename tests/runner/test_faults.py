"""A run directory under faults: kills, signals, damaged files, another process, another
config, a full or read-only disk. Each test is the regression test of a defect that was
found by trying these from outside; every refusal must leave the directory unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from losslab.cli import main
from tests.conftest import read_metrics, run_cli, run_train, strip_times, wait_for_epochs

FAST = ("model.width=16", "trainer.batch_size=32")


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with a hash of its bytes (``.lock`` aside)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def final(results: dict) -> dict:
    return {k: strip_times(results[k]) for k in ("final", "best", "reliability")}


def train_process(run_dir: Path, *overrides: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "losslab", "train", f"hydra.run.dir={run_dir}", *overrides],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **kwargs,
    )


# --- 1. every scheduler, with and without warm-up, resumes after SIGKILL -------------------


@pytest.mark.parametrize("warmup", [0, 2])
@pytest.mark.parametrize("scheduler", ["cosine", "multistep", "none"])
def test_resume_after_sigkill_for_every_schedule(tmp_path, scheduler, warmup):
    overrides = [
        *FAST,
        "trainer.batch_size=8",
        f"scheduler={scheduler}",
        f"trainer.warmup_epochs={warmup}",
        "trainer.epochs=6",
    ]
    if scheduler == "multistep":
        overrides.append("scheduler.milestones=[3]")
    code, straight = run_train(tmp_path / "straight", *overrides)
    assert code == 0, straight.get("error")

    killed = tmp_path / "killed"
    proc = train_process(killed, *overrides)
    try:
        wait_for_epochs(killed, 1, proc)
        proc.kill()
    finally:
        proc.communicate(timeout=60)
    assert not (killed / "results.json").exists(), "finished before the kill"

    code, resumed = run_train(killed, *overrides)
    assert code == 0 and resumed["status"] == "completed", resumed.get("error")
    assert final(resumed) == final(straight)
    assert strip_times(read_metrics(killed)) == strip_times(read_metrics(tmp_path / "straight"))


def test_snapshot_keeps_the_types_of_containers():
    from collections import Counter, OrderedDict, defaultdict, namedtuple

    from losslab.runner.checkpointing import _snapshot

    pair = namedtuple("pair", "a b")
    state = {
        "milestones": Counter({3: 1, 5: 2}),
        "ordered": OrderedDict(x=torch.ones(2)),
        "default": defaultdict(list, {"k": [torch.zeros(1)]}),
        "pair": pair(torch.ones(1), 2),
    }
    first = _snapshot(state)
    again = _snapshot(state, first)
    for copy in (first, again):
        assert type(copy["milestones"]) is Counter and list(copy["milestones"].elements())
        assert type(copy["ordered"]) is OrderedDict
        assert type(copy["default"]) is defaultdict and copy["default"].default_factory is list
        assert type(copy["pair"]) is pair and copy["pair"].b == 2


# --- 2, 3. a completed directory belongs to its config; refusals change nothing -----------


def test_other_config_into_a_completed_directory_is_refused_and_changes_nothing(tmp_path, capsys):
    code, first = run_train(tmp_path, *FAST, "trainer.epochs=2")
    assert code == 0
    before = snapshot(tmp_path)
    capsys.readouterr()
    code, _ = run_train(tmp_path, *FAST, "trainer.epochs=3", "loss=mae")
    err = capsys.readouterr().err
    assert code == 1
    assert "holds a completed run with a different config" in err
    assert "trainer.epochs: 2 -> 3" in err and "MAELoss" in err
    assert snapshot(tmp_path) == before  # .hydra/ included
    # the run is still resumable and re-runnable with its own config
    assert main(["train", f"resume={tmp_path}"]) == 0
    assert "already completed" in capsys.readouterr().out
    assert snapshot(tmp_path) == before or set(snapshot(tmp_path)) == set(before) | {"train.log"}
    assert final(json.loads((tmp_path / "results.json").read_text())) == final(first)


def test_same_config_into_a_completed_directory_is_skipped(tmp_path, capsys):
    assert run_train(tmp_path, *FAST, "trainer.epochs=2")[0] == 0
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    # trainer.num_workers and the logger do not change the results: still the same run
    code, _ = run_train(tmp_path, *FAST, "trainer.epochs=2", "trainer.num_workers=1")
    assert code == 0 and "already completed" in capsys.readouterr().out
    assert (tmp_path / "checkpoint.pt").read_bytes() == checkpoint


def test_sweep_relaunched_with_other_values_refuses_its_jobs(tmp_path, capsys):
    sweep = ["train", "-m", *FAST, "trainer.epochs=1", f"hydra.sweep.dir={tmp_path}"]
    assert main([*sweep, "seed=0,1"]) == 0
    before = {i: snapshot(tmp_path / str(i)) for i in (0, 1)}
    capsys.readouterr()
    assert main([*sweep, "seed=2,3"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("holds a completed run with a different config") == 2
    assert "2 skipped" not in captured.out and "2 refused" in captured.out
    assert {i: snapshot(tmp_path / str(i)) for i in (0, 1)} == before
    counts = json.loads((tmp_path / "sweep.json").read_text())["counts"]
    assert counts["refused"] == 2 and counts["skipped"] == 0


def test_refused_resume_with_another_config_changes_nothing(tmp_path, capsys):
    overrides = [*FAST, "trainer.epochs=3"]
    assert run_train(tmp_path, *overrides)[0] == 0
    (tmp_path / "results.json").unlink()  # as if killed after its last checkpoint
    before = snapshot(tmp_path)
    code, results = run_train(tmp_path, *overrides, "seed=5")
    assert code == 1 and results is None
    assert "belongs to a run with a different config" in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    assert main(["train", f"resume={tmp_path}"]) == 0  # still resumable


# --- 4. one process per run directory -------------------------------------------------------


def test_a_locked_directory_is_refused_with_the_holder(tmp_path):
    assert run_train(tmp_path, *FAST, "trainer.epochs=1")[0] == 0
    (tmp_path / "results.json").unlink()
    before = snapshot(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from losslab.runner.rundir import DirLock; "
            f"DirLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = run_cli("train", f"hydra.run.dir={tmp_path}", *FAST, "trainer.epochs=1")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 1
    assert f"is in use by pid {holder.pid}" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(tmp_path) == before
    # the lock went with its process
    assert run_train(tmp_path, *FAST, "trainer.epochs=1")[0] == 0


def test_two_processes_started_together_leave_one_consistent_run(tmp_path):
    procs = [train_process(tmp_path, *FAST, "trainer.epochs=3", f"seed={seed}") for seed in (0, 1)]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outputs
    loser = next(err for p, (_, err) in zip(procs, outputs, strict=True) if p.returncode == 1)
    assert "refused" in loser and "Traceback" not in loser
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "completed"
    saved = (tmp_path / ".hydra" / "overrides.yaml").read_text()
    assert results["overrides"][-1] in saved  # .hydra/ is the completed run's


# --- 8. a full disk -------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: int):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_keeps_the_last_checkpoint_and_resumes_after_space_is_freed(tmp_path):
    overrides = ["model.width=512", "trainer.epochs=3"]
    code, straight = run_train(tmp_path / "straight", *overrides)
    assert code == 0
    size = (tmp_path / "straight" / "checkpoint.pt").stat().st_size
    # room for one checkpoint and the small files, not for the next one beside it
    with tmpfs(tmp_path / "disk", int(size * 1.6)) as disk:
        run_dir = disk / "run"
        proc = run_cli("train", f"hydra.run.dir={run_dir}", *overrides)
        assert proc.returncode == 1
        assert "Traceback" not in proc.stdout + proc.stderr
        results = json.loads((run_dir / "results.json").read_text())
        assert results["status"] == "failed"
        assert f"no space left on the device of {run_dir}" in results["error"]
        assert "no space left" in proc.stdout + proc.stderr
        assert torch.load(run_dir / "checkpoint.pt", weights_only=False)["epoch"] == 1
        assert not list(run_dir.glob(".*.tmp"))
        # space is freed: the same command continues from epoch 1
        subprocess.run(["mount", "-o", f"remount,size={size * 10}", str(disk)], check=True)
        code, resumed = run_train(run_dir, *overrides)
        assert code == 0 and "after epoch 1" in (run_dir / "train.log").read_text()
        assert final(resumed) == final(straight)


# --- 9. unresolvable interpolations -------------------------------------------------------


@pytest.mark.parametrize(
    "override", ["seed=${nope}", "seed=${oc.env:LOSSLAB_UNSET_VARIABLE}", "seed=${nosuch:1}"]
)
def test_unresolvable_interpolation_is_a_message(tmp_path, override):
    proc = run_cli("train", f"hydra.run.dir={tmp_path}", override, "trainer.epochs=1")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "cannot resolve the config at 'seed'" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # refused: nothing written


def test_unresolvable_interpolation_leaves_a_completed_run_alone(tmp_path, capsys):
    assert run_train(tmp_path, *FAST, "trainer.epochs=1")[0] == 0
    before = snapshot(tmp_path)
    code, _ = run_train(tmp_path, *FAST, "trainer.epochs=1", "seed=${nope}")
    assert code == 2 and "cannot resolve" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_an_override_holding_an_interpolation_is_recorded_as_given(tmp_path):
    code, results = run_train(tmp_path, *FAST, "trainer.epochs=1", "seed=${trainer.epochs}")
    assert code == 0 and results["config"]["seed"] == 1
    assert results["overrides"][-1] == "seed=${trainer.epochs}"
    assert main(["train", f"resume={tmp_path}"]) == 0


# --- 10. a results.json that is not a record ------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2]",
        "3",
        "{not json",
        "dir",
        '{"status": "completed", "overrides": 5}',
        '{"status": "completed", "timing": {"finished_at": "yesterday"}}',
    ],
)
def test_damaged_results_json_is_refused_with_its_path(tmp_path, capsys, content):
    path = tmp_path / "results.json"
    if content == "dir":
        path.mkdir()
    else:
        path.write_text(content)
    code, _ = main(["train", f"hydra.run.dir={tmp_path}", *FAST, "trainer.epochs=1"]), None
    err = capsys.readouterr().err
    assert code == 1 and f"{path} is damaged" in err and "delete it" in err
    assert path.is_dir() if content == "dir" else path.read_text() == content


# --- 11. read-only directories ------------------------------------------------------------


def test_read_only_directories_get_a_message(tmp_path):
    with tmpfs(tmp_path / "disk", 20 * 2**20) as disk:
        done, fresh = disk / "done", disk / "fresh"
        assert run_train(done, *FAST, "trainer.epochs=1")[0] == 0
        fresh.mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        proc = run_cli("train", f"hydra.run.dir={done}", *FAST, "trainer.epochs=1")
        assert proc.returncode == 0, proc.stderr
        assert "already completed" in proc.stdout and "Traceback" not in proc.stderr
        proc = run_cli("train", f"hydra.run.dir={fresh}", *FAST, "trainer.epochs=1")
        assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
        assert f"run directory {fresh} is not writable" in proc.stderr
        proc = run_cli("train", "-m", f"hydra.sweep.dir={fresh}", *FAST, "seed=0,1")
        assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
        assert f"cannot write {fresh}/multirun.yaml (Read-only file system)" in proc.stderr


# --- 12. Ctrl-C and SIGTERM ----------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_records_the_run_and_says_how_to_resume(tmp_path, signum, code):
    overrides = [*FAST, "trainer.batch_size=8", "trainer.epochs=8"]
    run_dir = tmp_path / "run dir"
    proc = train_process(run_dir, *overrides)
    try:
        wait_for_epochs(run_dir, 1, proc)
        proc.send_signal(signum)
    finally:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in out + err
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "interrupted"
    assert signal.Signals(signum).name in results["error"]
    (line,) = [x for x in err.splitlines() if "interrupted" in x]
    assert f"resume='{run_dir}'" in line
    code, resumed = run_train(run_dir, *overrides)
    assert code == 0 and resumed["status"] == "completed"
    assert "resuming from" in (run_dir / "train.log").read_text()


def test_interrupted_sweep_prints_its_summary(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "losslab",
            "train",
            "-m",
            *FAST,
            "trainer.batch_size=8",
            "trainer.epochs=8",
            "seed=0,1",
            f"hydra.sweep.dir={tmp_path}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_epochs(tmp_path / "0", 1, proc)
        proc.send_signal(signal.SIGINT)
    finally:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in out + err
    assert "sweep: 0 completed" in out and "interrupted" in out
    assert "launch the same sweep again" in err


# --- 13. damaged checkpoints ---------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"\x80\x04garbage" * 10)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        ckpt = torch.load(path, weights_only=False)
        if how == "no model":
            del ckpt["model"]
        elif how == "epoch 99":
            ckpt["epoch"] = 99
        elif how == "a list":
            ckpt = [1, 2]
        torch.save(ckpt, path)


@pytest.mark.parametrize("how", ["empty", "garbage", "truncated", "no model", "epoch 99", "a list"])
def test_damaged_checkpoint_is_named_and_left_alone(tmp_path, capsys, how):
    overrides = [*FAST, "trainer.epochs=3"]
    assert run_train(tmp_path, *overrides)[0] == 0
    (tmp_path / "results.json").unlink()
    _damage(tmp_path / "checkpoint.pt", how)
    before = snapshot(tmp_path)
    code, results = run_train(tmp_path, *overrides)
    err = capsys.readouterr().err
    assert code == 1 and results is None
    assert f"{tmp_path / 'checkpoint.pt'} is damaged" in err
    assert "delete it to start this run again" in err
    assert snapshot(tmp_path) == before


# --- 15. resume= with odd paths --------------------------------------------------------------


@pytest.mark.parametrize("name", ["with space", "a,b", "it's", 'say "x"', "k=v", "d$x", "d${x}"])
def test_resume_takes_any_path(tmp_path, name):
    run_dir = tmp_path / name
    overrides = [*FAST, "trainer.epochs=2"]
    code, first = run_train(tmp_path / "plain", *overrides)
    assert code == 0
    assert main(["train", f"hydra.run.dir={tmp_path / 'plain'}", *overrides]) == 0
    # the directory of a run given as Hydra's grammar quotes it, then resumed by its plain path
    quoted = str(run_dir).replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
    quoted = f"'{quoted}'"
    assert main(["train", f"hydra.run.dir={quoted}", *overrides]) == 0
    assert (run_dir / "results.json").exists()
    (run_dir / "results.json").unlink()
    assert main(["train", f"resume={run_dir}"]) == 0
    assert final(json.loads((run_dir / "results.json").read_text())) == final(first)


# --- 16. schedule values ----------------------------------------------------------------------


def test_bad_schedule_is_refused_before_training(tmp_path, capsys):
    code, results = run_train(tmp_path, *FAST, "scheduler.T_max=0")
    err = capsys.readouterr().err
    assert code == 2 and results is None
    assert "scheduler.T_max=0" in err and "ZeroDivisionError" in err
    assert list(tmp_path.iterdir()) == []  # refused when the run was built: nothing written


def test_negative_learning_rate_schedule_is_refused_before_training(tmp_path, capsys):
    code, results = run_train(tmp_path, *FAST, "scheduler=multistep", "scheduler.gamma=-1")
    assert code == 2 and results is None and "learning rate -" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- 17, 18. leftovers of a kill -------------------------------------------------------------


def test_stale_temporary_files_are_removed_on_the_next_start(tmp_path):
    overrides = [*FAST, "trainer.epochs=2"]
    assert run_train(tmp_path, *overrides)[0] == 0
    (tmp_path / "results.json").unlink()
    stale = [
        tmp_path / ".checkpoint.pt.abc123.tmp",
        tmp_path / ".results.json.x_y9.tmp",
        tmp_path / ".noise.json.q1w2e3.tmp",
    ]
    for path in stale:
        path.write_bytes(b"half")
    assert run_train(tmp_path, *overrides)[0] == 0
    assert not any(p.exists() for p in stale)


@pytest.mark.parametrize("lost", ["plots", "metrics_cut", "metrics_gone"])
def test_rerun_of_a_completed_run_rebuilds_what_is_missing(tmp_path, lost):
    overrides = [*FAST, "trainer.epochs=3"]
    assert run_train(tmp_path, *overrides)[0] == 0
    metrics = (tmp_path / "metrics.jsonl").read_text()
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    if lost == "plots":
        for png in (tmp_path / "plots").iterdir():
            png.unlink()
    elif lost == "metrics_cut":
        (tmp_path / "metrics.jsonl").write_text(metrics[: len(metrics) // 2])
    else:
        (tmp_path / "metrics.jsonl").unlink()
    assert run_train(tmp_path, *overrides)[0] == 0
    assert (tmp_path / "checkpoint.pt").read_bytes() == checkpoint  # nothing was trained
    assert (tmp_path / "metrics.jsonl").read_text() == metrics
    assert (tmp_path / "plots" / "reliability.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "curves.png").stat().st_size > 1000
