"""Figures of ``losslab compare``: accuracy vs ECE, reliability diagrams, noise-rate curves.

:func:`write_plots` turns a :class:`~losslab.report.comparison.Comparison` into
PNG files; the drawing functions take plain numbers (means, stds, pooled bins)
and draw on stand-alone Agg figures (no pyplot, no display). matplotlib is
imported inside the functions, so importing this module is cheap.

Example:
    >>> points = [{"label": "ce", "x": 0.05, "xerr": 0.01, "y": 0.9, "yerr": 0.02}]
    >>> accuracy_vs_ece(points, Path("/tmp/acc_vs_ece.png"))  # doctest: +SKIP
    PosixPath('/tmp/acc_vs_ece.png')
"""

from __future__ import annotations

import math
import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from losslab.report.comparison import Comparison, Group, is_percent, metric_value, summarize
from losslab.report.plots import _figure, _save
from losslab.report.record import SELECTIONS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Identifying column laid out as the columns of the reliability grid.
GRID_KEY = "loss"
#: Config key on the x axis of the noise-rate curves.
NOISE_RATE = "noise.rate"


def _percent_axis(axis: Any, on: bool, decimals: int | None = None) -> None:
    if on:
        from matplotlib.ticker import PercentFormatter

        axis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def accuracy_vs_ece(
    points: Sequence[dict[str, Any]],
    path: Path,
    acc: str = "final.test.acc",
    ece: str = "final.test.ece",
    percent: bool = True,
) -> Path:
    """Scatter one point per group: mean ECE (x) against mean accuracy (y), std error bars.

    Args:
        points: ``{"label", "x", "xerr", "y", "yerr"}`` per group (x: ECE, y: accuracy).
        path: PNG file to write; parent directories are created.
        acc: metric path of the y values (axis label).
        ece: metric path of the x values (axis label).
        percent: show both axes in percent.

    Returns:
        ``path``.
    """
    from matplotlib import colormaps

    fig = _figure(figsize=(7.0, 5.2), layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["tab10" if len(points) <= 10 else "tab20"]
    for i, p in enumerate(points):
        ax.errorbar(
            p["x"],
            p["y"],
            xerr=p.get("xerr") or 0.0,
            yerr=p.get("yerr") or 0.0,
            fmt="o",
            ms=6,
            capsize=3,
            color=cmap(i % cmap.N),
            label=p["label"],
        )
        ax.annotate(
            p["label"], (p["x"], p["y"]), xytext=(4, 4), textcoords="offset points", fontsize=7
        )
    ax.set(xlabel=f"{ece} (lower is better)", ylabel=f"{acc} (higher is better)")
    ax.set_title("accuracy vs calibration: mean ± std over seeds", fontsize="medium")
    _percent_axis(ax.xaxis, percent)
    _percent_axis(ax.yaxis, percent)
    ax.grid(alpha=0.3)
    if len(points) <= 20:
        ax.legend(fontsize="x-small", loc="best")
    return _save(fig, path)


def _reliability_panel(ax: Axes, bins: dict[str, Any], title: str) -> None:
    n_bins = int(bins["n_bins"])
    count = [float(c) for c in bins["count"]]
    acc = [float(a) for a in bins["acc"]]
    conf = [float(c) for c in bins["conf"]]
    width = 1.0 / n_bins
    centers = [(i + 0.5) * width for i in range(n_bins)]
    filled = [i for i in range(n_bins) if count[i] > 0]
    total = sum(count[i] for i in filled)
    ax.bar(
        [centers[i] for i in filled],
        [acc[i] for i in filled],
        width=width,
        color="tab:blue",
        edgecolor="navy",
        linewidth=0.5,
    )
    ax.bar(
        [centers[i] for i in filled],
        [conf[i] - acc[i] for i in filled],
        bottom=[acc[i] for i in filled],
        width=width,
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        linewidth=0.5,
    )
    ax.plot([0, 1], [0, 1], ls="--", color="0.3", lw=0.8)
    ece = sum(count[i] * abs(acc[i] - conf[i]) for i in filled) / total if total else math.nan
    ax.text(
        0.97,
        0.03,
        f"ECE {100 * ece:.2f}%\nn = {total:,.0f}",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize="x-small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.set_title("\n".join(textwrap.wrap(title, 32)), fontsize="small")


def reliability_grid(grid: Sequence[Sequence[dict[str, Any] | None]], path: Path) -> Path:
    """Reliability diagrams on a grid: bin accuracy as bars, the gap to confidence shaded.

    Args:
        grid: rows of panels; a panel is ``{"title", "n_bins", "count", "acc", "conf"}``
            (bins pooled over a group's seeds) or None for an empty cell.
        path: PNG file to write; parent directories are created.

    Returns:
        ``path``.
    """
    nrows = max(1, len(grid))
    ncols = max(1, max((len(r) for r in grid), default=1))
    fig = _figure(figsize=(2.9 * ncols + 0.6, 2.9 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    for r in range(nrows):
        for c in range(ncols):
            ax = axes[r][c]
            panel = grid[r][c] if r < len(grid) and c < len(grid[r]) else None
            if panel is None:
                ax.set_axis_off()
                continue
            _reliability_panel(ax, panel, str(panel.get("title", "")))
            if r == nrows - 1:
                ax.set_xlabel("confidence")
            if c == 0:
                ax.set_ylabel("accuracy")
    fig.suptitle("reliability (test bins pooled over seeds)", fontsize="medium")
    return _save(fig, path)


def metric_vs_noise_rate(
    lines: Sequence[dict[str, Any]], metrics: Sequence[str], path: Path, percent: bool = True
) -> Path:
    """One panel per metric: mean ± std against the noise rate, one line per loss.

    Args:
        lines: ``{"label", "x": [rates], "y": {metric: [means]}, "yerr": {metric: [stds]}}``.
        metrics: the metric paths, one panel each.
        path: PNG file to write; parent directories are created.
        percent: show fractions and the noise rate in percent.

    Returns:
        ``path``.
    """
    ncols = min(2, max(1, len(metrics)))
    nrows = math.ceil(len(metrics) / ncols)
    fig = _figure(figsize=(5.4 * ncols, 3.8 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        for line in lines:
            ax.errorbar(
                line["x"],
                line["y"][metric],
                yerr=line["yerr"][metric],
                marker="o",
                ms=4,
                capsize=3,
                label=line["label"],
            )
        ax.set(xlabel="noise.rate", ylabel=metric)
        _percent_axis(ax.xaxis, percent, decimals=0)
        _percent_axis(ax.yaxis, percent and is_percent(metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    for ax in axes[len(metrics) :]:
        ax.set_axis_off()
    fig.suptitle("metrics against the label-noise rate (mean ± std over seeds)", fontsize="medium")
    return _save(fig, path)


# --------------------------------------------------------- from a comparison


def write_plots(
    comparison: Comparison, out_dir: Path, percent: bool = True
) -> tuple[list[Path], list[str]]:
    """Write the comparison's figures into ``out_dir``.

    - ``acc_vs_ece.png``: mean accuracy against mean ECE per group with std error
      bars, from the rule and split of the first metric (``<rule>.<split>.*``),
      else ``final.test``;
    - ``reliability.png``: per group, the reliability diagram of its runs' test bins
      (``reliability`` in ``results.json``) pooled over seeds; one column per loss
      when ``loss`` is an identifying column; skipped when no run has bins;
    - ``vs_noise_rate.png``: every metric against ``noise.rate``, one line per
      combination of the other identifying columns (per loss); only when the
      noise rate varies.

    Args:
        comparison: the summarised comparison.
        out_dir: directory of the PNG files; created when missing.
        percent: show fractions in percent.

    Returns:
        The written paths, and a note for every figure that was skipped.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    skipped: list[str] = []

    prefix = ".".join(comparison.metrics[0].split(".")[:2])
    if not re.fullmatch(rf"({'|'.join(SELECTIONS)})\.\w+", prefix):
        prefix = "final.test"
    acc, ece = f"{prefix}.acc", f"{prefix}.ece"
    points = _scatter_points(comparison, acc, ece)
    if points:
        written.append(accuracy_vs_ece(points, out_dir / "acc_vs_ece.png", acc, ece, percent))
    else:
        skipped.append(f"acc_vs_ece.png: no group has both {acc} and {ece}")

    grid = _reliability_layout(comparison)
    if grid:
        written.append(reliability_grid(grid, out_dir / "reliability.png"))
    else:
        skipped.append("reliability.png: no results.json has reliability bins")

    lines = _noise_lines(comparison)
    if lines:
        path = out_dir / "vs_noise_rate.png"
        written.append(metric_vs_noise_rate(lines, comparison.metrics, path, percent))
    else:
        skipped.append(f"vs_noise_rate.png: {NOISE_RATE} does not vary")
    return written, skipped


def _scatter_points(comparison: Comparison, acc: str, ece: str) -> list[dict[str, Any]]:
    points = []
    for g in comparison.groups:
        a, e = summarize(g, acc), summarize(g, ece)
        if a.mean is not None and e.mean is not None:
            points.append(
                {
                    "label": g.label(comparison.columns),
                    "x": e.mean,
                    "xerr": e.std or 0.0,
                    "y": a.mean,
                    "yerr": a.std or 0.0,
                }
            )
    return points


def _order(values: Iterable[tuple[str, ...]]) -> list[tuple[str, ...]]:
    def key(labels: tuple[str, ...]) -> list[tuple[int, float, str]]:
        out = []
        for x in labels:
            try:
                out.append((0, float(x), ""))
            except ValueError:
                out.append((1, 0.0, x))
        return out

    return sorted(set(values), key=key)


def _reliability_layout(comparison: Comparison) -> list[list[dict[str, Any] | None]]:
    """Rows of pooled-bin panels: columns by loss (when it varies), rows by the rest."""
    columns = comparison.columns
    panels: list[tuple[Group, dict[str, Any]]] = []
    for g in comparison.groups:
        pooled = pool_reliability(r.record.get("reliability") for r in g.runs)
        if pooled is not None:
            panels.append((g, {**pooled, "title": g.label(columns)}))
    if not panels:
        return []
    if GRID_KEY not in columns:
        ncols = math.ceil(math.sqrt(len(panels)))
        flat = [p for _, p in panels]
        return [flat[i : i + ncols] for i in range(0, len(flat), ncols)]
    rest = [c for c in columns if c != GRID_KEY]
    at = {((g.labels[GRID_KEY],), tuple(g.labels[c] for c in rest)): p for g, p in panels}
    col_keys = _order(c for c, _ in at)
    row_keys = _order(r for _, r in at)
    return [[at.get((c, r)) for c in col_keys] for r in row_keys]


def _noise_rate(group: Group) -> float | None:
    value = group.values.get(NOISE_RATE)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    recorded = (metric_value(r.record, NOISE_RATE) for r in group.runs)
    return next((v for v in recorded if v is not None), None)


def _noise_lines(comparison: Comparison) -> list[dict[str, Any]]:
    """Mean ± std of every metric against the noise rate, one line per other-column label."""
    rates = {g: _noise_rate(g) for g in comparison.groups}
    if len({r for r in rates.values() if r is not None}) < 2:
        return []
    rest = [c for c in comparison.columns if c != NOISE_RATE]
    metrics = comparison.metrics
    lines: dict[str, dict[str, Any]] = {}
    for g in sorted((g for g in rates if rates[g] is not None), key=rates.__getitem__):
        label = " ".join(g.labels[c] for c in rest) or "all runs"
        line = lines.setdefault(
            label,
            {
                "label": label,
                "x": [],
                "y": {m: [] for m in metrics},
                "yerr": {m: [] for m in metrics},
            },
        )
        line["x"].append(rates[g])
        for m in metrics:
            stat = g.stats[m]
            line["y"][m].append(math.nan if stat.mean is None else stat.mean)
            line["yerr"][m].append(stat.std or 0.0)
    return list(lines.values())


def pool_reliability(bins: Iterable[Any]) -> dict[str, Any] | None:
    """Pool per-run reliability bins: counts add, accuracy and confidence are count-weighted.

    Entries that are missing or malformed, or whose ``n_bins`` differs from the
    most common one, are left out; empty bins get accuracy and confidence 0.

    Args:
        bins: ``{"n_bins", "count", "acc", "conf"}`` per run (or None).

    Returns:
        The pooled ``{"n_bins", "count", "acc", "conf"}``, or None when no entry is usable.
    """
    valid = []
    for b in bins:
        try:
            n_bins = int(b["n_bins"])
            count, acc, conf = (
                [math.nan if x is None else float(x) for x in b[k]]
                for k in ("count", "acc", "conf")
            )
        except (KeyError, TypeError, ValueError):
            continue
        if n_bins > 0 and len(count) == len(acc) == len(conf) == n_bins:
            valid.append((n_bins, count, acc, conf))
    if not valid:
        return None
    n_bins = Counter(v[0] for v in valid).most_common(1)[0][0]
    total, acc_sum, conf_sum = [0.0] * n_bins, [0.0] * n_bins, [0.0] * n_bins
    for _, count, acc, conf in (v for v in valid if v[0] == n_bins):
        for i in range(n_bins):
            if count[i] > 0 and math.isfinite(acc[i]) and math.isfinite(conf[i]):
                total[i] += count[i]
                acc_sum[i] += count[i] * acc[i]
                conf_sum[i] += count[i] * conf[i]
    return {
        "n_bins": n_bins,
        "count": total,
        "acc": [a / n if n > 0 else 0.0 for a, n in zip(acc_sum, total, strict=True)],
        "conf": [c / n if n > 0 else 0.0 for c, n in zip(conf_sum, total, strict=True)],
    }
