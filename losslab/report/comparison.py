"""Groups over seeds, their statistics, and where ranks are meaningful.

Grouping:
    Runs whose results-relevant configs differ only in ``seed`` form one group
    (:data:`~losslab.report.record.NOT_RESULTS`: device, workers, data root,
    loader, logger, ... never split a group; duplicates were removed on reading).

Identifying columns:
    A config group (``loss``, ``noise``, ...) shows as the option chosen for it
    (:mod:`losslab.report.runs`). The columns of a table are the group choices
    that vary across groups, then the flattened config keys that vary, except keys
    below a varying choice that the choice alone determines (``loss.q`` when every
    ``gce`` group has the same ``q``; ``noise.rate`` under ``noise=apl/sym20,apl/sym40``).
    Hidden keys come back if the shown ones do not tell the groups apart.

Selection rule:
    ``--select final|best|best_clean_val|oracle`` chooses the epoch every metric
    is read at (:data:`~losslab.report.record.SELECTIONS`); a bare metric name
    ``acc`` means ``<rule>.test.acc``, and ``test.ece_ts`` means ``<rule>.test.ece_ts``.

Comparable blocks and ranks:
    The compared key is ``--by KEY``, else the key of ``--baseline``, else
    ``loss`` when it is a column, else the only column. Groups that agree in every
    other column form a block (e.g. one noise rate); rows are listed block by
    block, and ranks (competition ranks 1, 2, 2, 4 of the first metric) and the
    best value of each column are given within a block, never across blocks.
    Without a compared key, the table says that it ranks across all groups.

Statistics (:mod:`losslab.report.stats`):
    Mean, sample standard deviation (``ddof=1``), ``n`` and a confidence interval
    of the mean (t-based, or bootstrap on request) per group. With ``--baseline
    KEY=VALUE`` every group is compared with the group of its block that has
    ``KEY=VALUE``: the difference of means and a p-value (paired t-test over equal
    seeds, Welch's otherwise), adjusted for the number of comparisons of each
    metric (Holm by default).
"""

from __future__ import annotations

import difflib
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losslab.report.record import SELECTIONS, Problem, flatten
from losslab.report.runs import (
    MISSING,
    CompareError,
    Run,
    _Absent,
    choice_names,
    choice_of,
    find_runs,
    same_value,
)

#: Metric names shown when no ``--metric`` is given, read at the selection rule's test split.
DEFAULT_METRIC_NAMES = ("acc", "ece", "nll", "entropy")

#: Metric names (last path component) by prefix: higher is better / lower is better.
HIGHER_IS_BETTER = ("acc", "auroc", "f1")
LOWER_IS_BETTER = ("ece", "mce", "nll", "brier", "aurc", "entropy", "loss", "err")

#: Fractions shown in percent on screen, in Markdown and in LaTeX.
PERCENT_PREFIXES = ("acc", "ece", "mce", "aurc", "realised_rate")

#: Metrics computed with the fitted temperature: flagged when the fit hit its search limit.
TEMPERATURE_METRICS = ("ece_ts", "nll_ts", "temperature")

#: The splits a metric path may start with, below a selection rule.
SPLITS = ("train", "val", "test")


def default_metrics(select: str = "final") -> list[str]:
    """``["final.test.acc", "final.test.ece", ...]`` for a selection rule."""
    return [f"{select}.test.{name}" for name in DEFAULT_METRIC_NAMES]


# -------------------------------------------------------------------- groups


@dataclass
class Stat:
    """Summary of one metric over the runs of a group.

    Attributes:
        mean: mean over the runs that have the metric (None when none has).
        std: sample standard deviation (``ddof=1``); None for fewer than two values.
        n: number of values.
        values: ``(seed, value)`` of every run that has the metric.
        low, high: the confidence interval of the mean (None for fewer than two values).
        at_bound: runs whose temperature fit for this metric ended at its search limit.
    """

    mean: float | None
    std: float | None
    n: int
    values: list[tuple[Any, float]]
    low: float | None = None
    high: float | None = None
    at_bound: int = 0


