"""Tabular data sets: LIBSVM files (parsing, labels, standardisation, presets) and OpenML.

LIBSVM files are written by the tests; ``fetch_openml`` is replaced by a fake
that returns a small table, so nothing touches the network.
"""

from __future__ import annotations

import bz2

import numpy as np
import pandas as pd
import pytest
import sklearn.datasets
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from sklearn.utils import Bunch

from losslab.datasets.base import bundle_from_arrays
from losslab.datasets.tabular import _carved_rows, load_libsvm, load_openml
from tests.conftest import run_train

# --------------------------------------------------------------------------- LIBSVM helpers


def libsvm_text(x: np.ndarray, y: np.ndarray) -> str:
    """LIBSVM lines (1-based indices, zeros omitted) of dense rows ``x`` and labels ``y``."""
    lines = []
    for row, label in zip(x, y, strict=True):
        pairs = [f"{j + 1}:{v:g}" for j, v in enumerate(row) if v != 0]
        lines.append(" ".join([str(int(label)), *pairs]))
    return "\n".join(lines) + "\n"


def toy_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """30 training and 9 test rows of 5 features, labels 1..3 (1-based, as LIBSVM files).

    Feature 3 never occurs in the training file (constant 0 there), feature 5 only
    in the test file; many entries are zero, so lines are sparse.
    """
    i = np.arange(30)
    y_train = 1 + i % 3
    x_train = np.zeros((30, 5))
    x_train[:, 0] = i
    x_train[::2, 1] = 10 * y_train[::2]
    x_train[:, 3] = (i % 5) * 0.5
    j = np.arange(9)
    y_test = 1 + j % 3
    x_test = np.zeros((9, 5))
    x_test[:, 0] = 100 + j
    x_test[:, 2] = 1.0
    x_test[1::2, 4] = 7.0
    return x_train, y_train, x_test, y_test


@pytest.fixture
def toy(tmp_path):
    x_train, y_train, x_test, y_test = toy_arrays()
    (tmp_path / "toy.scale").write_text(libsvm_text(x_train, y_train))
    (tmp_path / "toy.scale.t").write_text(libsvm_text(x_test, y_test))
    return tmp_path


def load_toy(root, **kwargs):
    args = {
        "root": str(root),
        "train_file": "toy.scale",
        "test_file": "toy.scale.t",
        "num_features": 5,
        "num_classes": 3,
        "input_shape": [5],
    }
    return load_libsvm(**{**args, **kwargs})


def standardize(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    mean, std = train.mean(0), train.std(0)
    return (x - mean) / np.where(std > 1e-12, std, 1.0)


# --------------------------------------------------------------------------- LIBSVM


def test_parses_remaps_labels_and_standardises_with_training_statistics(toy):
    x_train, y_train, x_test, y_test = toy_arrays()
    data = load_toy(toy)
    assert data.name == "toy" and data.num_classes == 3 and data.input_shape == (5,)
    assert data.sizes() == {"train": 27, "val": 3, "test": 9}
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (5,)
        assert split.y.dtype == torch.int64 and torch.equal(split.y, split.y_clean)
    # labels 1..3 become 0..2
    assert torch.equal(data.train.y, torch.as_tensor(y_train - 1)[data.train.source_index])
    assert torch.equal(data.test.y, torch.as_tensor(y_test - 1))
    assert data.info["label_values"] == [1, 2, 3]
    # every split is standardised with the statistics of the training split only
    rows = data.train.source_index.numpy()
    fit = x_train[rows]
    for split, raw in ((data.train, x_train[rows]), (data.val, x_train[data.val.source_index])):
        np.testing.assert_allclose(split.x.numpy(), standardize(raw, fit), atol=1e-5)
    np.testing.assert_allclose(data.test.x.numpy(), standardize(x_test, fit), atol=1e-5)
    train = data.train.x.double()
    np.testing.assert_allclose(train.mean(0).numpy(), 0, atol=1e-6)
    np.testing.assert_allclose(train.std(0, unbiased=False)[[0, 1, 3]].numpy(), 1, atol=1e-5)
    # features absent from training (3 and 5) keep their test values: mean 0, scale 1
    np.testing.assert_allclose(data.test.x[:, [2, 4]].numpy(), x_test[:, [2, 4]], atol=1e-6)


def test_test_file_does_not_influence_training_features(toy, tmp_path):
    *_, x_test, y_test = toy_arrays()
    (tmp_path / "other.t").write_text(libsvm_text(x_test * 50 + 3, y_test))
    a = load_toy(toy)
    b = load_toy(toy, test_file="other.t")
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.test.x, b.test.x)


