"""Experiment loggers: NullLogger, and WandbLogger writing real offline runs (no network)."""

from __future__ import annotations

import json
import logging
import shlex
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from losslab.loggers import NullLogger, WandbLogger, summary_of
from tests.conftest import run_train

REPO = Path(__file__).resolve().parents[2]

RESULTS = {
    "status": "completed",
    "overrides": ["loss=ce"],
    "final": {"epoch": 2, "train": {"loss": 0.4}, "val": {"acc": 0.8}, "test": {"acc": 0.75, "ece": 0.05}},
    "best": {"epoch": 1, "train": {"loss": 0.6}, "val": {"acc": 0.85, "ece": None}, "test": {"acc": 0.7}},
}  # fmt: skip
RECORDS = [
    {"epoch": 1, "lr": 0.1, "train/loss": 0.6, "val/acc": 0.85, "test/acc": 0.7, "test/ece": None},
    {"epoch": 2, "lr": 0.05, "train/loss": 0.4, "val/acc": 0.8, "test/acc": 0.75},
]


# -- reading an offline run's .wandb file ---------------------------------------------------
# The file is a 7-byte header (":W&B", magic, version) followed by a log of
# length-prefixed chunks in 32 KiB blocks; each full/first..last chain is one
# serialized protobuf ``Record``.

_BLOCK = 32 * 1024
_CHUNK_HEADER = 7  # crc32 (4), length (2), type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if len(data) < 7:  # the header is not written yet
        return []
    assert data[:4] == b":W&B"
    pos, records, pending = 7, [], b""
    while pos + _CHUNK_HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _CHUNK_HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _CHUNK_HEADER])
        end = pos + _CHUNK_HEADER + length
        if (kind == 0 and length == 0) or end > len(data):  # end of the log, or still being written
            break
        payload, pos = data[pos + _CHUNK_HEADER : end], end
        if kind in (_FULL, _FIRST):
            pending = payload
        else:
            pending += payload
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def _items(items) -> dict:
    """``{key: value}`` of config/history/summary items (keys may be nested paths)."""
    return {
        "/".join(i.nested_key) if i.nested_key else i.key: json.loads(i.value_json) for i in items
    }


def finished_records(run_path: Path, timeout: float = 20.0) -> list:
    """The records of a finished run, once W&B's service has written them all.

    ``run.finish()`` returns before the service has necessarily flushed the
    file (it is complete at the latest when the process exits), so wait for the
    exit record, which comes last.
    """
    deadline = time.monotonic() + timeout
    while True:
        files = list(run_path.glob("run-*.wandb"))
        assert len(files) <= 1, files
        records = read_records(files[0]) if files else []
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{run_path}: no complete run-*.wandb file"
        time.sleep(0.05)


