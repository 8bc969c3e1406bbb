"""Tables of a comparison, independent of their rendering, and the renderings.

A :class:`TableData` is built once (:func:`summary_table`, :func:`pivot_table`,
...) and rendered for the terminal (rich), Markdown, LaTeX (booktabs); the CSV
holds every number unrounded (pandas writes it). Stored values stay fractions in
[0, 1]; tables may show accuracy-like and calibration-error fractions in percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losslab.report.comparison import (
    Comparison,
    Group,
    Stat,
    best_groups,
    best_in_blocks,
    check_key,
    direction,
    is_percent,
    sort_key,
)
from losslab.report.record import SELECTION_WORDS, Problem, shorten
from losslab.report.runs import MISSING, CompareError


@dataclass
class Cell:
    """One table cell: text, or a mean with its std, maybe the best of its column."""

    text: str
    std: str | None = None
    best: bool = False

    @property
    def plain(self) -> str:
        """``97.21 ± 0.31``."""
        return self.text if self.std is None else f"{self.text} ± {self.std}"


@dataclass
class TableData:
    """A table independent of its rendering (terminal, Markdown, LaTeX)."""

    title: str
    headers: list[str]
    rows: list[list[Cell]]
    right: list[bool]
    notes: list[str] = field(default_factory=list)
    sections: list[int] = field(default_factory=list)  # rows that start a new block
    #: leading columns that identify a row, repeated in every part of a table cut to
    #: fit a terminal; ``None``: the leading left-justified ones (at least one)
    keys: int | None = None

    @property
    def key_columns(self) -> int:
        """How many leading columns identify a row."""
        if self.keys is not None:
            return self.keys
        n = next((i for i, r in enumerate(self.right) if r), len(self.right))
        return max(1, n)


def _fmt(x: float | None, metric: str, percent: bool, signed: bool = False) -> str:
    if x is None:
        return MISSING
    scale = 100.0 if percent and is_percent(metric) else 1.0
    digits = 2 if scale == 100.0 else 4
    return f"{scale * x:{'+' if signed else ''}.{digits}f}"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _headers(metrics: Sequence[str]) -> tuple[list[str], str]:
    """Short metric headers and the common prefix they drop (``final.test``)."""
    parts = [m.split(".") for m in metrics]
    common = 0
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    return [".".join(p[common:]) for p in parts], ".".join(parts[0][:common])


def _unit_note(metrics: Sequence[str], percent: bool) -> str | None:
    shown = [m for m in metrics if is_percent(m)]
    if not percent or not shown:
        return None
    names = ", ".join(dict.fromkeys(m.rsplit(".", 1)[-1] for m in shown))
    return f"{names} in percent (stored as fractions in [0, 1])"


def _mark(stat: Any) -> str:
    """``*`` after a value that a temperature fit at its search limit went into."""
    return "*" if stat.at_bound else ""


def selection_note(comparison: Comparison) -> str:
    """What the selection rules of the shown metrics choose, said once."""
    rules = list(dict.fromkeys(m.split(".", 1)[0] for m in comparison.metrics))
    shown = [r for r in rules if r in SELECTION_WORDS]
    if not shown:
        return ""
    words = "; ".join(f"{r} = {SELECTION_WORDS[r]}" for r in shown)
    return f"selection: {words}"


def _ci_note(comparison: Comparison) -> str:
    if comparison.interval == "none":
        return ""
    how = "t-based" if comparison.interval == "t" else "bootstrap (BCa, 10,000 resamples, seed 0)"
    return f"CI: {comparison.level:.0%} confidence interval of the mean, {how}"


def _rank_note(comparison: Comparison) -> str:
    metric = comparison.metrics[0]
    words = f"by {metric} ({_direction_words(metric)})"
    if comparison.compared is None:
        varying = ", ".join(comparison.columns) or "nothing"
        return (
            f"ranked {words} across ALL groups, which differ in {varying}; rank within "
            "comparable groups with --by KEY"
        )
    blocks = comparison.block_columns
    if not blocks:
        return f"{comparison.compared} ranked {words}; best of each column highlighted"
    return (
        f"{comparison.compared} ranked {words} within blocks of equal {', '.join(blocks)}; "
        "best of each column highlighted within a block"
    )


def _p_note(comparison: Comparison) -> str:
    key, value = comparison.baseline or ("", "")
    correction = {
        "holm": "Holm-adjusted",
        "bonferroni": "Bonferroni-adjusted",
        "bh": "Benjamini-Hochberg-adjusted (false discovery rate)",
        "none": "NOT adjusted for multiple comparisons",
    }[comparison.correction]
    m = max(
        (
            sum(1 for g in comparison.groups if g.versus.get(x) and g.versus[x].p_raw is not None)
            for x in comparison.metrics
        ),
        default=0,
    )
    return (
        f"Δ: difference of means to the {key}={value} group of the same block; "
        f"p: paired t-test over equal seeds, else Welch's t-test, {correction} over the "
        f"{m} comparisons of each metric"
    )


def _ci_cell(s: Stat, metric: str, percent: bool) -> Cell:
    """The confidence interval ``[low, high]`` of one group's metric."""
    if s.low is None:
        return Cell(MISSING)
    return Cell(f"[{_fmt(s.low, metric, percent)}, {_fmt(s.high, metric, percent)}]")


