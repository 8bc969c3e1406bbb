"""The torchvision-family loaders read the official file formats, without network."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy.io import savemat

from losslab.datasets import vision
from losslab.datasets.base import BatchTransform, DataBundle
from tests.conftest import run_train
from tests.datasets import formats

WRITERS = {
    "mnist": lambda root: formats.write_mnist(root, "mnist"),
    "fashion_mnist": lambda root: formats.write_mnist(root, "fashion_mnist", seed=1),
    "kmnist": lambda root: formats.write_mnist(root, "kmnist", seed=2),
    "cifar10": formats.write_cifar10,
    "cifar100": formats.write_cifar100,
    "svhn": formats.write_svhn,
}
LOADERS = {
    "mnist": formats.vision_preset("mnist"),
    "fashion_mnist": formats.vision_preset("fashion_mnist"),
    "kmnist": formats.vision_preset("kmnist"),
    "cifar10": formats.vision_preset("cifar10"),
    "cifar100": formats.vision_preset("cifar100"),
    "svhn": formats.vision_preset("svhn"),
}
SHAPES = {
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
    "kmnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
    "svhn": (3, 32, 32),
}
CLASSES = {"cifar100": 100}
TOKENS = list(LOADERS)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, formats.Written]:
    """Every source's tiny files, written once into its own root."""
    base = tmp_path_factory.mktemp("vision")
    return {token: write(base / token) for token, write in WRITERS.items()}


def load(token: str, root: Path, **kwargs) -> DataBundle:
    defaults = {"download": False, "num_classes": CLASSES.get(token, 10)}
    return LOADERS[token](root=root, **{**defaults, **kwargs})


# ------------------------------------------------------------------------ contents


@pytest.mark.parametrize("token", TOKENS)
def test_splits_shapes_labels_and_pixels(token, sources):
    written = sources[token]
    k = CLASSES.get(token, 10)
    data = load(token, written.root, val_fraction=0.5)
    assert data.name == token and data.num_classes == k and data.input_shape == SHAPES[token]
    for split in (data.train, data.val, data.test):
        assert isinstance(split.x, torch.Tensor) and split.x.dtype == torch.uint8
        assert split.x.shape[1:] == SHAPES[token]
        assert split.y.dtype == torch.int64 and not split.is_noisy.any()
        assert set(split.y.tolist()) == set(range(k))  # every class in every split
    # val is carved from the official training split, test is the official test split
    n_train = len(written.train_y)
    assert len(data.train) + len(data.val) == n_train
    assert len(data.test) == len(written.test_y)
    both = torch.cat([data.train.source_index, data.val.source_index])
    assert torch.equal(torch.sort(both).values, torch.arange(n_train))
    assert len(data.val) == pytest.approx(0.5 * n_train, abs=k)
    for split in (data.train, data.val):
        idx = split.source_index.numpy()
        assert np.array_equal(split.x.numpy(), written.train_x[idx])
        assert np.array_equal(split.y.numpy(), written.train_y[idx])
    assert np.array_equal(data.test.x.numpy(), written.test_x)
    assert np.array_equal(data.test.y.numpy(), written.test_y)
    assert torch.equal(data.test.source_index, torch.arange(len(written.test_y)))


