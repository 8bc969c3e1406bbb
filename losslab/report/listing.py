"""``losslab runs``: the runs under some directories, with status, choices, epoch and metrics.

Runs are found as ``losslab compare`` finds them (the walk of
:mod:`losslab.report.runs`): every directory with a ``results.json``, and every
directory with ``.hydra/``, ``metrics.jsonl`` or ``checkpoint.pt`` but none; each is
listed once, duplicates included. A run's status:

- ``running``: a live process holds the run directory's lock (whatever the files say);
- ``completed``, ``failed``, ``interrupted``: as its ``results.json`` records;
- ``unfinished``: no ``results.json`` (or one still saying ``running``) and no live
  process: killed, lost with its node, or not yet started writing;
- ``unreadable``, ``malformed``: a ``results.json`` that cannot be used (see
  :func:`losslab.report.record.read_record`).

The lock is read, never taken (taking it, even for a moment, could refuse a job that
starts at that moment): on Linux ``/proc/locks`` says whether the lock file is held,
elsewhere the pid it records is checked for life. A lock last taken on another host
cannot be checked from here; such a run is listed as ``unfinished`` with the holder
named.

Example:
    >>> from losslab.report.listing import main
    >>> main(["multirun", "--status", "failed"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from losslab.report.record import (
    RESULTS,
    parse_timestamp,
    read_metrics_records,
    read_record,
    shorten,
)
from losslab.report.runs import (
    DERIVED_GROUPS,
    MISSING,
    CompareError,
    natural_key,
    parse_overrides,
    walk_runs,
)

#: The lock file of a run directory (:class:`losslab.runner.rundir.DirLock`): an
#: exclusive ``flock``; the file holds ``"<pid> <host>"`` of its last holder.
LOCK = ".lock"
METRICS = "metrics.jsonl"
HYDRA_DIR = ".hydra"

#: Every status a run can be listed with (``--status`` accepts these).
STATUSES = (
    "completed",
    "failed",
    "interrupted",
    "running",
    "unfinished",
    "unreadable",
    "malformed",
)

#: Where runs are looked for when no directory is given (Hydra's run and sweep roots).
DEFAULT_DIRS = ("outputs", "multirun")

#: Config groups never shown as a choice: they do not change a run's results.
_HIDDEN_GROUPS = ("logger",)

_STYLES = {
    "completed": "green",
    "failed": "bold red",
    "interrupted": "yellow",
    "running": "bold cyan",
    "unfinished": "yellow",
    "unreadable": "red",
    "malformed": "red",
}


class ListingError(CompareError):
    """A mistake in the command line or the inputs (exit code 2)."""


@dataclass
class RunEntry:
    """One run directory as listed.

    Attributes:
        path: the run directory.
        status: one of :data:`STATUSES`.
        started: when the run started (``timing.started_at``, else the time its
            ``.hydra/`` record or directory was last written).
        finished: ``timing.finished_at`` when recorded.
        choices: the option of every config group (``{"loss": "gce"}``), as shown.
        overrides: the run's Hydra overrides.
        epoch: the last epoch reached (``final.epoch``, else the last line of
            ``metrics.jsonl``).
        epochs: the epochs the run was configured for (``trainer.epochs``).
        metrics: ``test_acc``, ``test_ece``, ``test_nll`` (of the last epoch) and
            ``best_val_acc`` (the best validation accuracy); None when not recorded.
        metrics_from: ``results.json``, ``metrics.jsonl`` (a run without a final
            record: its last epoch so far) or None.
        error: the recorded error, or why the status was given.
        pid: the process that holds the lock of a running run.
    """

    path: Path
    status: str
    started: datetime | None = None
    finished: datetime | None = None
    choices: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    epoch: int | None = None
    epochs: int | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    metrics_from: str | None = None
    error: str = ""
    pid: int | None = None

    def as_json(self, root: Path | None = None) -> dict[str, Any]:
        """A plain dict for ``--json`` (times as ISO 8601, the full error)."""
        return {
            "path": str(self.path),
            "name": _relative(self.path, root),
            "status": self.status,
            "started_at": self.started.isoformat() if self.started else None,
            "finished_at": self.finished.isoformat() if self.finished else None,
            "choices": {k: None if v == MISSING else v for k, v in self.choices.items()},
            "overrides": list(self.overrides),
            "epoch": self.epoch,
            "epochs": self.epochs,
            **{name: self.metrics.get(name) for name in METRIC_NAMES},
            "metrics_from": self.metrics_from,
            "error": self.error or None,
            "pid": self.pid,
        }


#: The headline metrics of a run, in table order.
METRIC_NAMES = ("test_acc", "test_ece", "test_nll", "best_val_acc")


# ------------------------------------------------------------------ reading


def list_runs(paths: Sequence[str | Path]) -> list[RunEntry]:
    """Every run below ``paths``, oldest first.

    Args:
        paths: directories searched recursively, or ``results.json`` files.

    Returns:
        One :class:`RunEntry` per run directory, sorted by start time (then path).

    Raises:
        ListingError: when a path does not exist or holds no run.
    """
    try:
        files, unfinished = walk_runs(paths)
    except CompareError as exc:
        raise ListingError(str(exc)) from None
    entries = [_from_results(path) for path in files.values()]
    entries += [_from_directory(path) for path in unfinished.values()]
    if not entries:
        where = ", ".join(str(p) for p in paths)
        raise ListingError(
            f"no runs under {where} (a run is a directory with {RESULTS}, {HYDRA_DIR}/, "
            f"{METRICS} or checkpoint.pt)"
        )
    epoch_zero = datetime.fromtimestamp(0, timezone.utc)
    entries.sort(key=lambda e: (e.started or epoch_zero, natural_key(e.path)))
    return entries


def _from_results(path: Path) -> RunEntry:
    run_dir = path.parent
    record, problem = read_record(path)
    if problem is not None:
        entry = RunEntry(run_dir, problem.status, error=problem.error)
        _fill_from_directory(entry)
    else:
        timing = record.get("timing") or {}
        entry = RunEntry(
            run_dir,
            record["status"],
            started=parse_timestamp(timing.get("started_at")),
            finished=parse_timestamp(timing.get("finished_at")),
            choices=_choice_labels(record.get("choices") or {}),
            overrides=list(record.get("overrides") or []),
            epochs=_epochs_of((record.get("config") or {}).get("trainer")),
            error=record.get("error") or "",
        )
        final, best = record.get("final") or {}, record.get("best") or {}
        if final:
            test = final.get("test") or {}
            entry.epoch = final.get("epoch")
            entry.metrics = {
                "test_acc": _number(test.get("acc")),
                "test_ece": _number(test.get("ece")),
                "test_nll": _number(test.get("nll")),
                "best_val_acc": _number((best.get("val") or {}).get("acc")),
            }
            entry.metrics_from = RESULTS
        _fill_from_directory(entry)
    _apply_lock(entry, record_status=entry.status)
    return entry


def _from_directory(run_dir: Path) -> RunEntry:
    entry = RunEntry(run_dir, "unfinished", error=f"no {RESULTS}")
    _fill_from_directory(entry)
    _apply_lock(entry, record_status=None)
    return entry


def _fill_from_directory(entry: RunEntry) -> None:
    """What ``results.json`` did not say: from ``.hydra/`` and ``metrics.jsonl``."""
    hydra = entry.path / HYDRA_DIR
    if not entry.overrides:
        overrides = _yaml(hydra / "overrides.yaml")
        if isinstance(overrides, list):
            entry.overrides = [str(o) for o in overrides]
    if not entry.choices:
        hydra_cfg = _yaml(hydra / "hydra.yaml")
        runtime = ((hydra_cfg or {}).get("hydra") or {}).get("runtime") or {}
        if isinstance(runtime.get("choices"), dict):
            entry.choices = _choice_labels(runtime["choices"])
    if entry.epochs is None:
        config = _yaml(hydra / "config.yaml")
        entry.epochs = _epochs_of((config or {}).get("trainer"))
    if entry.started is None:
        entry.started = _mtime(hydra / "overrides.yaml") or _mtime(entry.path)
    if entry.metrics_from is None:
        records = read_metrics_records(entry.path / METRICS)
        if records is not None and entry.epoch is None:
            entry.epoch = 0  # the runner writes the file before its first epoch
        if records:
            last = records[-1]
            entry.epoch = _int(last.get("epoch")) or len(records)
            vals = [v for r in records if (v := _number(r.get("val/acc"))) is not None]
            entry.metrics = {
                "test_acc": _number(last.get("test/acc")),
                "test_ece": _number(last.get("test/ece")),
                "test_nll": _number(last.get("test/nll")),
                "best_val_acc": max(vals) if vals else None,
            }
            entry.metrics_from = METRICS


def _apply_lock(entry: RunEntry, record_status: str | None) -> None:
    """``running`` when a live process holds the lock; a stale ``running`` is ``unfinished``."""
    holder = lock_holder(entry.path)
    if holder is None:
        if record_status == "running":
            entry.status = "unfinished"
            entry.error = entry.error or "recorded as running, but no process holds its lock"
        return
    pid, host, live = holder
    if live:
        entry.status, entry.pid, entry.error = "running", pid, ""
    elif entry.status in ("unfinished", "running") and host:
        entry.status = "unfinished"
        entry.error = f"lock last taken by pid {pid} on {host} (not checked from here)"


def lock_holder(run_dir: Path) -> tuple[int | None, str, bool] | None:
    """Who holds the lock of ``run_dir``, read without taking it.

    Returns:
        None when no live process on this host holds it and no other host last
        took it; else ``(pid, host, live)``: ``live`` True for a live holder on this
        host (``host`` then ""), False for a lock last taken on another host
        (which cannot be checked from here).
    """
    path = Path(run_dir) / LOCK
    try:
        text = path.read_text(errors="replace").strip()
        stat = path.stat()
    except OSError:
        return None
    pid_text, _, host = text.partition(" ")
    pid = _int(pid_text)
    if host and host != socket.gethostname():
        return pid, host, False
    held = _flock_holders(stat)
    if held is not None:  # Linux: the kernel's list of held locks is the truth
        if not held:
            return None
        return (pid if pid in held else held[0]), "", True
    return (pid, "", True) if pid is not None and _alive(pid) else None


def _flock_holders(stat: os.stat_result) -> list[int] | None:
    """The pids holding a lock on the file of ``stat`` per ``/proc/locks``; None without it."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    pids = []
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4263 fe:00:2148501 0 EOF"; waiters have "->" after "1:"
        parts = line.split()
        if "->" in parts or len(parts) < 6:
            continue
        if parts[5] == wanted:
            pid = _int(parts[4])
            if pid is not None:
                pids.append(pid)
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def _choice_labels(choices: dict[str, Any]) -> dict[str, str]:
    """``{"loss": "gce", "regularizer": "entropy,logz"}`` without Hydra's and derived groups."""
    out = {}
    for name, value in choices.items():
        name = str(name)
        if "@" in name or name.startswith("hydra") or name in DERIVED_GROUPS:
            continue
        if name in _HIDDEN_GROUPS:
            continue
        if isinstance(value, list):
            label = ",".join(str(v) for v in value) or MISSING
        else:
            label = MISSING if value in (None, "null", "None") else str(value)
        out[name] = label
    return out