@dataclass
class Versus:
    """One group against its baseline for one metric.

    Attributes:
        diff: mean of the group minus mean of the baseline.
        p: the p-value adjusted for the comparisons of this metric (None: not computable).
        p_raw: the unadjusted two-sided p-value.
        test: ``"paired t"``, ``"Welch t"`` or None.
    """

    diff: float | None
    p: float | None
    test: str | None
    p_raw: float | None = None


@dataclass(eq=False)
class Group:
    """Runs whose configs differ only in ``seed``.

    Attributes:
        runs: the completed runs.
        values: raw value of every flattened config key and every group choice.
        labels: the same as display strings.
        stats: per metric path.
        rank: by the first metric within its block (None when the group lacks it).
        block: the labels of the columns other than the compared key.
        baseline: the group it is compared with (itself for a baseline group).
        versus: per metric, against ``baseline``.
    """

    runs: list[Run]
    values: dict[str, Any]
    labels: dict[str, str]
    stats: dict[str, Stat] = field(default_factory=dict)
    rank: int | None = None
    block: tuple[str, ...] = ()
    baseline: Group | None = None
    versus: dict[str, Versus] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of runs."""
        return len(self.runs)

    @property
    def seeds(self) -> list[Any]:
        """The runs' seeds, sorted."""
        return sorted((r.seed for r in self.runs), key=sort_key)

    def label(self, columns: Sequence[str]) -> str:
        """``loss=gce noise.rate=0.4`` for the given identifying columns."""
        return " ".join(f"{c}={self.labels[c]}" for c in columns) or "all runs"


def sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers numerically, then strings, then missing values."""
    if value is None or value == MISSING:
        return (2, 0.0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def format_value(value: Any) -> str:
    """A config value as shown in tables: strings as they are, the rest as JSON (Hydra syntax)."""
    if value is _Absent:
        return MISSING
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return json.dumps(value, default=str)


def group_runs(runs: Sequence[Run], choices: Sequence[str]) -> list[Group]:
    """Group ``runs`` by their results-relevant config without seed.

    Args:
        runs: completed runs.
        choices: config group names to label by option (:func:`choice_names`).

    Returns:
        Groups in the order of their first run.
    """
    buckets: dict[tuple[tuple[str, str], ...], list[Run]] = {}
    for run in runs:
        key = tuple(
            sorted((k, json.dumps(v, sort_keys=True, default=str)) for k, v in run.config.items())
        )
        buckets.setdefault(key, []).append(run)
    keys = list(dict.fromkeys(k for run in runs for k in run.config))
    groups = []
    for members in buckets.values():
        values: dict[str, Any] = {k: members[0].config.get(k, _Absent) for k in keys}
        labels = {k: format_value(v) for k, v in values.items()}
        for name in choices:
            option = Counter(choice_of(r, name) for r in members).most_common(1)[0][0]
            values[name] = labels[name] = option
        groups.append(Group(runs=list(members), values=values, labels=labels))
    return groups


def identifying_columns(groups: Sequence[Group], choices: Sequence[str]) -> list[str]:
    """The columns that tell ``groups`` apart (see the module docstring)."""
    if len(groups) < 2:
        return []
    keys = [k for k in groups[0].labels if k not in choices]

    def varies(key: str) -> bool:
        return len({g.labels[key] for g in groups}) > 1

    varying_choices = [c for c in choices if varies(c)]
    varying_keys = [k for k in keys if varies(k)]

    def determined(key: str) -> bool:
        owner = next((c for c in varying_choices if key.startswith(c + ".")), None)
        if owner is None:
            return False
        seen: dict[str, str] = {}
        return all(seen.setdefault(g.labels[owner], g.labels[key]) == g.labels[key] for g in groups)

    columns = varying_choices + [k for k in varying_keys if not determined(k)]

    def distinct(cols: Sequence[str]) -> bool:
        return len({tuple(g.labels[c] for c in cols) for g in groups}) == len(groups)

    for key in varying_keys:
        if distinct(columns):
            break
        if key not in columns:
            columns.append(key)
    order = {k: i for i, k in enumerate([*varying_choices, *varying_keys])}
    return sorted(columns, key=order.__getitem__)


# ------------------------------------------------------------------ metrics


def direction(metric: str) -> int:
    """+1 when higher is better, -1 when lower is better, 0 when neither (by the last name)."""
    name = metric.rsplit(".", 1)[-1].lower()
    if name.startswith(HIGHER_IS_BETTER):
        return 1
    if name.startswith(LOWER_IS_BETTER):
        return -1
    return 0


def is_percent(metric: str) -> bool:
    """Whether the metric is a fraction that tables may show in percent."""
    return metric.rsplit(".", 1)[-1].lower().startswith(PERCENT_PREFIXES)


def metric_value(record: dict[str, Any], path: str) -> float | None:
    """The finite number at dotted ``path`` of a results record, else None."""
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node) if math.isfinite(node) else None


def numeric_paths(records: Iterable[dict[str, Any]]) -> list[str]:
    """Every dotted path to a number in ``records`` (config, timing and versions left out)."""
    found: dict[str, None] = {}
    for record in records:
        for key, value in flatten(record).items():
            if key.split(".", 1)[0] in ("config", "timing", "versions", "reliability"):
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                found.setdefault(key, None)
    return list(found)


def check_select(select: str) -> str:
    """``select`` if it is a selection rule, else a :class:`CompareError` listing them."""
    if select not in SELECTIONS:
        close = difflib.get_close_matches(select, SELECTIONS, n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise CompareError(
            f"unknown selection rule '{select}'.{hint} Valid rules: {', '.join(SELECTIONS)}"
        )
    return select


def resolve_metrics(
    requested: Sequence[str], runs: Sequence[Run], select: str = "final"
) -> list[str]:
    """Check metric paths against the runs.

    A bare name ``ece`` means ``<select>.test.ece``; a path that starts with a
    split (``test.ece_ts``) is read under the selection rule; any other path is
    taken as it is (``best.val.acc``, ``noise.realised_rate``).

    Raises:
        CompareError: for a path no completed run has a number at, listing available ones.
    """
    out: list[str] = []
    for raw in requested:
        path = raw.strip()
        if not path:
            continue
        if "." not in path:
            candidates = [f"{select}.test.{path}", path]
        elif path.split(".", 1)[0] in SPLITS:
            candidates = [f"{select}.{path}"]
        else:
            candidates = [path]
        hit = next(
            (c for c in candidates if any(metric_value(r.record, c) is not None for r in runs)),
            None,
        )
        if hit is None:
            available = numeric_paths(r.record for r in runs)
            close = difflib.get_close_matches(candidates[0], available, n=5, cutoff=0.5)
            shown = list(
                dict.fromkeys([*close, *[a for a in available if a.startswith(f"{select}.test.")]])
            )
            extra = ""
            if candidates[0].split(".", 1)[0] in SELECTIONS[2:] and not any(
                candidates[0].split(".", 1)[0] in r.record for r in runs
            ):
                extra = f" (no run records the '{candidates[0].split('.', 1)[0]}' rule)"
            raise CompareError(
                f"unknown metric '{path}': no completed run has a number at "
                f"{candidates[0]}{extra}. Available, e.g.: {', '.join(shown[:10]) or 'none'}"
            )
        if hit not in out:
            out.append(hit)
    if not out:
        raise CompareError("no metric given")
    return out


def _at_bound_path(metric: str) -> str | None:
    """``final.test.temperature_at_bound`` for ``final.test.ece_ts`` (``_clean`` fits alike)."""
    head, _, name = metric.rpartition(".")
    clean = name.endswith("_clean")
    base = name.removesuffix("_clean")
    if base not in TEMPERATURE_METRICS or not head:
        return None
    return f"{head}.temperature{'_clean' if clean else ''}_at_bound"


def summarize(group: Group, metric: str, interval: str = "t", level: float = 0.95) -> Stat:
    """Mean, sample std, n and the confidence interval of ``metric`` over the group's runs."""
    values = [(r.seed, v) for r in group.runs if (v := metric_value(r.record, metric)) is not None]
    numbers = [v for _, v in values]
    mean = statistics.fmean(numbers) if numbers else None
    std = statistics.stdev(numbers) if len(numbers) >= 2 else None
    stat = Stat(mean=mean, std=std, n=len(numbers), values=values)
    if len(numbers) >= 2 and interval != "none":
        from losslab.report import stats

        ci = stats.mean_interval(numbers, level, method=interval)
        stat.low, stat.high = ci.low, ci.high
    flag = _at_bound_path(metric)
    if flag is not None:
        stat.at_bound = sum(_flag(r.record, flag) for r in group.runs)
    return stat


