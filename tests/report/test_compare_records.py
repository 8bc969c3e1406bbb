"""``losslab compare`` on hand-made and damaged ``results.json`` files: never a traceback."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from losslab.report.compare import main
from losslab.report.comparison import compare
from tests.report.test_compare import record, write


def good_tree(root: Path) -> Path:
    """Two losses x two seeds of well-formed records."""
    for i, (loss, seed, acc) in enumerate(
        [("ce", 0, 0.80), ("ce", 1, 0.82), ("gce", 0, 0.85), ("gce", 1, 0.87)]
    ):
        write(root / str(i), record(loss, 0.4, seed, acc, 0.05))
    return root


def damaged(**fields) -> dict:
    out = record("gce", 0.4, 2, 0.99, 0.01)  # values that would change the gce mean
    out.update(fields)
    return out


def listed(out: str, path: Path) -> list[str]:
    """Lines of the output that name ``path``."""
    return [line for line in out.splitlines() if str(path) in line]


def test_overrides_a_number_is_skipped_with_one_line(tmp_path, capsys):
    root = good_tree(tmp_path / "runs")
    write(root / "bad", damaged(overrides=5))
    assert main([str(root)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    (line,) = listed(captured.out, root / "bad" / "results.json")
    assert "malformed" in line and "overrides" in line
    comparison = compare([root])
    assert comparison.n_runs == 4
    gce = next(g for g in comparison.groups if g.labels["loss"] == "gce")
    assert gce.stats["final.test.acc"].mean == pytest.approx(0.86)


MALFORMED = {
    "overrides": [5, "seed=0", {"a": 1}, ["seed=0", 1]],
    "status": [None, 5, ["completed"], {"a": 1}],
    "config": [5, "x", [1, 2]],
    "final": [5, "x", [1]],
    "best": [5, "x", [1]],
    "timing": [5, "x", [1]],
    "noise": [5, "x"],
    "versions": [5, [1]],
    "reliability": [5, "x"],
    "error": [5, {"a": 1}],
}


@pytest.mark.parametrize(
    ("field", "value"), [(f, v) for f, values in MALFORMED.items() for v in values]
)
def test_a_malformed_field_skips_the_record_and_names_the_field(tmp_path, capsys, field, value):
    root = good_tree(tmp_path / "runs")
    write(root / "bad", damaged(**{field: value}))
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    (line,) = listed(out, root / "bad" / "results.json")
    assert "malformed" in line and field in line
    assert compare([root]).n_runs == 4


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("final", "test"), 5),
        (("best", "val"), "x"),
        (("final", "epoch"), "five"),
        (("config", "seed"), [1, 2]),
        (("config", "seed"), {"a": 1}),
        (("timing", "finished_at"), "yesterday"),
        (("timing", "finished_at"), 5),
        (("timing", "total_s"), "long"),
    ],
)
def test_a_malformed_nested_field_is_named_by_its_path(tmp_path, capsys, path, value):
    root = good_tree(tmp_path / "runs")
    bad = damaged()
    bad[path[0]][path[1]] = value
    write(root / "bad", bad)
    assert main([str(root), "--baseline", "loss=ce"]) == 0
    out = capsys.readouterr().out
    (line,) = listed(out, root / "bad" / "results.json")
    assert "malformed" in line and ".".join(path) in line


def test_record_problem_accepts_what_losslab_writes_and_names_the_first_bad_field():
    from losslab.report.record import record_problem

    assert record_problem(record("gce", 0.4, 0, 0.9, 0.05)) is None
    assert record_problem({"status": "failed", "final": None, "timing": None}) is None
    assert record_problem([1, 2]) == "not a JSON object (an array)"
    assert record_problem({}) == "status is missing"
    assert record_problem({"status": " "}) == "status is empty"
    assert record_problem(damaged(overrides=["seed=0", 1])) == (
        "overrides holds a number, not only strings"
    )
    bad = damaged()
    bad["timing"]["finished_at"] = "yesterday"
    assert record_problem(bad) == "timing.finished_at is 'yesterday', not an ISO 8601 timestamp"


def test_not_an_object_and_a_directory_named_results_json(tmp_path, capsys):
    root = good_tree(tmp_path / "runs")
    (root / "list").mkdir()
    (root / "list" / "results.json").write_text("[1, 2]")
    (root / "dir" / ".hydra").mkdir(parents=True)
    (root / "dir" / "results.json").mkdir()
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "not a JSON object" in listed(out, root / "list" / "results.json")[0]
    (line,) = listed(out, root / "dir")
    assert "directory" in line


def test_nothing_usable_left_is_exit_1_like_no_completed_run(tmp_path, capsys):
    write(tmp_path / "a", damaged(overrides=5))
    write(tmp_path / "b", damaged(status=7))
    assert main([str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "no completed run" in captured.err
    assert len(listed(captured.out, tmp_path / "a" / "results.json")) == 1
    assert len(listed(captured.out, tmp_path / "b" / "results.json")) == 1


# ------------------------------------------------------------------- fuzzing

GARBAGE = [None, 5, True, "2020-01-01T00:00:00", [], [1, "a", None], {}, {"a": [{}]}]


def _paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in tree.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += _paths(value, (*prefix, key))
    return out


def test_fuzz_every_field_replaced_by_wrong_types_never_raises(tmp_path, capsys):
    """Every field (nested ones too) of a record replaced by values of other types."""
    base = damaged()
    root = good_tree(tmp_path / "runs")
    args = ["--baseline", "loss=ce", "--metric", "acc,best.test.ece", "--csv", str(tmp_path / "t")]
    crashes = []
    for path in [(), *_paths(base)]:
        for value in GARBAGE:
            bad = copy.deepcopy(base)
            if path:
                node = bad
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
            else:
                bad = value
            (root / "bad").mkdir(exist_ok=True)
            (root / "bad" / "results.json").write_text(json.dumps(bad))
            try:
                code = main([str(root), *args])
            except Exception as exc:  # collected: the assertion lists them all
                code = repr(exc)
            if code != 0:
                crashes.append(f"{'.'.join(path) or '<record>'}={value!r}: {code}")
            capsys.readouterr()
    assert not crashes, "\n".join(crashes[:20])
