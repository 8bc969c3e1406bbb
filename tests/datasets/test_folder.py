"""Folder-based loaders: Kuzushiji-49, Tiny-ImageNet and generic ImageFolder trees."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from losslab.datasets import folder
from losslab.datasets.base import BatchTransform, ImageSource
from losslab.datasets.folder import ImageFiles, imagefolder, kmnist49, tiny_imagenet
from losslab.datasets.stats import channel_stats
from tests.conftest import run_train
from tests.datasets import formats

TINY_CLASSES = 200


@pytest.fixture(scope="module")
def k49(tmp_path_factory) -> formats.Written:
    return formats.write_k49(tmp_path_factory.mktemp("k49"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> formats.Written:
    return formats.write_tiny_imagenet(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> formats.Written:
    return formats.write_imagefolder(tmp_path_factory.mktemp("tree") / "pets")


def red(x: torch.Tensor) -> torch.Tensor:
    """The red channel's mean per image: the label of a flat test image."""
    return x[:, 0].float().mean(dim=(1, 2))


def decode(source: ImageSource) -> torch.Tensor:
    return torch.stack([source[i] for i in range(len(source))])


# --------------------------------------------------------------------- Kuzushiji-49


def test_k49_splits_pixels_and_labels(k49):
    data = kmnist49(root=k49.root, download=False, val_fraction=0.34)
    assert data.num_classes == 49 and data.input_shape == (1, 28, 28)
    assert len(data.train) + len(data.val) == len(k49.train_y) == 3 * 49
    assert len(data.val) == 49 and len(data.test) == 49
    for split in (data.train, data.val):
        idx = split.source_index.numpy()
        assert split.x.dtype == torch.uint8
        assert np.array_equal(split.x.numpy(), k49.train_x[idx])
        assert np.array_equal(split.y.numpy(), k49.train_y[idx])
    assert np.array_equal(data.test.x.numpy(), k49.test_x)
    assert np.array_equal(data.test.y.numpy(), k49.test_y)


def test_k49_normalises_with_training_split_statistics(k49):
    data = kmnist49(root=k49.root, download=False, val_fraction=0.34, augment=True)
    pixels = k49.train_x[data.train.source_index.numpy()] / 255.0
    assert data.transform.mean == pytest.approx((pixels.mean(),), abs=1e-5)
    assert data.transform.std == pytest.approx((pixels.std(),), abs=1e-5)
    assert data.transform.crop_padding == 2 and not data.transform.flip
    assert data.info["normalisation"]["mean"] == list(data.transform.mean)
    plain = kmnist49(root=k49.root, download=False, val_fraction=0.34).transform
    assert not plain.augments