def _epochs_of(trainer: Any) -> int | None:
    return _int(trainer.get("epochs")) if isinstance(trainer, dict) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    except OSError:
        return None


def _yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            rel = Path(path).resolve().relative_to(Path(root).resolve())
            return str(rel) if str(rel) != "." else Path(path).resolve().name
        except ValueError:
            pass
    return str(path)


# ------------------------------------------------------------------ the table


@dataclass
class _Column:
    header: str
    cells: list[str]
    #: Columns are dropped lowest priority first until the table fits the terminal.
    priority: int
    #: False for numbers (and the status): never wrapped, shown whole or not at all.
    wrap: bool = True
    right: bool = False
    #: Narrowest width a wrapping column may be folded to.
    floor: int = 8
    styles: list[str] | None = None


def _epoch_cell(entry: RunEntry) -> str:
    """``3/10``: the epoch reached of the epochs configured."""
    if entry.epoch is None:
        return MISSING
    return f"{entry.epoch}/{entry.epochs}" if entry.epochs else str(entry.epoch)


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return MISSING
    return f"{100 * value:.2f}" if percent else f"{value:.4f}"


def common_and_varying(entries: Sequence[RunEntry]) -> tuple[dict[str, str], list[str]]:
    """The group choices and overrides the runs share, and the groups whose choice varies.

    Returns:
        ``({"dataset": "digits", "trainer.epochs": "2"}, ["loss", "noise"])``.
    """
    groups = list(dict.fromkeys(g for e in entries for g in e.choices))
    common: dict[str, str] = {}
    varying = []
    for group in groups:
        labels = {e.choices.get(group, MISSING) for e in entries}
        if len(labels) == 1:
            common[group] = labels.pop()
        else:
            varying.append(group)
    rest = [_other_overrides(e, groups) for e in entries]
    keys = list(dict.fromkeys(k for r in rest for k in r))
    for key in keys:
        values = {r.get(key) for r in rest}
        if len(values) == 1 and None not in values:
            common[key] = values.pop()
    return common, varying