def _versus_cell(g: Group, metric: str, percent: bool) -> Cell:
    """A group's difference to its block's baseline group, with the p-value."""
    if g.baseline is g:
        return Cell("baseline")
    if g.baseline is None or g.versus[metric].diff is None:
        return Cell(MISSING)
    v = g.versus[metric]
    return Cell(f"{_fmt(v.diff, metric, percent, signed=True)} ({_fmt_p(v.p)})")


def summary_table(comparison: Comparison, percent: bool = True) -> TableData:
    """The long table: one row per group, block by block, mean ± std per metric,
    the confidence interval of the first metric, and differences to the baseline."""
    metrics = comparison.metrics
    short, prefix = _headers(metrics)
    columns = comparison.columns or []
    show_ci = comparison.interval != "none"
    headers = ["rank", *(columns or ["group"]), "n", *short]
    right = [True, *([False] * max(1, len(columns))), True, *([True] * len(metrics))]
    if show_ci:
        headers.append(f"{comparison.level:.0%} CI {short[0]}")
        right.append(True)
    if comparison.baseline:
        headers += [f"Δ{s}" for s in short]
        right += [True] * len(metrics)
    best = {m: best_in_blocks(comparison, m) for m in metrics}
    rows, sections = [], []
    previous_block: tuple[str, ...] | None = None
    for g in comparison.groups:
        if previous_block is not None and g.block != previous_block:
            sections.append(len(rows))
        previous_block = g.block
        row = [Cell(str(g.rank) if g.rank is not None else MISSING)]
        row += [Cell(g.labels[c]) for c in columns] or [Cell("all runs")]
        row.append(Cell(str(g.n)))
        for m in metrics:
            s = g.stats[m]
            std = _fmt(s.std, m, percent) if s.std is not None else None
            row.append(Cell(_fmt(s.mean, m, percent) + _mark(s), std, id(g) in best[m]))
        if show_ci:
            row.append(_ci_cell(g.stats[metrics[0]], metrics[0], percent))
        if comparison.baseline:
            row += [_versus_cell(g, m, percent) for m in metrics]
        rows.append(row)
    n_seeds = {g.n for g in comparison.groups}
    title = f"{comparison.n_runs} runs in {len(comparison.groups)} groups"
    if prefix:
        title += f", {prefix} metrics"
    notes = [
        f"mean ± sample std over seeds (n = {next(iter(n_seeds))} per group)"
        if len(n_seeds) == 1
        else "mean ± sample std over seeds (n per group in column n)",
        selection_note(comparison),
        _rank_note(comparison),
        _ci_note(comparison) if show_ci else "",
    ]
    if comparison.baseline:
        notes.append(_p_note(comparison))
    notes += _common_notes(comparison, metrics, percent)
    keys = 2 + max(1, len(columns))  # rank, the group columns, n
    return TableData(title, headers, rows, right, [n for n in notes if n], sections, keys)


def _common_notes(comparison: Comparison, metrics: Sequence[str], percent: bool) -> list[str]:
    """Shared settings, units, optimistic rules, temperature flags and the comparison's notes."""
    notes = []
    if any(m.startswith("oracle.") for m in metrics):
        notes.append(
            "OPTIMISTIC: oracle metrics are read at the epoch of best test accuracy "
            "(the test set chose it); not an unbiased estimate"
        )
    flagged = sum(g.stats[m].at_bound for g in comparison.groups for m in metrics)
    if flagged:
        notes.append(
            "*: a temperature fit of this value ended at its search limit in "
            f"{flagged} run-metric(s) (temperature_at_bound in results.json): the "
            "scaled value is not at the optimum"
        )
    shared = comparison.shared()
    if shared:
        notes.append("all groups: " + ", ".join(f"{k}={v}" for k, v in shared.items()))
    unit = _unit_note(metrics, percent)
    return [*notes, *([unit] if unit else []), *comparison.notes]


