"""Ranks across data sets or label settings: Friedman test and post-hoc (Demsar 2006).

The treatments are the values of the comparison's compared key (the losses);
the blocks are its comparable blocks (one per data set, noise rate, ... : every
other column). Each block contributes the group means of one metric; every
treatment must be present in every block (a complete block design).

References:
    Demsar. *Statistical Comparisons of Classifiers over Multiple Data Sets*. JMLR 7, 2006.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from losslab.report.comparison import Comparison, direction, sort_key
from losslab.report.runs import MISSING, CompareError

#: Post-hoc procedures after a Friedman test.
POSTHOCS = ("nemenyi", "holm")


@dataclass
class RankReport:
    """Average ranks of the treatments over the blocks, and the tests on them.

    Attributes:
        metric: the metric ranked.
        treatments: values of the compared key, best average rank first.
        average_ranks: per treatment (1 = best).
        blocks: the block labels.
        friedman: the :class:`losslab.report.stats.Friedman` result.
        posthoc: ``"nemenyi"`` or ``"holm"``.
        cd: Nemenyi's critical difference (nemenyi only).
        control: the control treatment (holm only).
        pvalues: Holm-adjusted p-value per treatment against the control (holm only).
        alpha: the level of the post-hoc test.
    """

    metric: str
    key: str
    treatments: list[str]
    average_ranks: dict[str, float]
    blocks: list[tuple[str, ...]]
    block_columns: list[str]
    friedman: Any
    posthoc: str
    alpha: float
    cd: float | None = None
    control: str | None = None
    pvalues: dict[str, float | None] | None = None


def rank_report(
    comparison: Comparison,
    metric: str | None = None,
    posthoc: str = "nemenyi",
    alpha: float = 0.05,
    control: str | None = None,
) -> RankReport:
    """The Friedman test of ``metric`` over the comparison's blocks.

    Args:
        comparison: a comparison with a compared key and at least two blocks.
        metric: default: the comparison's first metric.
        posthoc: ``"nemenyi"`` (all pairs, critical difference) or ``"holm"`` (against
            ``control``: default the baseline value, else the best average rank).
        alpha: the post-hoc test's level.
        control: the control treatment of ``holm``.

    Raises:
        CompareError: without a compared key, with fewer than 2 blocks or 3 treatments,
            an incomplete block, or an unknown post-hoc procedure or control.
    """
    from losslab.report import stats

    metric = metric or comparison.metrics[0]
    if posthoc not in POSTHOCS:
        raise CompareError(f"unknown post-hoc test '{posthoc}'. Valid: {', '.join(POSTHOCS)}")
    key = comparison.compared
    if key is None:
        raise CompareError(
            "--friedman needs a compared key: name it with --by KEY (e.g. --by loss); "
            f"the groups differ in {', '.join(comparison.columns) or 'nothing'}"
        )
    sign = direction(metric)
    if not sign:
        raise CompareError(f"--friedman ranks by a metric with a direction; {metric} has none")
    blocks = comparison.blocks()
    treatments = sorted({g.labels[key] for g in comparison.groups}, key=sort_key)
    columns = comparison.block_columns
    if len(blocks) < 2:
        raise CompareError(
            f"--friedman needs at least 2 blocks (data sets or label settings) to rank "
            f"{key} over; the groups form {len(blocks)} "
            f"(blocks are the values of {', '.join(columns) or 'the other columns: none vary'})"
        )
    if len(treatments) < 3:
        raise CompareError(
            f"--friedman needs at least 3 values of {key}; found {', '.join(treatments)}"
        )
    missing = []
    scores = []
    for block, members in blocks.items():
        means = {g.labels[key]: g.stats[metric].mean for g in members}
        row = []
        for t in treatments:
            if means.get(t) is None:
                where = " ".join(f"{c}={v}" for c, v in zip(columns, block, strict=True))
                missing.append(f"{key}={t} at {where or 'all'}")
            row.append(means.get(t))
        scores.append(row)
    if missing:
        shown = "; ".join(missing[:6]) + (
            f"; and {len(missing) - 6} more" if len(missing) > 6 else ""
        )
        raise CompareError(
            f"--friedman needs every {key} in every block (a complete block design); "
            f"missing: {shown}. Select complete blocks with --where KEY=VALUE"
        )
    import numpy as np

    matrix = np.asarray(scores, dtype=float)
    result = stats.friedman(matrix, higher_is_better=sign > 0)
    ranks = dict(zip(treatments, (float(r) for r in result.average_ranks), strict=True))
    order = sorted(treatments, key=lambda t: ranks[t])
    report = RankReport(metric, key, order, ranks, list(blocks), columns, result, posthoc, alpha)
    if posthoc == "nemenyi":
        report.cd = stats.nemenyi_cd(len(treatments), len(blocks), alpha)
    else:
        baseline = comparison.baseline[1] if comparison.baseline else None
        chosen = control or baseline or order[0]
        if chosen not in treatments:
            raise CompareError(
                f"control {key}={chosen} is not among the values: {', '.join(treatments)}"
            )
        report.control = chosen
        p = stats.holm_vs_control(
            [ranks[t] for t in treatments], len(blocks), treatments.index(chosen)
        )
        report.pvalues = dict(zip(treatments, p, strict=True))
    return report


def rank_table(report: RankReport, percent: bool = True) -> Any:
    """The average-rank table of a :class:`RankReport`, with the tests in its notes."""
    from losslab.report.tables import Cell, TableData

    f = report.friedman
    headers = [report.key, "average rank"]
    if report.pvalues is not None:
        headers.append(f"p vs {report.control} (Holm)")
    rows = []
    for t in report.treatments:
        row = [Cell(t), Cell(f"{report.average_ranks[t]:.3f}")]
        if report.pvalues is not None:
            p = report.pvalues[t]
            row.append(Cell("control" if t == report.control else _p(p)))
        rows.append(row)
    blocks = " / ".join(report.block_columns) or "block"
    notes = [
        f"ranks of {report.metric} (1 = best) within each of {len(report.blocks)} blocks "
        f"({blocks}: {', '.join(' / '.join(b) or MISSING for b in report.blocks)}), averaged",
        f"Friedman chi2 = {f.statistic:.3f}, p = {f.pvalue:.4g} (k = {f.k}, N = {f.n_blocks}; "
        "scipy.stats.friedmanchisquare)"
        + (
            f"; Iman-Davenport F = {f.iman_davenport_f:.3f}, p = {f.iman_davenport_p:.4g}"
            if f.iman_davenport_f is not None
            else ""
        ),
    ]
    if report.cd is not None:
        notes.append(
            f"Nemenyi critical difference at alpha = {report.alpha}: CD = {report.cd:.3f} "
            "(average ranks closer than CD are not significantly different)"
        )
    else:
        notes.append(
            f"Holm step-down against {report.control} on the rank z-statistics, alpha = {report.alpha}"
        )
    if f.n_blocks < 5:
        notes.append(
            f"only {f.n_blocks} blocks: the chi-square approximation of the Friedman test "
            "is rough with so few"
        )
    return TableData(
        f"average ranks of {report.key} over {len(report.blocks)} blocks",
        headers,
        rows,
        [False, *([True] * (len(headers) - 1))],
        notes,
    )


def _p(p: float | None) -> str:
    if p is None:
        return "p n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def write_cd_diagram(report: RankReport, path: Path) -> Path:
    """The critical-difference diagram of ``report`` (Nemenyi cliques, or Holm's control)."""
    from losslab.report.cd_diagram import cd_diagram, nemenyi_cliques

    cliques = None
    if report.cd is not None:
        cliques = nemenyi_cliques(report.average_ranks, report.cd)
    elif report.pvalues is not None:
        same = [
            t for t, p in report.pvalues.items() if t == report.control or (p or 0) > report.alpha
        ]
        cliques = [same] if len(same) > 1 else []
    title = (
        f"{report.metric}\naverage ranks over {len(report.blocks)} blocks, "
        f"Friedman p = {report.friedman.pvalue:.3g}"
    )
    return cd_diagram(report.average_ranks, path, cd=report.cd, cliques=cliques, title=title)
