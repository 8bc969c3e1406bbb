"""Critical-difference diagram: the cliques on fixed ranks and the files written."""

from __future__ import annotations

from pathlib import Path

import pytest

from losslab.report.cd_diagram import cd_diagram, nemenyi_cliques
from losslab.report.stats import nemenyi_cd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RANKS = {"ce": 3.143, "gce": 2.000, "mae": 2.893, "sce": 1.964}


def names(k: int) -> dict[str, float]:
    """k treatments with long-ish names, ranks spread over [1, k]."""
    return {f"loss_{i:02d}_label_smoothing": 1 + (k - 1) * i / (k - 1) for i in range(k)}


def png_size(path: Path) -> tuple[int, int]:
    """(height, width) in pixels of a PNG that matplotlib reads back with content."""
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    image = imread(path)
    assert image.ndim == 3 and image.std() > 0
    return image.shape[0], image.shape[1]


# ---------------------------------------------------------------- cliques


def test_cliques_of_the_demsar_example() -> None:
    # CD = 1.25 at alpha = 0.05: no difference reaches it, one group of all four.
    assert nemenyi_cliques(RANKS, nemenyi_cd(4, 14, 0.05)) == [["sce", "gce", "mae", "ce"]]
    # CD = 1.12 at alpha = 0.10: sce and gce differ from ce (1.18, 1.14 >= 1.12).
    assert nemenyi_cliques(RANKS, nemenyi_cd(4, 14, 0.10)) == [["sce", "gce", "mae"], ["mae", "ce"]]


def test_cliques_drop_subsets_and_singletons() -> None:
    ranks = {"a": 1.0, "b": 1.5, "c": 2.2, "d": 3.6, "e": 4.0, "f": 5.7}
    # Runs from each start: a-c, b-c (inside a-c), c (single), d-e, e (inside), f (single).
    assert nemenyi_cliques(ranks, 1.3) == [["a", "b", "c"], ["d", "e"]]
    # Overlapping runs are all kept.
    assert nemenyi_cliques(ranks, 2.2) == [["a", "b", "c"], ["b", "c", "d"], ["c", "d", "e"], ["d", "e", "f"]]  # fmt: skip
    assert nemenyi_cliques(ranks, 0.1) == []
    assert nemenyi_cliques(ranks, 10.0) == [list("abcdef")]


def test_cliques_are_strict_and_handle_ties() -> None:
    # A range equal to the CD is a significant difference: not one group.
    assert nemenyi_cliques({"a": 1.0, "b": 2.0, "c": 3.0}, 1.0) == []
    assert nemenyi_cliques({"a": 2.0, "b": 1.5, "c": 2.0, "d": 4.0}, 0.4) == [["a", "c"]]


def test_cliques_reject_bad_inputs() -> None:
    with pytest.raises(ValueError, match="at least 2 treatments, got 1"):
        nemenyi_cliques({"a": 1.0}, 1.0)
    with pytest.raises(ValueError, match=r"cd must be a positive number, got -1.0"):
        nemenyi_cliques(RANKS, -1.0)
    with pytest.raises(ValueError, match=r"average rank of 'b' must be a number in \[1, 2\]"):
        nemenyi_cliques({"a": 1.0, "b": float("nan")}, 1.0)


# ---------------------------------------------------------------- drawing


def test_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "cd.png"
    out = cd_diagram(RANKS, path, cd=nemenyi_cd(4, 14, 0.10), title="four losses")
    assert out == path
    height, width = png_size(path)
    assert height > 100 and width > 300


def test_size_grows_with_the_number_of_names(tmp_path: Path) -> None:
    sizes = []
    for k in (2, 5, 10, 20):
        path = cd_diagram(names(k), tmp_path / f"cd{k}.png", cd=nemenyi_cd(k, 10))
        sizes.append(png_size(path))
    heights, widths = zip(*sizes, strict=True)
    assert list(heights) == sorted(heights) and len(set(heights)) == len(heights)
    assert list(widths) == sorted(widths) and widths[-1] > widths[0]


def test_long_names_widen_the_figure(tmp_path: Path) -> None:
    short = png_size(cd_diagram({"a": 1.0, "b": 2.0, "c": 3.0}, tmp_path / "short.png"))
    long = {"a" * 40: 1.0, "b": 2.0, "c" * 40: 3.0}
    wide = png_size(cd_diagram(long, tmp_path / "long.png"))
    assert wide[0] == short[0] and wide[1] > short[1]


def test_is_deterministic(tmp_path: Path) -> None:
    for suffix in ("png", "pdf", "svg"):
        a = cd_diagram(RANKS, tmp_path / f"a.{suffix}", cd=1.12, title="t")
        b = cd_diagram(RANKS, tmp_path / f"b.{suffix}", cd=1.12, title="t")
        assert a.read_bytes() == b.read_bytes()


def test_other_formats_follow_the_suffix(tmp_path: Path) -> None:
    assert cd_diagram(RANKS, tmp_path / "cd.pdf", cd=1.2).read_bytes().startswith(b"%PDF")
    assert b"<svg" in cd_diagram(RANKS, tmp_path / "cd.svg").read_bytes()
    assert cd_diagram(RANKS, tmp_path / "cd").read_bytes().startswith(PNG_SIGNATURE)


def test_cliques_and_options_change_the_drawing(tmp_path: Path) -> None:
    def draw(name: str, **kwargs) -> bytes:
        return cd_diagram(RANKS, tmp_path / f"{name}.png", **kwargs).read_bytes()

    plain = draw("plain")
    with_cd = draw("cd", cd=1.12)
    assert with_cd != plain
    # cliques=None with a cd draws the Nemenyi cliques, the same as passing them.
    assert draw("given", cd=1.12, cliques=nemenyi_cliques(RANKS, 1.12)) == with_cd
    assert draw("no_bars", cd=1.12, cliques=[]) != with_cd
    # Singletons are not bars.
    assert draw("single", cd=1.12, cliques=[["ce"]]) == draw("no_bars2", cd=1.12, cliques=[])
    assert draw("reversed", lower_is_better_rank=False) != plain
    # Names that would be mathtext are drawn as they are.
    png_size(cd_diagram({"$a$": 1.0, "b_1^2": 2.0}, tmp_path / "math.png"))


def test_rejects_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 treatments"):
        cd_diagram({"ce": 1.0}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"names \['focal'\], which have no average rank"):
        cd_diagram(RANKS, tmp_path / "x.png", cliques=[["ce", "focal"]])
    with pytest.raises(ValueError, match=r"cd must be a positive number, got 0.0"):
        cd_diagram(RANKS, tmp_path / "x.png", cd=0.0)
    with pytest.raises(ValueError, match=r"average rank of 'ce' must be a number in \[1, 4\]"):
        cd_diagram({**RANKS, "ce": 4.5}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