def _direction_words(metric: str) -> str:
    return {1: "higher is better", -1: "lower is better", 0: "descending"}[direction(metric)]


def parse_keys(text: str | None) -> list[str]:
    return [k.strip() for k in (text or "").split(",") if k.strip()]


def pivot_table(
    comparison: Comparison,
    rows: Sequence[str],
    cols: Sequence[str],
    metric: str,
    percent: bool = True,
) -> TableData:
    """The paper-style grid: ``rows`` x ``cols`` of mean ± std of one metric.

    Args:
        comparison: the summarised comparison.
        rows: keys whose values label the rows (group choices or config keys).
        cols: keys whose values label the columns.
        metric: one of ``comparison.metrics``.
        percent: show fractions in percent.

    Returns:
        The grid; the best cell of every column is highlighted.

    Raises:
        CompareError: when a key is unknown or two groups fall into one cell.
    """
    for option, keys in (("--rows", rows), ("--cols", cols)):
        for key in keys:
            check_key(key, comparison.keys, option, comparison.columns)
    cells: dict[tuple[tuple[str, ...], tuple[str, ...]], Group] = {}
    for g in comparison.groups:
        at = (
            tuple(g.labels.get(k, MISSING) for k in rows),
            tuple(g.labels.get(k, MISSING) for k in cols),
        )
        if at in cells:
            other = [c for c in comparison.columns if c not in rows and c not in cols]
            where = ", ".join(
                f"{k}={v}" for k, v in zip([*rows, *cols], [*at[0], *at[1]], strict=True)
            )
            raise CompareError(
                f"more than one group falls into the cell {where or '(all)'}; "
                f"these keys also vary: {', '.join(other) or 'none shown'}. "
                "Add them to --rows/--cols or fix them with --where KEY=VALUE"
            )
        cells[at] = g

    def ordered(index: int) -> list[tuple[str, ...]]:
        labels = {at[index] for at in cells}
        return sorted(labels, key=lambda t: [sort_key(x) for x in t])

    row_labels, col_labels = ordered(0), ordered(1)
    sign = direction(metric)
    best: set[int] = set()
    for c in col_labels:
        column = [cells[(r, c)] for r in row_labels if (r, c) in cells]
        best |= best_groups(column, metric) if sign else set()
    corner = " / ".join(rows) or metric.rsplit(".", 1)[-1]
    if cols:
        corner += " \\ " + " / ".join(cols)
    headers = [corner, *(" / ".join(c) for c in col_labels)] if cols else [corner, metric]
    table_rows = []
    for r in row_labels:
        row = [Cell(" / ".join(r) if rows else metric)]
        for c in col_labels:
            g = cells.get((r, c))
            if g is None:
                row.append(Cell(MISSING))
                continue
            s = g.stats[metric]
            std = _fmt(s.std, metric, percent) if s.std is not None else None
            row.append(Cell(_fmt(s.mean, metric, percent) + _mark(s), std, id(g) in best))
        table_rows.append(row)
    n_seeds = {g.stats[metric].n for g in cells.values()}
    notes = [
        f"{metric}: mean ± sample std over seeds, "
        + (
            f"n = {next(iter(n_seeds))} per cell"
            if len(n_seeds) == 1
            else f"n from {min(n_seeds)} to {max(n_seeds)} per cell"
        ),
        f"best of each column highlighted ({_direction_words(metric)})" if sign else "",
    ]
    notes += [selection_note(comparison), *_common_notes(comparison, [metric], percent)]
    right = [False, *([True] * (len(headers) - 1))]
    return TableData(metric, headers, table_rows, right, [n for n in notes if n])


def problems_table(problems: Sequence[Problem]) -> TableData:
    """The runs left out: path, status and error."""
    rows = [[Cell(str(p.path)), Cell(p.status), Cell(shorten(p.error, 160))] for p in problems]
    return TableData(
        f"{len(problems)} runs not included",
        ["path", "status", "error"],
        rows,
        [False] * 3,
        keys=1,
    )


def _parts(table: TableData, width: int | None) -> list[Any]:
    from losslab.report.layout import layout

    rows = [[c.plain for c in row] for row in table.rows]
    return layout(table.headers, rows, table.right, table.key_columns, width)


def rich_width(table: TableData, width: int | None = None) -> int:
    """The widest table line :func:`to_rich` draws for ``width`` (more than ``width``
    only where the key columns and one other do not fit in it)."""
    from losslab.report.layout import drawn_width

    return max(drawn_width(part.widths) for part in _parts(table, width))


