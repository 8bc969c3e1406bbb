"""The torchvision family of image sets, read from their official files.

MNIST, Fashion-MNIST, KMNIST, CIFAR-10, CIFAR-100 and SVHN are read here from
the files their authors distribute, in the directory layout torchvision uses
under ``root``; torchvision is used only to download missing files (its dataset
classes verify checksums, so they are not used to read). Images are kept in
memory as uint8 tensors ``[N, C, H, W]``; scaling to [0, 1], per-channel
normalisation and training augmentation are declared as a
:class:`~losslab.datasets.base.BatchTransform` and applied per batch by the runner.

Each loader takes keyword arguments only (they mirror ``conf/dataset/<token>.yaml``)
and returns a :class:`~losslab.datasets.base.DataBundle` whose test split is the
official test split and whose validation split is a stratified share of the
official training split (``source_index`` is the position in that split).

The helpers that check options and locate (or download) files are shared with
:mod:`losslab.datasets.folder`.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from losslab.datasets.base import BatchTransform, DataBundle, bundle_with_official_test

log = logging.getLogger(__name__)

#: Values of ``dataset.loader`` (read by the runner: how batches are served).
LOADER_MODES = ("auto", "memory", "dataloader")


# --------------------------------------------------------------------------- options


def resolve_root(name: str, root: str | os.PathLike) -> Path:
    """``dataset.root`` as an absolute path (``~`` expanded); the directory may not exist yet."""
    if not isinstance(root, str | os.PathLike) or not str(root).strip():
        raise ValueError(f"dataset '{name}': dataset.root={root!r} is invalid: give a directory")
    return Path(root).expanduser().absolute()


def check_options(
    name: str,
    *,
    split_seed: int,
    val_fraction: float,
    loader: str,
    **flags: Any,
) -> None:
    """Fail clearly on option values every loader shares.

    Args:
        name: the data set's token (for messages).
        split_seed: seed of the validation split (an int >= 0).
        val_fraction: share of the official training split used for validation, in [0, 1).
        loader: how the runner serves batches: one of :data:`LOADER_MODES`.
        **flags: boolean options (``download``, ``augment``, ...), checked to be bools.
    """
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(
                f"dataset '{name}': dataset.{key}={value!r} is invalid: use true/false"
            )
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise ValueError(
            f"dataset '{name}': dataset.split_seed={split_seed!r} is invalid: use an int >= 0"
        )
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, int | float)
        or not 0.0 <= val_fraction < 1.0
    ):
        raise ValueError(
            f"dataset '{name}': dataset.val_fraction={val_fraction!r} is invalid: must be in [0, 1)"
        )
    if loader not in LOADER_MODES:
        raise ValueError(
            f"dataset '{name}': dataset.loader={loader!r} is invalid: use one of "
            f"{', '.join(LOADER_MODES)}"
        )


def check_image_shape(
    name: str, input_shape: Sequence[int], *, expected: Sequence[int] | None = None
) -> tuple[int, int, int]:
    """``input_shape`` as ``(C, H, W)``; C must be 1 or 3, and equal ``expected`` when given."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        raise ValueError(
            f"dataset '{name}': dataset.input_shape={list(input_shape)} is invalid: "
            "give [C, H, W] with C = 1 (grey) or 3 (RGB)"
        )
    if expected is not None and shape != tuple(expected):
        raise ValueError(
            f"dataset '{name}': dataset.input_shape={list(shape)} but its images have shape "
            f"{list(expected)}"
        )
    return shape  # type: ignore[return-value]


# ----------------------------------------------------------------------------- files


def _present(folder: Path, file: str, suffixes: Sequence[str]) -> Path | None:
    for suffix in suffixes:
        if (folder / (file + suffix)).is_file():
            return folder / (file + suffix)
    return None


def _missing(folder: Path, files: Sequence[str], suffixes: Sequence[str]) -> list[str]:
    return [f for f in files if _present(folder, f, suffixes) is None]


