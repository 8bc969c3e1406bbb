"""What ``losslab study`` prints: the plan before it trains, the result after."""

from __future__ import annotations

import statistics
from typing import Any

from rich.table import Table

from losslab.report.comparison import metric_value
from losslab.runner.study.protocol import RERUNS, selection_rule
from losslab.runner.study.spaces import describe


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _values(values: dict[str, Any], sep: str = " ") -> str:
    return sep.join(f"{k}={_short(v)}" for k, v in values.items()) or "(defaults)"


def stdout_console() -> Any:
    """The console of the study's tables: as wide as a terminal, 160 columns in a file."""
    import sys

    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 160)


def _space(st: Any) -> str:
    parts = []
    for space in st.spaces:
        for key, values in space.params.items():
            full = space.full(key)
            parts.append(f"{full} {describe(values)}" + (" (fixed)" if full in st.fixed else ""))
    return "; ".join(parts) or "nothing to search"


def print_plan(plan: Any) -> None:
    """The study's losses, their spaces and searches, and the selection rule."""
    options = plan.options
    console = stdout_console()
    table = Table(
        title=f"losslab study: {len(plan.studies)} losses, budget {options.trials} trials each",
        title_justify="left",
    )
    for name in ("loss", "search", "trials", "space (sources in study.json)"):
        table.add_column(name)
    for st in plan.studies:
        search = st.search
        how = "grid" if search.method == "grid" else f"TPE, seed {options.seed}"
        size = f"{search.size} points" if search.size is not None else "continuous"
        table.add_row(st.loss, f"{how} ({size})", str(search.budget), _space(st))
    console.print(table)
    console.print(f"selection: {selection_rule(options)}")
    console.print(f"directory: {plan.root}")


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def result_table(plan: Any) -> Table:
    """One row per loss: its budget, what it selected, and its re-runs' test accuracy."""
    options = plan.options
    table = Table(
        title=f"losslab study: selected by {options.objective} "
        f"({f'{options.folds}-fold CV' if options.folds else 'validation split'}); "
        f"re-runs: seeds {plan.run_seed + 1}..{plan.run_seed + options.seeds}",
        title_justify="left",
    )
    for name in (
        "loss",
        "trials ok/failed/budget",
        "tuning time",
        "selected",
        "score",
        "test acc (re-runs)",
    ):
        table.add_column(
            name,
            justify="left" if name in ("loss", "selected") else "right",
            no_wrap=name != "selected",
        )
    for st in plan.studies:
        budget = st.budget(options)
        chosen = st.selected(options)
        tests = [
            v
            for v in (metric_value(j.record or {}, "final.test.acc") for j in st.reruns)
            if v is not None
        ]
        table.add_row(
            st.loss,
            f"{budget['completed']}/{budget['failed']}/{budget['trials']}"
            + (" grid" if budget["search"] == "grid" else ""),
            f"{budget['seconds']:.0f} s",
            "every trial failed" if chosen is None else _values(chosen.values, "\n"),
            "-" if chosen is None else f"{chosen.score(options.objective):.4f}",
            f"{_mean_sd(tests)} (n={len(tests)})",
        )
    return table


def expand_keys(params: dict[str, Any]) -> list[str]:
    """The override keys of a search's parameters, tied ones split."""
    return [part for key in params for part in key.split(",")]


def print_result(plan: Any, runner: Any) -> int:
    """The study's table, its failed trials, the comparison of the re-runs; the exit code."""
    from losslab.report.compare import main as compare_main

    options = plan.options
    console = stdout_console()
    if runner.launched == 0:
        console.print("study: every run was already done; nothing trained")
    console.print(result_table(plan))
    failed = [(st.loss, t) for st in plan.studies for t in st.trials if t.error(options.objective)]
    for loss, trial in failed:
        console.print(
            f"  failed: {loss} trial {trial.number} ({_values(trial.values)}): {trial.error(options.objective)}"
        )
    console.print(f"study.json: {plan.root / 'study.json'}")
    tuned = sorted({k for st in plan.studies for k in expand_keys(st.search.params)})
    argv = [
        str(plan.root / RERUNS),
        "--by",
        "loss",
        *(["--tuned", ",".join(tuned)] if tuned else []),
    ]
    code = compare_main(argv) if any(st.reruns for st in plan.studies) else 1
    bad = any(st.selected(options) is None for st in plan.studies) or any(
        job.status != "completed" for st in plan.studies for job in st.reruns
    )
    return 1 if bad or code != 0 else 0
