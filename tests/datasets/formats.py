"""Tiny files in each source's exact on-disk format, for testing the loaders without network.

Every writer puts its files where the loader looks for them under ``root``,
uses the official file names, keys, dtypes and array layouts, puts every
class in both the training and the test split, and returns what it wrote
(:class:`Written`) so tests can compare the loaded data with it.

Pixel arrays are seeded random noise; files decoded by PIL (JPEG/PNG) use
flat colours that encode the label (red channel = class index), so label and
image stay checkable after lossy compression.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

MNIST_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}


@dataclass
class Written:
    """What a writer put on disk: official train and test images ``[N, C, H, W]`` and labels.

    For folder trees ``train_x``/``test_x`` are None (the images are files) and
    ``classes`` names the class of each label.
    """

    root: Path
    train_x: np.ndarray | None
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray
    classes: list[str] | None = None


def _labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Every class ``per_class`` times, in a shuffled order (official files are not sorted)."""
    return rng.permutation(np.repeat(np.arange(num_classes), per_class))


def _pixels(n: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


# ------------------------------------------------------------------------ MNIST family


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x0800 + ndim, big-endian uint32 sizes, then the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_mnist(
    root: Path,
    token: str = "mnist",
    *,
    train_per_class: int = 6,
    test_per_class: int = 2,
    compressed: bool = True,
    seed: int = 0,
) -> Written:
    """The four IDX files of MNIST, Fashion-MNIST or KMNIST in ``<root>/<Folder>/raw/``.

    Compressed as distributed (``.gz``) unless ``compressed=False``.
    """
    rng = np.random.default_rng(seed)
    raw = Path(root) / MNIST_FOLDERS[token] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    train_y, test_y = _labels(10, train_per_class, rng), _labels(10, test_per_class, rng)
    train_x, test_x = _pixels(len(train_y), (28, 28), rng), _pixels(len(test_y), (28, 28), rng)
    for stem, array in (
        ("train-images-idx3-ubyte", train_x),
        ("train-labels-idx1-ubyte", train_y),
        ("t10k-images-idx3-ubyte", test_x),
        ("t10k-labels-idx1-ubyte", test_y),
    ):
        data = idx_bytes(array)
        if compressed:
            (raw / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / stem).write_bytes(data)
    return Written(Path(root), train_x[:, None], train_y, test_x[:, None], test_y)


# ------------------------------------------------------------------------------ CIFAR


def _cifar_pickle(path: Path, batch: dict, *, bytes_keys: bool) -> None:
    if bytes_keys:  # how the official Python 2 pickles read with encoding="bytes"
        batch = {k.encode(): v for k, v in batch.items()}
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_cifar10(
    root: Path,
    *,
    train_per_class: int = 6,
    test_per_class: int = 2,
    bytes_keys: bool = False,
    seed: int = 0,
) -> Written:
    """``<root>/cifar-10-batches-py/``: ``data_batch_1..5``, ``test_batch``, ``batches.meta``.

    Each batch is a pickled dict with ``batch_label``, ``labels`` (list of ints),
    ``data`` (uint8 ``[N, 3072]``: red, green, blue planes of 32x32) and ``filenames``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_y, test_y = _labels(10, train_per_class, rng), _labels(10, test_per_class, rng)
    train_x, test_x = (
        _pixels(len(train_y), (3, 32, 32), rng),
        _pixels(len(test_y), (3, 32, 32), rng),
    )
    chunks = np.array_split(np.arange(len(train_y)), 5)
    for b, idx in enumerate(chunks, start=1):
        _cifar_pickle(
            folder / f"data_batch_{b}",
            {
                "batch_label": f"training batch {b} of 5",
                "labels": train_y[idx].tolist(),
                "data": train_x[idx].reshape(len(idx), 3072),
                "filenames": [f"img_{i}.png" for i in idx],
            },
            bytes_keys=bytes_keys,
        )
    _cifar_pickle(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": test_y.tolist(),
            "data": test_x.reshape(len(test_y), 3072),
            "filenames": [f"test_{i}.png" for i in range(len(test_y))],
        },
        bytes_keys=bytes_keys,
    )
    _cifar_pickle(
        folder / "batches.meta",
        {
            "num_cases_per_batch": len(chunks[0]),
            "label_names": [f"class_{k}" for k in range(10)],
            "num_vis": 3072,
        },
        bytes_keys=bytes_keys,
    )
    return Written(Path(root), train_x, train_y, test_x, test_y)


def write_cifar100(
    root: Path, *, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0
) -> Written:
    """``<root>/cifar-100-python/``: ``train``, ``test`` and ``meta``.

    ``train``/``test`` are pickled dicts with ``filenames``, ``batch_label``,
    ``fine_labels``, ``coarse_labels`` and ``data`` (uint8 ``[N, 3072]``).
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    train_y, test_y = _labels(100, train_per_class, rng), _labels(100, test_per_class, rng)
    train_x, test_x = (
        _pixels(len(train_y), (3, 32, 32), rng),
        _pixels(len(test_y), (3, 32, 32), rng),
    )
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        _cifar_pickle(
            folder / name,
            {
                "filenames": [f"{name}_{i}.png" for i in range(len(y))],
                "batch_label": f"{name}ing batch 1 of 1",
                "fine_labels": y.tolist(),
                "coarse_labels": (y // 5).tolist(),
                "data": x.reshape(len(y), 3072),
            },
            bytes_keys=False,
        )
    _cifar_pickle(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{k}" for k in range(100)],
            "coarse_label_names": [f"coarse_{k}" for k in range(20)],
        },
        bytes_keys=False,
    )
    return Written(Path(root), train_x, train_y, test_x, test_y)


# ------------------------------------------------------------------------------- SVHN


def write_svhn(
    root: Path, *, train_per_class: int = 6, test_per_class: int = 2, seed: int = 0
) -> Written:
    """``<root>/train_32x32.mat`` and ``test_32x32.mat`` (MATLAB 5 files, as scipy writes them).

    ``X`` is uint8 ``[32, 32, 3, N]`` (row, column, channel, image) and ``y``
    uint8 ``[N, 1]`` with labels 1..10 (10 for digit 0). The returned labels are
    the digit values 0..9 and the images ``[N, 3, 32, 32]``.
    """
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    out = []
    for name, per_class in (("train", train_per_class), ("test", test_per_class)):
        digits = _labels(10, per_class, rng)
        x = _pixels(len(digits), (3, 32, 32), rng)
        raw_y = np.where(digits == 0, 10, digits).astype(np.uint8)[:, None]
        savemat(
            Path(root) / f"{name}_32x32.mat",
            {"X": np.ascontiguousarray(x.transpose(2, 3, 1, 0)), "y": raw_y},
        )
        out += [x, digits]
    return Written(Path(root), *out)


# ------------------------------------------------------------------------ Kuzushiji-49


def write_k49(
    root: Path, *, train_per_class: int = 3, test_per_class: int = 1, seed: int = 0
) -> Written:
    """The four K-49 archives in ``<root>/kmnist49/``: ``np.savez`` files holding ``arr_0``.

    Images are uint8 ``[N, 28, 28]``, labels uint8 ``[N]`` in 0..48.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "kmnist49"
    folder.mkdir(parents=True, exist_ok=True)
    train_y, test_y = _labels(49, train_per_class, rng), _labels(49, test_per_class, rng)
    train_x, test_x = _pixels(len(train_y), (28, 28), rng), _pixels(len(test_y), (28, 28), rng)
    for name, array in (
        ("k49-train-imgs", train_x),
        ("k49-train-labels", train_y.astype(np.uint8)),
        ("k49-test-imgs", test_x),
        ("k49-test-labels", test_y.astype(np.uint8)),
    ):
        np.savez_compressed(folder / f"{name}.npz", array)
    return Written(Path(root), train_x[:, None], train_y, test_x[:, None], test_y)


# ---------------------------------------------------------------------- image files


def flat_image(
    path: Path,
    label: int,
    k: int,
    size: tuple[int, int] = (64, 64),
    *,
    grey: bool = False,
    fmt: str | None = None,
) -> None:
    """A flat-colour image whose red channel is ``label`` (grey: every channel)."""
    from PIL import Image

    if grey:
        image = Image.new("L", size, int(label))
    else:
        image = Image.new("RGB", size, (int(label), (37 * k) % 256, 200))
    image.save(path, format=fmt)


def write_tiny_imagenet(
    root: Path, *, num_classes: int = 200, train_per_class: int = 2, val_per_class: int = 1
) -> Written:
    """``<root>/tiny-imagenet-200/`` as in the official zip.

    ``wnids.txt`` (unsorted, as shipped), ``words.txt``,
    ``train/<wnid>/images/<wnid>_<k>.JPEG`` with ``train/<wnid>/<wnid>_boxes.txt``,
    ``val/images/val_<k>.JPEG`` labelled by ``val/val_annotations.txt`` (file, wnid,
    four box numbers, tab-separated) and unlabelled ``test/images/test_<k>.JPEG``.
    Images are 64x64 JPEGs; the first training image of every class is greyscale.
    Returned labels index the sorted wnids; the val labels follow the annotation order.
    """
    folder = Path(root) / "tiny-imagenet-200"
    rng = np.random.default_rng(0)
    wnids = [f"n{1440000 + 7919 * k:08d}" for k in range(num_classes)]
    listed = [wnids[i] for i in rng.permutation(num_classes)]
    label = {w: k for k, w in enumerate(sorted(wnids))}
    (folder / "val" / "images").mkdir(parents=True, exist_ok=True)
    (folder / "test" / "images").mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("".join(f"{w}\n" for w in listed))
    (folder / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids))
    train_y = []
    for wnid in sorted(wnids):
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        boxes = []
        for k in range(train_per_class):
            file = f"{wnid}_{k}.JPEG"
            flat_image(images / file, label[wnid], k, grey=k == 0, fmt="JPEG")
            boxes.append(f"{file}\t0\t0\t63\t63\n")
            train_y.append(label[wnid])
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(boxes))
    order = [w for _ in range(val_per_class) for w in listed]
    rng.shuffle(order)
    lines, test_y = [], []
    for k, wnid in enumerate(order):
        file = f"val_{k}.JPEG"
        flat_image(folder / "val" / "images" / file, label[wnid], k, fmt="JPEG")
        lines.append(f"{file}\t{wnid}\t{k % 10}\t{k % 7}\t{40 + k % 20}\t{50 + k % 13}\n")
        test_y.append(label[wnid])
    (folder / "val" / "val_annotations.txt").write_text("".join(lines))
    for k in range(3):
        flat_image(folder / "test" / "images" / f"test_{k}.JPEG", 0, k, fmt="JPEG")
    return Written(
        Path(root), None, np.asarray(train_y), None, np.asarray(test_y), classes=sorted(wnids)
    )


def write_imagefolder(
    root: Path,
    *,
    classes: tuple[str, ...] = ("cat", "dog", "frog"),
    train_per_class: int = 10,
    test_per_class: int = 3,
    test_dir: str = "test",
) -> Written:
    """``<root>/train/<class>/*`` and ``<root>/<test_dir>/<class>/*`` in mixed formats.

    Class folders are created out of name order; files alternate PNG (32x32),
    JPEG (48x40, upper-case ``.JPG``) and greyscale PNG in a nested folder;
    a hidden file and a text file are ignored by loaders. Returned labels index
    the sorted class names, in sorted-path order within each class.
    """
    root = Path(root)
    train_y, test_y = [], []
    names = sorted(classes)
    for split, per_class, out in (
        ("train", train_per_class, train_y),
        (test_dir, test_per_class, test_y),
    ):
        for name in reversed(classes):
            folder = root / split / name
            (folder / "more").mkdir(parents=True, exist_ok=True)
            label = names.index(name)
            for k in range(per_class):
                if k % 3 == 0:
                    flat_image(folder / f"img_{k:03d}.png", label, k, (32, 32))
                elif k % 3 == 1:
                    flat_image(folder / f"img_{k:03d}.JPG", label, k, (48, 40), fmt="JPEG")
                else:
                    flat_image(folder / "more" / f"img_{k:03d}.png", label, k, (32, 32), grey=True)
            (folder / "notes.txt").write_text("not an image\n")
            (folder / ".hidden.png").write_bytes(b"not an image either")
        out.extend(sorted(names.index(c) for c in classes for _ in range(per_class)))
    return Written(root, None, np.asarray(train_y), None, np.asarray(test_y), classes=names)


CONF_DATASET = Path(__file__).resolve().parents[2] / "losslab" / "conf" / "dataset"


def vision_preset(token: str):
    """The data set of ``conf/dataset/<token>.yaml`` as a function of keyword options,
    as the runner builds it: the YAML's values, ``options`` replacing them."""
    from losslab.datasets.vision import load_vision

    def load(**options):
        values = OmegaConf.to_container(
            OmegaConf.load(CONF_DATASET / f"{token}.yaml"), resolve=True
        )
        assert values.pop("_target_") == "losslab.datasets.vision.load_vision"
        return load_vision(**{**values, **options})

    return load