@pytest.mark.parametrize(
    ("token", "mean", "std", "crop", "flip"),
    [
        ("mnist", (0.1307,), (0.3081,), 2, False),
        ("fashion_mnist", (0.2860,), (0.3530,), 2, False),
        ("kmnist", (0.1918,), (0.3483,), 2, False),
        ("cifar10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 4, True),
        ("cifar100", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 4, True),
        ("svhn", (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), 4, False),
    ],
)
def test_batch_transform_constants(token, mean, std, crop, flip, sources):
    augmented = load(token, sources[token].root, augment=True).transform
    assert augmented == BatchTransform(
        scale=1 / 255, mean=mean, std=std, crop_padding=crop, flip=flip
    )
    plain = load(token, sources[token].root, augment=False).transform
    assert plain == BatchTransform(scale=1 / 255, mean=mean, std=std)
    assert not plain.augments


def test_svhn_label_10_is_digit_0(sources):
    from scipy.io import loadmat

    root = sources["svhn"].root
    raw = loadmat(root / "test_32x32.mat")["y"].reshape(-1)
    assert raw.min() == 1 and raw.max() == 10  # the official encoding
    data = load("svhn", root)
    assert torch.equal(data.test.y, torch.as_tensor(raw % 10, dtype=torch.int64))
    assert int(data.test.y.max()) == 9


def test_mnist_reads_uncompressed_idx(tmp_path):
    written = formats.write_mnist(tmp_path, "mnist", compressed=False)
    assert not list((tmp_path / "MNIST" / "raw").glob("*.gz"))
    data = load("mnist", tmp_path)
    assert np.array_equal(data.test.x.numpy(), written.test_x)


def test_cifar_reads_pickles_with_bytes_keys(tmp_path):
    written = formats.write_cifar10(tmp_path, bytes_keys=True)
    data = load("cifar10", tmp_path)
    assert np.array_equal(data.test.x.numpy(), written.test_x)


def test_split_seed_fixes_the_validation_split(sources):
    root = sources["cifar10"].root
    a, b = load("cifar10", root, split_seed=0), load("cifar10", root, split_seed=0)
    c = load("cifar10", root, split_seed=1)
    assert torch.equal(a.val.source_index, b.val.source_index)
    assert not torch.equal(a.val.source_index, c.val.source_index)


# -------------------------------------------------------------------------- errors


MISSING = {
    "mnist": ("MNIST/raw", "train-images-idx3-ubyte"),
    "fashion_mnist": ("FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
    "kmnist": ("KMNIST/raw", "train-labels-idx1-ubyte"),
    "cifar10": ("cifar-10-batches-py", "data_batch_1"),
    "cifar100": ("cifar-100-python", "test"),
    "svhn": ("", "train_32x32.mat"),
}


@pytest.mark.parametrize("token", TOKENS)
def test_missing_files_name_path_files_and_remedy(token, tmp_path):
    folder, file = MISSING[token]
    with pytest.raises(FileNotFoundError) as info:
        load(token, tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / folder) in message and file in message
    assert "dataset.download=true" in message and "dataset.download=false" in message


def test_failed_download_is_reported(tmp_path, monkeypatch):
    def offline(class_name, root, splits):
        raise OSError("network is unreachable")

    monkeypatch.setattr(vision, "_download_with_torchvision", offline)
    with pytest.raises(FileNotFoundError, match="downloading them failed.*unreachable") as info:
        load("cifar10", tmp_path, download=True)
    assert "data_batch_1" in str(info.value) and str(tmp_path) in str(info.value)


def test_download_fetches_missing_files_only(tmp_path, monkeypatch):
    calls = []

    def fake(class_name, root, splits):
        calls.append((class_name, Path(root), list(splits)))
        formats.write_svhn(root)

    monkeypatch.setattr(vision, "_download_with_torchvision", fake)
    data = load("svhn", tmp_path, download=True)
    assert len(data.test) == 20
    assert calls == [("SVHN", tmp_path, [{"split": "train"}, {"split": "test"}])]
    load("svhn", tmp_path, download=True)  # files present: no second download
    assert len(calls) == 1


def _corrupt_idx_magic(root: Path) -> tuple[str, str]:
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[3] = 1  # 0x00000801: a label file's magic number
    path.write_bytes(gzip.compress(bytes(data)))
    return path.name, "wrong magic number 0x00000801"


def _truncate_idx(root: Path) -> tuple[str, str]:
    path = root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))
    return path.name, "truncated"


def _not_gzip(root: Path) -> tuple[str, str]:
    path = root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip data")
    return path.name, "cannot read"


def _mnist_label_out_of_range(root: Path) -> tuple[str, str]:
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    labels = np.full(20, 12, dtype=np.uint8)
    path.write_bytes(gzip.compress(formats.idx_bytes(labels)))
    return path.name, "labels out of range: found 12..12, expected 0..9"


