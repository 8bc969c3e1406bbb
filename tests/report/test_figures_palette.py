"""One colour per loss: the palette, and the same colour for a loss in every figure."""

from __future__ import annotations

from pathlib import Path

from matplotlib.colors import to_hex

from losslab.report import palette
from losslab.report.cd_diagram import cd_diagram
from losslab.report.figures import (
    accuracy_vs_ece_figure,
    metric_vs_noise_rate_figure,
    reliability_grid_figure,
)

CONF_LOSS = Path(palette.__file__).resolve().parent.parent / "conf" / "loss"


def bins(acc: float = 0.8) -> dict:
    return {"n_bins": 4, "count": [0, 10, 20, 70], "acc": [0, 0.3, 0.55, acc],
            "conf": [0, 0.35, 0.6, 0.9]}  # fmt: skip


def scatter_colours(losses: list[str]) -> dict[str, str]:
    points = [
        {"label": f"loss={name}", "key": name, "x": 0.01 * (i + 1), "y": 0.5 + 0.04 * i}
        for i, name in enumerate(losses)
    ]
    fig = accuracy_vs_ece_figure(points)
    return errorbar_colours(fig.axes[0])


def errorbar_colours(ax) -> dict[str, str]:
    """``{label: colour}`` of the error-bar plots of ``ax`` (the colour of their marker line)."""
    return {c.get_label(): to_hex(c.lines[0].get_color()) for c in ax.containers}


def grid_colours(losses: list[str]) -> dict[str, str]:
    grid = [[{**bins(), "title": f"loss={name}", "key": name} for name in losses]]
    fig = reliability_grid_figure(grid)
    out = {}
    for ax in fig.axes:
        title = ax.get_title()
        if title:
            out[title] = to_hex(ax.patches[0].get_facecolor())  # the first accuracy bar
    return out


def noise_colours(losses: list[str]) -> dict[str, str]:
    lines = [
        {"label": name, "key": name, "x": [0.0, 0.4], "y": {"acc": [0.9, 0.7]},
         "yerr": {"acc": [0.01, 0.02]}}
        for name in losses
    ]  # fmt: skip
    fig = metric_vs_noise_rate_figure(lines, ["acc"])
    return errorbar_colours(fig.axes[0])


def test_packaged_losses_each_have_their_own_colour():
    tokens = sorted(p.stem for p in CONF_LOSS.glob("*.yaml"))
    assert list(palette.loss_tokens()) == tokens
    colours = [palette.color(t) for t in tokens]
    assert len(set(colours)) == len(tokens)
    assert len(palette.PALETTE) >= len(tokens)


def test_colour_depends_on_the_name_alone():
    assert palette.color("gce") == palette.color("loss=gce")
    assert palette.color("ce") == palette.PALETTE[0]  # the baseline takes the first colour
    # Names outside the config tree: a fixed, valid entry (not random per process).
    assert palette.color("my_own_loss") == palette.color("my_own_loss")
    assert palette.color("my_own_loss") in palette.PALETTE
    common = ["ce", "gce", "sce", "mae", "nce_rce", "focal", "ls", "rce"]
    assert len({palette.color(c) for c in common}) == len(common)


def test_a_loss_has_one_colour_in_every_figure_whatever_the_other_losses():
    one = scatter_colours(["ce", "gce", "mae"])
    two = scatter_colours(["nce_rce", "gce"])
    assert one["loss=gce"] == two["loss=gce"] == palette.color("gce")
    assert one["loss=ce"] != one["loss=gce"] != one["loss=mae"]

    grid_a = grid_colours(["ce", "gce", "mae"])
    grid_b = grid_colours(["gce", "sce"])
    assert grid_a["loss=gce"] == grid_b["loss=gce"] == palette.color("gce")

    assert noise_colours(["mae", "gce"])["gce"] == noise_colours(["gce"])["gce"]
    assert noise_colours(["mae", "gce"])["gce"] == palette.color("gce")


def test_the_cd_diagram_uses_the_same_colours(tmp_path):
    ranks = {"gce": 1.0, "mae": 2.5, "ce": 2.5}
    svg = cd_diagram(ranks, tmp_path / "cd.svg", cd=1.0).read_text()
    for name in ranks:
        assert palette.color(name) in svg
    plain = cd_diagram(ranks, tmp_path / "plain.svg", cd=1.0, colored=False).read_text()
    assert not any(palette.color(name) in plain for name in ranks)


def _lab(hex_colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB ``#rrggbb``."""
    srgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (((v + 0.055) / 1.055) ** 2.4 if v > 0.04045 else v / 12.92 for v in srgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_the_usual_head_to_head_has_clearly_different_colours():
    """ce, gce, nce_rce and ldr (the README's sweep) were blue, orange, green and a light
    orange that read as gce's (Delta E 14): the losses compared most often now differ
    by more than Delta E 25 (CIE76), as tab10's hues do."""
    import itertools

    from losslab.report.palette import color

    losses = ("ce", "gce", "nce_rce", "ldr", "aldr", "sce", "mae")
    for a, b in itertools.combinations(losses, 2):
        distance = sum((p - q) ** 2 for p, q in zip(_lab(color(a)), _lab(color(b)), strict=True))
        assert distance**0.5 > 25, (a, b, color(a), color(b))
