"""``losslab compare`` on a synthetic tree of results.json files with known metric values."""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
import warnings
from pathlib import Path

import pytest

from losslab.report.compare import main
from losslab.report.comparison import compare, direction
from losslab.report.figures import pool_reliability
from losslab.report.record import flatten
from losslab.report.runs import CompareError, choice_names, choice_of
from losslab.report.runs import run_of as _run_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

LOSS_CONFIGS = {
    "ce": {"_target_": "losslab.losses.ce.CrossEntropyLoss"},
    "gce": {"_target_": "losslab.losses.gce.GCELoss", "q": 0.7},
    "mae": {"_target_": "losslab.losses.symmetric.MAELoss"},
}

#: Test accuracy per (loss, noise rate), one value per seed 0, 1, 2, (3).
ACC = {
    ("ce", 0.0): [0.90, 0.92, 0.94],
    ("ce", 0.4): [0.70, 0.74, 0.72],
    ("gce", 0.0): [0.91, 0.93, 0.89],
    ("gce", 0.4): [0.80, 0.83, 0.83],
    ("mae", 0.0): [0.60, 0.70, 0.65],
    ("mae", 0.4): [0.60, 0.64, 0.62, 0.66],  # four seeds: Welch against ce
}
#: Test ECE per group before the per-seed offset of 0.001 * seed.
ECE = {
    ("ce", 0.0): 0.05,
    ("ce", 0.4): 0.15,
    ("gce", 0.0): 0.03,
    ("gce", 0.4): 0.04,
    ("mae", 0.0): 0.10,
    ("mae", 0.4): 0.02,
}
#: Rows in table order: block by block (noise rate), by the metric within a block.
BY_ACC = [("ce", 0.0), ("gce", 0.0), ("mae", 0.0), ("gce", 0.4), ("ce", 0.4), ("mae", 0.4)]
BY_ECE = [("gce", 0.0), ("ce", 0.0), ("mae", 0.0), ("mae", 0.4), ("gce", 0.4), ("ce", 0.4)]


def config(loss: str, rate: float, seed: int, **trainer) -> dict:
    return {
        "seed": seed,
        # device, workers, data root and logger differ per seed: they must not split groups
        "trainer": {
            "epochs": 5,
            "device": ["cpu", "cuda"][seed % 2],
            "num_workers": seed,
            **trainer,
        },
        "eval": {"n_bins": 15},
        "regularizer": {},
        "dataset": {
            "_target_": "losslab.datasets.digits.load_digits",
            "num_classes": 10,
            "root": f"/data/{seed}",
            "loader": ["memory", "dataloader"][seed % 2],
        },
        "model": {"_target_": "losslab.models.mlp.MLP", "num_classes": 10, "width": 64},
        "loss": dict(LOSS_CONFIGS[loss]),
        "noise": {"_target_": "losslab.datasets.noise.SymmetricNoise", "rate": rate, "seed": 0},
        "logger": {"_target_": "losslab.loggers.NullLogger", "run": f"r{seed}"},
    }


def metrics(acc: float, ece: float) -> dict:
    return {"acc": acc, "ece": ece, "nll": 2 * ece + 0.1, "entropy": 0.5 - ece}


def record(loss: str, rate: float, seed: int, acc: float, ece: float, **extra) -> dict:
    # ce runs use the default loss (no override): its name comes from the config tree
    overrides = ([] if loss == "ce" else [f"loss={loss}"]) + [f"noise.rate={rate}", f"seed={seed}"]
    out = {
        "status": "completed",
        "overrides": overrides,
        "config": config(loss, rate, seed),
        "final": {"epoch": 5, "val": metrics(acc, ece), "test": metrics(acc, ece)},
        "best": {"epoch": 4, "val": metrics(acc, ece), "test": metrics(acc + 0.01, ece / 2)},
        "choices": {
            "dataset": "digits",
            "model": "mlp",
            "loss": loss,
            "noise": "symmetric",
            "logger": "none",
            "regularizer": None,
        },
        "noise": {"type": "symmetric", "rate": rate, "realised_rate": rate * 0.98},
        "timing": {"total_s": 1.0},
        "versions": {"losslab": "0.1.0"},
    }
    if loss != "mae":
        out["reliability"] = {
            "n_bins": 4,
            "count": [0, 10, 20, 70],
            "acc": [0.0, 0.3, 0.55, acc],
            "conf": [0.0, 0.35, 0.6, 0.9],
        }
    out.update(extra)
    return out


