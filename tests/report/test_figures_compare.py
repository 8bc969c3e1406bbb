"""``losslab compare --plots`` on a fake 29-loss sweep: wrapped grids, legends, histograms, formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.image import imread

import losslab
from losslab.report.compare import main

# The packaged losses (29 when this was written), from the config tree.
LOSSES = sorted(p.stem for p in (Path(losslab.__file__).parent / "conf" / "loss").glob("*.yaml"))
# A page-sized figure: at most 16 x 22 inches at 150 dpi.
MAX_PX = (16 * 150, 22 * 150)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ("acc_vs_ece", "reliability", "vs_noise_rate", "critical_difference")


def record(loss: str, rate: float, seed: int, acc: float) -> dict:
    ece = 0.02 + 0.1 * (1 - acc)
    metrics = {"acc": acc, "ece": ece, "nll": 0.5, "entropy": 0.3}
    return {
        "status": "completed",
        "overrides": [f"loss={loss}", f"noise.rate={rate}", f"seed={seed}"],
        "config": {
            "seed": seed,
            "trainer": {"epochs": 2},
            "dataset": {"_target_": "losslab.datasets.digits.load_digits", "num_classes": 10},
            "model": {"_target_": "losslab.models.mlp.MLP", "num_classes": 10},
            "loss": {"_target_": f"losslab.losses.fake.{loss}"},
            "noise": {"_target_": "losslab.datasets.noise.SymmetricNoise", "rate": rate},
        },
        "choices": {"dataset": "digits", "model": "mlp", "loss": loss, "noise": "symmetric"},
        "final": {"epoch": 2, "val": metrics, "test": metrics},
        "best": {"epoch": 2, "val": metrics, "test": metrics},
        "noise": {"type": "symmetric", "rate": rate, "realised_rate": rate},
        "reliability": {
            "n_bins": 5,
            "count": [1, 4, 10, 25, 60],
            "acc": [0.1, 0.3, 0.5, 0.7, acc],
            "conf": [0.15, 0.35, 0.55, 0.75, 0.95],
        },
        "timing": {"total_s": 1.0},
        "versions": {"losslab": "0.1.0"},
    }


def sweep(root: Path, losses: list[str], rates: tuple[float, ...] = (0.0,)) -> Path:
    n = 0
    for i, loss in enumerate(losses):
        for rate in rates:
            for seed in (0, 1):
                acc = 0.95 - 0.01 * i - 0.3 * rate + 0.005 * seed
                path = root / str(n)
                path.mkdir(parents=True)
                (path / "results.json").write_text(json.dumps(record(loss, rate, seed, acc)))
                n += 1
    return root


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    """29 losses x 1 noise rate x 2 seeds."""
    return sweep(tmp_path_factory.mktemp("wide") / "multirun", LOSSES)


def png_shape(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = imread(path)
    assert image.std() > 0
    return image.shape[0], image.shape[1]


def test_grid_shape_is_near_square_and_capped():
    from losslab.report.figures import MAX_COLS, grid_shape

    assert grid_shape(29) == (5, 6)
    assert grid_shape(4) == (2, 2)
    assert grid_shape(1) == (1, 1)
    assert grid_shape(100) == (17, MAX_COLS)


def test_a_29_loss_reliability_grid_wraps_into_rows_of_bounded_size(wide, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main([str(wide), "--plots", str(out)]) == 0
    height, width = png_shape(out / "reliability.png")
    assert width <= MAX_PX[0] + 2
    assert height <= MAX_PX[1] + 2
    assert width < 3 * height  # not one long row (it was 10,164 x 420 px)
    assert width > 1000  # panels are still readable


def test_a_29_panel_grid_has_rows_a_legend_and_a_histogram_per_panel():
    from losslab.report.figures import reliability_grid_figure

    names = [f"loss_{i:02d}" for i in range(29)]
    grid = [
        [{**record(loss, 0.0, 0, 0.8)["reliability"], "title": f"loss={loss}", "key": loss}
         for loss in names[i : i + 6]]
        for i in range(0, len(names), 6)
    ]  # fmt: skip
    fig = reliability_grid_figure(grid)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 29
    rows = {round(ax.get_position().y0, 3) for ax in titled}
    cols = {round(ax.get_position().x0, 3) for ax in titled}
    assert len(rows) == 5 and len(cols) == 6
    # One legend that says what the bars, the gap, the diagonal and the histogram are.
    assert len(fig.legends) == 1
    texts = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    for word in ("accuracy", "gap", "perfect calibration", "share of samples"):
        assert word in texts
    # Beneath every diagram: a histogram of the share of samples per bin, summing to 1.
    strips = [ax for ax in fig.axes if not ax.get_title()]
    assert len(strips) == 29
    for ax in strips:
        heights = [p.get_height() for p in ax.patches]
        assert len(heights) == 5
        assert sum(heights) == pytest.approx(1.0)


def test_matrix_layout_when_few_losses_and_several_settings(tmp_path):
    root = sweep(tmp_path / "runs", ["ce", "gce", "mae"], rates=(0.0, 0.2, 0.4))
    out = tmp_path / "figs"
    assert main([str(root), "--plots", str(out)]) == 0
    height, width = png_shape(out / "reliability.png")
    assert height > width  # three rows (rates) of three columns (losses), histograms beneath


@pytest.mark.parametrize(
    ("fmt", "magic"), [("pdf", (b"%PDF",)), ("svg", (b"<?xml", b"<svg")), ("png", (PNG_SIGNATURE,))]
)
def test_format_writes_every_figure_in_that_format(tmp_path, capsys, fmt, magic):
    root = sweep(tmp_path / "runs", ["ce", "gce", "mae"], rates=(0.0, 0.4))
    out = tmp_path / "figs"
    assert main([str(root), "--friedman", "--plots", str(out), "--format", fmt]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{name}.{fmt}" for name in FIGURES)
    for name in written:
        assert (out / name).read_bytes().startswith(magic)
    printed = capsys.readouterr().out
    assert all(f"{name}.{fmt}" in printed for name in FIGURES)


def test_an_unknown_format_is_a_usage_error(tmp_path, capsys):
    root = sweep(tmp_path / "runs", ["ce", "gce"])
    assert main([str(root), "--plots", str(tmp_path / "figs"), "--format", "jpg"]) == 2
    assert not (tmp_path / "figs").exists()


def test_clean_runs_are_the_zero_point_of_every_noisy_curve(tmp_path):
    """A sweep of ``noise=none,symmetric noise.rate=0.4`` draws one curve per loss from
    0 % to 40 %, not a lone point per (noise option, loss)."""
    from losslab.report.comparison import compare
    from losslab.report.figures import _noise_lines

    n = 0
    for loss in ("ce", "gce"):
        for rate in (0.0, 0.4):
            for seed in (0, 1):
                rec = record(loss, rate, seed, 0.9 - rate / 2)
                if rate == 0.0:  # the clean option has no rate of its own
                    rec["choices"]["noise"] = "none"
                    rec["config"]["noise"] = {"_target_": "losslab.datasets.noise.NoNoise"}
                    rec["overrides"] = [f"loss={loss}", "noise=none", f"seed={seed}"]
                    rec["noise"] = {"type": "none", "rate": 0.0, "realised_rate": 0.0}
                path = tmp_path / str(n)
                path.mkdir()
                (path / "results.json").write_text(json.dumps(rec))
                n += 1
    lines = _noise_lines(compare([tmp_path]))
    assert sorted(line["label"] for line in lines) == ["ce", "gce"]
    for line in lines:
        assert line["x"] == [0.0, 0.4]
        assert line["y"]["final.test.acc"] == pytest.approx([0.9, 0.7])
