"""``logger=csv``: every epoch's record as one row of ``RUN_DIR/metrics.csv``."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from numbers import Real
from pathlib import Path
from typing import Any

from losslab.report.record import read_metrics_records

log = logging.getLogger(__name__)

#: The file written in the run directory.
METRICS_CSV = "metrics.csv"
#: The runner's own per-epoch record, read to carry a resumed run's earlier rows.
METRICS_JSONL = "metrics.jsonl"


class CsvLogger:
    """``logger=csv``: ``RUN_DIR/metrics.csv``, one row per epoch, for spreadsheets and pandas.

    Columns are the union of the record keys in the order they first appear
    (``epoch`` first); a key that appears in a later epoch adds a column and
    leaves the cells of earlier rows empty, as does a None value. Numbers are
    written in full precision (``repr``), so ``float(cell)`` gives back the
    value of ``metrics.jsonl``.

    The file is rewritten whole (to a temporary file, then renamed over it)
    after every epoch, so a reader never sees half a row and the header always
    names every column. A resumed run starts from the rows of the epochs it
    resumes after (read from ``metrics.jsonl``, else from an earlier
    ``metrics.csv``) and replaces the rows of any epoch it trains again: every
    epoch appears once.

    Args:
        filename: the file's name inside the run directory.
    """

    def __init__(self, filename: str = METRICS_CSV) -> None:
        if not filename or Path(filename).name != filename:
            raise ValueError(
                f"logger.filename must be a plain file name inside the run directory, "
                f"got {filename!r}"
            )
        self.filename = filename
        self.path: Path | None = None
        self.rows: list[dict[str, Any]] = []

    def start(self, config: dict[str, Any], run_dir: Path) -> None:
        """Open ``run_dir/metrics.csv``, keeping the rows of a run being resumed.

        Args:
            config: the resolved config (not written).
            run_dir: the run directory.
        """
        self.path = Path(run_dir) / self.filename
        self.rows = _earlier_rows(Path(run_dir), self.path)

    def log(self, record: dict[str, Any], step: int) -> None:
        """Add (or replace) the row of epoch ``step`` and rewrite the file.

        Args:
            record: the flat per-epoch record.
            step: the epoch number.
        """
        if self.path is None:
            return
        row = {"epoch": step, **record}
        # Rows of this epoch or later are from an attempt that the run is repeating.
        self.rows = [r for r in self.rows if not _epoch_at_least(r.get("epoch"), step)]
        self.rows.append(row)
        _write_rows(self.path, self.rows)

    def finish(self, results: dict[str, Any], run_dir: Path) -> None:
        """Nothing left to write: the file is complete after every epoch.

        Args:
            results: the final results record (not written).
            run_dir: the run directory.
        """
        if self.path is not None and self.rows:
            log.debug("%d epochs in %s", len(self.rows), self.path)
        self.path = None


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys in the order first seen, ``epoch`` first."""
    names = dict.fromkeys(["epoch"])
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def cell(value: Any) -> str:
    """One CSV cell: numbers in full precision, None empty, lists and dicts as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Real):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


def _epoch_at_least(value: Any, step: int) -> bool:
    try:
        return int(value) >= step
    except (TypeError, ValueError):
        return False


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite ``path`` with a header and ``rows``: a reader sees the old or the new file."""
    names = columns_of(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in names])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(out.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _earlier_rows(run_dir: Path, path: Path) -> list[dict[str, Any]]:
    """The rows a resumed run starts from: ``metrics.jsonl`` when it is whole, else the CSV.

    ``metrics.jsonl`` may still hold epochs past the checkpoint the run resumes
    from; their rows are replaced as the run trains those epochs again.
    """
    rows = read_metrics_records(run_dir / METRICS_JSONL)
    if rows is not None:
        return rows
    try:
        with path.open(newline="") as f:
            return [
                {k: v for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)
            ]
    except (OSError, csv.Error, UnicodeDecodeError):
        return []
