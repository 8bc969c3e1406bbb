"""Paper presets (experiment=ldr_benchmark / noise_benchmark / calibration_benchmark):
the protocol each data set gets, and exactly which jobs each sweep launches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from losslab.datasets.base import bundle_from_arrays
from tests.conftest import run_cli, run_train
from tests.datasets.test_tabular import letter_files

LDR_LOSSES = [
    "ce",
    "cs",
    "ww",
    "gce",
    "tgce",
    "sce",
    "rll",
    "mae",
    "mse",
    "js",
    "nce_rce",
    "nce_agce",
    "nce_aul",
    "ldr",
    "aldr",
]
IMAGE_SETS = ["cifar100", "kmnist49", "tiny_imagenet"]
TABULAR_SETS = {"letter": "letter", "vowel": "vowel", "news20": "news20_", "aloi": "cyclic"}


def _compose(*overrides: str):
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def _jobs(cfg) -> list[dict[str, str]]:
    """The sweep's jobs as the basic sweeper expands ``hydra.sweeper.params``."""
    parser = OverridesParser.create()
    axes = []
    for key, value in cfg.hydra.sweeper.params.items():
        (override,) = parser.parse_overrides([f"{key}={value}"])
        axes.append([(key, str(v)) for v in override.sweep_string_iterator()])
    return [dict(combo) for combo in itertools.product(*axes)]


@pytest.mark.parametrize("dataset", IMAGE_SETS + list(TABULAR_SETS))
def test_ldr_benchmark_protocol_and_sweep(dataset):
    cfg = _compose("experiment=ldr_benchmark", f"dataset={dataset}")
    assert cfg.optimizer.lr == 0.01 and cfg.optimizer.momentum == 0.9
    assert cfg.optimizer.weight_decay == 5e-3 and cfg.trainer.batch_size == 64
    assert cfg.scheduler._target_.endswith("MultiStepLR") and cfg.scheduler.gamma == 0.1
    image = dataset in IMAGE_SETS
    assert cfg.trainer.epochs == (30 if image else 100)
    assert list(cfg.scheduler.milestones) == ([10, 20] if image else [50, 75])
    assert cfg.model._target_ == "losslab.models.auto.by_input_shape"

    jobs = _jobs(cfg)
    assert len(jobs) == 15 * 7
    assert sorted({j["loss"] for j in jobs}) == sorted(LDR_LOSSES)
    class_dep = "cyclic" if image else TABULAR_SETS[dataset]
    assert sorted({j["noise"] for j in jobs}) == sorted(
        ["none", "ldr/sym30", "ldr/sym60", "ldr/sym90"]
        + [f"ldr/{class_dep}{r}" for r in (10, 30, 50)]
    )


def test_ldr_benchmark_runs_ldr_with_the_code_s_lambda():
    # the paper's code fixes lambda = 10 for its benchmark; losslab's default is 0.1
    assert _compose("experiment=ldr_benchmark", "dataset=letter", "loss=ldr").loss.lam == 10.0
    assert _compose("loss=ldr").loss.lam == 0.1
    assert _compose("experiment=ldr_benchmark", "dataset=letter", "loss=gce").loss.q == 0.7


def test_ldr_label_settings_compose_to_the_paper_noise():
    expected = {
        "ldr/sym60": ("SymmetricNoise", 0.6, {"include_true": True}),
        "ldr/cyclic30": ("AsymmetricNoise", 0.3, {"mapping": "cyclic"}),
        "ldr/letter50": ("AsymmetricNoise", 0.5, {"mapping": "pairs"}),
        "ldr/news20_10": ("AsymmetricNoise", 0.1, {"mapping": "pairs"}),
        "apl/sym80": ("SymmetricNoise", 0.8, {"include_true": False}),
        "apl/asym40": ("AsymmetricNoise", 0.4, {"mapping": "auto"}),
    }
    for option, (cls, rate, fields) in expected.items():
        noise = _compose(f"noise={option}").noise
        assert noise._target_.endswith(cls) and noise.rate == rate, option
        for key, value in fields.items():
            assert noise[key] == value, (option, key)
    swaps = instantiate(_compose("noise=ldr/letter30").noise).class_map(26)
    assert swaps[1] == 3 and swaps[3] == 1 and swaps[20] == 21  # B<->D, U<->V


def test_ldr_models_follow_the_data_shape():
    image = instantiate(_compose("experiment=ldr_benchmark", "dataset=cifar100").model)
    assert type(image).__name__ == "ResNet18"
    tabular = instantiate(_compose("experiment=ldr_benchmark", "dataset=letter").model)
    assert type(tabular).__name__ == "MLP"
    assert sum(isinstance(m, torch.nn.Tanh) for m in tabular.modules()) == 2
    assert tabular(torch.randn(3, 16)).shape == (3, 26)