def to_rich(table: TableData, width: int | None = None) -> Any:
    """The table as a rich renderable: best cells in bold green, the notes beneath.

    Args:
        table: the table.
        width: the columns to fit: a wider table is drawn as part tables, each with
            the row-identifying columns and as many others as fit
            (:mod:`losslab.report.layout`); no cell is ever cut. ``None``: one
            table, every cell on one line (print it on a console at least
            :func:`rich_width` wide).

    Returns:
        A rich renderable: the part tables, then the notes.
    """
    from rich.console import Group as Stack
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    parts = _parts(table, width)
    drawn = []
    for n, part in enumerate(parts, 1):
        title = table.title if len(parts) == 1 else f"{table.title} (part {n} of {len(parts)})"
        out = Table(title=escape(title))
        for i, w in zip(part.columns, part.widths, strict=True):
            out.add_column(
                Text(table.headers[i]),
                justify="right" if table.right[i] else "left",
                width=w,
                overflow="fold",
            )
        for r, row in enumerate(table.rows):
            out.add_row(
                *(
                    Text(row[i].plain, style="bold green" if row[i].best else "")
                    for i in part.columns
                ),
                end_section=r + 1 in table.sections,
            )
        drawn.append(out)
    if table.notes:
        drawn.append(Text("\n".join(table.notes), style="dim"))
    return drawn[0] if len(drawn) == 1 else Stack(*drawn)


def to_markdown(table: TableData) -> str:
    """A GitHub-flavoured Markdown table with the best cells in bold and the notes beneath."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def cell(c: Cell) -> str:
        return f"**{esc(c.plain)}**" if c.best else esc(c.plain)

    lines = [f"### {esc(table.title)}", ""]
    lines.append("| " + " | ".join(esc(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if r else ":---" for r in table.right) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines += ["", *(f"- {esc(n)}" for n in table.notes)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "Δ": r"$\Delta$",
    "±": r"$\pm$",
    "…": r"\ldots{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: TableData) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); best cells' means in bold."""

    def cell(c: Cell) -> str:
        mean = latex_escape(c.text)
        if c.best:
            mean = rf"\textbf{{{mean}}}"
        return mean if c.std is None else rf"{mean} $\pm$ {latex_escape(c.std)}"

    spec = "".join("r" if r else "l" for r in table.right)
    lines = [f"% {latex_escape(table.title)}"]
    lines += [f"% {latex_escape(n)}" for n in table.notes]
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(latex_escape(h) for h in table.headers) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(cell(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_csv(comparison: Comparison, path: Path) -> Path:
    """Write the comparison as CSV, one row per group in table order.

    Columns: ``rank`` (within the block), the identifying columns, ``n``, ``seeds``
    (``;``-joined), then per metric ``<metric>_mean``, ``<metric>_std`` (blank for
    n=1), ``<metric>_ci_low`` and ``<metric>_ci_high`` and, with a baseline,
    ``<metric>_diff``, ``<metric>_p`` (adjusted as the table says), ``<metric>_p_raw``
    and ``<metric>_test``. Values are stored as recorded: fractions stay in [0, 1].

    Args:
        comparison: the summarised comparison.
        path: the CSV file; parent directories are created.

    Returns:
        ``path``.
    """
    import pandas as pd

    records = []
    for g in comparison.groups:
        row: dict[str, Any] = {"rank": g.rank}
        row.update({c: g.labels[c] for c in comparison.columns})
        row["n"] = g.n
        row["seeds"] = ";".join(str(s) for s in g.seeds)
        for m in comparison.metrics:
            s = g.stats[m]
            row.update({f"{m}_mean": s.mean, f"{m}_std": s.std})
            row.update({f"{m}_ci_low": s.low, f"{m}_ci_high": s.high})
            if comparison.baseline:
                v = g.versus.get(m)
                row[f"{m}_diff"] = v.diff if v else None
                row[f"{m}_p"] = v.p if v else None
                row[f"{m}_p_raw"] = v.p_raw if v else None
                row[f"{m}_test"] = ("baseline" if g.baseline is g else v.test) if v else None
        records.append({k: _repr(v) for k, v in row.items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame.from_records(records).to_csv(path, index=False)
    return path


def _repr(x: Any) -> Any:
    """Floats in full precision (``repr``), None as an empty cell, the rest as they are."""
    if x is None:
        return ""
    return repr(float(x)) if isinstance(x, float) else x
