"""``losslab runs``: real runs (completed, failed), and unfinished, interrupted and running
directories made from them, listed with the values their files hold."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from losslab.cli import main as cli_main
from losslab.report.listing import STATUSES, list_runs, lock_holder, main
from losslab.runner.rundir import DirLock
from tests.conftest import REPO, read_metrics, run_train
from tests.report.test_compare import record, write

FAST = ("model.width=16", "trainer.batch_size=64", "trainer.epochs=2")
OLD = datetime(2000, 1, 1, tzinfo=timezone.utc)  # the fake runs started long before the real ones
OLDER = datetime(1999, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("listing")
    outputs = root / "outputs"
    assert run_train(outputs / "ce", *FAST)[0] == 0
    assert run_train(outputs / "gce", *FAST, "loss=gce", "seed=1")[0] == 0
    code, failed = run_train(outputs / "diverged", *FAST, "optimizer.lr=1e12")
    assert code == 1 and failed["status"] == "failed"

    # killed after its first epoch: .hydra/ and one line of metrics.jsonl, no results.json
    killed = outputs / "killed"
    shutil.copytree(outputs / "ce" / ".hydra", killed / ".hydra")
    first = (outputs / "ce" / "metrics.jsonl").read_text().splitlines()[0]
    (killed / "metrics.jsonl").write_text(first + "\n" + first[: len(first) // 2])  # cut line
    stamp = OLD.timestamp()
    os.utime(killed / ".hydra" / "overrides.yaml", (stamp, stamp))

    # an interrupted job of a sweep, and a record of a job that died while running
    interrupted = record("mae", 0.4, 0, 0.5, 0.1)
    del interrupted["final"], interrupted["best"]
    interrupted.update(
        status="interrupted",
        error="interrupted by SIGTERM",
        timing={"started_at": OLDER.isoformat()},
    )
    write(root / "multirun" / "s1" / "0", interrupted)
    stale = record("gce", 0.0, 2, 0.9, 0.05)
    stale.update(status="running", timing={"started_at": "2000-06-01T00:00:00Z"})
    del stale["final"], stale["best"]
    write(root / "multirun" / "s1" / "1", stale)
    return root


def by_name(root: Path, *args: str) -> dict[str, dict]:
    return {e.as_json(root)["name"]: e.as_json(root) for e in list_runs([root, *args])}


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_completed_runs_show_what_their_results_json_holds(tree):
    runs = by_name(tree)
    for name in ("ce", "gce"):
        run, res = runs[f"outputs/{name}"], results(tree / "outputs" / name)
        assert run["status"] == "completed"
        assert run["choices"]["loss"] == name and run["choices"]["dataset"] == "digits"
        assert "logger" not in run["choices"]
        assert run["overrides"] == res["overrides"]
        assert (run["epoch"], run["epochs"]) == (res["final"]["epoch"], 2) == (2, 2)
        assert run["test_acc"] == res["final"]["test"]["acc"]
        assert run["test_ece"] == res["final"]["test"]["ece"]
        assert run["test_nll"] == res["final"]["test"]["nll"]
        assert run["best_val_acc"] == res["best"]["val"]["acc"]
        assert run["metrics_from"] == "results.json"
        assert run["started_at"] == res["timing"]["started_at"]
        assert run["error"] is None and run["pid"] is None


def test_failed_run_shows_its_error(tree):
    run = by_name(tree)["outputs/diverged"]
    assert run["status"] == "failed"
    assert run["error"] == results(tree / "outputs" / "diverged")["error"]
    assert run["error"].startswith("FloatingPointError: training diverged at epoch 1")
    assert run["test_acc"] is None
    assert (run["epoch"], run["epochs"]) == (0, 2)  # it diverged within its first epoch


def test_unfinished_run_reads_hydra_and_metrics_jsonl(tree):
    run = by_name(tree)["outputs/killed"]
    line = read_metrics(tree / "outputs" / "ce")[0]
    assert run["status"] == "unfinished"
    assert (run["epoch"], run["epochs"]) == (1, 2)  # the cut second line is not an epoch
    assert run["test_acc"] == line["test/acc"] and run["test_nll"] == line["test/nll"]
    assert run["best_val_acc"] == line["val/acc"]
    assert run["metrics_from"] == "metrics.jsonl"
    assert run["choices"]["loss"] == "ce"  # from .hydra/hydra.yaml
    assert run["overrides"] == results(tree / "outputs" / "ce")["overrides"]
    assert run["started_at"] == OLD.isoformat()


def test_interrupted_and_stale_running_records(tree):
    runs = by_name(tree)
    assert runs["multirun/s1/0"]["status"] == "interrupted"
    assert runs["multirun/s1/0"]["error"] == "interrupted by SIGTERM"
    assert runs["multirun/s1/0"]["choices"]["loss"] == "mae"
    # "running" in results.json, but no process holds the lock: it died
    stale = runs["multirun/s1/1"]
    assert stale["status"] == "unfinished" and "no process holds its lock" in stale["error"]


def test_a_held_lock_is_running_and_listing_does_not_take_it(tree):
    run_dir = tree / "outputs" / "killed"
    lock = DirLock(run_dir).acquire()
    try:
        assert by_name(tree)["outputs/killed"]["status"] == "running"
        assert by_name(tree)["outputs/killed"]["pid"] == os.getpid()
        # another process can still see it held: the listing did not take or release it
        probe = (
            "import sys; from losslab.runner.rundir import DirLock, RunRefused\n"
            "try:\n    DirLock(sys.argv[1]).acquire()\nexcept RunRefused:\n    sys.exit(3)\n"
        )
        held = subprocess.run([sys.executable, "-c", probe, str(run_dir)], cwd=REPO, timeout=60)
        assert held.returncode == 3
    finally:
        lock.release()
    # the lock file stays, naming its last holder, but nobody holds it now
    assert (run_dir / ".lock").read_text().startswith(f"{os.getpid()} ")
    assert lock_holder(run_dir) is None
    assert by_name(tree)["outputs/killed"]["status"] == "unfinished"


def test_lock_of_another_host_is_named_not_checked(tmp_path):
    run_dir = tmp_path / "r"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".lock").write_text("4242 node-17.cluster\n")
    (entry,) = list_runs([run_dir])
    assert entry.status == "unfinished"
    assert entry.error == "lock last taken by pid 4242 on node-17.cluster (not checked from here)"


def test_sorted_by_start_time(tree):
    names = [e.as_json(tree)["name"] for e in list_runs([tree])]
    assert names == [
        "multirun/s1/0",  # 1999
        "outputs/killed",  # 2000-01-01
        "multirun/s1/1",  # 2000-06-01
        "outputs/ce",
        "outputs/gce",
        "outputs/diverged",
    ]


def test_json_and_status_filter(tree, capsys):
    assert main([str(tree), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listed] == [e.as_json(tree)["name"] for e in list_runs([tree])]
    assert {r["status"] for r in listed} == {"completed", "failed", "interrupted", "unfinished"}

    assert main([str(tree), "--json", "--status", "failed"]) == 0
    (failed,) = json.loads(capsys.readouterr().out)
    assert failed["name"] == "outputs/diverged" and failed["path"] == str(tree / "outputs/diverged")

    assert main([str(tree), "--json", "--status", "interrupted,unfinished"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert names == {"multirun/s1/0", "multirun/s1/1", "outputs/killed"}

    assert main([str(tree), "--json", "--status", "running"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_unknown_status_is_a_usage_error(tree, capsys):
    assert main([str(tree), "--status", "done"]) == 2
    err = capsys.readouterr().err
    assert "--status done is not a status" in err and ", ".join(STATUSES) in err


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_table_fits_the_terminal_without_cutting_numbers(tree, capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    assert main([str(tree)]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= width for line in out.splitlines()), out
    assert out.splitlines()[0].startswith("6 runs: 2 completed, 1 failed, 1 interrupted, 2 unf")
    res = results(tree / "outputs" / "gce")
    numbers = {
        "acc%": f"{100 * res['final']['test']['acc']:.2f}",
        "ece": f"{res['final']['test']['ece']:.4f}",
        "nll": f"{res['final']['test']['nll']:.4f}",
        "val%": f"{100 * res['best']['val']['acc']:.2f}",
    }
    row = next(line for line in out.splitlines() if "outputs/gce" in line.split())
    for header, number in numbers.items():
        if header in out.split("─")[0]:  # the column is shown: the number whole, in its row
            assert number in row.split(), (header, row)
        else:
            assert f"left out to fit {width} columns" in out
    assert "2/2" in row.split() and "completed" in row.split()
    # the failed run's error: in its column, or on a line of its own beneath the table
    assert "FloatingPointError:" in out.split()
    if width >= 120:
        assert "started" in out and "best" in out


def test_shared_choices_are_named_under_the_table(tree, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([str(tree / "outputs")]) == 0
    out = capsys.readouterr().out
    assert "all runs: " in out
    shared = next(line for line in out.splitlines() if line.startswith("all runs: "))
    assert "model=mlp" in shared and "loss=" not in shared  # loss varies: a column
    header = out.split("─")[0]
    assert "loss" in header and "dataset" not in header  # every run uses digits


def test_default_dirs_are_outputs_and_multirun(tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    assert cli_main(["runs", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert names == {e.as_json(tree)["name"] for e in list_runs([tree])}


def test_missing_or_empty_directories_are_errors(tmp_path, capsys, monkeypatch):
    assert main([str(tmp_path / "nope")]) == 2
    assert f"no such file or directory: {tmp_path / 'nope'}" in capsys.readouterr().err
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main([str(tmp_path / "empty")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"no runs under {tmp_path / 'empty'}" in captured.err
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "no outputs/ or multirun/ directory in" in capsys.readouterr().err


def test_listing_changes_nothing_on_disk(tree):
    def files() -> dict[str, float]:
        return {str(p): p.stat().st_mtime for p in tree.rglob("*")}

    before = files()
    list_runs([tree])
    assert files() == before


def test_importing_the_listing_is_light():
    code = (
        "import sys, losslab.report.listing\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'wandb', 'scipy', 'pandas') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
