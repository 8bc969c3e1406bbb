"""One validation path for every way a command line sets a value.

``key=``, ``+key=``, ``++key=``, sweeps and experiment presets are all checked
against the config each job composes, before any job starts: an unknown key or
a bad value is one message on stderr, exit code 2, and nothing on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from losslab.cli import main
from losslab.runner import preflight
from tests.conftest import run_cli


def _refused(tmp_path, capsys, *args: str) -> str:
    """Run ``losslab train`` in ``tmp_path``; assert it was refused with nothing
    written and nothing on stdout; return its stderr."""
    code = main(["train", *args])
    out = capsys.readouterr()
    assert code == 2, out.err
    assert out.out == ""
    assert "Traceback" not in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    return out.err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("sign", ["+", "++"])
def test_adding_an_unknown_key_is_refused(in_tmp, capsys, sign):
    err = _refused(in_tmp, capsys, f"{sign}trainer.epochz=3", "trainer.epochs=1")
    assert "unknown config key 'trainer.epochz'" in err and "epochs" in err
    assert f"'{sign}' adds a key only to a section whose _target_ takes it" in err


def test_adding_an_argument_a_target_does_not_take_is_refused(in_tmp, capsys):
    err = _refused(in_tmp, capsys, "loss=gce", "+loss.qq=0.5")
    assert "GCELoss takes no argument 'qq'" in err and "Its arguments: q" in err


def test_adding_a_key_that_exists_says_how_to_set_it(in_tmp, capsys):
    err = _refused(in_tmp, capsys, "+trainer.epochs=3")
    assert "'trainer.epochs' is already in the config; set it with 'trainer.epochs=3'" in err


def test_force_adding_a_key_that_exists_sets_it():
    assert preflight.check_argv(["++trainer.epochs=2"]) is None


def test_a_preset_key_is_checked_in_the_config_the_preset_composes(in_tmp, capsys):
    err = _refused(in_tmp, capsys, "experiment=smoke", "+trainer.epochz=1")
    assert "trainer.epochz" in err
    err = _refused(in_tmp, capsys, "experiment=smoke", "trainer.epochs=0")
    assert "trainer.epochs=0 is invalid" in err


@pytest.mark.parametrize(
    ("arg", "needles"),
    [
        (
            "noise.rate=0.4",
            ["the chosen noise 'none'", "symmetric", "choose one first", "noise.rate=0.4"],
        ),
        ("loss.q=0.5", ["the chosen loss 'ce'", "gce", "choose one first", "loss.q=0.5"]),
    ],
)
def test_a_key_of_an_unselected_option_says_what_to_choose_first(in_tmp, capsys, arg, needles):
    err = _refused(in_tmp, capsys, arg)
    for needle in needles:
        assert needle in err


def test_a_sweep_mixing_options_with_and_without_a_key_applies_it_where_it_exists(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    code = main(
        [
            "train",
            "-m",
            "noise=none,symmetric",
            "noise.rate=0.4",
            "trainer.epochs=1",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert code == 0, capsys.readouterr().err
    records = [json.loads((sweep / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert [r["status"] for r in records] == ["completed", "completed"]
    assert records[0]["overrides"] == ["noise=none", "trainer.epochs=1"]
    assert records[1]["overrides"] == ["noise=symmetric", "noise.rate=0.4", "trainer.epochs=1"]
    assert records[0]["noise"]["type"] == "none" and records[1]["noise"]["rate"] == 0.4
    assert "2 completed" in capsys.readouterr().out


def test_a_mixed_sweep_resumes_into_the_same_jobs(tmp_path, capsys):
    argv = ["train", "-m", "loss=ce,gce", "loss.q=0.5", "trainer.epochs=1"]
    sweep = f"hydra.sweep.dir={tmp_path}"
    assert main([*argv, sweep]) == 0
    assert main([*argv, sweep]) == 0
    assert capsys.readouterr().out.count("already completed") == 2
    gce = json.loads((tmp_path / "1" / "results.json").read_text())
    assert gce["config"]["loss"]["q"] == 0.5


def test_a_key_that_no_job_of_a_sweep_has_is_refused(in_tmp, capsys):
    err = _refused(in_tmp, capsys, "-m", "noise=none,symmetric", "noise.rat=0.4")
    assert "unknown config key 'noise.rat'" in err


def test_a_bad_value_in_one_job_of_a_sweep_refuses_the_sweep(in_tmp, capsys):
    err = _refused(in_tmp, capsys, "-m", "loss=ce,gce", "trainer.batch_size=0,32")
    assert "trainer.batch_size=0 is invalid" in err


BAD_VALUES = [
    "trainer.epochs=-1",
    "seed=-3",
    "eval.n_bins=0",
    "trainer.precision=fp8",
    "seed=${nope}",
]


@pytest.mark.parametrize("arg", BAD_VALUES)
def test_a_bad_value_is_reported_on_stderr_before_torch_is_imported(tmp_path, arg):
    code = (
        "import sys\n"
        "from losslab.cli import main\n"
        f"rc = main(['train', {arg!r}])\n"
        "sys.stderr.write('RC=%d TORCH=%s' % (rc, 'torch' in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert "RC=2 TORCH=False" in proc.stderr, proc.stderr[-2000:]
    assert arg.split("=")[0] in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_value_only_the_run_can_check_leaves_no_run_directory(tmp_path):
    out = run_cli("train", "trainer.device=cuda", cwd=tmp_path)
    assert out.returncode == 2
    assert "no CUDA GPU is available" in out.stderr and "no CUDA" not in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_bad_value_the_run_finds_leaves_an_existing_directory_as_it_was(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code = main(["train", f"hydra.run.dir={tmp_path}", "optimizer.lr=-1"])
    assert code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    err = capsys.readouterr().err
    assert err.startswith("losslab train: optimizer: ") and "Invalid learning rate: -1" in err
    assert "scheduler" not in err  # the optimizer's value, not the schedule, is named


def test_train_version_is_losslabs(capsys):
    from losslab import __version__

    assert main(["train", "--version"]) == 0
    assert capsys.readouterr().out.startswith(f"losslab {__version__}")


@pytest.fixture
def own_config(tmp_path):
    """A config folder of the user's own with one loss (a target of the package's)."""
    folder = tmp_path / "myconf" / "loss"
    folder.mkdir(parents=True)
    (folder / "my_gce.yaml").write_text("_target_: losslab.losses.gce.GCELoss\nq: 0.3\n")
    return tmp_path / "myconf"


def test_options_and_keys_of_a_config_dir_are_checked(own_config):
    cd = ["--config-dir", str(own_config)]
    assert preflight.check_argv([*cd, "loss=my_gce", "loss.q=0.5"]) is None
    message = preflight.check_argv([*cd, "loss=my_gce", "loss.qq=0.5"])
    assert message == "unknown config key 'loss.qq'. Valid keys under 'loss': _target_, q"
    message = preflight.check_argv([*cd, "loss=my_gc"])
    assert "unknown loss 'my_gc'" in message and "my_gce" in message and "gce" in message
    message = preflight.check_argv([*cd, "loss=my_gce", "+loss.k=0.5"])
    assert "GCELoss takes no argument 'k'" in message
    message = preflight.check_argv([*cd, "-m", "loss=ce,my_gce", "trainer.epochs=0,1"])
    assert "trainer.epochs=0 is invalid" in message


def test_a_config_dir_sweep_applies_a_key_where_it_exists(own_config):
    checked = preflight.check(
        ["--config-dir", str(own_config), "-m", "loss=ce,my_gce", "loss.q=0.5"]
    )
    assert checked.problem is None
    assert checked.jobs == [
        ["loss=ce", "hydra.sweep.subdir=0"],
        ["loss=my_gce", "loss.q=0.5", "hydra.sweep.subdir=1"],
    ]


def test_an_error_during_training_is_on_stderr_and_progress_on_stdout(tmp_path):
    out = run_cli("train", "optimizer.lr=1e12", "trainer.epochs=1", cwd=tmp_path)
    assert out.returncode == 1
    assert "run failed: FloatingPointError: training diverged" in out.stderr
    assert "run failed" not in out.stdout and "run directory:" in out.stdout
