"""Figures of ``losslab compare``: accuracy vs ECE, reliability diagrams, noise-rate curves.

:func:`write_plots` turns a :class:`~losslab.report.comparison.Comparison` into
figure files (PNG, PDF or SVG); the drawing functions take plain numbers (means,
stds, pooled bins) and draw on stand-alone Agg figures (no pyplot, no display).
matplotlib is imported inside the functions, so importing this module is cheap.

Every figure colours a group by its loss (:func:`losslab.report.palette.color`),
so a loss has the same colour in every figure of every comparison; a second
identifying key (e.g. the noise rate) is told apart by marker or line style.

Example:
    >>> points = [{"label": "ce", "x": 0.05, "xerr": 0.01, "y": 0.9, "yerr": 0.02}]
    >>> accuracy_vs_ece(points, Path("/tmp/acc_vs_ece.pdf"))  # doctest: +SKIP
    PosixPath('/tmp/acc_vs_ece.pdf')
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
from losslab.report.palette import color, linestyle, marker
from losslab.report.plots import (
    _figure,
    _save,
    bin_shares,
    check_format,
    draw_reliability,
    reliability_legend_handles,
)
from losslab.report.record import SELECTIONS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Annotation

#: Identifying column laid out as the columns of the reliability grid.
GRID_KEY = "loss"
#: Config key on the x axis of the noise-rate curves.
NOISE_RATE = "noise.rate"
#: Most columns of panels in a grid; more panels wrap into further rows.
MAX_COLS = 6
#: Largest figure of panels, in inches (width, height): panels shrink to fit.
MAX_SIZE = (16.0, 22.0)
#: Most points of the accuracy-vs-ECE scatter that are labelled in place;
#: beyond it (or when the labels cannot be set apart) a legend keyed by colour
#: and marker names them.
MAX_LABELS = 30
#: Resolution of the PNG files, dots per inch.
DPI = 150


def _percent_axis(axis: Any, on: bool, decimals: int | None = None) -> None:
    if on:
        from matplotlib.ticker import PercentFormatter

        axis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def grid_shape(n: int, max_cols: int = MAX_COLS) -> tuple[int, int]:
    """(rows, columns) of a near-square grid of ``n`` panels with at most ``max_cols`` columns.

    Example:
        >>> grid_shape(29), grid_shape(4), grid_shape(3), grid_shape(1)
        ((5, 6), (2, 2), (2, 2), (1, 1))
    """
    n = max(1, int(n))
    ncols = min(max_cols, math.ceil(math.sqrt(n)))
    return math.ceil(n / ncols), ncols


def _style_index(points: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Index of every ``series`` value (the other identifying keys), in the order of the points."""
    return {s: i for i, s in enumerate(dict.fromkeys(str(p.get("series", "")) for p in points))}


# ------------------------------------------------------ accuracy vs ECE


def accuracy_vs_ece_figure(
    points: Sequence[dict[str, Any]],
    acc: str = "final.test.acc",
    ece: str = "final.test.ece",
    percent: bool = True,
) -> Figure:
    """The accuracy-vs-ECE scatter as a figure (see :func:`accuracy_vs_ece`)."""
    fig = _figure(figsize=(7.6, 5.6), layout="constrained")
    ax = fig.subplots()
    styles = _style_index(points)
    labelled = len(points) <= MAX_LABELS
    for p in points:
        ax.errorbar(
            p["x"],
            p["y"],
            xerr=p.get("xerr") or 0.0,
            yerr=p.get("yerr") or 0.0,
            fmt=marker(styles[str(p.get("series", ""))]),
            ms=6,
            capsize=3,
            elinewidth=1.0,
            color=color(str(p.get("key", p["label"]))),
            label=p["label"],
        )
    ax.set(xlabel=f"{ece} (lower is better)", ylabel=f"{acc} (higher is better)")
    ax.set_title("accuracy vs calibration: mean ± std over seeds", fontsize="medium")
    _percent_axis(ax.xaxis, percent)
    _percent_axis(ax.yaxis, percent)
    ax.grid(alpha=0.3)
    ax.margins(0.15)
    if labelled:
        anchors = [(p["x"], p["y"]) for p in points]
        texts = place_labels(fig, ax, anchors, [p["label"] for p in points])
        if _any_overlap(fig, texts):  # too crowded to label in place: a legend instead
            for text in texts:
                text.remove()
            fig.set_layout_engine("constrained")
            labelled = False
    if not labelled:
        _key_legend(fig, points, styles)
    return fig