def ensure_files(
    name: str,
    folder: Path,
    files: Sequence[str],
    *,
    root: Path,
    download: bool,
    fetch: Callable[[], None],
    how: str,
    suffixes: Sequence[str] = ("",),
) -> list[Path]:
    """The paths of ``files`` in ``folder``, downloading them first when missing and allowed.

    Args:
        name: the data set's token (for messages).
        folder: where the files must be.
        files: their names.
        root: ``dataset.root`` (named in the message: it sets where ``folder`` is).
        download: call ``fetch`` when some are missing.
        fetch: downloads the official files into place (network needed).
        how: how a user provides the files by hand (where to get them, what to extract).
        suffixes: accepted name endings of each file, in order of preference
            (``("", ".gz")`` accepts ``f`` or ``f.gz``).

    Raises:
        FileNotFoundError: files are missing and were not (or could not be) downloaded;
            the message names ``folder``, the missing files and how to provide them.
    """
    missing = _missing(folder, files, suffixes)
    reason = "dataset.download=false, so nothing was downloaded"
    if missing and download:
        log.info("dataset '%s': downloading %s into %s", name, ", ".join(missing), folder)
        try:
            fetch()
        except Exception as exc:  # any failure becomes one clear message
            reason = f"downloading them failed ({type(exc).__name__}: {exc})"
        else:
            reason = "they are still missing after the download"
        missing = _missing(folder, files, suffixes)
    if missing:
        endings = [s for s in suffixes if s]
        alt = f" (each may end in {' or '.join(endings)})" if endings else ""
        raise FileNotFoundError(
            f"dataset '{name}': missing {', '.join(missing)}{alt} in {folder}; {reason}. "
            f"Provide them by running with dataset.download=true on a machine with network "
            f"access, or by placing the official files there ({how}); dataset.root (now "
            f"{root}) sets where they are looked for."
        )
    return [p for f in files if (p := _present(folder, f, suffixes)) is not None]