def _other_overrides(entry: RunEntry, groups: Iterable[str]) -> dict[str, str]:
    """The overrides of keys that are not config groups (``seed=1``, ``noise.rate=0.4``)."""
    groups = set(groups)
    return {k: v for k, v in parse_overrides(entry.overrides).items() if k not in groups}


def _columns(entries: Sequence[RunEntry], root: Path | None) -> tuple[list[_Column], list[str]]:
    common, varying = common_and_varying(entries)
    groups = list(dict.fromkeys(g for e in entries for g in e.choices))
    started = [
        e.started.astimezone().strftime("%m-%d %H:%M") if e.started else MISSING for e in entries
    ]
    columns = [
        _Column("started", started, priority=30, wrap=False, right=True),
        _Column("run", [_relative(e.path, root) for e in entries], priority=100, floor=20),
        _Column(
            "status",
            [e.status for e in entries],
            priority=99,
            wrap=False,
            styles=[_STYLES.get(e.status, "") for e in entries],
        ),
    ]
    for i, group in enumerate(varying):
        columns.append(
            _Column(group, [e.choices.get(group, MISSING) for e in entries], priority=80 - i)
        )
    other = []
    for entry in entries:
        rest = _other_overrides(entry, groups)
        other.append(" ".join(f"{k}={v}" for k, v in rest.items() if k not in common) or "")
    if any(other):
        columns.append(_Column("overrides", other, priority=40, floor=10))
    epochs = [_epoch_cell(e) for e in entries]
    columns.append(_Column("epoch", epochs, priority=90, wrap=False, right=True))
    metric_columns = (
        ("test\nacc%", "test_acc", True, 89),
        ("test\nece", "test_ece", False, 70),
        ("test\nnll", "test_nll", False, 60),
        ("best\nval%", "best_val_acc", True, 50),
    )
    for header, name, percent, priority in metric_columns:
        columns.append(
            _Column(
                header,
                [_fmt(e.metrics.get(name), percent) for e in entries],
                priority=priority,
                wrap=False,
                right=True,
            )
        )
    errors = [shorten(e.error, 60) if e.status != "completed" else "" for e in entries]
    if any(errors):
        columns.append(_Column("error", errors, priority=45, floor=20))
    notes = []
    shared = {k: v for k, v in common.items() if v != MISSING}
    if shared:
        notes.append("all runs: " + " ".join(f"{k}={v}" for k, v in shared.items()))
    if any(e.metrics_from == METRICS for e in entries):
        notes.append(f"metrics of runs without a final record: their last epoch in {METRICS}")
    return columns, notes


