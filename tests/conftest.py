"""Shared helpers: run ``losslab train`` in-process or as a subprocess, and read its records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from losslab.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_train(run_dir: Path, *overrides: str) -> tuple[int, dict | None]:
    """``losslab train`` in this process into ``run_dir``; returns (exit code, results.json)."""
    code = main(["train", f"hydra.run.dir={run_dir}", *overrides])
    results = run_dir / "results.json"
    return code, json.loads(results.read_text()) if results.exists() else None


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """The ``losslab`` command in a fresh interpreter, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "losslab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for_epochs(run_dir: Path, epochs: int, proc: subprocess.Popen, limit: float = 120):
    """Wait until a running ``proc`` has recorded ``epochs`` epochs in ``run_dir``."""
    deadline = time.monotonic() + limit
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= epochs:
            return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.01)
    raise AssertionError(f"no {epochs} epochs in {limit} s")


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def strip_times(obj):
    """Remove wall-clock fields so two runs can be compared for identical results."""
    if isinstance(obj, dict):
        return {k: strip_times(v) for k, v in obj.items() if not k.startswith("time")}
    if isinstance(obj, list):
        return [strip_times(v) for v in obj]
    return obj


@pytest.fixture(autouse=True)
def _no_hydra_full_error(monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch):
    """Tables are laid out for the width in ``COLUMNS`` when it is set: the tests that
    read whole tables must not depend on the shell that runs them."""
    monkeypatch.delenv("COLUMNS", raising=False)
