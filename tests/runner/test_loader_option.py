"""``dataset.loader``: passed to the data set, obeyed, and recorded as what was really used."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from PIL import Image

from losslab.runner.build import build_parts
from losslab.runner.settings import ConfigError, validate
from tests.conftest import read_metrics, run_train, strip_times
from tests.datasets.formats import write_imagefolder
from tests.datasets.test_tabular import libsvm_text, toy_arrays

TRAIN = (
    "model=cnn",
    "model.width=4",
    "trainer.epochs=1",
    "trainer.batch_size=16",
    "trainer.device=cpu",
    "trainer.num_workers=0",
)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The overrides of three data sets written in their on-disk formats."""
    root = tmp_path_factory.mktemp("sources")
    write_imagefolder(root / "tree")
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])}
    )
    rng = np.random.default_rng(0)

    def split(n: int) -> datasets.Dataset:
        images = [
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(n)
        ]
        return datasets.Dataset.from_dict(
            {"image": images, "label": [i % 3 for i in range(n)]}, features=features
        )

    datasets.disable_progress_bars()
    datasets.DatasetDict(train=split(30), test=split(9)).save_to_disk(str(root / "hf"))
    x_train, y_train, x_test, y_test = toy_arrays()
    (root / "toy.scale").write_text(libsvm_text(x_train, y_train))
    (root / "toy.scale.t").write_text(libsvm_text(x_test, y_test))
    return {
        "imagefolder": (
            "dataset=imagefolder",
            f"dataset.root={root / 'tree'}",
            "dataset.num_classes=3",
            "dataset.input_shape=[3,8,8]",
        ),
        "hf": (
            "dataset=hf",
            f"dataset.path={root / 'hf'}",
            "dataset.num_classes=3",
            "dataset.input_shape=[3,8,8]",
        ),
        "libsvm": (
            "dataset=libsvm",
            f"dataset.root={root}",
            "dataset.train_file=toy.scale",
            "dataset.test_file=toy.scale.t",
            "dataset.num_features=5",
            "dataset.num_classes=3",
            "model=mlp",
            "model.width=8",
        ),
    }


def parts(*overrides: str):
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*TRAIN, *overrides])
    return build_parts(cfg, validate(cfg))


@pytest.mark.parametrize("loader", ["memory", "dataloader"])
@pytest.mark.parametrize("dataset", ["imagefolder", "hf", "libsvm"])
def test_results_record_the_loader_really_used(sources, tmp_path, dataset, loader):
    code, results = run_train(tmp_path, *TRAIN, *sources[dataset], f"dataset.loader={loader}")
    assert code == 0, results.get("error")
    assert results["data"]["loader"] == loader


@pytest.mark.parametrize(
    ("loader", "limit", "used"),
    [
        ("auto", None, "memory"),
        ("auto", "0.0001", "dataloader"),  # 100 bytes: less than the images
        ("memory", "0.0001", "memory"),
        ("dataloader", None, "dataloader"),
    ],
)
@pytest.mark.parametrize("dataset", ["imagefolder", "hf"])
def test_lazy_images_are_decoded_only_when_served_from_memory(
    sources, dataset, loader, limit, used
):
    extra = [f"dataset.memory_limit_mb={limit}"] if limit else []
    p = parts(*sources[dataset], f"dataset.loader={loader}", *extra)
    assert p.loader_mode == used
    # the data set's own record agrees with the runner's, and so do the inputs
    assert p.data.info["loader"] == used
    for split in (p.data.train, p.data.val, p.data.test):
        assert isinstance(split.x, torch.Tensor) == (used == "memory")


def test_the_loader_does_not_change_the_results(sources, tmp_path):
    # normalisation statistics from 10 of 27 training images, whatever the serving path
    hf = (*sources["hf"], "dataset.stats_samples=10", "trainer.epochs=2")
    _, memory = run_train(tmp_path / "memory", *TRAIN, *hf, "dataset.loader=memory")
    _, stream = run_train(tmp_path / "stream", *TRAIN, *hf, "dataset.loader=dataloader")
    assert memory["data"]["loader"] == "memory" and stream["data"]["loader"] == "dataloader"
    assert strip_times(read_metrics(tmp_path / "memory")) == strip_times(
        read_metrics(tmp_path / "stream")
    )


@pytest.mark.parametrize("dataset", ["imagefolder", "hf", "libsvm"])
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("dataset.loader=gpu", r"dataset.loader='gpu' is invalid.*'auto', 'memory', 'dataloader'"),
        ("dataset.memory_limit_mb=-1", r"dataset.memory_limit_mb=-1 is invalid"),
        ("dataset.memory_limit_mb=lots", r"dataset.memory_limit_mb='lots' is invalid"),
    ],
)
def test_bad_values_fail_before_loading(sources, dataset, override, message, monkeypatch):
    import losslab.runner.build as build

    def no_loading(*args, **kwargs):
        raise AssertionError("the data set was loaded before its options were checked")

    monkeypatch.setattr(build, "build", no_loading)
    with pytest.raises(ConfigError, match=message):
        parts(*sources[dataset], override)


def test_bad_values_are_errors_of_the_data_set_functions_too(sources):
    from losslab.datasets.hf import load_hf

    path = sources["hf"][1].split("=", 1)[1]
    args = {"path": path, "num_classes": 3, "input_shape": [3, 8, 8]}
    with pytest.raises(ValueError, match=r"dataset.loader='gpu' is invalid.*'dataloader'"):
        load_hf(**args, loader="gpu")
    with pytest.raises(ValueError, match=r"dataset.memory_limit_mb=-1 is invalid"):
        load_hf(**args, memory_limit_mb=-1)