def _cifar_wrong_shape(root: Path) -> tuple[str, str]:
    path = root / "cifar-10-batches-py" / "data_batch_3"
    with open(path, "rb") as f:
        batch = pickle.load(f)
    batch["data"] = batch["data"][:, :1024]
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return path.name, r"'data' has shape \[12, 1024\], expected \[N, 3072\]"


def _cifar_garbage(root: Path) -> tuple[str, str]:
    path = root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(b"\x00garbage, not a pickle")
    return path.name, "cannot unpickle"


def _cifar_missing_key(root: Path) -> tuple[str, str]:
    path = root / "cifar-10-batches-py" / "data_batch_1"
    with open(path, "rb") as f:
        batch = pickle.load(f)
    batch["fine_labels"] = batch.pop("labels")
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return path.name, "no 'labels' entry"


def _cifar_label_out_of_range(root: Path) -> tuple[str, str]:
    path = root / "cifar-10-batches-py" / "data_batch_2"
    with open(path, "rb") as f:
        batch = pickle.load(f)
    batch["labels"][0] = 10
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return path.name, "labels out of range"


def _svhn_wrong_shape(root: Path) -> tuple[str, str]:
    path = root / "train_32x32.mat"
    savemat(path, {"X": np.zeros((32, 32, 60), np.uint8), "y": np.ones((60, 1), np.uint8)})
    return path.name, r"'X' must be uint8 \[32, 32, 3, N\]"


def _svhn_label_out_of_range(root: Path) -> tuple[str, str]:
    path = root / "test_32x32.mat"
    savemat(path, {"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.full((4, 1), 11, np.uint8)})
    return path.name, "labels out of range"


def _svhn_not_mat(root: Path) -> tuple[str, str]:
    path = root / "test_32x32.mat"
    path.write_bytes(b"MATLAB? no")
    return path.name, "not a readable SVHN .mat file"


CORRUPTIONS = {
    "idx-magic": ("mnist", _corrupt_idx_magic),
    "idx-truncated": ("mnist", _truncate_idx),
    "idx-not-gzip": ("mnist", _not_gzip),
    "idx-labels": ("mnist", _mnist_label_out_of_range),
    "cifar-shape": ("cifar10", _cifar_wrong_shape),
    "cifar-garbage": ("cifar10", _cifar_garbage),
    "cifar-key": ("cifar10", _cifar_missing_key),
    "cifar-labels": ("cifar10", _cifar_label_out_of_range),
    "svhn-shape": ("svhn", _svhn_wrong_shape),
    "svhn-labels": ("svhn", _svhn_label_out_of_range),
    "svhn-not-mat": ("svhn", _svhn_not_mat),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_file_names_file_and_problem(case, sources, tmp_path):
    token, corrupt = CORRUPTIONS[case]
    root = tmp_path / token
    shutil.copytree(sources[token].root, root)
    file, problem = corrupt(root)
    with pytest.raises(ValueError, match=problem) as info:
        load(token, root)
    assert file in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": 1.0}, "val_fraction=1.0 is invalid"),
        ({"split_seed": -1}, "split_seed=-1 is invalid"),
        ({"loader": "disk"}, "loader='disk' is invalid"),
        ({"download": "no"}, "download='no' is invalid"),
        ({"augment": 1}, "augment=1 is invalid"),
        ({"root": ""}, "root='' is invalid"),
        ({"num_classes": 100}, "num_classes=100 but the data has 10 classes"),
        ({"input_shape": [3, 28, 28]}, r"input_shape=\[3, 28, 28\] but the data"),
    ],
)
def test_invalid_options_fail_clearly(kwargs, match, sources):
    with pytest.raises(ValueError, match=match):
        LOADERS["mnist"](**{"root": sources["mnist"].root, "download": False, **kwargs})


def test_arguments_are_keyword_only(sources):
    with pytest.raises(TypeError):
        LOADERS["cifar10"](sources["cifar10"].root)  # type: ignore[misc]


# ----------------------------------------------------------------- config and CLI


@pytest.mark.parametrize("token", TOKENS)
def test_yaml_instantiates_with_its_defaults(token, sources):
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[f"dataset={token}", f"dataset.root={sources[token].root}"],
        )
    assert cfg.dataset.download is True and cfg.dataset.loader == "auto"
    cfg.dataset.download = False
    data = instantiate(cfg.dataset)
    assert data.num_classes == cfg.dataset.num_classes
    assert list(data.input_shape) == list(cfg.dataset.input_shape)
    assert data.transform.augments == cfg.dataset.augment