def test_labels_are_remapped_from_the_union_of_train_and_test(tmp_path):
    x = np.ones((12, 2))
    y_train = np.array([2, 4, 6] * 4)
    y_test = np.array([4, 8, 8, 2])
    (tmp_path / "u.txt").write_text(libsvm_text(x, y_train))
    (tmp_path / "u.t").write_text(libsvm_text(x[:4], y_test))
    data = load_libsvm(
        root=str(tmp_path),
        train_file="u.txt",
        test_file="u.t",
        num_features=2,
        num_classes=4,
        input_shape=[2],
        val_fraction=0.0,
    )
    assert data.info["label_values"] == [2, 4, 6, 8]
    assert data.test.y.tolist() == [1, 3, 3, 0]
    assert sorted(set(data.train.y.tolist())) == [0, 1, 2]


def test_compressed_file_is_found_next_to_the_configured_name(tmp_path):
    x_train, y_train, x_test, y_test = toy_arrays()
    (tmp_path / "toy.scale.bz2").write_bytes(bz2.compress(libsvm_text(x_train, y_train).encode()))
    (tmp_path / "toy.scale.t").write_text(libsvm_text(x_test, y_test))
    data = load_toy(tmp_path)
    assert data.info["files"][0].endswith("toy.scale.bz2")
    assert data.sizes() == {"train": 27, "val": 3, "test": 9}


def test_carves_a_stratified_test_split_without_a_test_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)) * [1, 10, 100, 0.1] + [0, 5, -50, 1]
    y = 1 + np.arange(60) % 3
    (tmp_path / "aloi.scale").write_text(libsvm_text(x, y))
    kwargs = {"split_seed": 3, "val_fraction": 0.1, "test_fraction": 0.2}
    data = load_libsvm(
        root=str(tmp_path),
        train_file="aloi.scale",
        num_features=4,
        num_classes=3,
        input_shape=[4],
        **kwargs,
    )
    assert data.name == "aloi"
    assert data.sizes() == {"train": 42, "val": 6, "test": 12}
    index = torch.cat([s.source_index for s in (data.train, data.val, data.test)])
    assert torch.equal(index.sort().values, torch.arange(60))
    for split in (data.train, data.val, data.test):
        assert len(set(torch.bincount(split.y).tolist())) == 1  # stratified: equal per class
    rows = data.train.source_index.numpy()
    np.testing.assert_allclose(
        data.test.x.numpy(), standardize(x[data.test.source_index], x[rows]), atol=1e-4
    )
    # the same split as every loader without an official test split
    np.testing.assert_array_equal(rows, _carved_rows(y - 1, **kwargs))
    reference = bundle_from_arrays(
        "ref", x, y - 1, num_classes=3, input_shape=[4], **kwargs
    ).train.source_index
    assert torch.equal(data.train.source_index, reference)


PRESETS = [
    ("letter", 26, 16, "letter.scale", "letter.scale.t"),
    ("vowel", 11, 10, "vowel.scale", "vowel.scale.t"),
    ("aloi", 1000, 128, "aloi.scale", None),
    ("news20", 20, 62061, "news20.scale", "news20.t.scale"),
]


@pytest.mark.parametrize(("token", "classes", "features", "train", "test"), PRESETS)
def test_preset_composes_with_its_counts(token, classes, features, train, test):
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"dataset={token}"])
    OmegaConf.resolve(cfg)
    d = cfg.dataset
    assert d._target_ == "losslab.datasets.tabular.load_libsvm"
    assert (d.num_classes, d.num_features, d.train_file, d.test_file) == (
        classes,
        features,
        train,
        test,
    )
    assert list(d.input_shape) == [features] and list(cfg.model.input_shape) == [features]
    assert cfg.model.num_classes == classes
    assert d.split_seed == 0 and d.val_fraction == 0.1 and d.loader == "auto"