def _rich_table(columns: Sequence[_Column], probe: bool = False) -> Any:
    """The table; ``probe`` fills each column with one cell of its narrowest width,
    for measuring (see :func:`narrowest_width`)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
        show_header=not probe,
    )
    for column in columns:
        table.add_column(
            Text(column.header),
            justify="right" if column.right else "left",
            no_wrap=not column.wrap,
            overflow="fold",
        )
    if probe:
        table.add_row(*(Text("x" * _narrowest(c)) for c in columns))
        return table
    for i in range(len(columns[0].cells) if columns else 0):
        table.add_row(*(Text(c.cells[i], style=c.styles[i] if c.styles else "") for c in columns))
    return table


def _width(column: _Column) -> int:
    """The widest cell of ``column``, its header's lines included."""
    from rich.cells import cell_len

    lines = [*column.cells, *column.header.splitlines()]
    return max((cell_len(line) for line in lines), default=0)


def _narrowest(column: _Column) -> int:
    """Number columns at their widest cell, text columns folded to their floor."""
    return min(column.floor, _width(column)) if column.wrap else _width(column)


def narrowest_width(console: Any, columns: Sequence[_Column]) -> int:
    """The narrowest the table of ``columns`` can be printed with no number cut,
    borders and padding included (measured by rich on a table of the narrowest cells)."""
    probe = _rich_table(columns, probe=True)
    return console.measure(probe, options=console.options.update_width(10**6)).maximum


def fitting_columns(console: Any, columns: Sequence[_Column]) -> list[_Column]:
    """The columns that fit the console's width, dropping the least important first.

    Numbers are never cut: a number column either fits whole or is left out; text
    columns (run, choices, overrides, error) wrap.
    """
    kept = list(columns)
    while narrowest_width(console, kept) > console.width:
        droppable = [c for c in kept if c.priority < 99]
        if not droppable:
            break
        kept.remove(min(droppable, key=lambda c: c.priority))
    return kept


