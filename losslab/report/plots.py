"""Per-run figures: the test reliability diagram and the training curves.

Both are drawn on a stand-alone :class:`matplotlib.figure.Figure` with the Agg
canvas (no pyplot, no global figure registry, no display needed), so they work
on a headless cluster node and in a process that runs many jobs. matplotlib is
imported inside the functions: importing this module stays cheap.

A file's format follows its suffix (:data:`FORMATS`: PNG, PDF, SVG), and the
same figure gives the same bytes on every save. The runner writes PNG into a
run's ``plots/``; :func:`plot_run` takes ``fmt`` for other uses.
:func:`draw_reliability` is the one drawing of a reliability diagram, shared
with the grid of ``losslab compare`` (:mod:`losslab.report.figures`).

Example:
    >>> from pathlib import Path
    >>> bins = {"n_bins": 2, "count": [3, 7], "acc": [0.33, 0.86], "conf": [0.4, 0.8]}
    >>> reliability_diagram(bins, Path("/tmp/rel.png"), title="ce")  # doctest: +SKIP
    PosixPath('/tmp/rel.png')
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
RELIABILITY_PNG = "reliability.png"
CURVES_PNG = "curves.png"

_DPI = 120
_SPLIT_STYLE = {"val": {"color": "tab:blue"}, "test": {"color": "tab:orange"}}


#: File formats every figure can be written in (``--format``); PNG is the default.
FORMATS = ("png", "pdf", "svg")
# Metadata that would otherwise change from one save to the next.
_METADATA = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}


def _figure(**kwargs: Any) -> Figure:
    """A figure on the Agg canvas, outside pyplot's registry of open figures."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def check_format(fmt: str) -> str:
    """``fmt`` lower-cased; ValueError unless it is one of :data:`FORMATS`."""
    out = str(fmt).lower().lstrip(".")
    if out not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return out


def _save(fig: Figure, path: Path, dpi: int = _DPI) -> Path:
    """Write ``fig`` in the format of ``path``'s suffix (PNG without one), reproducibly."""
    from matplotlib import rc_context

    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed salt makes the SVG element ids the same on every save.
    with rc_context({"svg.hashsalt": "losslab-figure"}):
        fig.savefig(path, format=fmt, dpi=dpi, metadata=_METADATA.get(fmt))
    fig.clear()  # drop the artists now rather than waiting for garbage collection
    return path


def _floats(values: Sequence[Any]) -> list[float]:
    """``values`` as floats, with ``None`` (and anything non-numeric) as NaN."""
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def _wrap(title: str, width: int) -> str:
    return "\n".join(textwrap.wrap(title, width)) if title else ""


def _bin_summary(reliability: dict[str, Any]) -> dict[str, float]:
    """Sample count, ECE, accuracy and mean confidence from reliability bins.

    ``ECE = sum_b (n_b / N) * |acc_b - conf_b|`` over the non-empty bins, the
    same estimate as the ``ece`` metric when the bins are the same.

    Args:
        reliability: ``{"n_bins": B, "count": [B], "acc": [B], "conf": [B]}``.

    Returns:
        ``{"n": N, "ece": ..., "acc": ..., "conf": ...}``; NaN where ``N == 0``.

    Raises:
        ValueError: when the bin lists are missing or do not all have ``n_bins`` entries.
    """
    try:
        n_bins = int(reliability["n_bins"])
        count, acc, conf = (_floats(reliability[k]) for k in ("count", "acc", "conf"))
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"reliability needs 'n_bins', 'count', 'acc' and 'conf', got {reliability!r}"
        ) from exc
    if n_bins < 1 or not len(count) == len(acc) == len(conf) == n_bins:
        raise ValueError(
            f"reliability bins: expected {n_bins} entries in 'count', 'acc' and 'conf', "
            f"got {len(count)}, {len(acc)} and {len(conf)}"
        )
    used = [
        (n, a, c)
        for n, a, c in zip(count, acc, conf, strict=True)
        if n > 0 and math.isfinite(a) and math.isfinite(c)
    ]
    total = sum(n for n, _, _ in used)
    if total <= 0:
        return {"n": 0.0, "ece": math.nan, "acc": math.nan, "conf": math.nan}
    return {
        "n": total,
        "ece": sum(n * abs(a - c) for n, a, c in used) / total,
        "acc": sum(n * a for n, a, _ in used) / total,
        "conf": sum(n * c for n, _, c in used) / total,
    }