def _flag(record: dict[str, Any], path: str) -> bool:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return False
        node = node.get(part)
    return node is True


def t_test(group: Stat, baseline: Stat) -> Versus:
    """Difference of means and its p-value: paired over equal seeds, Welch otherwise.

    Paired (``scipy.stats.ttest_rel``) when both sides hold the same seeds, each
    once; otherwise Welch's unequal-variance test (``scipy.stats.ttest_ind`` with
    ``equal_var=False``). The p-value is None with fewer than two values on a
    side or when the test is undefined (e.g. zero variance).
    """
    if group.mean is None or baseline.mean is None:
        return Versus(None, None, None)
    from losslab.report import stats

    p, test = stats.paired_or_welch(group.values, baseline.values)
    return Versus(group.mean - baseline.mean, p, test, p_raw=p)


# ---------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """Everything ``losslab compare`` shows.

    Attributes:
        groups: block by block, sorted by the first metric within each block.
        columns: the identifying columns.
        metrics: metric paths, the first one sorts.
        problems: runs left out.
        choices: config group names shown by option.
        keys: every key a group can be selected by (choices, then config keys).
        select: the selection rule of the default metrics.
        compared: the key whose values are ranked against each other (None: all groups).
        baseline: the ``(KEY, VALUE)`` of ``--baseline``, if any.
        correction: how p-values are adjusted (:data:`losslab.report.stats.CORRECTIONS`).
        interval: ``"t"``, ``"bootstrap"`` or ``"none"``; ``level`` its coverage.
        notes: remarks for the reader (ambiguous baselines, legacy records, ...).
    """

    groups: list[Group]
    columns: list[str]
    metrics: list[str]
    problems: list[Problem]
    choices: list[str]
    keys: list[str]
    select: str = "final"
    compared: str | None = None
    baseline: tuple[str, str] | None = None
    correction: str = "holm"
    interval: str = "t"
    level: float = 0.95
    notes: list[str] = field(default_factory=list)
    #: keys that belong to the compared key (each loss's own tuned values): no blocks
    tuned: tuple[str, ...] = ()

    @property
    def n_runs(self) -> int:
        """Number of completed runs in the comparison."""
        return sum(g.n for g in self.groups)

    @property
    def block_columns(self) -> list[str]:
        """The columns that define a block: all but the compared key, what it determines and
        the keys tuned for each of its values (:attr:`tuned`)."""
        if self.compared is None:
            return []
        own = (self.compared, *self.tuned)
        return [c for c in self.columns if not any(c == k or c.startswith(k + ".") for k in own)]

    def blocks(self) -> dict[tuple[str, ...], list[Group]]:
        """The groups of every block, in table order."""
        out: dict[tuple[str, ...], list[Group]] = {}
        for g in self.groups:
            out.setdefault(g.block, []).append(g)
        return out

    def shared(self) -> dict[str, str]:
        """Group choices that all groups share, e.g. ``{"dataset": "digits"}``."""
        if not self.groups:
            return {}
        first = self.groups[0].labels
        return {
            c: first[c]
            for c in self.choices
            if c not in self.columns
            and first[c] != MISSING
            and all(g.labels[c] == first[c] for g in self.groups)
        }


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """``"loss=ce"`` -> ``("loss", "ce")``.

    Raises:
        CompareError: without ``=`` or with an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CompareError(f"{option} expects KEY=VALUE (e.g. loss=ce), got '{text}'")
    return key.strip(), value.strip()


