"""hydra/sweeper=jobs: a given list of jobs, each in its own directory, one launch."""

from __future__ import annotations

import json

from losslab.cli import main


def test_each_listed_job_runs_in_its_directory_and_the_summary_counts_only_them(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    jobs = tmp_path / "jobs.json"
    jobs.write_text(json.dumps([["loss=gce", "loss.q=0.3", "hydra.sweep.subdir=a/gce"]]))
    args = [
        "train",
        "-m",
        "hydra/sweeper=jobs",
        f"hydra.sweeper.jobs={jobs}",
        f"hydra.sweep.dir={sweep}",
        "trainer.epochs=1",
    ]
    assert main(args) == 0
    record = json.loads((sweep / "a" / "gce" / "results.json").read_text())
    assert record["status"] == "completed" and record["config"]["loss"]["q"] == 0.3
    assert record["overrides"] == ["trainer.epochs=1", "loss=gce", "loss.q=0.3"]
    capsys.readouterr()
    jobs.write_text(json.dumps([["loss=ce", "hydra.sweep.subdir=b/ce"]]))
    assert main(args) == 0
    assert (sweep / "b" / "ce" / "results.json").is_file()
    # the earlier launch's job is in the same sweep directory, but not in this launch
    assert "sweep: 1 completed, 0 failed, 0 skipped" in capsys.readouterr().out


def test_a_missing_jobs_file_is_one_line(tmp_path, capsys):
    code = main(
        [
            "train",
            "-m",
            "hydra/sweeper=jobs",
            f"hydra.sweeper.jobs={tmp_path / 'no.json'}",
            f"hydra.sweep.dir={tmp_path / 's'}",
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "hydra.sweeper.jobs: cannot read" in err and "Traceback" not in err
