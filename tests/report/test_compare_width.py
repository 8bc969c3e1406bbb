"""``losslab compare`` fits its tables to the terminal and never cuts a cell.

The table of a comparison with a baseline (four metrics, a confidence interval and
four Δ columns with p-values) is wider than 80 and 120 columns. Its columns go to
part tables that each repeat the row-identifying columns; ``--wide`` keeps one
table; output to a file or pipe keeps one table unless COLUMNS asks for a width.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from losslab.report.compare import main
from losslab.report.comparison import compare
from losslab.report.tables import Cell, TableData, summary_table, to_rich
from tests.report.test_compare import ACC, ECE, record, write

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
KEYS = 4  # rank, loss, noise.rate, n


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """3 losses x 2 noise rates x 3-4 seeds of results.json with known metrics."""
    root = tmp_path_factory.mktemp("width") / "multirun"
    n = 0
    for (loss, rate), accs in ACC.items():
        for seed, acc in enumerate(accs):
            write(root / str(n), record(loss, rate, seed, acc, ECE[(loss, rate)] + 0.001 * seed))
            n += 1
    return root


@pytest.fixture(scope="module")
def expected(runs) -> TableData:
    """The table ``losslab compare --baseline loss=ce`` prints, before rendering."""
    return summary_table(compare([runs], None, "loss=ce"))


def render(monkeypatch, capsys, argv, columns=None, terminal=False) -> str:
    """What ``losslab compare argv`` prints, ANSI styles removed."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    if terminal:
        monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert main([str(a) for a in argv]) == 0
    return ANSI.sub("", capsys.readouterr().out)


def parts(out: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each drawn table as (its headers, its rows of stripped cells).

    A header that wraps over several lines is joined with spaces; section rules
    between blocks are skipped.
    """
    tables, header_lines, rows, state = [], [], [], None
    for line in out.splitlines():
        line = line.rstrip()
        if line.startswith("┏"):
            header_lines, rows, state = [], [], "head"
        elif line.startswith("┡"):
            state = "body"
        elif line.startswith("└"):
            columns = zip(*header_lines, strict=True)
            headers = [" ".join(w for w in words if w) for words in columns]
            tables.append((headers, rows))
            state = None
        elif state == "head" and line.startswith("┃"):
            header_lines.append([c.strip() for c in line.strip("┃").split("┃")])
        elif state == "body" and line.startswith("│"):
            rows.append([c.strip() for c in line.strip("│").split("│")])
    return tables


def reassemble(out: str) -> tuple[list[str], list[list[str]]]:
    """The one table the parts were cut from: key columns once, then every part's others."""
    drawn = parts(out)
    assert drawn, out
    keys = drawn[0][0][:KEYS]
    headers = list(keys)
    rows = {tuple(r[:KEYS]): list(r[:KEYS]) for r in drawn[0][1]}
    for part_headers, part_rows in drawn:
        # every part repeats the row-identifying columns, for every row
        assert part_headers[:KEYS] == keys
        assert [tuple(r[:KEYS]) for r in part_rows] == list(rows)
        headers += part_headers[KEYS:]
        for r in part_rows:
            rows[tuple(r[:KEYS])] += r[KEYS:]
    return headers, list(rows.values())


def assert_whole(out: str, table: TableData) -> None:
    """Every header and every cell of ``table`` is drawn whole, in its row."""
    assert "…" not in out and "..." not in out
    headers, rows = reassemble(out)
    assert headers == table.headers
    assert rows == [[c.plain for c in row] for row in table.rows]


@pytest.mark.parametrize("width", [80, 120])
def test_a_terminal_gets_part_tables_that_fit(runs, expected, monkeypatch, capsys, width):
    out = render(monkeypatch, capsys, [runs, "--baseline", "loss=ce"], width, terminal=True)
    assert max(cell_len(line) for line in out.splitlines()) <= width
    assert len(parts(out)) > 1
    assert "(part 1 of" in out and "(part 2 of" in out
    assert_whole(out, expected)
    # the notes follow the last part, once
    assert out.count("CI: 95% confidence interval") == 1
    assert out.rindex("└") < out.index("CI: 95% confidence interval")


@pytest.mark.parametrize("width", [80, 120])
def test_columns_fits_a_pipe_too(runs, expected, monkeypatch, capsys, width):
    out = render(monkeypatch, capsys, [runs, "--baseline", "loss=ce"], width)
    assert max(cell_len(line) for line in out.splitlines()) <= width
    assert len(parts(out)) > 1
    assert_whole(out, expected)


def test_p_values_whole_at_80_columns(runs, expected, monkeypatch, capsys):
    out = render(monkeypatch, capsys, [runs, "--baseline", "loss=ce"], 80, terminal=True)
    p_cells = [c.plain for row in expected.rows for c in row if "(p" in c.plain]
    assert len(p_cells) == 16  # four non-baseline groups x four metrics
    lines = out.splitlines()
    for cell in p_cells:
        assert any(cell in line for line in lines), cell


def test_wide_keeps_one_table(runs, expected, monkeypatch, capsys):
    argv = [runs, "--baseline", "loss=ce", "--wide"]
    out = render(monkeypatch, capsys, argv, 80, terminal=True)
    assert len(parts(out)) == 1
    assert "(part" not in out
    assert max(cell_len(line) for line in out.splitlines()) > 80
    headers, rows = parts(out)[0]
    assert headers == expected.headers
    assert rows == [[c.plain for c in row] for row in expected.rows]
    assert "…" not in out


def test_a_pipe_without_columns_gets_one_whole_table(runs, expected, monkeypatch, capsys):
    out = render(monkeypatch, capsys, [runs, "--baseline", "loss=ce"])
    assert len(parts(out)) == 1
    assert_whole(out, expected)


def test_a_table_that_fits_stays_one_table(runs, monkeypatch, capsys):
    out = render(monkeypatch, capsys, [runs, "--metric", "acc", "--ci", "none"], 80, terminal=True)
    assert len(parts(out)) == 1
    assert "(part" not in out
    assert "92.00 ± 2.00" in out and "…" not in out


def test_too_narrow_for_any_pair_still_cuts_nothing(runs, expected, monkeypatch, capsys):
    # 40 columns hold the key columns but not one value column beside them
    out = render(monkeypatch, capsys, [runs, "--baseline", "loss=ce"], 40, terminal=True)
    assert len(parts(out)) == len(expected.headers) - KEYS
    assert_whole(out, expected)


def test_long_headers_wrap_and_long_text_folds_without_an_ellipsis():
    from io import StringIO

    from rich.console import Console

    error = "RuntimeError: " + "x" * 150
    table = TableData(
        "long",
        ["name", "final.test.ece_classwise mean", "error message"],
        [[Cell("a"), Cell("0.1234", "0.0012"), Cell(error)]],
        [False, True, False],
    )
    console = Console(file=StringIO(), width=40, highlight=False)
    console.print(to_rich(table, 40))
    out = console.file.getvalue()
    lines = out.splitlines()
    assert "…" not in out
    assert max(cell_len(line) for line in lines) <= 40
    assert any("0.1234 ± 0.0012" in line for line in lines)
    drawn = "".join(c for line in lines for c in line if c == "x")
    assert drawn == "x" * 150
