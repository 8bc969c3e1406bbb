"""A real sweep on digits, then `losslab compare` on its directory."""

from __future__ import annotations

import csv

from losslab.cli import main


def test_sweep_then_compare(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    code = main(
        [
            "train",
            "-m",
            "loss=ce,gce",
            "noise=symmetric",
            "noise.rate=0.0,0.4",
            "seed=0,1,2",
            "trainer.epochs=2",
            "model.width=32",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert code == 0
    capsys.readouterr()

    assert main(["compare", str(sweep), "--csv", str(tmp_path / "t.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert len(rows) == 4 and all(row["n"] == "3" for row in rows)
    groups = {(row["loss"], row["noise.rate"]) for row in rows}
    assert groups == {("ce", "0.0"), ("ce", "0.4"), ("gce", "0.0"), ("gce", "0.4")}
    for row in rows:
        assert 0.0 <= float(row["final.test.acc_mean"]) <= 1.0

    assert (
        main(
            [
                "compare",
                str(sweep),
                "--rows",
                "loss",
                "--cols",
                "noise.rate",
                "--metric",
                "final.test.acc",
            ]
        )
        == 0
    )
    grid = capsys.readouterr().out
    for cell in ("ce", "gce", "0.0", "0.4"):
        assert cell in grid
