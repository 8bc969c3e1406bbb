"""The sweep summary and ``read_json`` on damaged or hand-made ``results.json`` files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from losslab.runner.records import read_json
from losslab.runner.sweep import OUTCOMES_DIR, SweepReport, record_outcome, summarize

LAUNCHED = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
BEFORE = (LAUNCHED - timedelta(hours=1)).isoformat()
AFTER = (LAUNCHED + timedelta(minutes=5)).isoformat()


def completed(seed: int = 0, finished_at: str | None = AFTER, **extra) -> dict:
    out = {
        "status": "completed",
        "overrides": [f"seed={seed}"],
        "run_dir": f"/sweep/{seed}",
        "config": {"seed": seed},
        "final": {"epoch": 2, "val": {"acc": 0.9}, "test": {"acc": 0.8}},
        "best": {"epoch": 1, "val": {"acc": 0.91}, "test": {"acc": 0.79}},
        "timing": {"started_at": BEFORE, "finished_at": finished_at, "total_s": 1.5},
        "versions": {"losslab": "0.1.0"},
    }
    out.update(extra)
    return out


def job(sweep: Path, name: str, results: object = None, text: str | None = None) -> Path:
    """A Hydra job directory ``sweep/name`` with its overrides and, maybe, a results.json."""
    d = sweep / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(f"- seed={name}\n")
    if text is not None:
        (d / "results.json").write_text(text)
    elif results is not None:
        (d / "results.json").write_text(json.dumps(results))
    return d


# ------------------------------------------------------------------ read_json


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"completed"', "null", "true", "{", "", "\xff"])
def test_read_json_returns_none_for_anything_but_an_object(tmp_path, text):
    path = tmp_path / "results.json"
    path.write_bytes(text.encode("latin-1"))
    assert read_json(path) is None


def test_read_json_missing_directory_and_deep_nesting(tmp_path):
    assert read_json(tmp_path / "missing.json") is None
    (tmp_path / "dir.json").mkdir()
    assert read_json(tmp_path / "dir.json") is None
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    assert read_json(tmp_path / "deep.json") is None
    (tmp_path / "ok.json").write_text('{"status": "completed"}')
    assert read_json(tmp_path / "ok.json") == {"status": "completed"}


# -------------------------------------------------------- damaged job records

DAMAGED = {
    "a list": ("[1, 2]", "not a JSON object"),
    "a number": ("3", "not a JSON object"),
    "null": ("null", "not a JSON object"),
    "invalid JSON": ('{"status": "completed",', "not valid JSON"),
    "status not a string": (json.dumps(completed(status=["completed"])), "status"),
    "no status": (json.dumps({"overrides": ["seed=0"]}), "status"),
    "overrides a number": (json.dumps(completed(overrides=5)), "overrides"),
    "overrides not strings": (json.dumps(completed(overrides=["seed=0", 1])), "overrides"),
    "timing a string": (json.dumps(completed(timing="soon")), "timing"),
    "finished_at not a time": (json.dumps(completed(finished_at="yesterday")), "finished_at"),
    "finished_at a number": (json.dumps(completed(finished_at=5)), "finished_at"),
    "error a dict": (
        json.dumps({"status": "failed", "overrides": ["seed=0"], "error": {"a": 1}}),
        "error",
    ),
    "final a list": (json.dumps(completed(final=[1])), "final"),
    "config a string": (json.dumps(completed(config="seed=0")), "config"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_record_makes_an_unfinished_job_named_with_its_file(tmp_path, case):
    text, what = DAMAGED[case]
    job(tmp_path, "0", completed(0))
    bad = job(tmp_path, "1", text=text)
    summary = summarize(tmp_path, LAUNCHED)
    assert [j["status"] for j in summary.jobs] == ["completed", "unfinished"]
    assert not summary.ok
    damaged = summary.jobs[1]
    assert damaged["overrides"] == ["seed=1"]  # from .hydra/overrides.yaml
    assert str(bad / "results.json") in damaged["error"]
    assert what in damaged["error"]
    lines = summary.lines()
    assert lines[0].startswith("sweep: 1 completed, 0 failed, 0 skipped, 1 unfinished")
    assert any(line.startswith("  unfinished: seed=1: ") and what in line for line in lines)
    json.dumps(summary.to_json())  # sweep.json stays writable


def test_results_json_that_is_a_directory(tmp_path):
    bad = job(tmp_path, "0")
    (bad / "results.json").mkdir()
    summary = summarize(tmp_path, LAUNCHED)
    assert summary.jobs[0]["status"] == "unfinished"
    assert str(bad / "results.json") in summary.jobs[0]["error"]
    assert "directory" in summary.jobs[0]["error"]


def test_missing_record_and_a_record_of_a_job_still_running(tmp_path):
    job(tmp_path, "0")
    job(tmp_path, "1", {"status": "running", "overrides": ["seed=1"]})
    jobs = summarize(tmp_path, LAUNCHED).jobs
    assert [j["status"] for j in jobs] == ["unfinished", "unfinished"]
    lines = summarize(tmp_path, LAUNCHED).lines()
    assert "  unfinished: seed=0: no results.json: the job did not finish" in lines
    assert any("seed=1" in line and "'running'" in line for line in lines)


@pytest.mark.parametrize(
    "overrides_yaml", ["seed: 1\n", "7\n", "- [unclosed\n", "- seed=0\n- {a: 1}\n"]
)
def test_a_damaged_overrides_yaml_does_not_stop_the_summary(tmp_path, overrides_yaml):
    d = job(tmp_path, "0")
    (d / ".hydra" / "overrides.yaml").write_text(overrides_yaml)
    summary = summarize(tmp_path, LAUNCHED)
    assert summary.jobs[0]["status"] == "unfinished"
    assert all(isinstance(o, str) for o in summary.jobs[0]["overrides"])
    summary.lines()


# ------------------------------------------------------------------ timestamps


def test_finished_before_the_launch_is_skipped_after_it_completed(tmp_path):
    job(tmp_path, "0", completed(0, finished_at=BEFORE))
    job(tmp_path, "1", completed(1, finished_at=AFTER))
    job(tmp_path, "2", completed(2, finished_at=None))  # no time: counted as this launch's
    assert [j["status"] for j in summarize(tmp_path, LAUNCHED).jobs] == [
        "skipped",
        "completed",
        "completed",
    ]


def test_naive_timestamps_are_local_time(tmp_path):
    local = LAUNCHED.astimezone()  # aware, in the machine's time zone
    naive_before = (local - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    naive_after = (local + timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    job(tmp_path, "0", completed(0, finished_at=naive_before))
    job(tmp_path, "1", completed(1, finished_at=naive_after))
    assert [j["status"] for j in summarize(tmp_path, LAUNCHED).jobs] == ["skipped", "completed"]
    # a naive launch time against aware records
    naive_launch = local.replace(tzinfo=None)
    assert [j["status"] for j in summarize(tmp_path, naive_launch).jobs] == [
        "skipped",
        "completed",
    ]


def test_utc_designator_z(tmp_path):
    z = (LAUNCHED - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    job(tmp_path, "0", completed(0, finished_at=z))
    assert summarize(tmp_path, LAUNCHED).jobs[0]["status"] == "skipped"


# ------------------------------------------------- the callback and exit code


def test_callback_prints_the_summary_and_writes_sweep_json(tmp_path, capsys):
    job(tmp_path, "0", completed(0))
    job(tmp_path, "1", text="[1, 2]")
    job(tmp_path, "2", completed(2, finished_at="not a time"))
    report = SweepReport()
    report.launched_at = LAUNCHED
    report.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    out = capsys.readouterr().out
    assert "sweep: 1 completed, 0 failed, 0 skipped, 2 unfinished" in out
    assert "not a JSON object" in out and "finished_at" in out
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert summary["counts"] == {
        "completed": 1,
        "failed": 0,
        "skipped": 0,
        "refused": 0,
        "unfinished": 2,
    }


def test_reported_outcomes_decide_skipped_or_completed(tmp_path):
    # the job's own report wins over clocks (another machine's may be off)
    job(tmp_path, "0", completed(0, finished_at=AFTER))
    job(tmp_path, "1", completed(1, finished_at=BEFORE))
    for n, status in ((0, "skipped"), (1, "completed")):
        record_outcome(tmp_path, n, {"status": status, "run_dir": str(tmp_path / str(n))})
    assert [j["status"] for j in summarize(tmp_path, LAUNCHED).jobs] == ["skipped", "completed"]


def test_malformed_outcome_reports_do_not_stop_the_summary(tmp_path):
    job(tmp_path, "0")
    job(tmp_path, "1")
    outcomes = tmp_path / OUTCOMES_DIR
    record_outcome(
        tmp_path, 0, {"status": "refused", "run_dir": str(tmp_path / "0"), "overrides": 5}
    )
    record_outcome(
        tmp_path, 1, {"status": "interrupted", "run_dir": str(tmp_path / "1"), "error": [1]}
    )
    (outcomes / "2.json").write_text("[1, 2]")
    (outcomes / "3.json").mkdir()
    summary = summarize(tmp_path, LAUNCHED)
    assert [(j["status"], j["overrides"]) for j in summary.jobs] == [
        ("refused", ["seed=0"]),
        ("unfinished", ["seed=1"]),
    ]
    assert summary.lines()[1] == "  refused: seed=0: no reason recorded"


def test_a_malformed_finished_at_fails_the_sweep_exit_code(tmp_path, capsys):
    from losslab.cli import main

    sweep = ["train", "-m", "seed=0", "trainer.epochs=1", f"hydra.sweep.dir={tmp_path}"]
    assert main(sweep) == 0
    path = tmp_path / "0" / "results.json"
    record = json.loads(path.read_text())
    record["timing"]["finished_at"] = "yesterday"
    path.write_text(json.dumps(record))
    capsys.readouterr()
    # the job refuses the damaged record (it trains nothing, overwrites nothing), and
    # the summary counts it as refused with the reason
    code = main(sweep)
    out = capsys.readouterr().out
    assert "sweep: 0 completed, 0 failed, 0 skipped, 1 refused" in out
    assert f"{path} is damaged (timing.finished_at is 'yesterday'" in out
    assert code == 1
    assert json.loads(path.read_text())["timing"]["finished_at"] == "yesterday"
