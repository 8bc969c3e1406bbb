"""``logger=none``, and the flat run summary every logger can send."""

from __future__ import annotations

from numbers import Real
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


def summary_of(results: dict[str, Any]) -> dict[str, Any]:
    """The flat run summary of a ``results.json`` record.

    Keys: ``status`` (and ``error`` when failed), ``final/epoch``,
    ``best/epoch``, and ``final/<split>/<metric>`` / ``best/<split>/<metric>``
    for every numeric metric of every split (``train``, ``val``, ``test``).

    Args:
        results: the runner's results record (``final`` and ``best`` may be None).

    Returns:
        A flat dict of JSON scalars.
    """
    out: dict[str, Any] = {"status": results.get("status", "unknown")}
    if results.get("error"):
        out["error"] = str(results["error"])
    for which in ("final", "best"):
        summary = results.get(which) or {}
        if summary.get("epoch") is not None:
            out[f"{which}/epoch"] = summary["epoch"]
        for split, metrics in summary.items():
            if not isinstance(metrics, dict):
                continue
            for name, value in metrics.items():
                if isinstance(value, Real) and not isinstance(value, bool):
                    out[f"{which}/{split}/{name}"] = value
    return out
