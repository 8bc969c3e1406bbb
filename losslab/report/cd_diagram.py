"""Critical-difference diagram of average ranks (Demšar 2006, Fig. 1).

A horizontal rank axis from 1 to k, each treatment's name on a line that runs
to its average rank (the better half of the treatments on the left, the rest
on the right, drawn in the treatment's colour of :mod:`losslab.report.palette`),
thick bars joining the groups of treatments whose ranks do not differ
significantly, and the critical difference drawn above the axis.

The figure is a stand-alone :class:`matplotlib.figure.Figure` on the Agg
canvas (no pyplot, no display); matplotlib is imported inside the drawing
function, so importing this module is cheap. Its size is computed from the
number and length of the names, in inches, so the text stays the same size
for 2 or 20 treatments.

References:
    J. Demšar, "Statistical Comparisons of Classifiers over Multiple Data Sets",
    JMLR 7:1-30, 2006.

Example:
    >>> from pathlib import Path
    >>> from losslab.report.stats import nemenyi_cd
    >>> ranks = {"ce": 3.143, "gce": 2.000, "mae": 2.893, "sce": 1.964}
    >>> cd = nemenyi_cd(k=4, n_blocks=14, alpha=0.10)
    >>> nemenyi_cliques(ranks, cd)
    [['sce', 'gce', 'mae'], ['mae', 'ce']]
    >>> cd_diagram(ranks, Path("/tmp/cd.png"), cd=cd, title="CIFAR-10N")  # doctest: +SKIP
    PosixPath('/tmp/cd.png')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from losslab.report.palette import color

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["cd_diagram", "nemenyi_cliques"]

_DPI = 150
_FONT_SIZE = 10.0
# Layout lengths, in inches.
_PAD = 0.2  # around the drawing
_ROW = 0.28  # between the lines of two names on one side
_CLIQUE_ROW = 0.13  # between two clique bars
_RANK_STEP = 0.5  # axis length per rank unit (at least _MIN_AXIS in all)
_MIN_AXIS = 2.5
_ELBOW = 0.25  # name lines run this far past the ends of the axis
_GAP = 0.08  # between a line's end and its name
# Metadata that would otherwise change from one save to the next.
_METADATA = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}


def _ranks(average_ranks: Mapping[str, float]) -> dict[str, float]:
    """The ranks as ``{str: float}``; ValueError when fewer than 2, not finite or outside [1, k]."""
    ranks = {str(name): float(rank) for name, rank in average_ranks.items()}
    k = len(ranks)
    if k < 2:
        raise ValueError(f"need the average ranks of at least 2 treatments, got {k}")
    tol = 1e-9 * k
    for name, rank in ranks.items():
        if not math.isfinite(rank) or not 1 - tol <= rank <= k + tol:
            raise ValueError(
                f"average rank of {name!r} must be a number in [1, {k}] (k={k}), got {rank!r}"
            )
    return ranks


def nemenyi_cliques(average_ranks: Mapping[str, float], cd: float) -> list[list[str]]:
    """Maximal groups of treatments whose average ranks span less than ``cd``.

    With the treatments sorted by average rank, every group is a run
    :math:`R_{(i)} \\le \\dots \\le R_{(j)}` with :math:`R_{(j)} - R_{(i)} < CD`
    that cannot be extended on either side; within a group no two treatments
    differ significantly by the Nemenyi test. Groups contained in another and
    single treatments are dropped: what is left are the bars of Demšar's
    diagram.

    Args:
        average_ranks: ``{name: average rank}``, rank 1 = best.
        cd: critical difference (:func:`losslab.report.stats.nemenyi_cd`), > 0.

    Returns:
        The groups, each listed by increasing rank, in order of their best rank.

    Raises:
        ValueError: fewer than 2 treatments, bad ranks, or a non-positive cd.
    """
    ranks = _ranks(average_ranks)
    cd = float(cd)
    if not (math.isfinite(cd) and cd > 0):
        raise ValueError(f"cd must be a positive number, got {cd!r}")
    order = sorted(ranks, key=ranks.__getitem__)
    cliques: list[list[str]] = []
    last_end = -1
    for i, first in enumerate(order):
        end = i
        while end + 1 < len(order) and ranks[order[end + 1]] - ranks[first] < cd:
            end += 1
        # A run ending where an earlier (longer-reaching) run ended is inside it.
        if end > last_end and end > i:
            cliques.append(order[i : end + 1])
        last_end = max(last_end, end)
    return cliques


def _check_cd(cd: float | None) -> float | None:
    if cd is None:
        return None
    cd = float(cd)
    if not (math.isfinite(cd) and cd > 0):
        raise ValueError(f"cd must be a positive number, got {cd!r}")
    return cd


def _bars(
    ranks: dict[str, float], cd: float | None, cliques: Sequence[Sequence[str]] | None
) -> list[list[str]]:
    """The cliques to draw as bars (two names or more), each name checked against ``ranks``."""
    if cliques is None:
        cliques = nemenyi_cliques(ranks, cd) if cd is not None else []
    bars = [[str(name) for name in clique] for clique in cliques]
    for clique in bars:
        unknown = [name for name in clique if name not in ranks]
        if unknown:
            raise ValueError(
                f"clique {clique!r} names {unknown!r}, which have no average rank;"
                f" known: {sorted(ranks)!r}"
            )
    return [clique for clique in bars if len(clique) >= 2]


def cd_diagram(
    average_ranks: Mapping[str, float],
    path: Path,
    *,
    cd: float | None = None,
    cliques: Sequence[Sequence[str]] | None = None,
    title: str = "",
    lower_is_better_rank: bool = True,
    colored: bool = True,
) -> Path:
    """Draw the critical-difference diagram of ``average_ranks``.

    Args:
        average_ranks: ``{name: average rank}`` of k >= 2 treatments, ranks in [1, k].
        path: file to write; the format follows the suffix (``.png``, ``.pdf``,
            ``.svg``, ...; PNG without one). Parent directories are created.
        cd: critical difference, drawn above the axis as an interval labelled
            ``CD = 1.23``; none drawn when None.
        cliques: groups of names to join with a bar; groups of fewer than two
            names are not drawn. None: :func:`nemenyi_cliques` of ``cd`` when it
            is given, else no bars; pass ``[]`` for no bars with a ``cd``.
        title: drawn above the diagram.
        lower_is_better_rank: True when rank 1 is the best (as from
            :func:`losslab.report.stats.average_ranks`): the axis runs from 1 on
            the left to k. False: the highest rank is the best and the axis runs
            from k on the left to 1. The better half is on the left either way.
        colored: draw each name's line, and a dot beside the name, in the
            treatment's colour (:func:`losslab.report.palette.color`: a loss has
            the same colour as in the other figures); False: all black.

    Returns:
        ``path``.

    Raises:
        ValueError: bad ranks, a non-positive cd, or a clique naming a treatment
            that has no rank.
    """
    ranks = _ranks(average_ranks)
    k = len(ranks)
    cd = _check_cd(cd)
    bars = _bars(ranks, cd, cliques)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    fig = Figure(dpi=_DPI)
    FigureCanvasAgg(fig)  # the Agg canvas, outside pyplot's registry of open figures
    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=_FONT_SIZE)

    def width(text: str, size: float = _FONT_SIZE) -> float:  # inches
        w, _, _ = renderer.get_text_width_height_descent(
            text, FontProperties(size=size), ismath=False
        )
        return w / _DPI

    # Best first; the better half (rounded up) goes to the left.
    best_first = sorted(ranks, key=ranks.__getitem__, reverse=not lower_is_better_rank)
    n_left = math.ceil(k / 2)
    left, right = best_first[:n_left], best_first[n_left:][::-1]  # right: worst first
    label = {name: f"{name} ({ranks[name]:.2f})" for name in ranks}
    left_w = max(width(label[name]) for name in left)
    right_w = max((width(label[name]) for name in right), default=0.0)

    # Horizontal layout (inches from the left edge).
    axis_len = max(_MIN_AXIS, _RANK_STEP * (k - 1))
    scale = axis_len / (k - 1)  # inches per rank unit
    x0 = _PAD + left_w + _GAP + _ELBOW
    x1 = x0 + axis_len

    def x(rank: float) -> float:
        return x0 + ((rank - 1) if lower_is_better_rank else (k - rank)) * scale

    fig_w = x1 + _ELBOW + _GAP + right_w + _PAD
    if cd is not None:
        fig_w = max(fig_w, x0 + cd * scale + _PAD)
    title_size = _FONT_SIZE + 2
    title_lines = title.splitlines() if title else []
    if title_lines:  # a title of several lines: the widest sets the width
        fig_w = max(fig_w, max(width(t, title_size) for t in title_lines) + 2 * _PAD)

    # Vertical layout (inches below the top edge, as negative y).
    y = -_PAD
    title_y = y
    if title_lines:
        y -= 0.38 + 0.24 * (len(title_lines) - 1)
    cd_label_y, cd_y = y, y - 0.26
    if cd is not None:
        y -= 0.42
    tick_label_y, axis_y = y, y - 0.3
    first_bar_y = axis_y - 0.18
    first_row_y = first_bar_y - len(bars) * _CLIQUE_ROW - 0.12
    fig_h = -(first_row_y - (n_left - 1) * _ROW) + 0.12 + _PAD

    fig.set_size_inches(fig_w, fig_h)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0.0, fig_w)
    ax.set_ylim(-fig_h, 0.0)
    ax.set_axis_off()
    line = {"color": "black", "linewidth": 1.0, "solid_capstyle": "butt"}
    text = {"fontproperties": font, "parse_math": False}

    if title:
        ax.text(fig_w / 2, title_y, title, ha="center", va="top", fontsize=title_size,
                fontweight="bold", parse_math=False)  # fmt: skip
    if cd is not None:
        _draw_cd(ax, x0, x0 + cd * scale, cd, cd_y, cd_label_y, line, text)
    _draw_axis(ax, x, k, x0, x1, axis_y, tick_label_y, line, text)

    # Clique bars, between the axis and the names.
    for i, clique in enumerate(bars):
        xs = [x(ranks[name]) for name in clique]
        yb = first_bar_y - i * _CLIQUE_ROW
        ax.plot([min(xs) - 0.06, max(xs) + 0.06], [yb, yb], color="black", linewidth=3.5,
                solid_capstyle="butt")  # fmt: skip

    # Name lines: down from the rank to the name's row, then out to the side.
    for side, names in (("left", left), ("right", right)):
        xe = x0 - _ELBOW if side == "left" else x1 + _ELBOW
        for row, name in enumerate(names):
            yr = first_row_y - row * _ROW
            tint = color(name) if colored else None
            _draw_name(ax, label[name], x(ranks[name]), xe, axis_y, yr, side, tint, line, text)

    return _save(fig, Path(path))


def _draw_name(
    ax, name: str, xr: float, xe: float, axis_y: float, y: float, side: str, tint, line, text
) -> None:
    """A name's line from its rank on the axis down to its row and out; a dot in ``tint``."""
    style = {**line, "color": tint} if tint else line
    ax.plot([xr, xr, xe], [axis_y, y, y], **style)
    if tint:
        ax.plot([xe], [y], marker="o", ms=4, color=tint, linestyle="none")
    xt, ha = (xe - _GAP, "right") if side == "left" else (xe + _GAP, "left")
    ax.text(xt, y, name, ha=ha, va="center", **text)


