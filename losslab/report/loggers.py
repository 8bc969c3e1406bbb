"""Experiment loggers selected with ``logger=<token>``.

A logger receives the resolved config once, every epoch's record, and the
final results; the run directory's own files (metrics.jsonl, results.json)
are written by the runner whatever logger is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class NullLogger:
    """``logger=none``: nothing beyond the run directory's files."""

    def __init__(self, **_: Any) -> None:
        pass

    def start(self, config: dict[str, Any], run_dir: Path) -> None:
        """Called once before training with the resolved config."""

    def log(self, record: dict[str, Any], step: int) -> None:
        """Called after every evaluation with the epoch's record."""

    def finish(self, results: dict[str, Any], run_dir: Path) -> None:
        """Called once with the final results (also for failed runs)."""
