"""Accuracy-vs-ECE labels: set apart (no two overlap), deterministic, a legend when crowded."""

from __future__ import annotations

import pytest
from matplotlib.text import Annotation, Text

from losslab.report import palette
from losslab.report.figures import MAX_LABELS, accuracy_vs_ece, accuracy_vs_ece_figure


def cluster(n: int, spread: float = 0.002) -> list[dict]:
    """``n`` points packed into a small corner of the plot, plus two far away."""
    points = [
        {"label": f"loss={name}", "key": name, "x": 0.05 + spread * (i % 3),
         "y": 0.90 + spread * (i // 3), "xerr": 0.001, "yerr": 0.002}
        for i, name in enumerate(palette.loss_tokens()[:n])
    ]  # fmt: skip
    points.append({"label": "far low", "x": 0.30, "y": 0.40})
    points.append({"label": "far high", "x": 0.30, "y": 0.95})
    return points


def annotations(fig) -> list[Annotation]:
    return [t for t in fig.axes[0].texts if isinstance(t, Annotation)]


def extents(fig, texts):
    """The window extents of the label texts (an Annotation's own extent adds its leader line)."""
    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for t in texts]


def overlapping_pairs(boxes) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes[i + 1 :], i + 1)
        if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1
    ]


@pytest.mark.parametrize("n", [4, 9, 12])
def test_labels_of_clustered_points_do_not_overlap(n):
    points = cluster(n)
    fig = accuracy_vs_ece_figure(points)
    fig.canvas.draw()
    texts = annotations(fig)
    assert [t.get_text() for t in texts] == [p["label"] for p in points]
    boxes = extents(fig, texts)
    assert overlapping_pairs(boxes) == []
    # Every label stays inside the axes, and no point hides under a label.
    frame = fig.axes[0].get_window_extent(fig.canvas.get_renderer())
    for box in boxes:
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1
        assert frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1
    to_px = fig.axes[0].transData.transform
    for p in points:
        x, y = to_px((p["x"], p["y"]))
        assert not any(b.x0 < x < b.x1 and b.y0 < y < b.y1 for b in boxes)
    assert not fig.legends  # labelled in place: no legend needed


def test_labels_moved_away_get_leader_lines():
    fig = accuracy_vs_ece_figure(cluster(12))
    texts = annotations(fig)
    assert any(t.arrow_patch is not None for t in texts)  # the crowded ones
    far = [t for t in texts if t.get_text().startswith("far")]
    assert all(t.arrow_patch is None for t in far)  # a lone point's label sits beside it


def test_label_placement_is_deterministic():
    def offsets():
        fig = accuracy_vs_ece_figure(cluster(9))
        return [tuple(round(v, 6) for v in t.xyann) for t in annotations(fig)]

    assert offsets() == offsets()


def test_many_points_get_a_legend_keyed_by_colour_and_marker(tmp_path):
    tokens = palette.loss_tokens()
    points = [
        {"label": f"loss={name} noise.rate={rate}", "key": name, "series": f"noise.rate={rate}",
         "x": 0.01 + 0.001 * i, "y": 0.9 - 0.01 * i - rate}
        for i, name in enumerate(tokens)
        for rate in (0.0, 0.4)
    ]  # fmt: skip
    assert len(points) > MAX_LABELS
    fig = accuracy_vs_ece_figure(points)
    assert not annotations(fig)
    assert len(fig.legends) == 1
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert set(tokens) <= set(names)  # one entry per colour (loss) ...
    assert {"noise.rate=0.0", "noise.rate=0.4"} <= set(names)  # ... and per marker
    assert accuracy_vs_ece(points, tmp_path / "a.png").stat().st_size > 1000