def _draw_cd(ax, x0: float, end: float, cd: float, y: float, label_y: float, line, text) -> None:
    """The critical difference as an interval above the axis, labelled ``CD = 1.23``."""
    ax.plot([x0, end], [y, y], **line)
    for xe in (x0, end):
        ax.plot([xe, xe], [y - 0.05, y + 0.05], **line)
    ax.text((x0 + end) / 2, label_y, f"CD = {cd:.2f}", ha="center", va="top", **text)


def _draw_axis(ax, x, k: int, x0: float, x1: float, y: float, label_y: float, line, text) -> None:
    """The rank axis, its ticks pointing up, and the rank numbers above them."""
    ax.plot([x0, x1], [y, y], **line)
    for r in range(1, k + 1):
        ax.plot([x(r), x(r)], [y, y + 0.08], **line)
        ax.text(x(r), label_y, str(r), ha="center", va="top", **text)
        if r < k:
            ax.plot([x(r + 0.5), x(r + 0.5)], [y, y + 0.04], **line)


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` in the format of ``path``'s suffix (PNG without one), reproducibly."""
    from matplotlib import rc_context

    fmt = path.suffix[1:].lower() or "png"
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed salt makes the SVG element ids the same on every save.
    with rc_context({"svg.hashsalt": "losslab-cd-diagram"}):
        fig.savefig(path, format=fmt, dpi=_DPI, metadata=_METADATA.get(fmt))
    fig.clear()
    return path