def _download_with_torchvision(class_name: str, root: Path, splits: Sequence[dict]) -> None:
    """Download the official files with torchvision's dataset class ``class_name``."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, class_name)
    for kwargs in splits:
        cls(str(root), download=True, **kwargs)


def _torchvision_fetch(class_name: str, root: Path, splits: Sequence[dict]) -> Callable[[], None]:
    # Looked up at call time so that tests can replace the downloader.
    return lambda: _download_with_torchvision(class_name, root, splits)


# ---------------------------------------------------------------------------- readers


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array (the MNIST file format), plain or gzip-compressed.

    The header is the magic number ``0x0800 + ndim`` (two zero bytes, type code
    0x08 for unsigned bytes, number of dimensions) followed by ``ndim`` big-endian
    uint32 sizes; the data follows in C order.

    Raises:
        ValueError: the file cannot be read, its magic number is wrong, or its
            length disagrees with the sizes in its header.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read the IDX file ({exc})") from exc
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != 0x0800 + ndim:
        raise ValueError(
            f"{path}: wrong magic number 0x{magic:08x}: expected 0x{0x0800 + ndim:08x} "
            f"(unsigned bytes, {ndim} dimensions); is this the right IDX file?"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: the header declares sizes {list(dims)} ({expected} bytes of data) but the "
            f"file holds {len(raw) - header}; it is truncated or corrupt"
        )
    # a writable copy: torch tensors made from it may be modified in place
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def check_labels(path: Path, labels: np.ndarray, num_classes: int, *, low: int = 0) -> None:
    """Fail clearly when labels in ``path`` fall outside ``low..low+num_classes-1``."""
    if labels.size and (labels.min() < low or labels.max() >= low + num_classes):
        raise ValueError(
            f"{path}: labels out of range: found {int(labels.min())}..{int(labels.max())}, "
            f"expected {low}..{low + num_classes - 1}"
        )


def _read_mnist_split(
    images_path: Path, labels_path: Path, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: images of {images.shape[1]}x{images.shape[2]} pixels, expected 28x28"
        )
    if len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: {len(labels)} labels but {images_path.name} holds {len(images)} images"
        )
    check_labels(labels_path, labels, classes)
    return images[:, None], labels.astype(np.int64)


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR "python version" batch file: a pickled dict with ``data`` and labels.

    ``data`` is uint8 ``[N, 3072]`` (per row: 1,024 red, then green, then blue
    values of a 32x32 image in row-major order) and ``label_key`` (``labels``
    for CIFAR-10, ``fine_labels`` for CIFAR-100) a list of N ints. The official
    files are Python 2 pickles, read with ``encoding="latin1"``; pickles execute
    code when loaded, so only read files from a trusted source.

    Returns:
        Images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` int64.
    """
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
    except Exception as exc:  # unpickling garbage raises many exception types
        raise ValueError(
            f"{path}: not a CIFAR python batch file (cannot unpickle: {type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    for key in ("data", label_key):
        if key not in batch:
            raise ValueError(f"{path}: no '{key}' entry (found keys {sorted(map(str, batch))})")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(f"{path}: 'data' must be a uint8 array [N, 3072], found {_describe(data)}")
    if data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' has shape {list(data.shape)}, expected [N, 3072]")
    labels = np.asarray(batch[label_key])
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: '{label_key}' must hold {len(data)} ints (one per image), found "
            f"{_describe(labels)}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN "format 2" file (``train_32x32.mat``, ``test_32x32.mat``).

    A MATLAB file with ``X`` uint8 ``[32, 32, 3, N]`` (row, column, channel,
    image) and ``y`` ``[N, 1]`` with labels 1..10, where 10 means digit 0.

    Returns:
        Images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` int64 in 0..9 (digit value).
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=["X", "y"])
    except Exception as exc:  # scipy raises several types for unreadable files
        raise ValueError(
            f"{path}: not a readable SVHN .mat file ({type(exc).__name__}: {exc})"
        ) from exc
    for key in ("X", "y"):
        if key not in mat:
            raise ValueError(f"{path}: no '{key}' array in the .mat file")
    x, y = mat["X"], np.asarray(mat["y"])
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise ValueError(f"{path}: 'X' must be uint8 [32, 32, 3, N], found {_describe(x)}")
    n = x.shape[3]
    if y.size != n or y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
        raise ValueError(
            f"{path}: 'y' must have shape [{n}, 1] (one label per image), found {_describe(y)}"
        )
    y = y.reshape(-1).astype(np.int64)
    # Official labels are 1..10 with 10 for digit 0; 0 is accepted for digit 0 as well.
    check_labels(path, y, 11)
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y % 10


def _describe(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {list(a.shape)}"
    return type(a).__name__


# ---------------------------------------------------------------------------- loaders


def _bundle(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    num_classes: int,
    input_shape: Sequence[int],
    split_seed: int,
    val_fraction: float,
    transform: BatchTransform,
    info: dict,
) -> DataBundle:
    return bundle_with_official_test(
        name,
        torch.from_numpy(np.ascontiguousarray(train[0])),
        train[1],
        torch.from_numpy(np.ascontiguousarray(test[0])),
        test[1],
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        transform=transform,
        info=info,
    )


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _mnist_family(
    name: str,
    folder: str,
    mean: float,
    std: float,
    url: str,
    *,
    root: str | os.PathLike,
    download: bool,
    augment: bool,
    num_classes: int,
    input_shape: Sequence[int],
    split_seed: int,
    val_fraction: float,
    loader: str,
) -> DataBundle:
    base = resolve_root(name, root)
    check_options(
        name,
        download=download,
        augment=augment,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )
    raw = base / folder / "raw"
    paths = ensure_files(
        name,
        raw,
        _MNIST_FILES,
        root=base,
        download=download,
        fetch=_torchvision_fetch(folder, base, [{"train": True}]),
        how=f"the four .gz files from {url}, compressed or not",
        suffixes=("", ".gz"),
    )
    train = _read_mnist_split(paths[0], paths[1], 10)
    test = _read_mnist_split(paths[2], paths[3], 10)
    transform = BatchTransform(
        scale=1 / 255, mean=(mean,), std=(std,), crop_padding=2 if augment else 0
    )
    return _bundle(
        name,
        train,
        test,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        transform=transform,
        info={"source": str(raw), "loader": loader},
    )


def mnist(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = False,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 28, 28),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey, 10 classes.

    Source: the four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``) in
    ``<root>/MNIST/raw/``. Normalisation: mean 0.1307, std 0.3081 after scaling to [0, 1].

    Args:
        root: directory holding ``MNIST/raw/``.
        download: download the official files when missing (network needed).
        augment: random 28-pixel crops after 2-pixel zero padding (no flips: digits
            are not mirror-symmetric).
        num_classes: declared K (must be 10).
        input_shape: declared shape (must be ``[1, 28, 28]``).
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    References:
        LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
        recognition", Proceedings of the IEEE, 1998.
    """
    return _mnist_family(
        "mnist",
        "MNIST",
        0.1307,
        0.3081,
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        root=root,
        download=download,
        augment=augment,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )


def fashion_mnist(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = False,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 28, 28),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """Fashion-MNIST: 60,000 training and 10,000 test images of clothing, 28x28 grey, 10 classes.

    Source: the four IDX files (named as MNIST's, optionally ``.gz``) in
    ``<root>/FashionMNIST/raw/``. Normalisation: mean 0.2860, std 0.3530 after
    scaling to [0, 1].

    Args:
        root: directory holding ``FashionMNIST/raw/``.
        download: download the official files when missing (network needed).
        augment: random 28-pixel crops after 2-pixel zero padding.
        num_classes: declared K (must be 10).
        input_shape: declared shape (must be ``[1, 28, 28]``).
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    References:
        Xiao, Rasul & Vollgraf, "Fashion-MNIST: a novel image dataset for benchmarking
        machine learning algorithms", arXiv:1708.07747, 2017.
    """
    return _mnist_family(
        "fashion_mnist",
        "FashionMNIST",
        0.2860,
        0.3530,
        "https://github.com/zalandoresearch/fashion-mnist",
        root=root,
        download=download,
        augment=augment,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )


def kmnist(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = False,
    num_classes: int = 10,
    input_shape: Sequence[int] = (1, 28, 28),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """Kuzushiji-MNIST: 60,000 training and 10,000 test images of cursive Japanese
    characters, 28x28 grey, 10 classes.

    Source: the four IDX files (named as MNIST's, optionally ``.gz``) in
    ``<root>/KMNIST/raw/``. Normalisation: mean 0.1918, std 0.3483 after scaling
    to [0, 1].

    Args:
        root: directory holding ``KMNIST/raw/``.
        download: download the official files when missing (network needed).
        augment: random 28-pixel crops after 2-pixel zero padding.
        num_classes: declared K (must be 10).
        input_shape: declared shape (must be ``[1, 28, 28]``).
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    References:
        Clanuwat, Bober-Irizar, Kitamoto, Lamb, Yamamoto & Ha, "Deep learning for
        classical Japanese literature", NeurIPS Workshop on Machine Learning for
        Creativity and Design, 2018 (arXiv:1812.01718).
    """
    return _mnist_family(
        "kmnist",
        "KMNIST",
        0.1918,
        0.3483,
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        root=root,
        download=download,
        augment=augment,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )


def _cifar(
    name: str,
    folder: str,
    train_files: Sequence[str],
    test_file: str,
    label_key: str,
    classes: int,
    class_name: str,
    archive: str,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    *,
    root: str | os.PathLike,
    download: bool,
    augment: bool,
    num_classes: int,
    input_shape: Sequence[int],
    split_seed: int,
    val_fraction: float,
    loader: str,
) -> DataBundle:
    base = resolve_root(name, root)
    check_options(
        name,
        download=download,
        augment=augment,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )
    directory = base / folder
    paths = ensure_files(
        name,
        directory,
        [*train_files, test_file],
        root=base,
        download=download,
        fetch=_torchvision_fetch(class_name, base, [{"train": True}]),
        how=f"extract {archive} (https://www.cs.toronto.edu/~kriz/cifar.html) into {base}",
    )
    parts = [read_cifar_batch(p, label_key) for p in paths]
    for path, (_, labels) in zip(paths, parts, strict=True):
        check_labels(path, labels, classes)
    train = (
        np.concatenate([x for x, _ in parts[:-1]]),
        np.concatenate([y for _, y in parts[:-1]]),
    )
    transform = BatchTransform(
        scale=1 / 255, mean=mean, std=std, crop_padding=4 if augment else 0, flip=augment
    )
    return _bundle(
        name,
        train,
        parts[-1],
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        transform=transform,
        info={"source": str(directory), "loader": loader},
    )


def cifar10(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = True,
    num_classes: int = 10,
    input_shape: Sequence[int] = (3, 32, 32),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32x32, 10 classes.

    Source: the "python version" batches ``data_batch_1`` .. ``data_batch_5`` and
    ``test_batch`` in ``<root>/cifar-10-batches-py/`` (pickled dicts with ``data``
    uint8 ``[10000, 3072]`` and ``labels``). Normalisation: mean (0.4914, 0.4822,
    0.4465), std (0.2470, 0.2435, 0.2616) after scaling to [0, 1].

    Args:
        root: directory holding ``cifar-10-batches-py/``.
        download: download ``cifar-10-python.tar.gz`` when files are missing (network needed).
        augment: random 32-pixel crops after 4-pixel zero padding, and horizontal flips.
        num_classes: declared K (must be 10).
        input_shape: declared shape (must be ``[3, 32, 32]``).
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    References:
        Krizhevsky, "Learning multiple layers of features from tiny images",
        technical report, University of Toronto, 2009.
    """
    return _cifar(
        "cifar10",
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        "test_batch",
        "labels",
        10,
        "CIFAR10",
        "cifar-10-python.tar.gz",
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        root=root,
        download=download,
        augment=augment,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )


def cifar100(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = True,
    num_classes: int = 100,
    input_shape: Sequence[int] = (3, 32, 32),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """CIFAR-100: 50,000 training and 10,000 test colour images, 32x32, 100 (fine) classes.

    Source: ``train`` and ``test`` in ``<root>/cifar-100-python/`` (pickled dicts with
    ``data`` uint8 ``[N, 3072]`` and ``fine_labels``). Normalisation: mean (0.5071,
    0.4865, 0.4409), std (0.2673, 0.2564, 0.2762) after scaling to [0, 1].

    Args:
        root: directory holding ``cifar-100-python/``.
        download: download ``cifar-100-python.tar.gz`` when files are missing (network needed).
        augment: random 32-pixel crops after 4-pixel zero padding, and horizontal flips.
        num_classes: declared K (must be 100).
        input_shape: declared shape (must be ``[3, 32, 32]``).
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    References:
        Krizhevsky, "Learning multiple layers of features from tiny images",
        technical report, University of Toronto, 2009.
    """
    return _cifar(
        "cifar100",
        "cifar-100-python",
        ["train"],
        "test",
        "fine_labels",
        100,
        "CIFAR100",
        "cifar-100-python.tar.gz",
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        root=root,
        download=download,
        augment=augment,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )


def svhn(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = True,
    num_classes: int = 10,
    input_shape: Sequence[int] = (3, 32, 32),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """SVHN (Street View House Numbers, cropped digits): 73,257 training and 26,032 test
    colour images, 32x32, 10 classes (label = digit value).

    Source: ``train_32x32.mat`` and ``test_32x32.mat`` in ``<root>/`` (MATLAB files with
    ``X`` uint8 ``[32, 32, 3, N]`` and ``y`` ``[N, 1]``, where label 10 means digit 0;
    the ``extra`` split is not used). Normalisation: mean (0.4377, 0.4438, 0.4728),
    std (0.1980, 0.2010, 0.1970) after scaling to [0, 1].

    Args:
        root: directory holding the two ``.mat`` files.
        download: download the official files when missing (network needed).
        augment: random 32-pixel crops after 4-pixel zero padding (no flips: digits
            are not mirror-symmetric).
        num_classes: declared K (must be 10).
        input_shape: declared shape (must be ``[3, 32, 32]``).
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    References:
        Netzer, Wang, Coates, Bissacco, Wu & Ng, "Reading digits in natural images with
        unsupervised feature learning", NIPS Workshop on Deep Learning and Unsupervised
        Feature Learning, 2011.
    """
    name = "svhn"
    base = resolve_root(name, root)
    check_options(
        name,
        download=download,
        augment=augment,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )
    paths = ensure_files(
        name,
        base,
        ["train_32x32.mat", "test_32x32.mat"],
        root=base,
        download=download,
        fetch=_torchvision_fetch("SVHN", base, [{"split": "train"}, {"split": "test"}]),
        how="from http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)",
    )
    transform = BatchTransform(
        scale=1 / 255,
        mean=(0.4377, 0.4438, 0.4728),
        std=(0.1980, 0.2010, 0.1970),
        crop_padding=4 if augment else 0,
    )
    return _bundle(
        name,
        read_svhn_mat(paths[0]),
        read_svhn_mat(paths[1]),
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        transform=transform,
        info={"source": str(base), "loader": loader},
    )
