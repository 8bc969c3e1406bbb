"""Training procedures: Mixup/CutMix, SAM, warm-up and step schedules, through the runner."""

from __future__ import annotations

import pytest
import torch

from losslab.datasets import mixing
from losslab.datasets.mixing import Mixing
from tests.conftest import read_metrics, run_train, strip_times


def test_mixup_with_lam_one_is_the_plain_objective(tmp_path, monkeypatch):
    run_train(tmp_path / "plain", "trainer.epochs=2")
    monkeypatch.setattr(mixing, "_beta", lambda alpha, generator: 1.0)
    run_train(tmp_path / "mixed", "trainer.epochs=2", "augment.mixup_alpha=1.0")
    assert strip_times(read_metrics(tmp_path / "plain")) == strip_times(
        read_metrics(tmp_path / "mixed")
    )


def test_mixup_changes_training_and_is_reproducible(tmp_path):
    _, plain = run_train(tmp_path / "plain", "trainer.epochs=1")
    runs = [
        run_train(tmp_path / f"m{i}", "trainer.epochs=1", "augment.mixup_alpha=0.4")[1]
        for i in (0, 1)
    ]
    assert runs[0]["final"] == runs[1]["final"] and runs[0]["final"] != plain["final"]


def test_mixing_draws():
    g = Mixing.generator(0, 0)
    x = torch.rand(16, 3, 8, 8)
    mix = Mixing(mixup_alpha=0.4).draw(x, g)
    assert 0 <= mix.lam <= 1 and sorted(mix.perm.tolist()) == list(range(16))
    torch.testing.assert_close(mix.inputs, mix.lam * x + (1 - mix.lam) * x[mix.perm])
    cut = Mixing(cutmix_alpha=1.0).draw(x, g)
    own = (cut.inputs == x).all(dim=1).float().mean(dim=(1, 2))  # share of own pixels
    assert torch.allclose(own[cut.perm != torch.arange(16)], torch.tensor(cut.lam), atol=1e-6)
    with pytest.raises(ValueError, match="augment.mixup_alpha=-1"):
        Mixing(mixup_alpha=-1)
    with pytest.raises(ValueError, match="CutMix needs image batches"):
        Mixing(cutmix_alpha=1.0).draw(torch.rand(4, 5), g)


def test_sam_and_cutmix_train(tmp_path):
    code, results = run_train(
        tmp_path,
        "trainer.epochs=2",
        "optimizer=sam",
        "optimizer.base=adamw",
        "optimizer.lr=1e-3",
        "augment.cutmix_alpha=1.0",
        "model=cnn",
        "model.width=4",
    )
    assert code == 0, results.get("error")


def test_warmup_then_multistep_schedule(tmp_path):
    code, results = run_train(
        tmp_path,
        "trainer.epochs=6",
        "trainer.warmup_epochs=2",
        "scheduler=multistep",
        "scheduler.milestones=[2,4]",
        "optimizer.lr=0.3",
    )
    assert code == 0, results.get("error")
    lrs = [r["lr"] for r in read_metrics(tmp_path)]
    assert lrs == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.03, 0.03])


def test_bad_procedure_values_are_config_errors(tmp_path, capsys):
    code, results = run_train(tmp_path / "a", "augment.mixup_alpha=-1", "trainer.epochs=1")
    assert code == 2 and results is None and "augment.mixup_alpha=-1" in capsys.readouterr().err
    code, results = run_train(tmp_path / "b", "trainer.warmup_epochs=-2", "trainer.epochs=1")
    assert code == 2 and results is None and "trainer.warmup_epochs=-2" in capsys.readouterr().err