#: Default colour of the accuracy bars when no loss colours them.
BAR_COLOR = "tab:blue"
_GAP_STYLE = {"facecolor": "none", "edgecolor": "0.15", "hatch": "////", "linewidth": 0.5}
_DIAGONAL_STYLE = {"ls": "--", "color": "0.3", "lw": 1.0}


def _bins(reliability: dict[str, Any]) -> tuple[int, list[float], list[float], list[float]]:
    n_bins = int(reliability["n_bins"])
    count, acc, conf = (_floats(reliability[k]) for k in ("count", "acc", "conf"))
    return n_bins, count, acc, conf


def bin_shares(reliability: dict[str, Any]) -> list[float]:
    """The share of the samples in each bin (0 for empty bins; all 0 without samples)."""
    count = [c if math.isfinite(c) and c > 0 else 0.0 for c in _floats(reliability["count"])]
    total = sum(count)
    return [c / total if total > 0 else 0.0 for c in count]


def reliability_legend_handles(
    color: str = BAR_COLOR, bar_label: str = "accuracy of the bin"
) -> list[Any]:
    """Legend entries of :func:`draw_reliability`: bars, gap, diagonal and histogram."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Patch(facecolor=color, edgecolor="0.2", linewidth=0.5, label=bar_label),
        Patch(**_GAP_STYLE, label="gap to the bin's mean confidence"),
        Line2D([0, 1], [0, 1], **_DIAGONAL_STYLE, label="perfect calibration"),
        Patch(
            facecolor=color,
            alpha=0.55,
            edgecolor="0.3",
            linewidth=0.5,
            label="share of samples in the bin (lower strip)",
        ),
    ]


def draw_reliability(
    top: Axes,
    bottom: Axes,
    reliability: dict[str, Any],
    color: str = BAR_COLOR,
    *,
    compact: bool = False,
    hist_max: float | None = None,
) -> dict[str, float]:
    """A reliability diagram on ``top`` and its confidence histogram on ``bottom``.

    Top: the accuracy of every non-empty bin as a bar in ``color``, the gap
    between accuracy and the bin's mean confidence hatched, the diagonal of
    perfect calibration, and the ECE of the bins annotated. Bottom, on the same
    x axis: the share of the samples in each bin (``count / N``).

    Args:
        top: the axes of the diagram.
        bottom: the axes of the histogram (the x axis should be shared with ``top``).
        reliability: ``{"n_bins": B, "count": [B], "acc": [B], "conf": [B]}``.
        color: colour of the bars (the loss's, :func:`losslab.report.palette.color`).
        compact: small text for a panel of a grid; fewer notes.
        hist_max: upper limit of the histogram's y axis (shared by a grid), else its own.

    Returns:
        :func:`_bin_summary` of the bins.

    Raises:
        ValueError: when the bins are malformed (see :func:`_bin_summary`).
    """
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    summary = _bin_summary(reliability)
    n_bins, count, acc, conf = _bins(reliability)
    width = 1.0 / n_bins
    centers = [(i + 0.5) * width for i in range(n_bins)]
    filled = [
        i
        for i in range(n_bins)
        if count[i] > 0 and math.isfinite(acc[i]) and math.isfinite(conf[i])
    ]
    xs = [centers[i] for i in filled]
    top.bar(
        xs,
        [acc[i] for i in filled],
        width=width,
        color=color,
        edgecolor="0.2",
        linewidth=0.5,
        alpha=0.9,
        label="accuracy",
    )
    top.bar(
        xs,
        [conf[i] - acc[i] for i in filled],
        bottom=[acc[i] for i in filled],
        width=width,
        **_GAP_STYLE,
        label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], **_DIAGONAL_STYLE, label="perfect calibration")
    top.set(xlim=(0, 1), ylim=(0, 1))
    if summary["n"] <= 0:
        note = "no samples"
    elif compact:
        note = f"ECE {100 * summary['ece']:.2f}%\nn = {summary['n']:,.0f}"
    else:
        note = (
            f"ECE {100 * summary['ece']:.2f}%\n"
            f"accuracy {100 * summary['acc']:.1f}%\n"
            f"confidence {100 * summary['conf']:.1f}%\n"
            f"n = {summary['n']:,.0f}, {n_bins} bins"
        )
    top.text(
        0.97,
        0.03,
        note,
        transform=top.transAxes,
        ha="right",
        va="bottom",
        fontsize="x-small" if compact else "small",
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"},
    )

    shares = bin_shares(reliability)
    bottom.bar(
        centers,
        shares,
        width=width,
        color=color,
        alpha=0.55,
        edgecolor="0.3",
        linewidth=0.5,
        label="share of samples",
    )
    top_share = hist_max if hist_max is not None else max(shares, default=0.0)
    bottom.set_xlim(0, 1)
    bottom.set_ylim(0, max(top_share * 1.15, 0.05))
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    if compact:
        bottom.yaxis.set_major_locator(MaxNLocator(nbins=2, min_n_ticks=1))
        bottom.tick_params(labelsize="x-small")
        top.tick_params(labelsize="x-small")
    return summary


def reliability_diagram(
    reliability: dict[str, Any], path: Path, title: str = "", color: str = BAR_COLOR
) -> Path:
    """Draw a reliability diagram with a confidence histogram beneath it.

    Top: the accuracy of every non-empty bin of top-label confidence (equal
    width over [0, 1], right-closed) as a bar, the gap between accuracy and the
    bin's mean confidence hatched, and the diagonal of perfect calibration; the
    ECE of the same bins is annotated. Bottom, on the same x axis: the share of
    samples that falls in each bin, with the overall accuracy and mean
    confidence marked.

    Args:
        reliability: ``{"n_bins": B, "count": [B], "acc": [B], "conf": [B]}``;
            ``acc``/``conf`` of empty bins are ignored (they may be 0, NaN or None).
        path: file to write, in the format of its suffix (``.png``, ``.pdf``,
            ``.svg``); parent directories are created.
        title: figure title (wrapped when long).
        color: colour of the bars (e.g. the loss's, :func:`losslab.report.palette.color`).

    Returns:
        ``path``.

    Raises:
        ValueError: when the bins are malformed (see :func:`_bin_summary`).
    """
    _bin_summary(reliability)  # malformed bins fail before a figure is made
    fig = _figure(figsize=(5.2, 6.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    summary = draw_reliability(top, bottom, reliability, color)
    top.set_ylabel("accuracy")
    handles = reliability_legend_handles(color)
    if summary["n"] > 0:
        from matplotlib.lines import Line2D

        overall = {"color": "0.1", "lw": 1.2}
        bottom.axvline(summary["acc"], ls="-", **overall)
        bottom.axvline(summary["conf"], ls="--", **overall)
        handles += [
            Line2D([], [], ls="-", **overall, label="accuracy (lower strip)"),
            Line2D([], [], ls="--", **overall, label="mean confidence (lower strip)"),
        ]
    # One legend above the axes: inside either, it would hide bars (an under-confident
    # model's, or the histogram's).
    top.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncols=2,
               fontsize="x-small", frameon=False)  # fmt: skip
    bottom.set(xlabel="confidence (top label)", ylabel="share of samples")
    if title:
        fig.suptitle(_wrap(title, 60), fontsize="medium")
    return _save(fig, path)


def _series(records: list[dict[str, Any]], key: str) -> list[float] | None:
    """The values of ``key`` per record (NaN where absent or None); None if it never has one."""
    values = _floats([r.get(key) for r in records])
    return values if any(math.isfinite(v) for v in values) else None


def _epochs(records: list[dict[str, Any]]) -> list[float]:
    epochs = _floats([r.get("epoch") for r in records])
    return [e if math.isfinite(e) else i + 1.0 for i, e in enumerate(epochs)]


def _best_epoch(records: list[dict[str, Any]], epochs: list[float]) -> float | None:
    """Epoch of the highest validation accuracy (the earliest on ties), as the runner picks it."""
    scores = _series(records, "val/acc")
    if scores is None:
        return None
    best = max((s, -i) for i, s in enumerate(scores) if math.isfinite(s))
    return epochs[-best[1]]


def _panels(records: list[dict[str, Any]]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(title, y label, [(key, legend label)]) of every panel with data in ``records``."""
    keys = {k for r in records for k in r}
    # train/reg/<name> only: train/reg/<name>/stats/... are diagnostics, not loss terms.
    regs = sorted(
        k for k in keys if k.startswith("train/reg/") and "/" not in k[len("train/reg/") :]
    )
    candidates = [
        ("loss", "mean per epoch", [("train/objective", "objective"), ("train/loss", "loss")]),
        (
            "regularizer terms (unweighted)",
            "mean per epoch",
            [(k, k.removeprefix("train/reg/")) for k in regs],
        ),
        ("accuracy", "accuracy", [("val/acc", "val"), ("test/acc", "test")]),
        ("calibration", "ECE", [("val/ece", "val"), ("test/ece", "test")]),
        (
            "predictive entropy",
            "entropy (nats)",
            [("val/entropy", "val"), ("test/entropy", "test")],
        ),
    ]
    panels = []
    for title, ylabel, lines in candidates:
        present = [(k, label) for k, label in lines if _series(records, k) is not None]
        if present:
            panels.append((title, ylabel, present))
    return panels


def _draw_panel(
    ax: Axes,
    epochs: list[float],
    records: list[dict[str, Any]],
    lines: list[tuple[str, str]],
) -> None:
    marker = "o" if len(epochs) <= 60 else None  # a single epoch must still show
    for key, label in lines:
        split = key.partition("/")[0]
        style = _SPLIT_STYLE.get(split, {}) if split in ("val", "test") else {}
        if key == "train/objective":
            style = {"color": "black", "lw": 1.8}
        ax.plot(epochs, _series(records, key), marker=marker, ms=3, label=label, **style)


def training_curves(records: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Plot the per-epoch records: loss terms, accuracy, ECE and entropy.

    Panels (each only when one of its keys has a value): ``train/objective``
    and ``train/loss``; every ``train/reg/<name>`` term (unweighted, in its own
    panel since its scale is its own); ``val/acc`` and ``test/acc`` with the
    best validation epoch marked; ``val/ece`` and ``test/ece``; ``val/entropy``
    and ``test/entropy``. ``None`` values and absent keys leave gaps.

    Args:
        records: the per-epoch records of ``metrics.jsonl`` (``epoch`` keys the x axis).
        path: file to write, in the format of its suffix (``.png``, ``.pdf``,
            ``.svg``); parent directories are created.
        title: figure title (wrapped when long).

    Returns:
        ``path``.
    """
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    epochs = _epochs(records)
    panels = _panels(records)
    ncols = 1 if len(panels) <= 1 else 2
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = _figure(figsize=(5.2 * ncols, 3.3 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    if not panels:
        axes[0].text(0.5, 0.5, "no per-epoch metrics to plot", ha="center", va="center")
        axes[0].set_axis_off()
    best = _best_epoch(records, epochs)
    for ax, (name, ylabel, lines) in zip(axes, panels, strict=False):
        _draw_panel(ax, epochs, records, lines)
        if name in ("accuracy", "calibration"):
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if name == "accuracy" and best is not None:
            ax.axvline(best, color="0.5", ls=":", lw=1, label=f"best val (epoch {best:g})")
        ax.set(title=name, xlabel="epoch", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[max(len(panels), 1) :]:
        ax.set_axis_off()
    if title:
        fig.suptitle(_wrap(title, 50 * ncols), fontsize="medium")
    return _save(fig, path)


def plot_run(
    run_dir: Path,
    records: list[dict[str, Any]],
    reliability: dict[str, Any] | None,
    title: str,
    fmt: str = "png",
    color: str = BAR_COLOR,
) -> list[Path]:
    """Write a run's figures under ``run_dir/plots/``.

    Args:
        run_dir: the run directory.
        records: the per-epoch records.
        reliability: the test reliability bins of the last evaluation, or None.
        title: shown on both figures (e.g. the run's overrides).
        fmt: file format, one of :data:`FORMATS`; the runner keeps PNG, the
            format the run directory contract names.
        color: colour of the reliability bars (the loss's, :mod:`losslab.report.palette`).

    Returns:
        The written paths: ``plots/reliability.<fmt>`` (when ``reliability`` is
        given) and ``plots/curves.<fmt>``.

    Raises:
        ValueError: an unknown ``fmt``, or malformed reliability bins.
    """
    fmt = check_format(fmt)
    out = Path(run_dir) / PLOTS_DIR
    written = []
    if reliability is not None:
        rel_title = f"{title} (test)" if title else "test"
        path = (out / RELIABILITY_PNG).with_suffix(f".{fmt}")
        written.append(reliability_diagram(reliability, path, rel_title, color))
    written.append(training_curves(records, (out / CURVES_PNG).with_suffix(f".{fmt}"), title))
    return written
