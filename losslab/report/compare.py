"""``losslab compare``: a head-to-head table of runs, grouped over seeds.

The command line over :mod:`losslab.report`: reading runs (:mod:`~losslab.report.runs`,
the record contract in :mod:`~losslab.report.record`), grouping and statistics
(:mod:`~losslab.report.comparison`, :mod:`~losslab.report.stats`), ranks across
blocks (:mod:`~losslab.report.ranking`), published numbers
(:mod:`~losslab.report.literature`), tables (:mod:`~losslab.report.tables`) and
figures (:mod:`~losslab.report.figures`). Nothing heavy (scipy, pandas,
matplotlib, torch) is imported until a command needs it.

Example:
    >>> from losslab.report.compare import main
    >>> main(["multirun/2026-11-22", "--baseline", "loss=ce"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from losslab.report.comparison import DEFAULT_METRIC_NAMES, compare
from losslab.report.record import SELECTIONS
from losslab.report.runs import CompareError
from losslab.report.tables import (
    parse_keys,
    pivot_table,
    problems_table,
    rich_width,
    summary_table,
    to_latex,
    to_markdown,
    to_rich,
    write_csv,
)

# ---------------------------------------------------------------------- CLI

_EPILOG = """\
grouping: runs whose results-relevant configs differ only in `seed` form a group (device,
  workers, data root, loader and logger never split one: losslab.report.record.NOT_RESULTS).
  Runs with the same config AND seed are one run: the newest counts, the others are listed
  as duplicates. Columns are the keys that vary; config groups show the option Hydra chose
  (loss=gce, noise=apl/sym40). Failed, unfinished and malformed records are listed apart.
selection (--select): the epoch every metric is read at: final (last epoch), best (best
  validation accuracy), best_clean_val (best accuracy on clean validation labels), oracle
  (best TEST accuracy: optimistic, marked so).
ranks: within blocks of comparable groups (equal values of every column but the compared
  key: --by, else the --baseline key, else loss); acc* higher is better; ece*, mce*, nll*,
  brier*, aurc*, entropy*, loss*, err* lower is better.
p-values (--baseline): paired t-test over equal seeds, else Welch; adjusted over the
  comparisons of each metric (--correction, Holm by default).
exit codes: 0 ok; 1 no completed run or an output could not be written; 2 usage errors.