def test_generic_libsvm_yaml_composes_and_asks_for_its_keys():
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["dataset=libsvm"])
    OmegaConf.resolve(cfg)
    node = OmegaConf.masked_copy(cfg.dataset, [k for k in cfg.dataset if k != "memory_limit_mb"])
    args = {k: v for k, v in OmegaConf.to_container(node).items() if k != "_target_"}
    with pytest.raises(ValueError, match=r"dataset.train_file, dataset.num_features"):
        load_libsvm(**args)


def test_missing_files_name_the_expected_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_toy(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "toy.scale") in message and str(tmp_path / "toy.scale.t") in message
    assert "LIBSVM data sets page" in message and "csie.ntu.edu.tw" in message


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_classes": 2}, ValueError, r"3 distinct labels \(1, 2, 3\).*num_classes=2"),
        ({"num_classes": 4}, ValueError, "num_classes=4 but the data has 3 classes"),
        ({"num_features": 3, "input_shape": [3]}, ValueError, "num_features=3"),
        ({"input_shape": [6]}, ValueError, r"input_shape=\[6\]"),
        ({"memory_limit_mb": 1e-5}, ValueError, r"would take 0 MiB \(39 samples x 5 features"),
        ({"val_fraction": 1.0}, ValueError, "val_fraction=1.0"),
        ({"test_file": None, "test_fraction": 1.5}, ValueError, "test_fraction=1.5"),
        ({"num_classes": None}, ValueError, "needs dataset.num_classes"),
    ],
)
def test_invalid_arguments(toy, kwargs, error, message):
    with pytest.raises(error, match=message):
        load_toy(toy, **kwargs)


def test_zero_based_indices_must_be_declared(tmp_path):
    (tmp_path / "z.txt").write_text("1 0:1.0 1:2.0\n2 0:3.0\n")
    args = {"root": str(tmp_path), "train_file": "z.txt", "num_features": 2, "num_classes": 2}
    with pytest.raises(ValueError, match="zero_based=False"):
        load_libsvm(**args)
    data = load_libsvm(**args, zero_based=True, val_fraction=0.0, test_fraction=0.0)
    assert data.input_shape == (2,) and len(data.train) == 2


def letter_files(root) -> None:
    """Tiny stand-ins for letter.scale/letter.scale.t: 26 classes (1-based), 16 features."""
    rng = np.random.default_rng(0)
    for name, per_class in (("letter.scale", 10), ("letter.scale.t", 2)):
        y = np.repeat(np.arange(1, 27), per_class)
        x = rng.normal(size=(len(y), 16)) + y[:, None] * 0.1
        x[rng.random(x.shape) < 0.3] = 0  # sparse lines
        (root / name).write_text(libsvm_text(x, y))


def test_letter_trains_one_epoch_through_the_cli(tmp_path):
    root = tmp_path / "libsvm"
    root.mkdir()
    letter_files(root)
    code, results = run_train(
        tmp_path / "run",
        "dataset=letter",
        f"dataset.root={root}",
        "trainer.epochs=1",
        "trainer.batch_size=16",
    )
    assert code == 0, results
    assert results["status"] == "completed"


# --------------------------------------------------------------------------- OpenML

COLORS = ["red", "green", "blue"]  # OpenML's declared category order


def fake_table(n: int = 60) -> Bunch:
    """A small OpenML-like table: numeric, categorical, bool and string columns, NaNs."""
    i = np.arange(n)
    num = i.astype(float) * 2.0
    num[7] = np.nan
    color = pd.Categorical(
        [COLORS[[0, 1, 1, 2][k % 4]] for k in i], categories=COLORS
    )  # green is the most frequent
    color[11] = np.nan
    city = np.array(["b", "a", "c"], dtype=object)[i % 3]
    city[5] = None
    frame = pd.DataFrame({"num": num, "color": color, "flag": i % 2 == 0, "city": city})
    target = pd.Series(pd.Categorical([["x", "y", "z"][k % 3] for k in i], ["z", "y", "x"]))
    return Bunch(data=frame, target=target, feature_names=list(frame.columns))


@pytest.fixture
def openml(monkeypatch):
    """Replace fetch_openml by the fake table; returns the recorded calls."""
    calls: list[dict] = []

    def fetch_openml(**kwargs):
        calls.append(kwargs)
        return fake_table()

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fetch_openml)
    return calls


def load_fake(**kwargs):
    args = {"data_id": 61, "num_classes": 3, "num_features": 4, "input_shape": [4]}
    return load_openml(**{**args, **kwargs})


