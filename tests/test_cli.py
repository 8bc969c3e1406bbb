"""The `losslab` command as a user runs it: a fresh interpreter per call."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import losslab
from losslab.runner import preflight
from tests.conftest import run_cli


def test_help_lists_subcommands():
    out = run_cli("--help")
    assert out.returncode == 0 and "train" in out.stdout and "usage: losslab" in out.stdout


def test_version():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"losslab {losslab.__version__}"


def test_console_script_is_installed():
    exe = shutil.which("losslab")
    if exe is None:
        pytest.skip("console script not on PATH (package not installed)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and losslab.__version__ in out.stdout


def test_unknown_command():
    out = run_cli("trian")
    assert out.returncode == 2 and "'trian'" in out.stderr and "train" in out.stderr


def test_train_help_lists_every_group_and_option():
    out = run_cli("train", "--help")
    assert out.returncode == 0, out.stderr
    conf = Path(losslab.__file__).parent / "conf"
    groups = [
        d for d in sorted(conf.iterdir()) if d.is_dir() and d.name not in ("hydra", "__pycache__")
    ]
    assert len(groups) == 12  # space/ holds the search spaces of losslab study
    for group in groups:
        for folder in [group, *(d for d in sorted(group.iterdir()) if d.is_dir())]:
            options = sorted(p.stem for p in folder.glob("*.yaml"))
            if options:  # protocol/ holds only sub-folders (protocol/ldr_benchmark: ...)
                name = folder.relative_to(conf).as_posix()
                assert f"{name}: {', '.join(options)}" in out.stdout
    assert "trainer:" in out.stdout and "epochs: 30" in out.stdout


def test_default_train_end_to_end(tmp_path):
    """The README's main job: defaults on digits reach >= 0.90 test accuracy."""
    out = run_cli("train", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed"
    assert results["final"]["test"]["acc"] >= 0.90
    for metric in ("acc", "ece", "nll", "entropy"):
        assert isinstance(results["final"]["test"][metric], float)
    assert 1 <= results["best"]["epoch"] <= 30
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 30
    # non-terminal output: one line per epoch, then the table and the run directory
    assert out.stdout.count("epoch ") >= 30 and "test" in out.stdout
    assert str(run_dir.name) in out.stdout


BAD_OPTIONS = [
    (["loss=nope"], ["'nope'", "ce"]),
    (["dataset=nope"], ["'nope'", "digits", "synthetic"]),
    (["-m", "loss=ce,nope"], ["'nope'", "ce"]),
    (["regularizer=[entropy,nope]"], ["'nope'", "entropy", "logit_l2"]),
    (["trainer.epochz=3"], ["trainer.epochz", "epochs", "batch_size"]),
    (["model.nope=1"], ["model.nope", "width"]),
]


@pytest.mark.parametrize(
    ("args", "needles"), BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS]
)
def test_unknown_option_or_key_is_one_clear_message(tmp_path, args, needles):
    out = run_cli("train", *args, cwd=tmp_path)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    for needle in needles:
        assert needle in out.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


BAD_VALUES = [
    ("trainer.epochs=-1", "trainer.epochs=-1 is invalid"),
    ("trainer.batch_size=0", "trainer.batch_size=0 is invalid"),
    ("trainer.precision=fp8", "'fp8' is invalid; choose one of ['fp32', 'bf16']"),
    ("trainer.device=tpu", "'tpu' is invalid; choose one of ['auto', 'cpu', 'cuda', 'mps']"),
]
if not torch.cuda.is_available():
    BAD_VALUES.append(("trainer.device=cuda", "no CUDA GPU is available"))


@pytest.mark.parametrize(("arg", "message"), BAD_VALUES, ids=[a for a, _ in BAD_VALUES])
def test_bad_value_is_refused_clearly_before_training(tmp_path, arg, message):
    """A bad value is one line on stderr, exit code 2, and no run directory."""
    out = run_cli("train", arg, cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert message in out.stderr and message not in out.stdout
    assert list(tmp_path.iterdir()) == []


def test_setting_a_regularizer_key_without_selecting_it_says_how(tmp_path):
    out = run_cli("train", "regularizer.entropy.weight=0.5", cwd=tmp_path)
    assert out.returncode == 2
    assert "'regularizer.entropy.weight'" in out.stderr and "regularizer=[entropy]" in out.stderr


def test_valid_keys_are_checked_without_listing_config_groups(monkeypatch):
    """Listing a group's options copies Hydra's config repository (a tenth of a second
    each); the check lists them for a selected group and for a bad key, never per key."""
    listed: list[str] = []
    real = preflight.group_options

    def spy(loader, group):
        listed.append(group)
        return real(loader, group)

    monkeypatch.setattr(preflight, "group_options", spy)
    keys = ["trainer.epochs=2", "trainer.batch_size=8", "model.width=16", "seed=3"]
    assert preflight.check_argv(["loss=ce", *keys]) is None
    assert listed == ["loss"]
    listed.clear()
    message = preflight.check_argv([*keys, "model.resnet18=1", "trainer.epochz=1"])
    assert "select it with 'model=[resnet18]'" in message and "trainer.epochz" in message
    assert sorted(set(listed)) == ["model"]


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["train", "--cfg", "job"]])
def test_cli_answers_without_importing_torch(argv):
    """Start-up stays fast: help and config printing never import torch."""
    code = (
        "import sys\n"
        "from losslab.cli import main\n"
        f"main({argv!r})\n"
        "sys.stderr.write('TORCH=%s' % ('torch' in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TORCH=False" in proc.stderr