examples:
  losslab compare multirun/2026-11-22
  losslab compare multirun --baseline loss=ce --select best --metric acc,ece_ts
  losslab compare multirun --rows loss --cols noise.rate --metric acc
  losslab compare multirun --friedman --plots figures/     # ranks over noise settings
  losslab compare multirun --published apl                 # beside the APL paper's numbers
  losslab compare multirun --csv table.csv --latex table.tex --plots figures/
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="losslab compare",
        description="Head-to-head table of runs: groups over seeds with mean ± std,\n"
        "p-values against a baseline, paper-style pivots, CSV/Markdown/LaTeX and plots.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="run or sweep directories, or results.json files"
    )
    parser.add_argument(
        "--metric",
        action="append",
        metavar="PATH",
        help="metric path into results.json, repeatable or comma-separated "
        f"(default: {','.join(DEFAULT_METRIC_NAMES)}); a bare name means <select>.test.<name>, "
        "test.<name> means <select>.test.<name>",
    )
    parser.add_argument(
        "--select",
        default="final",
        metavar="RULE",
        help=f"the epoch metrics are read at: {', '.join(SELECTIONS)} (default: final)",
    )
    parser.add_argument(
        "--by",
        metavar="KEY",
        help="the compared key, ranked within blocks of equal other columns "
        "(default: the --baseline key, else loss)",
    )
    parser.add_argument(
        "--baseline",
        metavar="KEY=VALUE",
        help="compare every group with its KEY=VALUE counterpart, e.g. loss=ce",
    )
    parser.add_argument(
        "--correction",
        default="holm",
        metavar="METHOD",
        help="p-value adjustment over the comparisons of each metric: holm (default), "
        "bonferroni, bh (false discovery rate), none",
    )
    parser.add_argument(
        "--ci",
        default="t",
        metavar="METHOD",
        help="confidence interval of each mean: t (default), bootstrap, none",
    )
    parser.add_argument(
        "--level", type=float, default=0.95, help="confidence level of --ci (default: 0.95)"
    )
    parser.add_argument(
        "--friedman",
        action="store_true",
        help="average ranks of the compared key over the blocks, the Friedman test and a "
        "post-hoc test (with --plots: critical_difference.png)",
    )
    parser.add_argument(
        "--posthoc",
        default="nemenyi",
        metavar="TEST",
        help="after --friedman: nemenyi (all pairs, critical difference; default) or holm "
        "(against the --baseline value, else the best)",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="level of the post-hoc test (default: 0.05)"
    )
    parser.add_argument(
        "--published",
        metavar="NAME",
        help="put a paper's published numbers beside the reproduced ones: a registry name "
        "(losslab compare --published list) or a YAML file",
    )
    parser.add_argument(
        "--tuned",
        metavar="KEYS",
        help="keys tuned for each value of the compared key (losslab study: optimizer.lr, "
        "loss.q): shown, but ranked across, not within blocks of equal values",
    )
    parser.add_argument("--rows", metavar="KEYS", help="pivot: keys labelling the rows, e.g. loss")
    parser.add_argument(
        "--cols", metavar="KEYS", help="pivot: keys labelling the columns, e.g. noise.rate"
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep only groups with KEY=VALUE (repeatable)",
    )
    parser.add_argument("--csv", type=Path, metavar="FILE", help="write one row per group as CSV")
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="write the table(s) as Markdown"
    )
    parser.add_argument(
        "--latex", type=Path, metavar="FILE", help="write the table(s) as a booktabs tabular"
    )
    parser.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write accuracy-vs-ECE, reliability and noise-rate figures",
    )
    parser.add_argument(
        "--format",
        default="png",
        choices=("png", "pdf", "svg"),
        help="file format of every --plots figure, the critical difference diagram "
        "included (default: png)",
    )
    parser.add_argument(
        "--percent",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show accuracy and calibration fractions in percent (default: on)",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="print every table whole, however wide (default: a table wider than the "
        "terminal or COLUMNS is cut into parts that repeat the group columns)",
    )
    return parser


def main(argv: list[str]) -> int:
    """``losslab compare``: print the comparison and write the requested files.

    Args:
        argv: the words after ``compare``.

    Returns:
        0 on success, 1 when no run completed or a file could not be written,
        2 for a usage error (missing path, no results, unknown metric or key).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or argparse's own usage error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _main(args)
    except CompareError as exc:
        sys.stderr.write(f"losslab compare: {exc}\n")
        return 2


#: Width of the notes beneath the tables in a file or pipe (the tables are whole there).
FILE_WIDTH = 220


def _fitted() -> bool:
    """Whether tables fit a width: on a terminal, or where COLUMNS names one (as rich reads it)."""
    import os

    from rich.console import Console

    return os.environ.get("COLUMNS", "").isdigit() or Console().is_terminal


def _console() -> Any:
    """The terminal's console (COLUMNS wins over its size); FILE_WIDTH columns elsewhere."""
    from rich.console import Console

    return Console(highlight=False, width=None if _fitted() else FILE_WIDTH)


def _print_table(console: Any, table: Any, wide: bool) -> None:
    """Print ``table`` in parts that fit the console, or whole (``--wide``, a file, a pipe).

    A cell is never cut: the console widens for a table that cannot be cut to fit.
    """
    fit = None if wide or not _fitted() else console.width
    width = console.width
    console.width = max(width, rich_width(table, fit))
    try:
        console.print(to_rich(table, fit))
    finally:
        console.width = width


def _list_published() -> int:
    from losslab.report.registry import load, names

    for name in names():
        registry = load(name)
        print(f"{name:16} {len(registry.cells):4} cells  {registry.paper}")
    return 0


def _main(args: argparse.Namespace) -> int:
    if args.published == "list":
        return _list_published()
    metrics = [m for item in (args.metric or []) for m in item.split(",")] or None
    rows, cols = parse_keys(args.rows), parse_keys(args.cols)
    if not 0.0 < args.alpha < 1.0:
        raise CompareError(f"--alpha {args.alpha} is invalid: must lie strictly between 0 and 1")
    published = None
    if args.published:
        from losslab.report.literature import load_registry

        published = load_registry(args.published)  # a bad name fails before any run is read
    comparison = compare(
        args.paths,
        metrics,
        args.baseline,
        args.where,
        select=args.select,
        by=args.by,
        correction=args.correction,
        interval=args.ci,
        level=args.level,
        tuned=parse_keys(args.tuned) or (),
    )
    console = _console()
    if not comparison.groups:
        _print_table(console, problems_table(comparison.problems), args.wide)
        sys.stderr.write("losslab compare: no completed run to compare\n")
        return 1
    ranks = None
    if args.friedman:
        from losslab.report.ranking import rank_report

        ranks = rank_report(comparison, posthoc=args.posthoc, alpha=args.alpha)
    tables = _tables(args, comparison, (rows, cols), ranks, published)
    for table in tables:
        _print_table(console, table, args.wide)
    if comparison.problems:
        _print_table(console, problems_table(comparison.problems), args.wide)
    try:
        _write_outputs(args, comparison, tables, ranks, console)
    except OSError as exc:
        sys.stderr.write(f"losslab compare: cannot write output: {exc}\n")
        return 1
    return 0


def _tables(
    args: argparse.Namespace, comparison: Any, pivot: tuple[Any, Any], ranks: Any, published: Any
) -> list[Any]:
    """The tables to print: pivots (--rows/--cols), the summary, ranks, published numbers."""
    rows, cols = pivot
    tables = (
        [pivot_table(comparison, rows, cols, m, args.percent) for m in comparison.metrics]
        if rows or cols
        else []
    )
    if not tables or comparison.baseline:
        tables.append(summary_table(comparison, args.percent))
    if ranks is not None:
        from losslab.report.ranking import rank_table

        tables.append(rank_table(ranks, args.percent))
    if published is not None:
        from losslab.report.literature import match_published, published_table

        matched = match_published(comparison, published)
        tables.append(published_table(comparison, matched, args.percent))
    return tables


def _write_outputs(
    args: argparse.Namespace, comparison: Any, tables: list[Any], ranks: Any, console: Any
) -> None:
    """The files asked for: CSV, Markdown, LaTeX, and the figures (--plots)."""
    if args.csv:
        console.print(f"wrote {write_csv(comparison, args.csv)}", markup=False)
    for path, render in ((args.markdown, to_markdown), (args.latex, to_latex)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(render(t) for t in tables))
            console.print(f"wrote {path}", markup=False)
    if args.plots:
        from losslab.report.figures import write_plots

        written, skipped = write_plots(comparison, args.plots, args.percent, args.format)
        if ranks is not None:
            from losslab.report.ranking import write_cd_diagram

            cd_path = args.plots / f"critical_difference.{args.format}"
            written.append(write_cd_diagram(ranks, cd_path))
        for path in written:
            console.print(f"wrote {path}", markup=False)
        for note in skipped:
            console.print(f"skipped {note}", markup=False)