def _key_legend(fig: Figure, points: Sequence[dict[str, Any]], styles: dict[str, int]) -> None:
    """A legend beside the axes: one entry per colour (loss), then one per marker (setting)."""
    from matplotlib.lines import Line2D

    keys = dict.fromkeys(str(p.get("key", p["label"])) for p in points)
    handles = [Line2D([], [], marker="o", ls="none", ms=6, color=color(k), label=k) for k in keys]
    if len(styles) > 1:
        handles.append(Line2D([], [], ls="none", label=""))  # a gap between the two keys
        handles += [
            Line2D([], [], marker=marker(i), ls="none", ms=6, color="0.3", label=s or "-")
            for s, i in styles.items()
        ]
    ncols = math.ceil(len(handles) / 32)
    width, height = fig.get_size_inches()
    fig.set_size_inches(width + 1.8 * ncols, height)
    title = "colour: loss" if len(styles) <= 1 else "colour: loss; marker: setting"
    fig.legend(handles=handles, loc="outside right upper", fontsize="x-small", ncols=ncols,
               frameon=False, title=title, title_fontsize="x-small")  # fmt: skip


def accuracy_vs_ece(
    points: Sequence[dict[str, Any]],
    path: Path,
    acc: str = "final.test.acc",
    ece: str = "final.test.ece",
    percent: bool = True,
) -> Path:
    """Scatter one point per group: mean ECE (x) against mean accuracy (y), std error bars.

    A point has its loss's colour and the marker of its other identifying keys.
    Up to :data:`MAX_LABELS` points are labelled in place, the labels moved
    apart until none overlaps another or a point (:func:`place_labels`, with a
    leader line to a label that had to move away); more points, or points too
    crowded for their labels to be set apart, are named in a legend beside the
    axes.

    Args:
        points: ``{"label", "x", "xerr", "y", "yerr"}`` per group (x: ECE, y: accuracy),
            optionally ``"key"`` (the name that picks the colour, e.g. the loss; default
            the label) and ``"series"`` (the other keys, which pick the marker).
        path: file to write, in the format of its suffix; parent directories are created.
        acc: metric path of the y values (axis label).
        ece: metric path of the x values (axis label).
        percent: show both axes in percent.

    Returns:
        ``path``.
    """
    return _save(accuracy_vs_ece_figure(points, acc, ece, percent), path, DPI)