def write(path: Path, data: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """multirun/<n>/results.json for 3 losses x 2 rates x 3-4 seeds, one failed, two unfinished."""
    root = tmp_path_factory.mktemp("runs") / "multirun"
    n = 0
    for (loss, rate), accs in ACC.items():
        for seed, acc in enumerate(accs):
            write(root / str(n), record(loss, rate, seed, acc, ECE[(loss, rate)] + 0.001 * seed))
            n += 1
    failed = record("mae", 0.0, 3, 0.1, 0.9)
    failed.update(status="failed", error="RuntimeError: CUDA out of memory")
    del failed["final"], failed["best"]
    write(root / "failed", failed)
    running = record("gce", 0.4, 3, 0.99, 0.001)  # values that would change the means
    running["status"] = "running"
    write(root / "running", running)
    (root / "killed" / ".hydra").mkdir(parents=True)
    (root / "killed" / "metrics.jsonl").write_text("{}\n")
    return root


def groups_by_key(comparison) -> dict[tuple[str, float], object]:
    return {(g.labels["loss"], g.values["noise.rate"]): g for g in comparison.groups}


# ------------------------------------------------------------------ grouping


def test_groups_means_stds_and_n(tree):
    comparison = compare([tree])
    assert comparison.columns == ["loss", "noise.rate"]
    assert comparison.n_runs == 19
    groups = groups_by_key(comparison)
    assert set(groups) == set(ACC)
    for key, accs in ACC.items():
        g = groups[key]
        assert g.n == len(accs)
        assert g.seeds == list(range(len(accs)))
        acc = g.stats["final.test.acc"]
        assert acc.n == len(accs)
        assert acc.mean == pytest.approx(sum(accs) / len(accs), abs=1e-12)
        mean = sum(accs) / len(accs)
        by_hand = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
        assert acc.std == pytest.approx(by_hand, abs=1e-12)
        ece = g.stats["final.test.ece"]
        assert ece.mean == pytest.approx(ECE[key] + 0.001 * (len(accs) - 1) / 2, abs=1e-12)
        assert g.stats["final.test.nll"].mean == pytest.approx(2 * ece.mean + 0.1, abs=1e-12)
        assert g.stats["final.test.entropy"].mean == pytest.approx(0.5 - ece.mean, abs=1e-12)
    # hand-computed for two groups
    assert groups[("ce", 0.0)].stats["final.test.acc"].std == pytest.approx(0.02)
    assert groups[("gce", 0.4)].stats["final.test.acc"].std == pytest.approx(math.sqrt(0.0003))
    assert groups[("mae", 0.4)].stats["final.test.acc"].mean == pytest.approx(0.63)


def test_failed_and_unfinished_are_listed_apart(tree, capsys):
    comparison = compare([tree])
    listed = {
        (p.path.parent.name if p.path.name == "results.json" else p.path.name, p.status)
        for p in comparison.problems
    }
    assert listed == {("failed", "failed"), ("running", "running"), ("killed", "unfinished")}
    # the failed mae seed 3 and the running gce seed 3 are not in any mean
    groups = groups_by_key(comparison)
    assert groups[("mae", 0.0)].n == 3
    assert groups[("gce", 0.4)].n == 3
    assert groups[("gce", 0.4)].stats["final.test.acc"].mean == pytest.approx(0.82)

    assert main([str(tree)]) == 0
    out = capsys.readouterr().out
    assert "3 runs not included" in out
    assert "CUDA out of memory" in out
    assert "still running" in out


def test_choice_names_come_from_overrides_or_the_config_tree(tree):
    comparison = compare([tree])
    # ce has no override: its option is found in losslab/conf/loss by _target_
    assert {g.labels["loss"] for g in comparison.groups} == {"ce", "gce", "mae"}
    # loss.q and loss._target_ follow from the loss option: not separate columns
    assert "loss.q" not in comparison.columns
    # settings shared by all groups are summarised by option, not shown as columns
    assert comparison.shared() == {"dataset": "digits", "model": "mlp", "noise": "symmetric"}


def test_option_names_without_overrides():
    import yaml

    conf = Path(__file__).resolve().parents[2] / "losslab" / "conf" / "noise"
    letter = yaml.safe_load((conf / "ldr_letter.yaml").read_text())
    asym = {
        "_target_": "losslab.datasets.noise.AsymmetricNoise",
        "rate": 0.3,
        "mapping": "cyclic",
        "pairs": None,
        "seed": 0,
    }
    config = {
        "noise": {**asym, "mapping": "pairs", "pairs": letter["pairs"]},
        "loss": {"_target_": "my.own.FancyLoss"},  # not in the config tree: the class name
        "regularizer": {
            "entropy": {"_target_": "losslab.regularizers.entropy.EntropyRegularizer"},
            "logit_l2": {"_target_": "losslab.regularizers.logit_l2.LogitL2"},
        },
    }
    run = _run_of(Path("x/results.json"), {"config": config, "overrides": ["experiment=smoke"]})
    assert choice_names([run]) == ["noise", "loss", "regularizer", "experiment"]
    assert choice_of(run, "noise") == "ldr_letter"  # a preset of asymmetric, told by its pairs
    assert choice_of(run, "loss") == "FancyLoss"
    assert choice_of(run, "regularizer") == "entropy,logit_l2"
    assert choice_of(run, "experiment") == "smoke"
    cyclic = _run_of(Path("y/results.json"), {"config": {"noise": asym}, "overrides": []})
    assert choice_of(cyclic, "noise") == "asymmetric"
    stacked = _run_of(
        Path("z/results.json"), {"config": {}, "overrides": ["regularizer=[entropy, logit_l2]"]}
    )
    assert choice_of(stacked, "regularizer") == "entropy,logit_l2"


def test_results_relevant_keys_split_groups(tmp_path):
    for seed in range(2):
        write(tmp_path / f"a{seed}", record("ce", 0.0, seed, 0.9, 0.05))
        longer = record("ce", 0.0, seed, 0.8, 0.05)
        longer["config"]["trainer"]["epochs"] = 10
        write(tmp_path / f"b{seed}", longer)
    comparison = compare([tmp_path])
    assert comparison.columns == ["trainer.epochs"]
    assert sorted(g.labels["trainer.epochs"] for g in comparison.groups) == ["10", "5"]
    assert all(g.n == 2 for g in comparison.groups)


def test_gce_q_shown_when_it_varies_within_the_option(tmp_path):
    for q in (0.5, 0.7):
        for seed in range(2):
            data = record("gce", 0.4, seed, 0.8 + q / 10, 0.05)
            data["config"]["loss"]["q"] = q
            write(tmp_path / f"q{q}-{seed}", data)
        write(tmp_path / f"ce-{q}", record("ce", 0.4, 0, 0.7, 0.05))
    comparison = compare([tmp_path])
    assert comparison.columns == ["loss", "loss.q"]
    single = next(g for g in comparison.groups if g.labels["loss"] == "ce")
    # the two ce runs have the same config and seed: one run, the other a duplicate
    assert single.n == 1
    assert [p.status for p in comparison.problems] == ["duplicate"]


# ------------------------------------------------------------- sort and rank


def test_sorted_by_accuracy_descending_with_ranks(tree, capsys):
    comparison = compare([tree])
    order = [(g.labels["loss"], g.values["noise.rate"]) for g in comparison.groups]
    assert order == BY_ACC
    # ranked within each noise rate (a block), never across
    assert comparison.compared == "loss" and comparison.block_columns == ["noise.rate"]
    assert [g.rank for g in comparison.groups] == [1, 2, 3, 1, 2, 3]
    assert main([str(tree)]) == 0
    out = capsys.readouterr().out
    assert out.index("92.00 ± 2.00") < out.index("91.00 ± 2.00") < out.index("63.00 ± 2.58")
    assert "acc, ece in percent" in out
    assert "within blocks of equal noise.rate" in out


def test_fractions_without_percent(tree, capsys):
    assert main([str(tree), "--no-percent", "--metric", "acc"]) == 0
    out = capsys.readouterr().out
    assert "0.9200 ± 0.0200" in out
    assert "in percent" not in out


def test_sorted_by_ece_ascending(tree):
    comparison = compare([tree], metrics=["final.test.ece", "final.test.acc"])
    order = [(g.labels["loss"], g.values["noise.rate"]) for g in comparison.groups]
    assert order == BY_ECE
    assert direction("final.test.ece") == -1
    assert direction("best.test.nll_ts") == -1
    assert direction("final.test.entropy_correct") == -1
    assert direction("final.test.acc_top5") == 1
    assert direction("noise.realised_rate") == 0


def test_equal_means_share_a_rank(tmp_path):
    for name, accs in {"ce": [0.5, 0.75], "gce": [0.75, 0.5], "mae": [0.25, 0.25]}.items():
        for seed, acc in enumerate(accs):
            write(tmp_path / f"{name}{seed}", record(name, 0.0, seed, acc, 0.05))
    comparison = compare([tmp_path])
    assert [g.rank for g in comparison.groups] == [1, 1, 3]
    assert comparison.groups[-1].labels["loss"] == "mae"


def test_any_metric_path(tree):
    comparison = compare([tree], metrics=["best.test.ece", "noise.realised_rate"])
    g = groups_by_key(comparison)[("gce", 0.4)]
    assert g.stats["best.test.ece"].mean == pytest.approx((0.04 + 0.041 + 0.042) / 6)
    assert g.stats["noise.realised_rate"].mean == pytest.approx(0.4 * 0.98)
    assert g.stats["noise.realised_rate"].std == pytest.approx(0.0, abs=1e-15)


def test_bare_metric_name_means_final_test(tree):
    assert compare([tree], metrics=["nll"]).metrics == ["final.test.nll"]


# ---------------------------------------------------------------- baseline


def test_baseline_paired_and_welch_p_values_equal_scipy(tree):
    from scipy import stats

    comparison = compare([tree], baseline="loss=ce")
    groups = groups_by_key(comparison)
    for rate in (0.0, 0.4):
        base = groups[("ce", rate)]
        assert base.baseline is base
        assert groups[("gce", rate)].baseline is base
        assert groups[("mae", rate)].baseline is base

    gce = groups[("gce", 0.4)].versus["final.test.acc"]
    assert gce.test == "paired t"
    assert gce.diff == pytest.approx(0.82 - 0.72)
    expected = stats.ttest_rel(ACC[("gce", 0.4)], ACC[("ce", 0.4)]).pvalue
    assert gce.p_raw == pytest.approx(float(expected), rel=1e-12)

    mae = groups[("mae", 0.4)].versus["final.test.acc"]
    assert mae.test == "Welch t"
    assert mae.diff == pytest.approx(0.63 - 0.72)
    expected = stats.ttest_ind(ACC[("mae", 0.4)], ACC[("ce", 0.4)], equal_var=False).pvalue
    assert mae.p_raw == pytest.approx(float(expected), rel=1e-12)

    # the same for every metric: ece of the paired gce/ce runs at rate 0
    ece = groups[("gce", 0.0)].versus["final.test.ece"]
    assert ece.diff == pytest.approx(0.03 - 0.05)
    gce_ece = [0.03 + 0.001 * s for s in range(3)]
    ce_ece = [0.05 + 0.001 * s for s in range(3)]
    with warnings.catch_warnings():  # nearly constant differences: scipy warns, we do not
        warnings.simplefilter("ignore")
        expected = stats.ttest_rel(gce_ece, ce_ece).pvalue
    assert ece.p_raw == pytest.approx(float(expected), rel=1e-9, abs=1e-300)

    # the shown p-values are Holm-adjusted over the 4 comparisons of each metric
    for metric in comparison.metrics:
        compared = [g for g in comparison.groups if g.baseline not in (None, g)]
        raw = [g.versus[metric].p_raw for g in compared]
        m = sum(p is not None for p in raw)
        order = sorted((p, i) for i, p in enumerate(raw) if p is not None)
        running = 0.0
        for j, (p, i) in enumerate(order):
            running = max(running, min(1.0, (m - j) * p))
            assert compared[i].versus[metric].p == pytest.approx(running, rel=1e-12)


def test_holm_named_and_none_on_request(tree, capsys):
    assert main([str(tree), "--baseline", "loss=ce"]) == 0
    out = capsys.readouterr().out
    assert "Holm-adjusted over the 4 comparisons of each metric" in out
    plain = compare([tree], baseline="loss=ce", correction="none")
    gce = next(g for g in plain.groups if g.labels["loss"] == "gce")
    assert gce.versus["final.test.acc"].p == gce.versus["final.test.acc"].p_raw


def test_p_value_none_when_the_test_is_undefined(tmp_path):
    for name, acc in (("ce", 0.5), ("gce", 0.5), ("mae", 0.75)):
        for seed in range(3):
            write(tmp_path / f"{name}{seed}", record(name, 0.0, seed, acc, 0.25))
    comparison = compare([tmp_path], baseline="loss=ce")
    gce, mae = (next(g for g in comparison.groups if g.labels["loss"] == n) for n in ("gce", "mae"))
    assert gce.versus["final.test.acc"].diff == 0.0
    assert gce.versus["final.test.acc"].p is None  # 0/0: scipy gives NaN
    assert mae.versus["final.test.acc"].diff == 0.25
    assert mae.versus["final.test.acc"].p == 0.0  # a constant non-zero difference, as scipy


def test_p_value_none_for_a_single_run(tmp_path):
    write(tmp_path / "ce0", record("ce", 0.0, 0, 0.9, 0.05))
    write(tmp_path / "gce0", record("gce", 0.0, 0, 0.8, 0.05))
    comparison = compare([tmp_path], baseline="loss=ce")
    gce = next(g for g in comparison.groups if g.labels["loss"] == "gce")
    assert gce.stats["final.test.acc"].std is None
    assert gce.versus["final.test.acc"].diff == pytest.approx(-0.1)
    assert gce.versus["final.test.acc"].p is None


def test_baseline_column_in_the_table(tree, capsys):
    assert main([str(tree), "--baseline", "loss=ce", "--metric", "final.test.acc"]) == 0
    out = capsys.readouterr().out
    assert "Δacc" in out
    assert "baseline" in out
    assert "+10.00 (p=" in out  # gce at 0.4 against ce at 0.4, in percent points


# ------------------------------------------------------------------- pivot


def test_pivot_grid(tree, capsys, tmp_path):
    md = tmp_path / "pivot.md"
    code = main(
        [
            str(tree),
            "--rows",
            "loss",
            "--cols",
            "noise.rate",
            "--metric",
            "final.test.acc",
            "--markdown",
            str(md),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "loss \\ noise.rate" in out
    lines = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["loss \\ noise.rate", "0.0", "0.4"]
    grid = {row[0]: row[1:] for row in cells[1:]}
    assert grid == {
        "ce": ["**92.00 ± 2.00**", "72.00 ± 2.00"],
        "gce": ["91.00 ± 2.00", "**82.00 ± 1.73**"],
        "mae": ["65.00 ± 5.00", "63.00 ± 2.58"],
    }


def test_pivot_conflict_is_an_error(tree, capsys):
    assert main([str(tree), "--rows", "loss"]) == 2
    err = capsys.readouterr().err
    assert "more than one group" in err and "noise.rate" in err
    assert main([str(tree), "--rows", "loss", "--where", "noise.rate=0.4", "--metric", "acc"]) == 0
    out = capsys.readouterr().out
    assert "82.00 ± 1.73" in out and "92.00" not in out


# ------------------------------------------------------------------ outputs


def test_csv_markdown_latex(tree, tmp_path, capsys):
    out_csv, out_md, out_tex = tmp_path / "t.csv", tmp_path / "t.md", tmp_path / "sub" / "t.tex"
    code = main(
        [
            str(tree),
            "--baseline",
            "loss=ce",
            "--csv",
            str(out_csv),
            "--markdown",
            str(out_md),
            "--latex",
            str(out_tex),
        ]
    )
    assert code == 0
    capsys.readouterr()

    with out_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["loss"], float(r["noise.rate"])) for r in rows] == BY_ACC
    by_key = {(r["loss"], float(r["noise.rate"])): r for r in rows}
    for key, accs in ACC.items():
        row = by_key[key]
        assert int(row["n"]) == len(accs)
        assert float(row["final.test.acc_mean"]) == pytest.approx(statistics.fmean(accs))
        assert float(row["final.test.acc_std"]) == pytest.approx(statistics.stdev(accs))
        assert 0 <= float(row["final.test.ece_mean"]) <= 1  # fractions, not percent
    assert by_key[("ce", 0.4)]["final.test.acc_test"] == "baseline"
    assert by_key[("ce", 0.4)]["final.test.acc_p"] == ""
    assert by_key[("mae", 0.4)]["final.test.acc_test"] == "Welch t"
    assert float(by_key[("gce", 0.4)]["final.test.acc_diff"]) == pytest.approx(0.1)
    assert by_key[("mae", 0.4)]["seeds"] == "0;1;2;3"
    assert [r["rank"] for r in rows] == ["1", "2", "3", "1", "2", "3"]  # within each block

    md = out_md.read_text()
    assert "| rank | loss | noise.rate | n | acc | ece | nll | entropy |" in md
    assert "| 1 | ce | 0.0 | 3 | **92.00 ± 2.00** |" in md
    assert "| 3 | mae | 0.4 | 4 | 63.00 ± 2.58 | **2.15 ± 0.13** |" in md

    tex = out_tex.read_text()
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"rank & loss & noise.rate & n & acc & ece & nll & entropy" in tex
    assert r"1 & ce & 0.0 & 3 & \textbf{92.00} $\pm$ 2.00" in tex
    assert r"$\Delta$acc" in tex


def assert_png(path: Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_plots(tree, tmp_path, capsys):
    plots = tmp_path / "figs"
    assert main([str(tree), "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    for name in ("acc_vs_ece.png", "reliability.png", "vs_noise_rate.png"):
        assert_png(plots / name)
        assert name in out


def test_plots_skip_what_the_runs_lack(tmp_path, capsys):
    for seed in range(2):
        data = record("mae", 0.0, seed, 0.7, 0.05)  # mae runs carry no reliability bins
        write(tmp_path / "runs" / f"{seed}", data)
    plots = tmp_path / "figs"
    assert main([str(tmp_path / "runs"), "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    assert_png(plots / "acc_vs_ece.png")
    assert not (plots / "reliability.png").exists()
    assert not (plots / "vs_noise_rate.png").exists()
    assert "skipped reliability.png" in out


def test_pool_reliability():
    a = {"n_bins": 2, "count": [1, 3], "acc": [0.0, 1.0], "conf": [0.2, 0.8]}
    b = {"n_bins": 2, "count": [3, 0], "acc": [1.0, None], "conf": [0.4, None]}
    pooled = pool_reliability([a, b, None, {"n_bins": 3}])
    assert pooled["count"] == [4.0, 3.0]
    assert pooled["acc"] == pytest.approx([0.75, 1.0])
    assert pooled["conf"] == pytest.approx([0.35, 0.8])
    assert pool_reliability([None]) is None


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/nowhere"], "no such file or directory"),
        (["{tmp}/empty"], "no results.json found"),
        (["{tree}", "--metric", "final.test.accuracy"], "final.test.acc"),
        (["{tree}", "--rows", "losses", "--cols", "noise.rate"], "Valid keys: loss, noise.rate"),
        (["{tree}", "--baseline", "loss=nope"], "values of loss: ce, gce, mae"),
        (["{tree}", "--baseline", "ce"], "KEY=VALUE"),
    ],
)
def test_errors(tree, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path, tree=tree) for a in args]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.err.count("\n") == 1


def test_unknown_metric_lists_available(tree):
    with pytest.raises(CompareError, match="Available, e.g.:.*final.test.ece"):
        compare([tree], metrics=["final.test.accuracy"])


def test_no_completed_run(tmp_path, capsys):
    failed = record("ce", 0.0, 0, 0.9, 0.05)
    failed.update(status="failed", error="ValueError: bad")
    write(tmp_path / "f", failed)
    assert main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "ValueError: bad" in captured.out
    assert "no completed run" in captured.err


def test_help_and_light_import():
    assert main(["--help"]) == 0
    assert flatten({"a": {"b": {}}}) == {}
    code = (
        "import sys, losslab.report.compare; "
        "print(any(m in sys.modules for m in ('matplotlib', 'scipy', 'torch')))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------- tuned per compared key


def _tuned_tree(root: Path) -> Path:
    """ce at lr 0.1 and gce at lr 0.01 (each loss at its own selected lr), 2 seeds each."""
    for loss, lr, accs in (("ce", 0.1, [0.80, 0.82]), ("gce", 0.01, [0.90, 0.88])):
        for seed, acc in enumerate(accs):
            rec = record(loss, 0.4, seed, acc, 0.05)
            rec["config"]["optimizer"] = {"_target_": "torch.optim.SGD", "lr": lr}
            # Hydra's record of the per-preset values, chosen by loss and data set
            rec["choices"]["protocol"] = f"None/digits/loss/{loss}"
            write(root / f"{loss}-{seed}", rec)
    return root


def test_keys_tuned_per_loss_are_ranked_across_not_blocked(tmp_path):
    root = _tuned_tree(tmp_path / "reruns")
    blocked = compare([root], by="loss")
    assert len(blocked.blocks()) == 2  # without --tuned: one block per learning rate
    tuned = compare([root], by="loss", tuned=["optimizer.lr"])
    assert len(tuned.blocks()) == 1
    assert [(g.labels["loss"], g.rank) for g in tuned.groups] == [("gce", 1), ("ce", 2)]
    assert "optimizer.lr" in tuned.columns  # still shown
    assert any("optimizer.lr: tuned for each loss" in n for n in tuned.notes)


def test_the_protocol_choice_is_never_a_column(tmp_path):
    comparison = compare([_tuned_tree(tmp_path / "reruns")], by="loss")
    assert "protocol" not in comparison.columns and "protocol" not in comparison.choices