def test_k49_missing_and_corrupt_files(k49, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        kmnist49(root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "kmnist49") in message and "k49-test-labels.npz" in message
    assert "dataset.download=true" in message

    root = tmp_path / "copy"
    shutil.copytree(k49.root, root)
    (root / "kmnist49" / "k49-test-imgs.npz").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.raises(ValueError, match=r"k49-test-imgs\.npz: not a readable \.npz archive"):
        kmnist49(root=root, download=False)

    np.savez(root / "kmnist49" / "k49-test-imgs.npz", np.zeros((49, 32, 32), np.uint8))
    with pytest.raises(
        ValueError, match=r"k49-test-imgs\.npz: 'arr_0' must be uint8 \[N, 28, 28\]"
    ):
        kmnist49(root=root, download=False)

    np.savez(root / "kmnist49" / "k49-test-imgs.npz", np.zeros((49, 28, 28), np.uint8))
    np.savez(root / "kmnist49" / "k49-test-labels.npz", np.full(49, 49, np.uint8))
    with pytest.raises(ValueError, match=r"k49-test-labels\.npz: labels out of range"):
        kmnist49(root=root, download=False)


def test_k49_download_is_attempted_and_failure_reported(tmp_path, monkeypatch):
    seen = []

    def offline(directory):
        seen.append(directory)
        raise OSError("no route to host")

    monkeypatch.setattr(folder, "_download_k49", offline)
    with pytest.raises(FileNotFoundError, match="downloading them failed.*no route to host"):
        kmnist49(root=tmp_path, download=True)
    assert seen == [tmp_path / "kmnist49"]


# --------------------------------------------------------------------- Tiny-ImageNet


def test_tiny_imagenet_is_lazy_and_labelled_by_sorted_wnids(tiny):
    data = tiny_imagenet(root=tiny.root, download=False, val_fraction=0.5)
    assert data.num_classes == TINY_CLASSES and data.input_shape == (3, 64, 64)
    for split in (data.train, data.val, data.test):
        assert isinstance(split.x, ImageSource) and not isinstance(split.x, torch.Tensor)
    assert len(data.train) == len(data.val) == TINY_CLASSES
    assert len(data.test) == len(tiny.test_y) == TINY_CLASSES
    assert np.array_equal(data.test.y.numpy(), tiny.test_y)  # val_annotations.txt order
    both = torch.cat([data.train.source_index, data.val.source_index])
    assert torch.equal(torch.sort(both).values, torch.arange(2 * TINY_CLASSES))
    for split in (data.train, data.val):
        assert np.array_equal(split.y.numpy(), tiny.train_y[split.source_index.numpy()])
    # pixels follow their labels (flat JPEGs whose red channel is the label)
    for split in (data.val, data.test):
        x = decode(split.x)
        assert x.dtype == torch.uint8 and x.shape == (len(split), 3, 64, 64)
        assert (red(x) - split.y.float()).abs().max() < 3


def test_tiny_imagenet_grey_jpegs_become_rgb(tiny):
    data = tiny_imagenet(root=tiny.root, download=False, val_fraction=0.0)
    first = data.train.x[0]  # train/<first wnid>/images/<wnid>_0.JPEG is greyscale
    assert first.shape == (3, 64, 64)
    assert torch.equal(first[0], first[1]) and torch.equal(first[1], first[2])


def test_tiny_imagenet_transform_and_resizing(tiny):
    data = tiny_imagenet(root=tiny.root, download=False)
    assert data.transform == BatchTransform(
        scale=1 / 255,
        mean=(0.480, 0.448, 0.398),
        std=(0.277, 0.269, 0.282),
        crop_padding=8,
        flip=True,
    )
    small = tiny_imagenet(root=tiny.root, download=False, augment=False, input_shape=[3, 32, 32])
    assert not small.transform.augments
    assert small.input_shape == (3, 32, 32) and small.test.x[0].shape == (3, 32, 32)


SMALL = 6  # classes of the trees that tests break on purpose


def small_tiny(tmp_path: Path) -> tuple[formats.Written, Path]:
    """A fresh 6-class Tiny-ImageNet tree (official layout) and its tiny-imagenet-200/ folder."""
    written = formats.write_tiny_imagenet(tmp_path, num_classes=SMALL)
    return written, tmp_path / "tiny-imagenet-200"


def test_tiny_imagenet_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        tiny_imagenet(root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "tiny-imagenet-200") in message
    assert "wnids.txt" in message and "val/val_annotations.txt" in message
    assert "tiny-imagenet-200.zip" in message

    written, base = small_tiny(tmp_path)
    shutil.rmtree(base / "train" / written.classes[2])
    with pytest.raises(FileNotFoundError, match=f"missing directory .*{written.classes[2]}/images"):
        tiny_imagenet(root=tmp_path, download=False, num_classes=SMALL)


def test_tiny_imagenet_corrupt_annotations(tmp_path):
    _, base = small_tiny(tmp_path)
    annotations = base / "val" / "val_annotations.txt"
    lines = annotations.read_text().splitlines()
    annotations.write_text("\n".join([*lines[:4], lines[4].replace("\t", " "), *lines[5:]]))
    with pytest.raises(ValueError, match="val_annotations.txt, line 5: expected 6 tab-separated"):
        tiny_imagenet(root=tmp_path, download=False, num_classes=SMALL)

    annotations.write_text("\n".join(["val_0.JPEG\tn99999999\t0\t0\t1\t1", *lines[1:]]))
    with pytest.raises(ValueError, match="'n99999999' of val_0.JPEG is not in wnids.txt"):
        tiny_imagenet(root=tmp_path, download=False, num_classes=SMALL)

    annotations.write_text("\n".join(lines))
    (base / "val" / "images" / "val_3.JPEG").unlink()
    with pytest.raises(FileNotFoundError, match=r"val_3\.JPEG, listed in .*val_annotations.txt"):
        tiny_imagenet(root=tmp_path, download=False, num_classes=SMALL)


def test_tiny_imagenet_declared_classes_and_corrupt_image(tiny, tmp_path):
    with pytest.raises(ValueError, match="num_classes=100 but the data has 200 classes"):
        tiny_imagenet(root=tiny.root, download=False, num_classes=100)
    _, base = small_tiny(tmp_path)
    broken = base / "val" / "images" / "val_0.JPEG"
    broken.write_bytes(b"\xff\xd8 not really a JPEG")
    data = tiny_imagenet(root=tmp_path, download=False, num_classes=SMALL)  # nothing decoded yet
    with pytest.raises(OSError, match=f"cannot decode image file {broken}"):
        data.test.x[0]


def test_tiny_imagenet_download_is_attempted(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(folder, "_download_tiny_imagenet", lambda base: seen.append(base))
    with pytest.raises(FileNotFoundError, match="still missing after the download"):
        tiny_imagenet(root=tmp_path, download=True)
    assert seen == [tmp_path]


# ------------------------------------------------------------------------ ImageFolder


def test_imagefolder_classes_files_and_resizing(tree):
    data = imagefolder(root=tree.root, num_classes=3, input_shape=[3, 24, 24], val_fraction=0.2)
    assert data.info["classes"] == ["cat", "dog", "frog"] and data.info["test_dir"] == "test"
    assert len(data.train) + len(data.val) == len(tree.train_y) == 30  # notes/hidden skipped
    assert len(data.val) == 6 and len(data.test) == 9
    assert np.array_equal(data.test.y.numpy(), tree.test_y)
    for split in (data.train, data.val):
        assert np.array_equal(split.y.numpy(), tree.train_y[split.source_index.numpy()])
    for split in (data.train, data.test):
        x = decode(split.x)
        assert x.dtype == torch.uint8 and x.shape == (len(split), 3, 24, 24)  # PNG, JPG, grey
        assert (red(x) - split.y.float()).abs().max() < 3


def test_imagefolder_exact_pixels_and_grey_input(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for label, name in enumerate(("a", "b")):
            (tmp_path / split / name).mkdir(parents=True)
            pixels = np.arange(12 * 10, dtype=np.uint8).reshape(10, 12) + 50 * label
            Image.fromarray(np.stack([pixels, pixels // 2, 255 - pixels], -1)).save(
                tmp_path / split / name / "x.png"
            )
    data = imagefolder(root=tmp_path, num_classes=2, input_shape=[3, 10, 12], val_fraction=0.0)
    x = data.test.x[1]
    expected = np.arange(120, dtype=np.uint8).reshape(10, 12) + 50
    assert np.array_equal(x.numpy(), np.stack([expected, expected // 2, 255 - expected]))
    grey = imagefolder(root=tmp_path, num_classes=2, input_shape=[1, 10, 12], val_fraction=0.0)
    assert grey.test.x[0].shape == (1, 10, 12) and len(grey.transform.mean) == 1


def test_imagefolder_uses_val_when_there_is_no_test(tmp_path):
    written = formats.write_imagefolder(tmp_path, classes=("b", "a"), test_dir="val")
    data = imagefolder(root=tmp_path, num_classes=2, input_shape=[3, 16, 16])
    assert data.info["test_dir"] == "val" and data.info["classes"] == ["a", "b"]
    assert np.array_equal(data.test.y.numpy(), written.test_y)


def test_imagefolder_statistics_computed_or_given(tree):
    data = imagefolder(root=tree.root, num_classes=3, input_shape=[3, 16, 16], stats_samples=50)
    pixels = decode(data.train.x).double() / 255
    mean = pixels.mean(dim=(0, 2, 3))
    std = pixels.permute(1, 0, 2, 3).flatten(1).std(dim=1, unbiased=False)
    assert data.transform.mean == pytest.approx(tuple(mean.tolist()), abs=1e-5)
    assert data.transform.std == pytest.approx(tuple(std.tolist()), abs=1e-5)
    assert data.info["normalisation"]["from"] == f"{len(data.train)} training images"
    assert not data.transform.augments

    given = imagefolder(
        root=tree.root,
        num_classes=3,
        input_shape=[3, 16, 16],
        mean=[0.5, 0.5, 0.5],
        std=[0.25, 0.25, 0.25],
        augment=True,
        crop_padding=2,
        flip=False,
    )
    assert given.transform == BatchTransform(
        scale=1 / 255, mean=(0.5,) * 3, std=(0.25,) * 3, crop_padding=2
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_classes": 4}, ValueError, "num_classes=4 but the data has 3 classes"),
        ({"input_shape": [4, 8, 8]}, ValueError, r"input_shape=\[4, 8, 8\] is invalid"),
        ({"input_shape": [8, 8]}, ValueError, r"input_shape=\[8, 8\] is invalid"),
        ({"mean": [0.5, 0.5]}, ValueError, "give both dataset.mean and dataset.std"),
        ({"mean": [0.5] * 2, "std": [0.2] * 2}, ValueError, r"dataset.mean=\[0.5, 0.5\] is inv"),
        ({"mean": [0.5] * 3, "std": [0.0] * 3}, ValueError, "std=.* is invalid.*> 0"),
        ({"stats_samples": 0}, ValueError, "stats_samples=0 is invalid"),
        ({"crop_padding": -1}, ValueError, "crop_padding=-1 is invalid"),
        ({"flip": "yes"}, ValueError, "flip='yes' is invalid"),
        ({"memory_limit_mb": -1}, ValueError, "memory_limit_mb=-1 is invalid"),
        ({"root": None}, ValueError, "dataset.root is not set"),
    ],
)
def test_imagefolder_invalid_options(tree, kwargs, error, match):
    options = {"root": tree.root, "num_classes": 3, "input_shape": [3, 8, 8], **kwargs}
    with pytest.raises(error, match=match):
        imagefolder(**options)


def test_imagefolder_layout_errors(tree, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"has no train/ and no test/ \(or val/\)") as info:
        imagefolder(root=tmp_path / "empty", num_classes=3, input_shape=[3, 8, 8])
    assert str(tmp_path / "empty") in str(info.value) and "dataset.root" in str(info.value)

    root = tmp_path / "copy"
    shutil.copytree(tree.root, root)
    (root / "test" / "horse").mkdir()
    with pytest.raises(ValueError, match="horse of .*test have no counterpart"):
        imagefolder(root=root, num_classes=3, input_shape=[3, 8, 8])
    (root / "test" / "horse").rmdir()
    (root / "train" / "emu").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files in class folder.*emu"):
        imagefolder(root=root, num_classes=4, input_shape=[3, 8, 8])


def test_image_files_pickle_for_workers(tree):
    data = imagefolder(
        root=tree.root, num_classes=3, input_shape=[3, 8, 8], mean=[0.5] * 3, std=[0.5] * 3
    )
    source = pickle.loads(pickle.dumps(data.test.x))
    assert len(source) == len(data.test) and torch.equal(source[4], data.test.x[4])
    assert repr(ImageFiles([], (3, 8, 8))) == "ImageFiles(0 files, shape=[3, 8, 8])"
    with pytest.raises(IndexError):
        ImageFiles([], (3, 8, 8))[0]


def test_channel_stats_matches_numpy():
    x = torch.randint(
        0, 256, (37, 3, 5, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    mean, std = channel_stats(x, chunk=8)
    ref = x.double().numpy() / 255
    assert mean == pytest.approx(tuple(ref.mean(axis=(0, 2, 3))), abs=1e-6)
    assert std == pytest.approx(tuple(ref.std(axis=(0, 2, 3))), abs=1e-6)


# ----------------------------------------------------------------- config and CLI


@pytest.mark.parametrize(
    ("token", "overrides"),
    [
        ("kmnist49", ["dataset.download=false"]),
        ("tiny_imagenet", ["dataset.download=false"]),
        ("imagefolder", ["dataset.num_classes=3"]),
    ],
)
def test_yaml_instantiates(token, overrides, k49, tiny, tree):
    root = {"kmnist49": k49, "tiny_imagenet": tiny, "imagefolder": tree}[token].root
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[f"dataset={token}", f"dataset.root={root}", *overrides],
        )
    assert cfg.dataset.loader == "auto"
    data = instantiate(cfg.dataset)
    assert data.num_classes == cfg.dataset.num_classes
    assert list(data.input_shape) == list(cfg.dataset.input_shape)


def test_imagefolder_yaml_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_DATA", str(tmp_path))
    with initialize_config_module(config_module="losslab.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["dataset=imagefolder"])
    assert cfg.dataset.root == f"{tmp_path}/imagefolder"
    with pytest.raises(InstantiationException, match=re.escape(f"{tmp_path}/imagefolder has no")):
        instantiate(cfg.dataset)


@pytest.mark.parametrize("token", ["kmnist49", "tiny_imagenet", "imagefolder"])
def test_trains_one_epoch_through_the_cli(token, k49, tiny, tree, tmp_path):
    root = {"kmnist49": k49, "tiny_imagenet": tiny, "imagefolder": tree}[token].root
    extra = {
        "kmnist49": ["dataset.download=false", "dataset.val_fraction=0.34"],
        "tiny_imagenet": ["dataset.download=false", "dataset.val_fraction=0.5"],
        "imagefolder": [
            "dataset.num_classes=3",
            "dataset.input_shape=[3,16,16]",
            "dataset.loader=dataloader",  # lazy images served by DataLoader workers
            "trainer.num_workers=1",
        ],
    }[token]
    code, results = run_train(
        tmp_path / "run",
        f"dataset={token}",
        f"dataset.root={root}",
        *extra,
        "model=cnn",
        "model.width=4",
        "trainer.epochs=1",
        "trainer.batch_size=16",
        "trainer.device=cpu",
    )
    assert results is not None, "no results.json written"
    assert code == 0 and results["status"] == "completed", results.get("error")