@pytest.mark.parametrize("token", TOKENS)
def test_trains_one_epoch_through_the_cli(token, sources, tmp_path):
    code, results = run_train(
        tmp_path / "run",
        f"dataset={token}",
        f"dataset.root={sources[token].root}",
        "dataset.download=false",
        "dataset.val_fraction=0.5",
        "model=cnn",
        "model.width=4",
        "trainer.epochs=1",
        "trainer.batch_size=16",
        "trainer.device=cpu",
    )
    assert results is not None, "no results.json written"
    assert code == 0 and results["status"] == "completed", results.get("error")


# ------------------------------------------------- one loader, constants in the YAMLs


def test_every_vision_yaml_names_the_one_loader():
    conf = Path(vision.__file__).resolve().parent.parent / "conf" / "dataset"
    for token in TOKENS:
        cfg = OmegaConf.load(conf / f"{token}.yaml")
        assert cfg._target_ == "losslab.datasets.vision.load_vision" and cfg.name == token


def _mnist_spec(folder: str = "MNIST/raw") -> dict:
    conf = Path(vision.__file__).resolve().parent.parent / "conf" / "dataset" / "mnist.yaml"
    return {**OmegaConf.to_container(OmegaConf.load(conf).files), "folder": folder}


def test_a_new_data_set_is_a_files_spec(sources, tmp_path):
    """Another set in a known format needs no code: here MNIST's files in another folder,
    with statistics computed from the training split."""
    shutil.copytree(sources["mnist"].root / "MNIST" / "raw", tmp_path / "digits2")
    data = vision.load_vision(
        name="digits2",
        files=_mnist_spec("digits2"),
        num_classes=10,
        input_shape=[1, 28, 28],
        root=tmp_path,
        download=False,
        augment=True,
        crop_padding=3,
    )
    assert data.name == "digits2" and data.info["source"] == str(tmp_path / "digits2")
    pixels = data.train.x.double().numpy() / 255
    assert data.transform.mean == pytest.approx((pixels.mean(),), abs=1e-6)
    assert data.transform.std == pytest.approx((pixels.std(),), abs=1e-6)
    assert data.info["normalisation"]["from"] == "train split"
    assert data.transform.crop_padding == 3 and not data.transform.flip


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"files": {"format": "png"}},
            "files.format='png' is invalid: use one of idx, cifar, svhn",
        ),
        ({"files": {"colour": 1}}, "dataset.files has unknown keys colour"),
        ({"files": {"test": ["t10k-images-idx3-ubyte"]}}, r"files.test=\[.*\] is invalid"),
        ({"mean": [0.1, 0.2]}, r"mean=\[0.1, 0.2\] is invalid: give 1 number"),
        ({"std": [0.0]}, r"std=\[0.0\] is invalid"),
        ({"mean": None}, "give both dataset.mean and dataset.std, or neither"),
        ({"crop_padding": -1}, "crop_padding=-1 is invalid"),
        ({"flip": "yes"}, "flip='yes' is invalid"),
    ],
)
def test_invalid_constants_fail_clearly(change, match, sources):
    options = {
        "name": "mnist",
        "files": _mnist_spec(),
        "num_classes": 10,
        "input_shape": [1, 28, 28],
        "mean": [0.1307],
        "std": [0.3081],
        "root": sources["mnist"].root,
        "download": False,
    }
    if "files" in change:
        change = {"files": {**options["files"], **change["files"]}}
    with pytest.raises(ValueError, match=match):
        vision.load_vision(**{**options, **change})