def check_key(key: str, keys: Sequence[str], option: str, columns: Sequence[str]) -> None:
    """A :class:`CompareError` naming the valid keys unless ``key`` is one of ``keys``."""
    if key in keys:
        return
    close = difflib.get_close_matches(key, keys, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    shown = list(dict.fromkeys([*columns, *keys]))
    raise CompareError(
        f"unknown key '{key}' for {option}.{hint} Valid keys: {', '.join(shown[:25])}"
        + (f" (and {len(shown) - 25} more)" if len(shown) > 25 else "")
    )


def matches(group: Group, key: str, text: str) -> bool:
    """Whether the group's value of ``key`` is ``text`` (as shown, or as the same JSON value)."""
    if group.labels.get(key) == text:
        return True
    raw = group.values.get(key, _Absent)
    if raw is _Absent or isinstance(raw, str):
        return False
    try:
        parsed = json.loads(text)
    except ValueError:
        return False
    return same_value(raw, parsed)


def _values_of(groups: Sequence[Group], key: str) -> str:
    return ", ".join(sorted({g.labels.get(key, MISSING) for g in groups}, key=sort_key))


def compare(
    paths: Sequence[str | Path],
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    where: Sequence[str] = (),
    *,
    select: str = "final",
    by: str | None = None,
    correction: str = "holm",
    interval: str = "t",
    level: float = 0.95,
    tuned: Sequence[str] = (),
) -> Comparison:
    """Read, group, summarise and rank the runs below ``paths``.

    Args:
        paths: directories or ``results.json`` files.
        metrics: metric paths into ``results.json`` (default: acc, ece, nll, entropy
            under ``select``); the first one sorts.
        baseline: ``KEY=VALUE`` selecting the baseline groups.
        where: ``KEY=VALUE`` filters; only groups matching all of them are kept.
        select: the selection rule bare metric names are read at.
        by: the compared key (see the module docstring).
        correction: p-value adjustment, one of :data:`losslab.report.stats.CORRECTIONS`.
        interval: ``"t"``, ``"bootstrap"`` or ``"none"``: the confidence interval of each mean.
        level: its coverage.
        tuned: keys chosen for each value of the compared key (``losslab study`` tunes
            ``optimizer.lr`` per loss): they label the rows but form no blocks.

    Returns:
        The comparison (no completed run: no groups, problems only).

    Raises:
        CompareError: for missing paths, no results, unknown rules, metrics or keys.
    """
    _check_settings(select, correction, interval, level)
    found = find_runs(paths)
    runs = found.runs
    choices = choice_names(runs)
    groups = group_runs(runs, choices)
    keys = list(dict.fromkeys([*choices, *(k for g in groups for k in g.labels)]))
    settings = dict(select=select, correction=correction, interval=interval, level=level)
    if not runs:
        return Comparison([], [], list(metrics or []), found.problems, choices, keys, **settings)
    metric_paths = resolve_metrics(metrics or default_metrics(select), runs, select)
    groups = _filtered(groups, where, keys, choices)
    columns = identifying_columns(groups, choices)
    for group in groups:
        group.stats = {m: summarize(group, m, interval, level) for m in metric_paths}
    comparison = Comparison(
        groups, columns, metric_paths, found.problems, choices, keys, **settings
    )
    comparison.notes += found.notes
    if where:
        comparison.notes.append("only groups with " + ", ".join(where))
    base = _baseline_and_by(baseline, by, keys, columns)
    comparison.compared = by or (base[0] if base else None) or _default_compared(columns)
    comparison.tuned = tuple(tuned)
    if tuned and comparison.compared is not None:
        comparison.notes.append(
            f"{', '.join(tuned)}: tuned for each {comparison.compared}, compared across"
        )
    for group in groups:
        group.block = tuple(group.labels.get(c, MISSING) for c in comparison.block_columns)
    if base:
        _apply_baseline(comparison, *base)
    _rank(comparison)
    return comparison


def _check_settings(select: str, correction: str, interval: str, level: float) -> None:
    """A :class:`CompareError` for an unknown rule, correction or interval, or a bad level."""
    from losslab.report.stats import CORRECTIONS

    check_select(select)
    if correction not in CORRECTIONS:
        raise CompareError(
            f"unknown correction '{correction}'. Valid corrections: {', '.join(CORRECTIONS)}"
        )
    if interval not in ("t", "bootstrap", "none"):
        raise CompareError(f"unknown interval '{interval}'. Valid intervals: t, bootstrap, none")
    if not 0.0 < level < 1.0:
        raise CompareError(f"--level {level} is invalid: must lie strictly between 0 and 1")


def _filtered(
    groups: list[Group], where: Sequence[str], keys: Sequence[str], choices: Sequence[str]
) -> list[Group]:
    """The groups that match every ``KEY=VALUE`` of ``where``; one that matches none fails."""
    for condition in where:
        key, value = parse_assignment(condition, "--where")
        check_key(key, keys, "--where", identifying_columns(groups, choices))
        kept = [g for g in groups if matches(g, key, value)]
        if not kept:
            raise CompareError(
                f"--where {key}={value} matches no group; values: {_values_of(groups, key)}"
            )
        groups = kept
    return groups


def _baseline_and_by(
    baseline: str | None, by: str | None, keys: Sequence[str], columns: Sequence[str]
) -> tuple[str, str] | None:
    """The parsed ``--baseline KEY=VALUE`` (None without one), checked with ``--by``."""
    base = parse_assignment(baseline, "--baseline") if baseline else None
    if base:
        check_key(base[0], keys, "--baseline", columns)
    if by is not None:
        check_key(by, keys, "--by", columns)
        if base and by != base[0]:
            raise CompareError(
                f"--by {by} and --baseline {base[0]}=... name different keys: the baseline "
                "is a value of the compared key (e.g. --by loss --baseline loss=ce)"
            )
    return base


def _default_compared(columns: Sequence[str]) -> str | None:
    if "loss" in columns:
        return "loss"
    return columns[0] if len(columns) == 1 else None


def _apply_baseline(comparison: Comparison, key: str, value: str) -> None:
    from losslab.report.stats import adjust_pvalues

    groups = comparison.groups
    bases = [g for g in groups if matches(g, key, value)]
    if not bases:
        raise CompareError(
            f"--baseline {key}={value} matches no group; values of {key}: {_values_of(groups, key)}"
        )
    comparison.baseline = (key, value)
    unmatched = 0
    for group in groups:
        same = [b for b in bases if b.block == group.block]
        if len(same) != 1:
            unmatched += 1
            if len(same) > 1:
                comparison.notes.append(
                    f"{group.label(comparison.columns)}: {len(same)} groups fit {key}={value}; "
                    "not compared"
                )
            continue
        group.baseline = same[0]
        group.versus = {m: t_test(group.stats[m], same[0].stats[m]) for m in comparison.metrics}
    if unmatched:
        comparison.notes.append(f"{unmatched} group(s) have no {key}={value} counterpart")
    for m in comparison.metrics:
        compared = [g for g in groups if g.baseline is not None and g.baseline is not g]
        adjusted = adjust_pvalues([g.versus[m].p_raw for g in compared], comparison.correction)
        for g, p in zip(compared, adjusted, strict=True):
            g.versus[m].p = p


def _rank(comparison: Comparison) -> None:
    """Sort block by block, then by the first metric; competition ranks within each block."""
    metric = comparison.metrics[0]
    sign = direction(metric) or 1

    def order(group: Group) -> tuple[Any, ...]:
        mean = group.stats[metric].mean
        return (
            [sort_key(x) for x in group.block],
            mean is None,
            -sign * mean if mean is not None else 0.0,
        )

    comparison.groups.sort(key=order)
    for members in comparison.blocks().values():
        previous: float | None = None
        rank = 0
        for i, group in enumerate(members, start=1):
            mean = group.stats[metric].mean
            if mean is None:
                group.rank = None
                continue
            if mean != previous:
                rank, previous = i, mean
            group.rank = rank


def best_groups(groups: Sequence[Group], metric: str) -> set[int]:
    """``id`` of the groups with the best mean of ``metric`` (none for metrics without direction)."""
    sign = direction(metric)
    means = [(id(g), g.stats[metric].mean) for g in groups if g.stats[metric].mean is not None]
    if not sign or not means:
        return set()
    best = max(sign * m for _, m in means)
    return {i for i, m in means if sign * m == best}


def best_in_blocks(comparison: Comparison, metric: str) -> set[int]:
    """``id`` of the best group of every block for ``metric``."""
    out: set[int] = set()
    for members in comparison.blocks().values():
        out |= best_groups(members, metric)
    return out