def render(entries: Sequence[RunEntry], console: Any, root: Path | None = None) -> None:
    """Print the table of ``entries`` (and its notes) on ``console``."""
    from rich.text import Text

    columns, notes = _columns(entries, root)
    counts = {s: n for s in STATUSES if (n := sum(e.status == s for e in entries))}
    title = f"{len(entries)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    kept = fitting_columns(console, columns)
    console.print(Text(title))  # not the table's title: that wraps at the table's width
    console.print(_rich_table(kept))
    dropped = [c for c in columns if c not in kept]
    errors = next((c for c in dropped if c.header == "error"), None)
    if errors is not None:  # too narrow for the column: one line per run beneath the table
        for entry, error in zip(entries, errors.cells, strict=True):
            if error:
                where = f"{entry.status} {_relative(entry.path, root)}: "
                console.print(
                    Text.assemble(
                        (entry.status, _STYLES.get(entry.status, "")),
                        where[len(entry.status) :],
                        shorten(entry.error, max(console.width - len(where), 20)),
                    )
                )
        dropped.remove(errors)
    if dropped:
        names = ", ".join(c.header.replace("\n", " ") for c in dropped)
        notes.append(f"left out to fit {console.width} columns: {names} (all in --json)")
    if notes:
        console.print(Text("\n".join(notes), style="dim"))


# ------------------------------------------------------------------ CLI

_EPILOG = """\
statuses: completed, failed, interrupted (results.json says so); running (a live process
  holds the run directory's lock); unfinished (no results.json and no live process: killed
  or lost); unreadable, malformed (a results.json that cannot be used).
columns: config groups whose option differs between the listed runs, then the other
  overrides; choices the runs share are named under the table. test acc, ece and nll are
  of the last epoch (final); best val is the best validation accuracy. Accuracies in percent.
  On a narrow terminal the least important columns are left out (all of them in --json).
exit codes: 0 ok (also when --status matches no run); 2 usage errors, a missing directory,
  no runs.

examples:
  losslab runs
  losslab runs multirun/2026-12-06 --status failed
  losslab runs outputs --json | jq '.[] | select(.status == "completed") | .test_acc'
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="losslab runs",
        description="List the runs under some directories, oldest first: status, choices,\n"
        "epoch reached, headline metrics, and the error of failed runs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="DIR",
        help=f"run or sweep directories (default: {' and '.join(f'./{d}' for d in DEFAULT_DIRS)}"
        ", those that exist)",
    )
    parser.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help=f"only runs with this status, repeatable or comma-separated: {', '.join(STATUSES)}",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON array of the runs instead of a table"
    )
    return parser


def default_dirs(cwd: Path | None = None) -> list[Path]:
    """``./outputs`` and ``./multirun``, those that exist.

    Raises:
        ListingError: when neither exists.
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    found = [cwd / d for d in DEFAULT_DIRS if (cwd / d).is_dir()]
    if not found:
        raise ListingError(
            f"no {' or '.join(f'{d}/' for d in DEFAULT_DIRS)} directory in {cwd}; "
            "pass the directory that holds the runs: losslab runs DIR"
        )
    return found


def _wanted(statuses: list[str] | None) -> set[str] | None:
    if not statuses:
        return None
    wanted = {s.strip() for item in statuses for s in item.split(",") if s.strip()}
    unknown = sorted(wanted - set(STATUSES))
    if unknown:
        raise ListingError(
            f"--status {','.join(unknown)} is not a status; choose from {', '.join(STATUSES)}"
        )
    return wanted


def main(argv: list[str]) -> int:
    """``losslab runs``: print the runs under the given directories.

    Args:
        argv: the words after ``runs``.

    Returns:
        0 on success (also when no run has the requested status), 2 for a usage
        error, a directory that does not exist, or one without runs.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        wanted = _wanted(args.status)
        paths = [Path(p) for p in args.paths] or default_dirs()
        entries = list_runs(paths)
    except CompareError as exc:
        sys.stderr.write(f"losslab runs: {exc}\n")
        return 2
    shown = [e for e in entries if wanted is None or e.status in wanted]
    root = paths[0] if len(paths) == 1 else Path.cwd()
    if args.json:
        sys.stdout.write(json.dumps([e.as_json(root) for e in shown], indent=2) + "\n")
        return 0
    if not shown:
        sys.stderr.write(
            f"losslab runs: none of the {len(entries)} runs is {' or '.join(sorted(wanted))}\n"
        )
        return 0
    render(shown, _console(), root)
    return 0


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)