def test_ldr_benchmark_trains_on_letter(tmp_path):
    root = tmp_path / "libsvm"
    root.mkdir()
    letter_files(root)
    code, results = run_train(
        tmp_path / "run",
        "experiment=ldr_benchmark",
        "dataset=letter",
        f"dataset.root={root}",
        "noise=ldr/letter30",
        "loss=aldr",
        "trainer.epochs=1",
    )
    assert code == 0, results.get("error")
    assert results["noise"]["type"] == "asymmetric" and results["noise"]["rate"] == 0.3
    assert results["config"]["trainer"]["epochs"] == 1  # the command line wins


def test_ldr_benchmark_on_slurm_shows_launcher_and_sweep():
    proc = run_cli(
        "train",
        "-m",
        "experiment=ldr_benchmark",
        "dataset=letter",
        "hydra/launcher=slurm",
        "--cfg",
        "hydra",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    hydra = yaml.safe_load(proc.stdout)["hydra"]
    assert hydra["launcher"]["_target_"].endswith("SlurmLauncher")
    assert hydra["sweeper"]["params"]["loss"] == ",".join(LDR_LOSSES)
    assert "ldr/letter50" in hydra["sweeper"]["params"]["noise"]


@pytest.mark.parametrize(
    ("dataset", "epochs", "lr", "wd"), [("cifar10", 120, 0.01, 1e-4), ("cifar100", 200, 0.1, 1e-5)]
)
def test_noise_benchmark_protocol(dataset, epochs, lr, wd):
    cfg = _compose("experiment=noise_benchmark", f"dataset={dataset}")
    assert (cfg.trainer.epochs, cfg.optimizer.lr, cfg.optimizer.weight_decay) == (epochs, lr, wd)
    assert cfg.model._target_.endswith("ResNet18") and cfg.trainer.batch_size == 128
    assert cfg.scheduler._target_.endswith("CosineAnnealingLR")
    jobs = _jobs(cfg)
    assert len(jobs) == 2 * 8 * 9
    assert {j["dataset"] for j in jobs} == {"cifar10", "cifar100"}
    assert {"nce_rce", "nce_mae", "nce_agce", "nce_aul"} <= {j["loss"] for j in jobs}
    noises = sorted({j["noise"] for j in jobs})
    assert noises == sorted(
        ["none"]
        + [f"apl/sym{r}" for r in (20, 40, 60, 80)]
        + [f"apl/asym{r}" for r in (10, 20, 30, 40)]
    )


@pytest.mark.parametrize(("name", "k"), [("cifar10", 10), ("cifar100", 100), ("letter", 26)])
def test_auto_asymmetric_noise_is_the_data_sets_own(name, k):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(k), 20)
    data = bundle_from_arrays(
        name,
        rng.normal(size=(len(y), 4)).astype(np.float32),
        y,
        num_classes=k,
        input_shape=(4,),
        split_seed=0,
        val_fraction=0.0,
        test_fraction=0.0,
    )
    noise = instantiate(_compose("noise=apl/asym40").noise)
    noise.prepare(data)
    expected = {"cifar10": "cifar10", "cifar100": "cifar100", "letter": "cyclic"}[name]
    assert noise.params()["mapping"] == expected
    named = instantiate(_compose("noise=asymmetric", f"noise.mapping={expected}").noise)
    assert noise.class_map(k) == named.class_map(k)


def test_calibration_benchmark_methods():
    cfg = _compose("experiment=calibration_benchmark")
    assert cfg.trainer.epochs == 350 and list(cfg.scheduler.milestones) == [150, 250]
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay, cfg.trainer.batch_size) == (
        0.1,
        5e-4,
        128,
    )
    jobs = _jobs(cfg)
    assert len(jobs) == 2 * 6
    losses = {}
    for method in ("ce", "ls", "focal", "poly1", "squentropy", "ce_entropy"):
        job = _compose("experiment=calibration_benchmark", f"method={method}")
        losses[method] = (job.loss._target_.rsplit(".", 1)[1], sorted(job.regularizer))
    assert losses["ce_entropy"] == ("CrossEntropyLoss", ["entropy"])
    assert losses["ce"] == ("CrossEntropyLoss", [])
    assert losses["focal"][0] == "FocalLoss" and losses["squentropy"][1] == []
    assert {j["method"] for j in jobs} == set(losses)


def test_presets_are_no_ops_without_an_experiment():
    plain, smoke = _compose(), _compose("experiment=smoke")
    assert plain.trainer.epochs == 30 and smoke.trainer.epochs == 2
    assert dict(plain.hydra.sweeper.params) == {} == dict(smoke.hydra.sweeper.params)
