"""Per-run figures: valid PNGs with full, partial and gappy inputs, and the plots/ layout."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from losslab.report.plots import (
    _bin_summary,
    plot_run,
    reliability_diagram,
    training_curves,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    """A non-empty PNG that matplotlib reads back as an RGB(A) image of a sensible size."""
    from matplotlib.image import imread

    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something was drawn


def bins(n_bins: int = 10) -> dict:
    count = [0, 0, 0, 5, 12, 30, 41, 60, 90, 262][:n_bins]
    conf = [0.05 + 0.1 * i for i in range(n_bins)]
    acc = [0.0 if c == 0 else max(0.0, x - 0.08) for c, x in zip(count, conf, strict=True)]
    return {"n_bins": n_bins, "count": count, "acc": acc, "conf": conf}


def records(epochs: int = 4, regs: tuple[str, ...] = ("entropy", "logit_l2")) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        r = {
            "epoch": e,
            "lr": 0.1 / e,
            "train/loss": 2.0 / e,
            "train/objective": 2.1 / e,
            "val/acc": 0.5 + 0.1 * e,
            "test/acc": 0.48 + 0.1 * e,
            "val/ece": 0.1 / e,
            "test/ece": 0.12 / e,
            "val/entropy": 1.5 / e,
            "test/entropy": 1.6 / e,
            "time/train_s": 0.1,
        }
        for name in regs:
            r[f"train/reg/{name}"] = 0.3 * e
            r[f"train/reg/{name}/stats/mean"] = 1.0  # diagnostics, not a loss term
        out.append(r)
    return out


def test_bin_summary_matches_the_weighted_gap():
    rel = {"n_bins": 3, "count": [0, 2, 6], "acc": [None, 0.5, 1.0], "conf": [0.0, 0.6, 0.9]}
    s = _bin_summary(rel)
    assert s["n"] == 8
    assert s["ece"] == pytest.approx((2 * 0.1 + 6 * 0.1) / 8)
    assert s["acc"] == pytest.approx((2 * 0.5 + 6 * 1.0) / 8)
    assert s["conf"] == pytest.approx((2 * 0.6 + 6 * 0.9) / 8)


def test_bin_summary_of_no_samples_is_nan():
    s = _bin_summary({"n_bins": 2, "count": [0, 0], "acc": [0, 0], "conf": [0, 0]})
    assert s["n"] == 0 and math.isnan(s["ece"])


@pytest.mark.parametrize(
    "bad",
    [
        {"n_bins": 3, "count": [1, 2], "acc": [0.1, 0.2], "conf": [0.1, 0.2]},
        {"n_bins": 2, "count": [1, 2], "acc": [0.1, 0.2]},
    ],
)
def test_reliability_diagram_rejects_malformed_bins(tmp_path, bad):
    with pytest.raises(ValueError, match="reliability"):
        reliability_diagram(bad, tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()


def test_reliability_diagram_writes_png(tmp_path):
    path = reliability_diagram(bins(), tmp_path / "sub" / "rel.png", title="loss=ce seed=0")
    assert path == tmp_path / "sub" / "rel.png"
    assert_png(path)


@pytest.mark.parametrize(
    "rel",
    [
        # Empty bins reported with None / NaN statistics.
        {"n_bins": 4, "count": [0, 3, 0, 7], "acc": [None, 0.3, float("nan"), 0.9],
         "conf": [None, 0.4, None, 0.85]},
        # No samples at all.
        {"n_bins": 5, "count": [0] * 5, "acc": [0.0] * 5, "conf": [0.0] * 5},
        # A single bin, under-confident.
        {"n_bins": 1, "count": [10], "acc": [0.9], "conf": [0.6]},
    ],
)  # fmt: skip
def test_reliability_diagram_edge_cases(tmp_path, rel):
    assert_png(reliability_diagram(rel, tmp_path / "rel.png"))


def test_training_curves_all_panels(tmp_path):
    path = training_curves(records(), tmp_path / "curves.png", title="loss=gce " * 30)
    assert_png(path)


def test_training_curves_tolerate_none_and_missing_keys(tmp_path):
    recs = records(5, regs=())
    recs[1]["val/acc"] = None
    recs[2]["test/ece"] = None
    del recs[3]["val/entropy"]
    for r in recs:  # no test split at all
        for key in [k for k in r if k.startswith("test/")]:
            del r[key]
    assert_png(training_curves(recs, tmp_path / "curves.png"))


def test_training_curves_single_epoch_and_loss_only(tmp_path):
    assert_png(training_curves([{"epoch": 1, "train/loss": 0.7}], tmp_path / "a.png"))
    # Nothing plottable (no records, or only None): a figure that says so.
    assert_png(training_curves([], tmp_path / "b.png"))
    assert_png(training_curves([{"epoch": 1, "val/acc": None}], tmp_path / "c.png"))


def test_plot_run_layout(tmp_path):
    paths = plot_run(tmp_path, records(), bins(), "loss=ce")
    assert paths == [tmp_path / "plots" / "reliability.png", tmp_path / "plots" / "curves.png"]
    for path in paths:
        assert_png(path)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "curves.png",
        "reliability.png",
    ]


def test_plot_run_without_reliability(tmp_path):
    paths = plot_run(tmp_path / "run", records(2), None, "")
    assert paths == [tmp_path / "run" / "plots" / "curves.png"]
    assert_png(paths[0])
    assert not (tmp_path / "run" / "plots" / "reliability.png").exists()


def test_no_pyplot_figures_left_open(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_run(tmp_path, records(2), bins(), "x")
    assert plt.get_fignums() == before


@pytest.mark.parametrize(("fmt", "magic"), [("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_plot_run_in_other_formats(tmp_path, fmt, magic):
    paths = plot_run(tmp_path, records(), bins(), "loss=gce", fmt=fmt)
    plots = tmp_path / "plots"
    assert paths == [plots / f"reliability.{fmt}", plots / f"curves.{fmt}"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(magic)
        assert fmt != "svg" or b"<svg" in data
    # The same input gives the same bytes (no creation dates, fixed SVG ids).
    again = plot_run(tmp_path / "again", records(), bins(), "loss=gce", fmt=fmt)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


def test_plot_run_rejects_an_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="png, pdf, svg"):
        plot_run(tmp_path, records(), bins(), "x", fmt="jpg")
    assert not (tmp_path / "plots").exists()


def test_reliability_diagram_takes_the_loss_colour(tmp_path):
    from losslab.report.palette import color

    svg = reliability_diagram(bins(), tmp_path / "r.svg", "gce", color=color("gce")).read_text()
    assert color("gce") in svg


def test_no_legend_covers_the_bars_or_the_histogram_strip(tmp_path, monkeypatch):
    """The strip's legend sat over its bars (an under-confident model's share of samples
    at low confidence): every legend now lies outside both axes."""
    from losslab.report import plots

    seen: dict = {}
    save = plots._save

    def inspect(fig, path, *args, **kwargs):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        top, bottom = fig.axes[:2]
        legends = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
        seen["legends"] = len(legends) + len(fig.legends)
        seen["overlaps"] = [
            legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
            for legend in [*legends, *fig.legends]
            for ax in (top, bottom)
        ]
        return save(fig, path, *args, **kwargs)

    monkeypatch.setattr(plots, "_save", inspect)
    low = {"n_bins": 5, "count": [30, 60, 5, 3, 2], "acc": [0.6, 0.7, 0.9, 1.0, 1.0],
           "conf": [0.1, 0.3, 0.5, 0.7, 0.9]}  # fmt: skip
    reliability_diagram(low, tmp_path / "r.png", "under-confident")
    assert seen["legends"] >= 1 and not any(seen["overlaps"])
