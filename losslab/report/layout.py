"""How a table's columns fit a width: cut between columns, never inside a cell.

A table wider than its width is drawn as part tables. The row-identifying
columns (the first ``keys``: rank, the group columns, n) repeat in every part so
that each part reads on its own; the other columns fill the parts in their order.
A number is never wrapped or shortened: its column is at least as wide as its
widest cell. A header wraps at its spaces; free text longer than
:data:`TEXT_WIDTH` wraps (long words fold) rather than being cut. When even the
key columns and one other do not fit, that part is wider than asked: a cell is
never cut to make a table fit.

Example:
    >>> parts = layout(["name", "a", "b"], [["x", "1.00", "2.00"]], [False, True, True], 1, 16)
    >>> [p.columns for p in parts]
    [[0, 1], [0, 2]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Text columns (left-justified) narrower than this never wrap.
TEXT_WIDTH = 24


@dataclass(frozen=True)
class Part:
    """One part table: the indices of its columns and the width of each (without padding)."""

    columns: list[int]
    widths: list[int]


def drawn_width(widths: Sequence[int]) -> int:
    """Width of a rich table with these column widths: one space of padding either
    side of every cell and a rule between and around the columns."""
    return sum(widths) + 3 * len(widths) + 1


def _text_width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


def _word_width(text: str) -> int:
    return max((_text_width(word) for word in text.split()), default=0)


def column_widths(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]
) -> tuple[list[int], list[int]]:
    """The least and the natural width of every column.

    Args:
        headers: the column headers.
        rows: the cells' texts, row by row.
        right: per column, whether it is right-justified (numbers).

    Returns:
        ``(least, natural)``: the least width draws every number on one line and
        every header word whole; the natural width draws every cell and header on
        one line.
    """
    least, natural = [], []
    for i, (header, numbers) in enumerate(zip(headers, right, strict=True)):
        cells = max((_text_width(row[i]) for row in rows), default=0)
        word = _word_width(header)
        least.append(max(word, cells if numbers else min(cells, TEXT_WIDTH), 1))
        natural.append(max(_text_width(header), cells, 1))
    return least, natural


def layout(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[bool],
    keys: int,
    width: int | None,
) -> list[Part]:
    """The part tables a table is drawn as, to fit ``width`` columns.

    Args:
        headers: the column headers.
        rows: the cells' texts, row by row.
        right: per column, whether it is right-justified (numbers never wrap).
        keys: how many leading columns identify a row; they repeat in every part.
        width: the width to fit; ``None`` draws one table with every cell on one line.

    Returns:
        The parts in order; one part when the table fits (or ``width`` is ``None``).
    """
    least, natural = column_widths(headers, rows, right)
    n = len(headers)
    keys = min(keys, n)
    key_columns = list(range(keys))
    if width is None:
        return [Part(list(range(n)), natural)]
    groups: list[list[int]] = []
    current: list[int] = []
    for c in range(keys, n):
        trial = [least[i] for i in (*key_columns, *current, c)]
        if current and drawn_width(trial) > width:
            groups.append(current)
            current = []
        current.append(c)
    if current or not groups:
        groups.append(current)
    parts = []
    for group in groups:
        columns = key_columns + group
        widths = _share(
            [least[i] for i in columns],
            [natural[i] for i in columns],
            width - drawn_width([least[i] for i in columns]),
        )
        parts.append(Part(columns, widths))
    return parts


def _share(least: list[int], natural: list[int], spare: int) -> list[int]:
    """Widen wrapped columns (headers, text) with the ``spare`` width, each in
    proportion to what it lacks to its natural width; the rest left to right."""
    needs = [n - w for w, n in zip(least, natural, strict=True)]
    total = sum(needs)
    if spare <= 0 or total == 0:
        return list(least)
    if total <= spare:
        return list(natural)
    grown = [w + spare * need // total for w, need in zip(least, needs, strict=True)]
    left = spare - sum(g - w for g, w in zip(grown, least, strict=True))
    for j in range(len(grown)):
        step = min(left, natural[j] - grown[j])
        grown[j] += step
        left -= step
    return grown