def row(data, i: int) -> torch.Tensor:
    """The features of source row ``i``, whichever split holds it."""
    for split in (data.train, data.val, data.test):
        hit = (split.source_index == i).nonzero()
        if len(hit):
            return split.x[int(hit[0])]
    raise KeyError(i)


def test_openml_encodes_imputes_and_standardises(openml):
    data = load_fake()
    assert openml == [
        {"data_id": 61, "target_column": "default-target", "data_home": None, "as_frame": "auto"}
    ]
    assert data.sizes() == {"train": 42, "val": 6, "test": 12}
    assert data.input_shape == (4,) and data.train.x.dtype == torch.float32
    # labels follow the declared category order z, y, x
    assert data.info["label_values"] == ["z", "y", "x"]
    expected = torch.as_tensor([{0: 2, 1: 1, 2: 0}[k % 3] for k in range(60)])
    assert torch.equal(data.train.y, expected[data.train.source_index])
    # per-feature standardisation with training statistics
    train = data.train.x.double()
    np.testing.assert_allclose(train.mean(0).numpy(), 0, atol=1e-6)
    np.testing.assert_allclose(train.std(0, unbiased=False).numpy(), 1, atol=1e-5)
    # a missing number takes the training mean (0 once standardised) ...
    assert abs(float(row(data, 7)[0])) < 1e-5
    # ... a missing category the most frequent training category (green)
    assert float(row(data, 11)[1]) == pytest.approx(float(row(data, 1)[1]))
    # ordinal codes in the declared order: red < green < blue
    assert float(row(data, 0)[1]) < float(row(data, 1)[1]) < float(row(data, 3)[1])
    # strings: sorted levels a < b < c; the missing one is imputed with a training mode
    assert float(row(data, 1)[3]) < float(row(data, 0)[3]) < float(row(data, 2)[3])
    assert data.info["encoding"] == "ordinal"
    assert data.info["categorical"] == ["color", "flag", "city"]
    assert data.info["imputed"] == {"num": 1, "color": 1, "city": 1}


def test_openml_by_name_passes_the_version(openml):
    load_fake(data_id=None, name="toy", version=2, target_column="class")
    assert openml[0]["name"] == "toy" and openml[0]["version"] == 2
    assert openml[0]["target_column"] == "class" and "data_id" not in openml[0]


def test_openml_drops_unlabelled_rows(monkeypatch):
    table = fake_table()
    table.target = table.target.astype(object)
    table.target[4] = None
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", lambda **_: table)
    data = load_fake()
    assert sum(data.sizes().values()) == 59 and data.info["dropped_unlabelled"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "iris"}, "exactly one of dataset.name and dataset.data_id"),
        ({"data_id": None}, "exactly one of dataset.name and dataset.data_id"),
        ({"num_features": 3, "input_shape": [3]}, "num_features=3 but the data has 4"),
        ({"num_classes": 2}, "3 distinct labels"),
        ({"test_fraction": 1.0}, "test_fraction=1.0"),
    ],
)
def test_openml_invalid_arguments(openml, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_fake(**kwargs)


def test_openml_without_a_default_target(monkeypatch):
    monkeypatch.setattr(
        sklearn.datasets,
        "fetch_openml",
        lambda **_: Bunch(data=None, target=None, feature_names=["a"]),
    )
    with pytest.raises(ValueError, match=r"set dataset.target_column to one of \['a'\]"):
        load_fake()


def test_openml_yaml_composes_with_declared_counts():
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["dataset=openml"])
    OmegaConf.resolve(cfg)
    assert cfg.dataset._target_ == "losslab.datasets.tabular.load_openml"
    assert list(cfg.model.input_shape) == [cfg.dataset.num_features]
    assert cfg.model.num_classes == cfg.dataset.num_classes
    assert (cfg.dataset.name is None) != (cfg.dataset.data_id is None)


def test_openml_trains_one_epoch_through_the_cli(openml, tmp_path):
    code, results = run_train(
        tmp_path / "run",
        "dataset=openml",
        "dataset.num_classes=3",
        "dataset.num_features=4",
        "trainer.epochs=1",
        "trainer.batch_size=16",
    )
    assert code == 0, results
    assert results["status"] == "completed"
