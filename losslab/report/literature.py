"""Published numbers beside reproduced ones (``losslab compare DIR --published NAME``).

Every group of a comparison is matched with the cells of a registry of published
results (:mod:`losslab.report.registry`) by data set option, loss option, noise
type, nominal rate and parameters, and metric. The reproduced value is read at
the paper's selection rule when the runs record it (so that both numbers mean
the same thing), else at the comparison's rule, which the row then names as a
protocol difference; so are other loss parameters (``loss_params``), a different
model, number of epochs or of seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from losslab.report.comparison import Comparison, Group, Stat, is_percent, summarize
from losslab.report.record import SELECTIONS
from losslab.report.runs import MISSING, CompareError, same_value


@dataclass
class Match:
    """One published cell and the group that reproduces it."""

    cell: Any
    group: Group
    metric: str
    reproduced: Stat
    differences: list[str] = field(default_factory=list)

    @property
    def diff(self) -> float | None:
        """Reproduced minus reported mean."""
        mean = self.reproduced.mean
        return None if mean is None else mean - self.cell.value


@dataclass
class Published:
    """The matches of one registry, and how many of its cells found no group."""

    registry: Any
    matches: list[Match]
    unmatched: int


def load_registry(name: str) -> Any:
    """The registry ``name`` (a shipped name or a YAML path), as a :class:`CompareError` if bad."""
    from losslab.report.registry import RegistryError, load

    try:
        return load(name)
    except RegistryError as exc:
        raise CompareError(str(exc)) from None


def match_published(comparison: Comparison, registry: Any) -> Published:
    """Match every group of ``comparison`` with the cells of ``registry``."""
    from losslab.report.registry import lookup

    metrics = sorted({c.metric for c in registry.cells})
    matches: list[Match] = []
    matched: set[int] = set()
    for g in comparison.groups:
        noise = g.runs[0].record.get("noise") or {}
        for metric in metrics:
            cells = lookup(
                registry,
                dataset=g.labels.get("dataset", MISSING),
                loss=g.labels.get("loss", MISSING),
                noise_type=str(noise.get("type", "none")),
                noise_rate=noise.get("rate") if noise.get("type", "none") != "none" else 0.0,
                noise_params=noise.get("params") or {},
                metric=metric,
            )
            for cell in cells:
                matched.add(id(cell))
                matches.append(_match(comparison, g, cell))
    return Published(registry, matches, len(registry.cells) - len(matched))


def _match(comparison: Comparison, group: Group, cell: Any) -> Match:
    differences = []
    rule = cell.selection if cell.selection in SELECTIONS else comparison.select
    path = f"{rule}.{cell.metric}"
    stat = summarize(group, path, comparison.interval, comparison.level)
    if stat.mean is None and rule != comparison.select:
        differences.append(f"runs do not record the {rule} rule: read at {comparison.select}")
        path = f"{comparison.select}.{cell.metric}"
        stat = summarize(group, path, comparison.interval, comparison.level)
    elif cell.selection not in SELECTIONS:
        differences.append(f"paper's selection rule {cell.selection}: read at {rule}")
    for key, paper in (getattr(cell, "loss_params", None) or {}).items():
        ours = group.values.get(f"loss.{key}", MISSING)
        if not same_value(ours, paper):
            differences.append(f"loss.{key} {ours} (paper: {paper})")
    model = group.labels.get("model", MISSING)
    if cell.model and model != cell.model:
        differences.append(f"model {model} (paper: {cell.model})")
    epochs = group.values.get("trainer.epochs")
    if cell.epochs is not None and epochs != cell.epochs:
        differences.append(f"{epochs} epochs (paper: {cell.epochs})")
    if cell.seeds is not None and stat.n != cell.seeds:
        differences.append(f"{stat.n} seeds (paper: {cell.seeds})")
    return Match(cell, group, path, stat, differences)


def published_table(comparison: Comparison, published: Published, percent: bool = True) -> Any:
    """Reported, reproduced and their difference for every matched cell."""
    from losslab.report.tables import Cell, TableData, _fmt

    reg = published.registry
    columns = comparison.columns or []
    headers = [*(columns or ["group"]), "metric", "reported", "reproduced", "n", "Δ", "protocol"]
    rows = []
    for m in published.matches:
        metric = m.metric
        reported_std = _fmt(m.cell.std, metric, percent) if m.cell.std is not None else None
        stat = m.reproduced
        std = _fmt(stat.std, metric, percent) if stat.std is not None else None
        row = [Cell(m.group.labels[c]) for c in columns] or [Cell("all runs")]
        row += [
            Cell(metric),
            Cell(_fmt(m.cell.value, metric, percent), reported_std),
            Cell(_fmt(stat.mean, metric, percent), std),
            Cell(str(stat.n)),
            Cell(_fmt(m.diff, metric, percent, signed=True)),
            Cell("; ".join(m.differences) or "same"),
        ]
        rows.append(row)
    notes = [
        f"reported: {reg.paper}" + (f" ({reg.url})" if reg.url else ""),
        "sources: " + "; ".join(dict.fromkeys(m.cell.source for m in published.matches))
        if published.matches
        else "",
        "Δ: reproduced minus reported; protocol: where the runs differ from the paper's",
        f"{published.unmatched} of {len(reg.cells)} published cells match no group here",
    ]
    if any(is_percent(m.metric) for m in published.matches) and percent:
        notes.append("fractions in percent")
    if any(m.metric.startswith("oracle.") for m in published.matches):
        notes.append("OPTIMISTIC: oracle values are read at the best test epoch")
    right = [False] * max(1, len(columns)) + [False, True, True, True, True, False]
    return TableData(
        f"published: {reg.name} ({len(published.matches)} matching cells)",
        headers,
        rows,
        right,
        [n for n in notes if n],
    )