def _any_overlap(fig: Figure, texts: Sequence[Any]) -> bool:
    """Whether the drawn texts (leader lines aside) of any two of ``texts`` overlap."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in texts]
    return any(
        a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
    )


def _overlap(a: list[float], b: list[float]) -> tuple[float, float]:
    """Overlap in x and y of two boxes ``[x0, y0, x1, y1]`` (0 or less: apart)."""
    return min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])


def _box(cx: float, cy: float, w: float, h: float) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def place_labels(
    fig: Figure,
    ax: Axes,
    anchors: Sequence[tuple[float, float]],
    labels: Sequence[str],
    *,
    fontsize: float = 7.5,
    marker_px: float = 7.0,
    iterations: int = 400,
) -> list[Annotation]:
    """Label points so that no label overlaps another label or a point.

    Deterministic: each label first takes the free-est of eight places around
    its point (in the order of the points), then overlapping labels push each
    other apart along the axis of the smaller overlap, inside the axes, until
    none overlaps. A label that ended up away from its point gets a thin leader
    line to it. The figure's layout is fixed first (a layout engine that ran
    again later would move the points but not the labels).

    Args:
        fig: the figure of ``ax``; it is drawn once and its layout engine removed.
        ax: axes whose data limits are final.
        anchors: the labelled points, in data coordinates.
        labels: one text per point.
        fontsize: in points.
        marker_px: the space kept free around each point, in pixels (a half marker).
        iterations: most rounds of pushing apart.

    Returns:
        The annotations, in the order of ``labels``.
    """
    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    pts = [(float(x), float(y)) for x, y in ax.transData.transform(list(anchors))]
    frame = ax.get_window_extent(renderer)
    pad = 2.0  # pixels around every label
    sizes = []
    for text in labels:
        probe = ax.text(0, 0, text, fontsize=fontsize)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        sizes.append((ext.width + 2 * pad, ext.height + 2 * pad))
    layout = _LabelLayout(pts, sizes, (frame.x0, frame.y0, frame.x1, frame.y1), marker_px)
    centres = layout.place(iterations)

    points_per_px = 72.0 / fig.dpi
    out = []
    for (x, y), (cx, cy), (w, h), text, anchor in zip(
        pts, centres, sizes, labels, anchors, strict=True
    ):
        far = abs(cx - x) > w / 2 + marker_px + 3 or abs(cy - y) > h / 2 + marker_px + 3
        arrow = {"arrowstyle": "-", "color": "0.45", "lw": 0.6, "shrinkA": 0, "shrinkB": 4}
        out.append(
            ax.annotate(
                text,
                anchor,
                xytext=((cx - x) * points_per_px, (cy - y) * points_per_px),
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize=fontsize,
                # Readable over grid lines and error bars.
                bbox={
                    "boxstyle": "square,pad=0.1",
                    "facecolor": "white",
                    "alpha": 0.75,
                    "edgecolor": "none",
                },
                arrowprops=arrow if far else None,
                annotation_clip=False,
            )
        )
    return out


class _LabelLayout:
    """Centres (pixels) of label boxes that overlap neither each other nor the points."""

    def __init__(
        self,
        points: list[tuple[float, float]],
        sizes: list[tuple[float, float]],
        frame: tuple[float, float, float, float],
        marker_px: float,
    ) -> None:
        self.points, self.sizes, self.frame, self.marker_px = points, sizes, frame, marker_px
        self.point_boxes = [_box(x, y, 2 * marker_px, 2 * marker_px) for x, y in points]
        self.centres: list[tuple[float, float]] = []

    def inside(self, i: int, cx: float, cy: float) -> tuple[float, float]:
        """``(cx, cy)`` moved so that label ``i`` lies inside the frame."""
        (w, h), (x0, y0, x1, y1) = self.sizes[i], self.frame
        return min(max(cx, x0 + w / 2), x1 - w / 2), min(max(cy, y0 + h / 2), y1 - h / 2)

    def box(self, i: int, centre: tuple[float, float] | None = None) -> list[float]:
        return _box(*(centre or self.centres[i]), *self.sizes[i])

    def place(self, iterations: int) -> list[tuple[float, float]]:
        """The greedy first places, then rounds of pushing apart until nothing overlaps."""
        for i, (x, y) in enumerate(self.points):
            w, h = self.sizes[i]
            dx, dy = w / 2 + self.marker_px, h / 2 + self.marker_px
            around = [(dx, dy), (-dx, dy), (dx, -dy), (-dx, -dy), (dx, 0), (-dx, 0), (0, dy),
                      (0, -dy)]  # fmt: skip
            places = [self.inside(i, x + ox, y + oy) for ox, oy in around]
            self.centres.append(min(places, key=lambda c: (self._crowding(i, c), places.index(c))))
        for _ in range(iterations):
            moved = [self._push(i) for i in range(len(self.points))]  # every label, each round
            if not any(moved):
                break
        return self.centres

    def _crowding(self, i: int, centre: tuple[float, float]) -> float:
        """Area of label ``i`` at ``centre`` that overlaps the points and the labels placed."""
        box = self.box(i, centre)
        total = 0.0
        for other in [*(self.box(j) for j in range(len(self.centres))), *self.point_boxes]:
            ox, oy = _overlap(box, other)
            total += max(ox, 0.0) * max(oy, 0.0)
        return total

    def _push(self, i: int) -> bool:
        """Move label ``i`` off every point and, both giving way, off every other label."""
        moved = False
        obstacles: list[int | None] = [None] * len(self.point_boxes) + [
            j for j in range(len(self.centres)) if j != i
        ]
        for k, j in enumerate(obstacles):
            other = self.point_boxes[k] if j is None else self.box(j)
            ox, oy = _overlap(self.box(i), other)
            if ox <= 0.01 or oy <= 0.01:
                continue
            axis = 0 if ox < oy else 1
            mine, theirs = self.centres[i][axis], (other[axis] + other[axis + 2]) / 2
            # Away from the other's centre; equal centres part by index (deterministic).
            sign = 1.0 if (mine, i) > (theirs, -1 if j is None else j) else -1.0
            step = ((ox, oy)[axis] + 0.5) * (1.0 if j is None else 0.5) * sign
            self.centres[i] = self._moved(i, axis, step)
            if j is not None:
                self.centres[j] = self._moved(j, axis, -step)
            moved = True
        return moved

    def _moved(self, i: int, axis: int, step: float) -> tuple[float, float]:
        cx, cy = self.centres[i]
        return self.inside(i, cx + step, cy) if axis == 0 else self.inside(i, cx, cy + step)


# ------------------------------------------------------ reliability grid


def reliability_grid_figure(grid: Sequence[Sequence[dict[str, Any] | None]]) -> Figure:
    """The grid of reliability diagrams as a figure (see :func:`reliability_grid`)."""
    from matplotlib.ticker import PercentFormatter

    nrows = max(1, len(grid))
    ncols = max(1, max((len(r) for r in grid), default=1))
    cells = [(r, c, p) for r, row in enumerate(grid) for c, p in enumerate(row) if p is not None]
    panel_w, panel_h = 2.6, 3.3  # inches: diagram, histogram strip and title
    head = 1.1  # suptitle and legend
    scale = min(1.0, MAX_SIZE[0] / (panel_w * ncols), (MAX_SIZE[1] - head) / (panel_h * nrows))
    size = (max(panel_w * ncols * scale, 6.0), panel_h * nrows * scale + head)
    fig = _figure(figsize=size, layout="constrained")
    outer = fig.add_gridspec(nrows, ncols)
    hist_max = max((max(bin_shares(p), default=0.0) for _, _, p in cells), default=0.0)
    below = {(r, c) for r, c, _ in cells}
    first_top = first_bottom = None
    for r, c, panel in cells:
        inner = outer[r, c].subgridspec(2, 1, height_ratios=[3, 1])
        top = fig.add_subplot(inner[0], sharex=first_top, sharey=first_top)
        bottom = fig.add_subplot(inner[1], sharex=top, sharey=first_bottom)
        first_top, first_bottom = first_top or top, first_bottom or bottom
        draw_reliability(
            top, bottom, panel, color(str(panel.get("key", panel.get("title", "")))),
            compact=True, hist_max=hist_max,
        )  # fmt: skip
        top.tick_params(labelbottom=False)
        top.set_title("\n".join(textwrap.wrap(str(panel.get("title", "")), 30)), fontsize="small")
        if c == 0 or (r, c - 1) not in below:
            top.set_ylabel("accuracy", fontsize="small")
            bottom.set_ylabel("share", fontsize="small")
        else:
            top.tick_params(labelleft=False)
            bottom.tick_params(labelleft=False)
        if (r + 1, c) not in below:
            bottom.set_xlabel("confidence", fontsize="small")
        else:
            bottom.tick_params(labelbottom=False)
        bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    fig.suptitle("reliability (test bins pooled over seeds)", fontsize="medium")
    fig.legend(
        handles=reliability_legend_handles("0.6", "accuracy of the bin (colour: its loss)"),
        loc="outside lower center",
        ncols=2 if ncols <= 2 else 4,
        fontsize="small",
        frameon=False,
    )
    return fig


def reliability_grid(grid: Sequence[Sequence[dict[str, Any] | None]], path: Path) -> Path:
    """Reliability diagrams on a grid, each with the confidence histogram beneath it.

    Each panel: bin accuracy as bars in the loss's colour, the gap to the bin's
    mean confidence hatched, the diagonal of perfect calibration, the ECE of the
    pooled bins, and below, on the same confidence axis, the share of samples
    in each bin (one y scale for the whole grid). One legend beneath the grid says
    what each part means. The figure is at most :data:`MAX_SIZE` inches: a grid
    of many panels shrinks them.

    Args:
        grid: rows of panels; a panel is ``{"title", "n_bins", "count", "acc", "conf"}``
            (bins pooled over a group's seeds), optionally ``"key"`` (the name that
            picks the colour, e.g. the loss; default the title), or None for an empty cell.
        path: file to write, in the format of its suffix; parent directories are created.

    Returns:
        ``path``.
    """
    return _save(reliability_grid_figure(grid), path, DPI)


# ------------------------------------------------------ noise-rate curves


def metric_vs_noise_rate_figure(
    lines: Sequence[dict[str, Any]], metrics: Sequence[str], percent: bool = True
) -> Figure:
    """The noise-rate curves as a figure (see :func:`metric_vs_noise_rate`)."""
    nrows, ncols = grid_shape(len(metrics), max_cols=3)
    size = (min(4.6 * ncols + 1.8, MAX_SIZE[0]), min(3.4 * nrows + 0.5, MAX_SIZE[1]))
    fig = _figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    styles = _style_index(lines)
    for ax, metric in zip(axes, metrics, strict=False):
        for line in lines:
            index = styles[str(line.get("series", ""))]
            ax.errorbar(
                line["x"],
                line["y"][metric],
                yerr=line["yerr"][metric],
                marker=marker(index),
                ls=linestyle(index),
                ms=4,
                capsize=3,
                color=color(str(line.get("key", line["label"]))),
                label=line["label"],
            )
        ax.set(xlabel=NOISE_RATE, ylabel=metric)
        ax.set_xticks(sorted({x for line in lines for x in line["x"]}))  # the rates run
        _percent_axis(ax.xaxis, percent, decimals=0)
        _percent_axis(ax.yaxis, percent and is_percent(metric))
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside right upper",
        fontsize="x-small",
        ncols=math.ceil(len(labels) / 30),
        frameon=False,
    )
    fig.suptitle("metrics against the label-noise rate (mean ± std over seeds)", fontsize="medium")
    return fig


def metric_vs_noise_rate(
    lines: Sequence[dict[str, Any]], metrics: Sequence[str], path: Path, percent: bool = True
) -> Path:
    """One panel per metric: mean ± std against the noise rate, one line per loss.

    A line has its loss's colour and the marker and line style of its other
    identifying keys; one legend beside the panels names the lines.

    Args:
        lines: ``{"label", "x": [rates], "y": {metric: [means]}, "yerr": {metric: [stds]}}``,
            optionally ``"key"`` (picks the colour) and ``"series"`` (picks the style).
        metrics: the metric paths, one panel each.
        path: file to write, in the format of its suffix; parent directories are created.
        percent: show fractions and the noise rate in percent.

    Returns:
        ``path``.
    """
    return _save(metric_vs_noise_rate_figure(lines, metrics, percent), path, DPI)


# --------------------------------------------------------- from a comparison


def write_plots(
    comparison: Comparison, out_dir: Path, percent: bool = True, fmt: str = "png"
) -> tuple[list[Path], list[str]]:
    """Write the comparison's figures into ``out_dir``.

    - ``acc_vs_ece.<fmt>``: mean accuracy against mean ECE per group with std error
      bars, from the rule and split of the first metric (``<rule>.<split>.*``),
      else ``final.test``;
    - ``reliability.<fmt>``: per group, the reliability diagram of its runs' test
      bins (``reliability`` in ``results.json``) pooled over seeds, with the
      confidence histogram beneath; one column per loss and one row per setting of
      the other identifying columns when that fits :data:`MAX_COLS`, else the panels
      wrap row by row; skipped when no run has bins;
    - ``vs_noise_rate.<fmt>``: every metric against ``noise.rate``, one line per
      combination of the other identifying columns (per loss); only when the
      noise rate varies.

    Args:
        comparison: the summarised comparison.
        out_dir: directory of the figure files; created when missing.
        percent: show fractions in percent.
        fmt: file format: ``png``, ``pdf`` or ``svg``.

    Returns:
        The written paths, and a note for every figure that was skipped.

    Raises:
        ValueError: an unknown ``fmt``.
    """
    fmt = check_format(fmt)
    out_dir = Path(out_dir)
    written: list[Path] = []
    skipped: list[str] = []

    prefix = ".".join(comparison.metrics[0].split(".")[:2])
    if not re.fullmatch(rf"({'|'.join(SELECTIONS)})\.\w+", prefix):
        prefix = "final.test"
    acc, ece = f"{prefix}.acc", f"{prefix}.ece"
    points = _scatter_points(comparison, acc, ece)
    name = f"acc_vs_ece.{fmt}"
    if points:
        written.append(accuracy_vs_ece(points, out_dir / name, acc, ece, percent))
    else:
        skipped.append(f"{name}: no group has both {acc} and {ece}")

    grid = _reliability_layout(comparison)
    name = f"reliability.{fmt}"
    if grid:
        written.append(reliability_grid(grid, out_dir / name))
    else:
        skipped.append(f"{name}: no results.json has reliability bins")

    lines = _noise_lines(comparison)
    name = f"vs_noise_rate.{fmt}"
    if lines:
        written.append(metric_vs_noise_rate(lines, comparison.metrics, out_dir / name, percent))
    else:
        skipped.append(f"{name}: {NOISE_RATE} does not vary")
    return written, skipped


def _colour_key(group: Group, columns: Sequence[str]) -> str:
    """The name that colours ``group``: its loss when it has one, else its label."""
    return group.labels.get(GRID_KEY) or group.label(columns)


def _series(group: Group, columns: Sequence[str], drop: Sequence[str] = ()) -> str:
    """The labels of the identifying columns other than the loss (and ``drop``)."""
    return " ".join(f"{c}={group.labels[c]}" for c in columns if c != GRID_KEY and c not in drop)


def _scatter_points(comparison: Comparison, acc: str, ece: str) -> list[dict[str, Any]]:
    points = []
    columns = comparison.columns
    for g in comparison.groups:
        a, e = summarize(g, acc), summarize(g, ece)
        if a.mean is not None and e.mean is not None:
            points.append(
                {
                    "label": g.label(columns),
                    "key": _colour_key(g, columns),
                    "series": _series(g, columns),
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
    """Rows of pooled-bin panels.

    With ``loss`` among several identifying columns and at most :data:`MAX_COLS`
    losses: a column per loss, a row per setting of the other columns. Otherwise
    the panels in that order, wrapped into a near-square grid (:func:`grid_shape`).
    """
    columns = comparison.columns
    panels: list[tuple[Group, dict[str, Any]]] = []
    for g in comparison.groups:
        pooled = pool_reliability(r.record.get("reliability") for r in g.runs)
        if pooled is not None:
            panel = {**pooled, "title": g.label(columns), "key": _colour_key(g, columns)}
            panels.append((g, panel))
    if not panels:
        return []
    if GRID_KEY in columns:
        rest = [c for c in columns if c != GRID_KEY]
        at = {((g.labels[GRID_KEY],), tuple(g.labels[c] for c in rest)): p for g, p in panels}
        col_keys = _order(c for c, _ in at)
        row_keys = _order(r for _, r in at)
        if len(row_keys) > 1 and len(col_keys) <= MAX_COLS:
            return [[at.get((c, r)) for c in col_keys] for r in row_keys]
        flat = [at[(c, r)] for r in row_keys for c in col_keys if (c, r) in at]
    else:
        flat = [p for _, p in panels]
    _, ncols = grid_shape(len(flat))
    return [flat[i : i + ncols] for i in range(0, len(flat), ncols)]


def _noise_rate(group: Group) -> float | None:
    value = group.values.get(NOISE_RATE)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    recorded = (metric_value(r.record, NOISE_RATE) for r in group.runs)
    return next((v for v in recorded if v is not None), None)


#: The group whose option ``none`` is the clean point (rate 0) of every noise type's curve.
NOISE_GROUP = "noise"


def _noise_lines(comparison: Comparison) -> list[dict[str, Any]]:
    """Mean ± std of every metric against the noise rate, one line per other-column label.

    When the noise option itself is an identifying column (a sweep of
    ``noise=none,symmetric noise.rate=0.4``), each noise type is a line per loss and
    the clean runs (``noise=none``) are the 0 % point of every one of them.
    """
    rates = {g: _noise_rate(g) for g in comparison.groups}
    if len({r for r in rates.values() if r is not None}) < 2:
        return []
    columns = comparison.columns
    rest = [c for c in columns if c not in (NOISE_RATE, NOISE_GROUP)]
    kinds = {g.labels.get(NOISE_GROUP) for g in rates if rates[g] is not None} - {None, "none"}
    clean: dict[tuple[str, ...], Group] = {}
    noisy: dict[tuple[tuple[str, ...], str | None], list[Group]] = {}
    for g in sorted((g for g in rates if rates[g] is not None), key=rates.__getitem__):
        other = tuple(g.labels[c] for c in rest)
        kind = g.labels.get(NOISE_GROUP) if NOISE_GROUP in columns else None
        if kind == "none" and kinds:
            clean[other] = g
        else:
            noisy.setdefault((other, kind), []).append(g)
    for (other, _), groups in noisy.items():
        if other in clean and rates[groups[0]] != rates[clean[other]]:
            groups.insert(0, clean[other])
    drop = (NOISE_RATE, NOISE_GROUP)
    lines = []
    for (other, kind), groups in noisy.items():
        label = " ".join([*other, *([kind] if kind and len(kinds) > 1 else [])]) or "all runs"
        g = groups[-1]
        series = _series(g, columns, drop=drop)
        if kind and len(kinds) > 1:
            series = f"{series} {NOISE_GROUP}={kind}".strip()
        line = {
            "label": label,
            "key": g.labels.get(GRID_KEY) or label,
            "series": series,
            "x": [rates[h] for h in groups],
            "y": {m: [] for m in comparison.metrics},
            "yerr": {m: [] for m in comparison.metrics},
        }
        for h in groups:
            for m in comparison.metrics:
                stat = h.stats[m]
                line["y"][m].append(math.nan if stat.mean is None else stat.mean)
                line["yerr"][m].append(stat.std or 0.0)
        lines.append(line)
    return lines


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
