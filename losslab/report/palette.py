"""One colour per loss, the same in every figure.

A figure that colours its groups by their position (``tab10(i)``) gives a loss
a different colour as soon as the set of losses changes. Here the colour of a
name depends on the name alone. The losses compared most often
(:data:`LEAD`) take the first, most distinct entries of :data:`PALETTE`; the
other loss tokens of the packaged config tree (``losslab/conf/loss/*.yaml``,
file stems in sorted order) take the next entries one each, so no two packaged
losses share a colour; any other name (a loss YAML of the user's own, a group
label) gets an entry picked by a hash of the name, the same on every run and
machine. Grey and black are left out: they draw the neutral parts of a figure
(diagonals, axes, text).

Markers and line styles tell apart the values of a second key (e.g. the noise
rate); they are assigned in the order of the values a figure shows.

Example:
    >>> color("ce") == color("loss=ce") == PALETTE[0]
    True
    >>> len(set(loss_tokens())) == len({color(t) for t in loss_tokens()})
    True
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = [
    "LEAD",
    "LINESTYLES",
    "MARKERS",
    "PALETTE",
    "color",
    "linestyle",
    "loss_tokens",
    "marker",
]

#: Qualitative colours, mutually distinguishable on white: matplotlib's tab10
#: (less its grey) first, then darker shades of other hues (tab20b/tab20c, Dark2,
#: Paired), and last the light and dark variants of tab10's own hues, which only
#: the losses compared least often reach. There are more entries than packaged losses.
PALETTE: tuple[str, ...] = (
    "#1f77b4",  # blue
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#bcbd22",  # olive
    "#17becf",  # cyan
    "#393b79",  # indigo
    "#637939",  # moss
    "#8c6d31",  # ochre
    "#843c39",  # maroon
    "#7b4173",  # plum
    "#e7ba52",  # mustard
    "#1b9e77",  # teal
    "#e7298a",  # magenta
    "#66a61e",  # grass
    "#a6761d",  # tan
    "#b15928",  # rust
    "#5254a3",  # slate blue
    "#17655d",  # dark teal
    "#54278f",  # violet
    "#00441b",  # forest
    "#c49c94",  # rose brown
    "#cab2d6",  # lilac
    "#fd8d3c",  # light orange
    "#6baed6",  # sky blue
    "#74c476",  # light green
    "#9e9ac8",  # lavender
    "#ff9896",  # salmon
    "#fb9a99",  # blush
    "#a50f15",  # crimson
    "#08519c",  # navy
)

#: Losses that take the first entries of :data:`PALETTE`, in this order: the baseline,
#: the robust losses most papers compare and the LDR losses (tab10's blue, orange,
#: green, red, ...), so that the usual head-to-head has the most distinct colours.
LEAD: tuple[str, ...] = (
    "ce",
    "gce",
    "nce_rce",
    "ldr",
    "aldr",
    "sce",
    "mae",
    "focal",
    "ls",
    "rce",
    "nce_mae",
)

#: Marker shapes for the values of a second key, in the order a figure shows them.
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
#: Line styles for the values of a second key, in the order a figure shows them.
LINESTYLES: tuple[str, ...] = ("-", "--", "-.", ":")

_LOSS_CONF = Path(__file__).resolve().parent.parent / "conf" / "loss"


@functools.lru_cache(maxsize=1)
def _loss_order() -> dict[str, int]:
    """Palette index of every packaged loss token: :data:`LEAD` first, then the rest sorted."""
    rest = [t for t in loss_tokens() if t not in LEAD]
    return {t: i for i, t in enumerate((*LEAD, *rest))}


@functools.lru_cache(maxsize=1)
def loss_tokens() -> tuple[str, ...]:
    """The packaged loss tokens (``loss=<token>``): the stems of ``conf/loss/*.yaml``, sorted."""
    return tuple(sorted(p.stem for p in _LOSS_CONF.glob("*.yaml")))


def _hash_index(name: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % n


@functools.lru_cache(maxsize=4096)
def color(name: str) -> str:
    """The colour of ``name`` as ``#rrggbb``: the same in every figure, whatever else it shows.

    Args:
        name: a loss token (``gce``), else any label (``loss=gce``, ``lr=0.1``).
            ``loss=<token>`` is read as ``<token>``.

    Returns:
        A packaged loss's own entry of :data:`PALETTE` (:data:`LEAD` first, then the
        other tokens in sorted order); for other names an entry chosen by a hash of
        the name.
    """
    name = str(name)
    index = _loss_order().get(name.removeprefix("loss="))
    if index is None:
        index = _hash_index(name, len(PALETTE))
    return PALETTE[index % len(PALETTE)]


def marker(index: int) -> str:
    """The marker of the ``index``-th value of a second key (cycles after :data:`MARKERS`)."""
    return MARKERS[index % len(MARKERS)]


def linestyle(index: int) -> str:
    """The line style of the ``index``-th value of a second key (cycles)."""
    return LINESTYLES[index % len(LINESTYLES)]