def parse_run(run_path: Path) -> dict:
    """Run metadata, config, history rows by step, summary and exit code of an offline run."""
    out: dict = {"history": {}, "summary": {}, "config": {}, "run": None, "exit_code": None}
    for record in finished_records(run_path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            out["config"].update(
                {i.key: json.loads(i.value_json) for i in record.run.config.update}
            )
        elif kind == "config":
            out["config"].update(_items(record.config.update))
        elif kind == "history":
            row = _items(record.history.item)
            out["history"].setdefault(row.get("_step"), {}).update(row)
        elif kind == "summary":
            out["summary"].update(_items(record.summary.update))
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    """Keep W&B offline, quiet, and inside tmp_path (no network, no files in $HOME)."""
    home = tmp_path / "wandb-env"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(home / "dir"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(home / "artifacts"))
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_DISABLE_CODE", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing may reach a server
    for key in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_GROUP"):
        monkeypatch.delenv(key, raising=False)
    return home


def write_png(path: Path) -> Path:
    from losslab.report.plots import training_curves

    return training_curves(RECORDS, path)


def one_run(logger: WandbLogger, run_dir: Path, results: dict = RESULTS, plots: bool = True):
    run_dir.mkdir(parents=True, exist_ok=True)
    logger.start({"seed": 0, "loss": {"_target_": "x.CE", "q": 0.7}}, run_dir)
    for record in RECORDS:
        logger.log(record, step=record["epoch"])
    if plots:
        write_png(run_dir / "plots" / "curves.png")
    logger.finish(results, run_dir)


def offline_runs(root: Path) -> list[Path]:
    return sorted((root / "wandb").glob("offline-run-*"))


def test_summary_of_flattens_final_and_best():
    s = summary_of(RESULTS)
    assert s == {
        "status": "completed",
        "final/epoch": 2,
        "final/train/loss": 0.4,
        "final/val/acc": 0.8,
        "final/test/acc": 0.75,
        "final/test/ece": 0.05,
        "best/epoch": 1,
        "best/train/loss": 0.6,
        "best/val/acc": 0.85,
        "best/test/acc": 0.7,
    }
    failed = summary_of({"status": "failed", "error": "boom", "final": None, "best": None})
    assert failed == {"status": "failed", "error": "boom"}


def test_null_logger_accepts_the_interface(tmp_path):
    logger = NullLogger(anything=1)
    logger.start({}, tmp_path)
    logger.log({"epoch": 1}, step=1)
    logger.finish(RESULTS, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["Offline", "dryrun", "shared", ""])
def test_bad_mode_is_a_clear_error(mode):
    with pytest.raises(ValueError, match=r"logger\.mode must be one of offline, online, disabled"):
        WandbLogger(mode=mode)


def test_group_defaults_to_the_sweep_directory_name(tmp_path):
    assert WandbLogger(sweep_dir=tmp_path / "multirun" / "12-00-00-abc").group == "12-00-00-abc"
    assert WandbLogger(sweep_dir=str(tmp_path / "s"), group="mine").group == "mine"
    assert WandbLogger().group is None


def test_tags_from_a_string_or_a_list():
    assert WandbLogger(tags="smoke").tags == ["smoke"]
    assert WandbLogger(tags=("a", 1)).tags == ["a", "1"]
    assert WandbLogger(tags=None).tags == []


def test_offline_run_records_metrics_summary_and_plots(tmp_path, offline_env):
    wb_dir = tmp_path / "wb"
    logger = WandbLogger(
        project="losslab-test",
        tags=["smoke", "ce"],
        dir=wb_dir,
        sweep_dir=tmp_path / "multirun" / "sweep-42",
        name="ce-seed0",
    )
    one_run(logger, tmp_path / "run")

    (run_path,) = offline_runs(wb_dir)
    assert not (tmp_path / "run" / "wandb").exists()  # dir= wins over the run directory
    run = parse_run(run_path)
    assert run["run"].project == "losslab-test"
    assert run["run"].run_group == "sweep-42"
    assert run["run"].display_name == "ce-seed0"
    assert list(run["run"].tags) == ["smoke", "ce"]
    assert run["config"]["seed"] == 0
    assert run["config"]["loss"] == {"_target_": "x.CE", "q": 0.7}

    history = run["history"]
    assert history[1]["val/acc"] == 0.85 and history[1]["train/loss"] == 0.6
    assert "test/ece" not in history[1]  # None values are left out
    assert history[2]["val/acc"] == 0.8 and history[2]["epoch"] == 2
    # The image is logged with the last epoch; its fields arrive as nested keys.
    assert history[2]["plots/curves/_type"] == "image-file"
    assert history[2]["plots/curves/format"] == "png"
    media = run_path / "files" / history[2]["plots/curves/path"]
    assert media.read_bytes().startswith(b"\x89PNG")

    summary = run["summary"]
    for key, value in summary_of(RESULTS).items():
        assert summary[key] == value
    assert run["exit_code"] == 0


def test_failed_run_exits_1_and_default_dir_is_the_run_dir(tmp_path, offline_env):
    run_dir = tmp_path / "run"
    failed = {"status": "failed", "error": "FloatingPointError: diverged", "final": None}
    one_run(WandbLogger(), run_dir, results=failed, plots=False)

    (run_path,) = offline_runs(run_dir)
    run = parse_run(run_path)
    assert run["exit_code"] == 1
    assert run["summary"]["status"] == "failed"
    assert run["summary"]["error"] == "FloatingPointError: diverged"
    assert run["run"].project == "losslab" and run["run"].run_group == ""


def test_several_runs_in_one_process(tmp_path, offline_env):
    sweep = tmp_path / "multirun" / "s1"
    for job in range(3):
        one_run(WandbLogger(dir=tmp_path / "wb", sweep_dir=sweep), sweep / str(job), plots=False)
    runs = offline_runs(tmp_path / "wb")
    assert len(runs) == 3
    parsed = [parse_run(p) for p in runs]
    assert len({p["run"].run_id for p in parsed}) == 3
    assert {p["run"].run_group for p in parsed} == {"s1"}
    assert all(p["exit_code"] == 0 and p["history"][2]["val/acc"] == 0.8 for p in parsed)


def test_disabled_mode_writes_nothing(tmp_path, offline_env):
    one_run(WandbLogger(mode="disabled"), tmp_path / "run")
    assert not (tmp_path / "run" / "wandb").exists()
    assert not (offline_env / "dir").exists()
    # An offline run after a disabled one in the same process is recorded as usual.
    one_run(WandbLogger(), tmp_path / "next", plots=False)
    (run_path,) = offline_runs(tmp_path / "next")
    assert parse_run(run_path)["history"][2]["val/acc"] == 0.8


def test_finish_without_start_is_a_no_op(tmp_path):
    WandbLogger().finish(RESULTS, tmp_path)
    WandbLogger().log({"epoch": 1}, step=1)


def test_config_instantiates_with_the_sweep_dir(tmp_path):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    node = OmegaConf.load(REPO / "losslab" / "conf" / "logger" / "wandb.yaml")
    logger = instantiate(node, sweep_dir=str(tmp_path / "sweep-7"))
    assert isinstance(logger, WandbLogger)
    assert (logger.project, logger.mode, logger.entity, logger.name, logger.dir) == (
        "losslab",
        "offline",
        None,
        None,
        None,
    )
    assert logger.group == "sweep-7" and logger.tags == []
    assert instantiate(node, mode="online").mode == "online"
    with pytest.raises(Exception, match="logger.mode must be one of"):
        instantiate(node, mode="sideways")


def test_importing_report_modules_is_light():
    code = (
        "import sys, losslab.loggers, losslab.report.plots\n"
        "heavy = [m for m in ('wandb', 'matplotlib', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_offline_finish_logs_the_sync_command(tmp_path, offline_env, caplog):
    with caplog.at_level(logging.INFO, logger="losslab.loggers.wandb"):
        one_run(WandbLogger(), tmp_path / "run", plots=False)
    (run_path,) = offline_runs(tmp_path / "run")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    expected = f"wandb sync {run_path.resolve()}"
    assert any(m.endswith(expected) for m in messages), messages
    # the directory named is the run W&B wrote: its .wandb file holds the history
    assert parse_run(run_path)["history"][2]["val/acc"] == 0.8


def test_sync_command_quotes_odd_paths(tmp_path, offline_env, caplog):
    wb_dir = tmp_path / "with space"
    with caplog.at_level(logging.INFO, logger="losslab.loggers.wandb"):
        one_run(WandbLogger(dir=wb_dir), tmp_path / "run", plots=False)
    (run_path,) = offline_runs(wb_dir)
    command = next(m for m in (r.getMessage() for r in caplog.records) if "wandb sync" in m)
    assert command.endswith(f"wandb sync '{run_path.resolve()}'")
    assert shlex.split(command.split(": ", 1)[1]) == ["wandb", "sync", str(run_path.resolve())]


@pytest.mark.parametrize("mode", ["disabled", "online"])
def test_no_sync_command_unless_offline(tmp_path, offline_env, caplog, monkeypatch, mode):
    if mode == "online":  # no server here: a stand-in run records what finish is asked
        finished = []

        class Run:
            dir = str(tmp_path / "wandb" / "run-x" / "files")

            def __init__(self):
                self.summary = {}

            def finish(self, exit_code):
                finished.append(exit_code)

        logger = WandbLogger(mode="online")
        logger._run = Run()
    else:
        logger = WandbLogger(mode="disabled")
        logger.start({}, tmp_path)
    with caplog.at_level(logging.INFO, logger="losslab.loggers.wandb"):
        logger.finish(RESULTS, tmp_path)
    assert not any("wandb sync" in r.getMessage() for r in caplog.records)
    if mode == "online":
        assert finished == [0]


def test_train_with_wandb_prints_the_sync_command(tmp_path, offline_env, capsys):
    run_dir = tmp_path / "run"
    code, results = run_train(run_dir, "logger=wandb", "trainer.epochs=1", "model.width=16")
    assert code == 0 and results["status"] == "completed"
    (run_path,) = offline_runs(run_dir)
    out = capsys.readouterr().out
    assert f"to upload it: wandb sync {run_path.resolve()}\n" in out
    assert parse_run(run_path)["history"][1]["epoch"] == 1
