"""What a published comparison relies on: recorded choices, duplicates, blocks, selection
rules, temperature flags, ranks over blocks and published numbers (synthetic records)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from losslab.report.compare import main
from losslab.report.comparison import compare
from tests.report.test_compare import record, write

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def noisy(loss: str, option: str, rate: float, seed: int, acc: float, **extra) -> dict:
    """A record made with ``noise=<option>`` (e.g. ``apl/sym40``) at ``rate``."""
    out = record(loss, rate, seed, acc, 0.05, **extra)
    out["choices"]["noise"] = option
    out["overrides"] = [f"noise={option}", f"seed={seed}"]
    return out


def test_groups_are_labelled_by_the_recorded_nested_choice(tmp_path, capsys):
    for i, (option, rate) in enumerate([("apl/sym20", 0.2), ("apl/sym40", 0.4)]):
        for seed in range(2):
            write(tmp_path / f"{i}{seed}", noisy("ce", option, rate, seed, 0.8 - rate))
    comparison = compare([tmp_path])
    assert comparison.columns == ["noise"]  # noise.rate follows from the option: not shown
    assert sorted(g.labels["noise"] for g in comparison.groups) == ["apl/sym20", "apl/sym40"]
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "apl/sym20" in out and "apl/sym40" in out and "symmetric" not in out


def test_one_option_at_two_rates_shows_the_rate(tmp_path):
    for rate in (0.2, 0.4):
        for seed in range(2):
            write(tmp_path / f"{rate}-{seed}", record("ce", rate, seed, 0.8 - rate, 0.05))
    comparison = compare([tmp_path])
    assert comparison.columns == ["noise.rate"]
    assert {g.labels["noise"] for g in comparison.groups} == {"symmetric"}


def test_the_recorded_choice_wins_over_a_guess_from_values(tmp_path):
    # the values of ldr/letter30 are those of an asymmetric preset: the record says which
    data = record("ce", 0.3, 0, 0.7, 0.05)
    data["choices"]["noise"] = "ldr/letter30"
    write(tmp_path / "a", data)
    (group,) = compare([tmp_path]).groups
    assert group.labels["noise"] == "ldr/letter30"


def test_records_without_choices_still_load_and_say_so_once(tmp_path, capsys):
    for seed in range(2):
        old = record("gce", 0.4, seed, 0.8, 0.05)
        del old["choices"]
        write(tmp_path / f"old{seed}", old)
        write(tmp_path / f"new{seed}", record("ce", 0.4, seed, 0.7, 0.05))
    comparison = compare([tmp_path])
    assert {g.labels["loss"] for g in comparison.groups} == {"ce", "gce"}
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("recorded before results.json held the config choices") == 1
    assert "2 of 4 runs" in out


def test_the_same_sweep_twice_is_one_set_of_seeds(tmp_path, capsys):
    for sweep in ("a", "b"):
        for loss, base in (("ce", 0.7), ("gce", 0.8)):
            for seed in range(3):
                data = record(loss, 0.4, seed, base + 0.01 * seed, 0.05)
                data["timing"]["finished_at"] = f"2026-11-2{1 if sweep == 'a' else 2}T10:00:00Z"
                write(tmp_path / sweep / f"{loss}{seed}", data)
    comparison = compare([tmp_path / "a", tmp_path / "b"], baseline="loss=ce")
    assert [g.n for g in comparison.groups] == [3, 3]
    duplicates = [p for p in comparison.problems if p.status == "duplicate"]
    assert len(duplicates) == 6
    assert all("/a/" in str(p.path) for p in duplicates)  # the newer sweep b is kept
    gce = next(g for g in comparison.groups if g.labels["loss"] == "gce")
    assert gce.stats["final.test.acc"].std == pytest.approx(0.01)
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "6 duplicate runs" in capsys.readouterr().out


def test_ranks_only_across_blocks_are_said_to_be(tmp_path, capsys):
    # two columns that are not the loss: nothing to rank within, the table says so
    for rate in (0.0, 0.4):
        for epochs in (5, 10):
            data = record("ce", rate, 0, 0.9 - rate + epochs / 100, 0.05)
            data["config"]["trainer"]["epochs"] = epochs
            write(tmp_path / f"{rate}-{epochs}", data)
    comparison = compare([tmp_path])
    assert comparison.compared is None
    assert [g.rank for g in comparison.groups] == [1, 2, 3, 4]
    assert main([str(tmp_path)]) == 0
    assert "across ALL groups" in capsys.readouterr().out
    by = compare([tmp_path], by="trainer.epochs")
    assert by.block_columns == ["noise.rate"]
    assert [g.rank for g in by.groups] == [1, 2, 1, 2]


def test_best_is_highlighted_within_each_block(tmp_path):
    from losslab.report.tables import summary_table

    for loss, accs in (("ce", (0.9, 0.5)), ("gce", (0.8, 0.6))):
        for rate, acc in zip((0.0, 0.4), accs, strict=True):
            write(tmp_path / f"{loss}{rate}", record(loss, rate, 0, acc, 0.05))
    table = summary_table(compare([tmp_path], metrics=["acc"]))
    best = [(row[1].text, row[2].text) for row in table.rows if row[4].best]
    assert best == [("ce", "0.0"), ("gce", "0.4")]
    assert table.sections == [2]


# ------------------------------------------------------------- selection rules


def with_rules(loss: str, seed: int, acc: float) -> dict:
    data = record(loss, 0.4, seed, acc, 0.05)
    data["best_clean_val"] = copy.deepcopy(data["best"])
    data["best_clean_val"]["test"]["acc"] = acc + 0.02
    data["oracle"] = copy.deepcopy(data["best"])
    data["oracle"]["test"]["acc"] = acc + 0.05
    return data


@pytest.mark.parametrize(
    ("rule", "offset"), [("final", 0.0), ("best", 0.01), ("best_clean_val", 0.02), ("oracle", 0.05)]
)
def test_select_reads_every_metric_at_the_rule(tmp_path, capsys, rule, offset):
    for seed in range(2):
        write(tmp_path / f"{seed}", with_rules("ce", seed, 0.7))
    comparison = compare([tmp_path], select=rule)
    assert comparison.metrics[0] == f"{rule}.test.acc"
    assert comparison.groups[0].stats[f"{rule}.test.acc"].mean == pytest.approx(0.7 + offset)
    assert main([str(tmp_path), "--select", rule]) == 0
    out = capsys.readouterr().out
    assert f"selection: {rule} = " in out
    assert ("OPTIMISTIC" in out) == (rule == "oracle")


def test_oracle_is_marked_when_named_as_a_path(tmp_path, capsys):
    write(tmp_path / "a", with_rules("ce", 0, 0.7))
    assert main([str(tmp_path), "--metric", "oracle.test.acc"]) == 0
    assert "OPTIMISTIC" in capsys.readouterr().out


def test_a_rule_the_runs_lack_is_named(tmp_path, capsys):
    write(tmp_path / "a", record("ce", 0.4, 0, 0.7, 0.05))
    assert main([str(tmp_path), "--select", "oracle"]) == 2
    err = capsys.readouterr().err
    assert "no run records the 'oracle' rule" in err and err.count("\n") == 1


def test_temperature_at_its_limit_is_flagged(tmp_path, capsys):
    for seed in range(2):
        data = record("ce", 0.4, seed, 0.7, 0.05)
        data["final"]["test"].update(ece_ts=0.5, temperature=1e8, temperature_at_bound=seed == 0)
        write(tmp_path / f"{seed}", data)
    comparison = compare([tmp_path], metrics=["ece_ts"])
    assert comparison.groups[0].stats["final.test.ece_ts"].at_bound == 1
    assert main([str(tmp_path), "--metric", "ece_ts"]) == 0
    out = capsys.readouterr().out
    assert "50.00* ±" in out and "search limit in 1 run-metric(s)" in out


def test_confidence_interval_is_the_t_interval(tmp_path):
    from scipy import stats

    accs = [0.70, 0.74, 0.71]
    for seed, acc in enumerate(accs):
        write(tmp_path / f"{seed}", record("ce", 0.4, seed, acc, 0.05))
    stat = compare([tmp_path], metrics=["acc"]).groups[0].stats["final.test.acc"]
    low, high = stats.t.interval(0.95, 2, loc=stats.tmean(accs), scale=stats.sem(accs))
    assert (stat.low, stat.high) == (pytest.approx(low), pytest.approx(high))


# ---------------------------------------------------------- ranks over blocks

#: final.test.acc of 4 losses over 3 noise rates (one seed each): a complete block design.
SCORES = {
    0.0: {"ce": 0.90, "gce": 0.91, "mae": 0.80, "sce": 0.92},
    0.2: {"ce": 0.80, "gce": 0.86, "mae": 0.78, "sce": 0.87},
    0.4: {"ce": 0.65, "gce": 0.80, "mae": 0.70, "sce": 0.82},
}


def blocks_tree(root: Path, drop: tuple[str, float] | None = None) -> Path:
    for rate, by_loss in SCORES.items():
        for loss, acc in by_loss.items():
            if (loss, rate) != drop:
                data = record("ce", rate, 0, acc, 0.05)
                data["choices"]["loss"] = loss
                data["config"]["loss"] = {"_target_": f"x.{loss}"}
                write(root / f"{loss}-{rate}", data)
    return root


def test_friedman_over_noise_rates_equals_scipy(tmp_path, capsys):
    from scipy import stats

    from losslab.report.ranking import rank_report

    root = blocks_tree(tmp_path / "runs")
    report = rank_report(compare([root], metrics=["acc"]))
    assert report.key == "loss" and len(report.blocks) == 3
    rows = [[-SCORES[r][t] for t in ("ce", "gce", "mae", "sce")] for r in SCORES]
    ranks = stats.rankdata(rows, axis=1).mean(axis=0)
    assert [report.average_ranks[t] for t in ("ce", "gce", "mae", "sce")] == pytest.approx(ranks)
    expected = stats.friedmanchisquare(*zip(*rows, strict=True))
    assert report.friedman.statistic == pytest.approx(expected.statistic)
    assert report.friedman.pvalue == pytest.approx(expected.pvalue)
    plots = tmp_path / "fig"
    assert main([str(root), "--metric", "acc", "--friedman", "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "Friedman chi2" in out and "Nemenyi critical difference" in out
    assert (plots / "critical_difference.png").read_bytes().startswith(PNG_SIGNATURE)


def test_friedman_holm_against_the_baseline(tmp_path, capsys):
    root = blocks_tree(tmp_path / "runs")
    args = [str(root), "--metric", "acc", "--friedman", "--posthoc", "holm", "--baseline"]
    assert main([*args, "loss=ce"]) == 0
    out = capsys.readouterr().out
    assert "p vs ce (Holm)" in out and "control" in out


def test_friedman_over_an_incomplete_block_is_refused(tmp_path, capsys):
    root = blocks_tree(tmp_path / "runs", drop=("mae", 0.2))
    assert main([str(root), "--friedman"]) == 2
    err = capsys.readouterr().err
    assert "complete block design" in err and "loss=mae at noise.rate=0.2" in err
    assert err.count("\n") == 1


# ------------------------------------------------------------ published numbers


def test_published_numbers_beside_the_reproduced(tmp_path, capsys):
    from losslab.report.registry import load, names

    registry = load(names()[0])
    cell = registry.cells[0]
    data = record("ce", cell.noise_rate, 0, 0.5, 0.05)
    data["choices"].update(dataset=cell.dataset, loss=cell.loss)
    data["noise"] = {"type": cell.noise_type, "rate": cell.noise_rate, "params": cell.noise_params}
    rule = (
        cell.selection
        if cell.selection in ("final", "best", "best_clean_val", "oracle")
        else "final"
    )
    data.setdefault(rule, copy.deepcopy(data["final"]))
    split, _, name = cell.metric.partition(".")
    data[rule][split][name] = 0.5
    write(tmp_path / "a", data)
    assert main([str(tmp_path), "--published", registry.name, "--no-percent"]) == 0
    out = capsys.readouterr().out
    assert f"published: {registry.name}" in out
    assert f"{cell.value:.4f}" in out and "0.5000" in out
    assert f"{0.5 - cell.value:+.4f}" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--select", "lastt"], "Valid rules: final, best, best_clean_val, oracle"),
        (["--published", "nope"], "nope"),
        (["--baseline", "loss=nope"], "values of loss: ce, gce"),
        (["--correction", "sidak"], "Valid corrections: holm, bonferroni, bh, none"),
        (["--friedman"], "at least 2 blocks"),
        (["--friedman", "--posthoc", "tukey"], "Valid: nemenyi, holm"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    for loss in ("ce", "gce"):
        write(tmp_path / loss, record(loss, 0.4, 0, 0.7, 0.05))
    assert main([str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_a_bad_registry_file_is_one_line(tmp_path, capsys):
    write(tmp_path / "runs" / "a", record("ce", 0.4, 0, 0.7, 0.05))
    bad = tmp_path / "mine.yaml"
    bad.write_text(json.dumps({"paper": "x", "source": "T1", "cells": [{"dataset": "cifar10"}]}))
    assert main([str(tmp_path / "runs"), "--published", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml" in err and "Traceback" not in err and err.count("\n") == 1
