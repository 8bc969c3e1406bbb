"""Image sets read from folders of files: Kuzushiji-49, Tiny-ImageNet and any ImageFolder tree.

Tiny-ImageNet and generic ImageFolder trees are too large to decode up front:
their loaders read class names and file lists at load time and return lazy
:class:`ImageFiles` sources that decode one image with PIL when it is indexed
(converted to RGB, or to grey when the declared shape has one channel, and
resized to the declared height and width). Kuzushiji-49 comes as NumPy
archives and is held in memory as a uint8 tensor.

As in :mod:`losslab.datasets.vision`, pixels stay uint8 and the per-batch
normalisation and augmentation are declared with a
:class:`~losslab.datasets.base.BatchTransform`; the official test split (for
Tiny-ImageNet the labelled validation set) is the test split, and the
validation split is a stratified share of the official training split.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from losslab.datasets.base import (
    BatchTransform,
    DataBundle,
    bundle_with_official_test,
    check_declared,
    serves_with,
)
from losslab.datasets.loader import MEMORY_LIMIT_MB
from losslab.datasets.loader import check_memory_limit as _check_limit
from losslab.datasets.stats import channel_stats, sample_rows
from losslab.datasets.vision import (
    check_crop_padding,
    check_image_shape,
    check_labels,
    check_normalisation,
    check_options,
    ensure_files,
    resolve_root,
)

log = logging.getLogger(__name__)

TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
K49_URL = "http://codh.rois.ac.jp/kmnist/dataset/k49/"
K49_FILES = (
    "k49-train-imgs.npz",
    "k49-train-labels.npz",
    "k49-test-imgs.npz",
    "k49-test-labels.npz",
)


# ----------------------------------------------------------------------- lazy images


@lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """File endings (lower case, with the dot) of every image format PIL can open."""
    from PIL import Image

    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends in an extension PIL reads (case-insensitive), ignoring hidden files."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in image_extensions()


class ImageFiles:
    """Image files decoded on demand: ``source[i]`` is uint8 ``[C, H, W]``.

    Each access opens one file with PIL, converts it to RGB (``C = 3``) or grey
    (``C = 1``) and resizes it to ``H x W`` (bilinear) when its size differs.
    Holds only the paths, so it pickles cheaply to DataLoader workers.

    Args:
        paths: one file per image, in dataset order.
        shape: ``(C, H, W)`` of every returned image; C is 1 or 3.

    Example:
        >>> source = ImageFiles([], (3, 64, 64))
        >>> len(source)
        0
    """

    def __init__(self, paths: Sequence[str | os.PathLike], shape: Sequence[int]) -> None:
        c, h, w = (int(s) for s in shape)
        if c not in (1, 3) or h < 1 or w < 1:
            raise ValueError(
                f"ImageFiles: shape {list(shape)} is invalid: give [C, H, W], C 1 or 3"
            )
        self.paths = [os.fspath(p) for p in paths]
        self.shape = (c, h, w)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image

        path = self.paths[i]
        c, h, w = self.shape
        try:
            with Image.open(path) as image:
                image = image.convert("L" if c == 1 else "RGB")
                if image.size != (w, h):
                    image = image.resize((w, h), Image.Resampling.BILINEAR)
                pixels = np.array(image, dtype=np.uint8)  # [H, W] or [H, W, 3]
        except (OSError, SyntaxError, ValueError) as exc:  # PIL's decode errors
            raise OSError(f"cannot decode image file {path}: {exc}") from exc
        if c == 1:
            return torch.from_numpy(pixels)[None]
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files, shape={list(self.shape)})"


# --------------------------------------------------------------------- Kuzushiji-49


def read_npz_array(path: Path) -> np.ndarray:
    """The ``arr_0`` array of a NumPy ``.npz`` archive (as written by ``np.savez``)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "arr_0" not in archive.files:
                raise ValueError(f"{path}: no 'arr_0' array (found {sorted(archive.files)})")
            return archive["arr_0"]
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from exc


def _read_k49_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_npz_array(images_path), read_npz_array(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: 'arr_0' must be uint8 [N, 28, 28], found {images.dtype} "
            f"{list(images.shape)}"
        )
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{labels_path}: 'arr_0' must be integer labels [N], found {labels.dtype} "
            f"{list(labels.shape)}"
        )
    if len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: {len(labels)} labels but {images_path.name} holds {len(images)} images"
        )
    check_labels(labels_path, labels, 49)
    return images[:, None], labels.astype(np.int64)


def _download_k49(folder: Path) -> None:
    from torchvision.datasets.utils import download_url

    for file in K49_FILES:
        if not (folder / file).is_file():
            download_url(K49_URL + file, str(folder), filename=file)


@serves_with("loader")
def kmnist49(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = False,
    num_classes: int = 49,
    input_shape: Sequence[int] = (1, 28, 28),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """Kuzushiji-49: 232,365 training and 38,547 test images of Japanese hiragana,
    28x28 grey, 49 classes (heavily imbalanced).

    Source: ``k49-train-imgs.npz``, ``k49-train-labels.npz``, ``k49-test-imgs.npz`` and
    ``k49-test-labels.npz`` in ``<root>/kmnist49/``, NumPy archives whose ``arr_0`` holds
    uint8 images ``[N, 28, 28]`` or labels ``[N]``. Held in memory as uint8.
    Normalisation: mean and std of the training split (after the validation split
    is carved out) scaled to [0, 1], recorded in ``info["normalisation"]``.

    Args:
        root: directory holding ``kmnist49/``.
        download: download the four official files when missing (network needed).
        augment: random 28-pixel crops after 2-pixel zero padding (no flips).
        num_classes: declared K (must be 49).
        input_shape: declared shape (must be ``[1, 28, 28]``).
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    References:
        Clanuwat, Bober-Irizar, Kitamoto, Lamb, Yamamoto & Ha, "Deep learning for
        classical Japanese literature", NeurIPS Workshop on Machine Learning for
        Creativity and Design, 2018 (arXiv:1812.01718).
    """
    name = "kmnist49"
    base = resolve_root(name, root)
    check_options(
        name,
        download=download,
        augment=augment,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )
    folder = base / "kmnist49"
    paths = ensure_files(
        name,
        folder,
        K49_FILES,
        root=base,
        download=download,
        fetch=lambda: _download_k49(folder),
        how=f"the four .npz files from {K49_URL}",
    )
    train_x, train_y = _read_k49_split(paths[0], paths[1])
    test_x, test_y = _read_k49_split(paths[2], paths[3])
    bundle = bundle_with_official_test(
        name,
        torch.from_numpy(np.ascontiguousarray(train_x)),
        train_y,
        torch.from_numpy(np.ascontiguousarray(test_x)),
        test_y,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
    )
    mean, std = channel_stats(bundle.train.x, decimals=6)
    return replace(
        bundle,
        transform=BatchTransform(
            scale=1 / 255, mean=mean, std=std, crop_padding=2 if augment else 0
        ),
        info={
            "source": str(folder),
            "loader_requested": loader,  # the runner records the path used as "loader"
            "normalisation": {"mean": list(mean), "std": list(std), "from": "train split"},
        },
    )


# --------------------------------------------------------------------- Tiny-ImageNet


def _list_images(directory: Path) -> list[Path]:
    """Image files under ``directory`` (recursively), sorted by path."""
    found = [
        Path(dirpath) / f
        for dirpath, dirnames, files in os.walk(directory, followlinks=True)
        for f in files
        if is_image_file(f)
    ]
    return sorted(found)


def _read_wnids(path: Path) -> list[str]:
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids:
        raise ValueError(f"{path}: lists no class ids (wnids)")
    duplicates = sorted({w for w in wnids if wnids.count(w) > 1})
    if duplicates:
        raise ValueError(f"{path}: class ids listed twice: {', '.join(duplicates[:5])}")
    return sorted(wnids)


def _read_val_annotations(path: Path) -> list[tuple[str, str]]:
    """``(file name, wnid)`` of every line of ``val_annotations.txt``."""
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 6:
            raise ValueError(
                f"{path}, line {n}: expected 6 tab-separated fields (file name, wnid, 4 box "
                f"numbers), found {len(fields)}: {line[:80]!r}"
            )
        rows.append((fields[0], fields[1]))
    if not rows:
        raise ValueError(f"{path}: no annotations")
    return rows


def _download_tiny_imagenet(base: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(TINY_IMAGENET_URL, str(base), md5=TINY_IMAGENET_MD5)


@serves_with("loader", "memory_limit_mb")
def tiny_imagenet(
    *,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = True,
    num_classes: int = 200,
    input_shape: Sequence[int] = (3, 64, 64),
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
    memory_limit_mb: float = MEMORY_LIMIT_MB,
) -> DataBundle:
    """Tiny-ImageNet: 100,000 training and 10,000 labelled validation colour images,
    64x64, 200 classes; the labelled validation set is the test split (the official
    test images carry no labels).

    Source: the official ``tiny-imagenet-200.zip`` extracted to
    ``<root>/tiny-imagenet-200/`` with ``wnids.txt`` (one WordNet id per class),
    ``train/<wnid>/images/*.JPEG`` and ``val/images/*.JPEG`` labelled by
    ``val/val_annotations.txt`` (tab-separated: file name, wnid, 4 box numbers).
    Classes are the wnids in sorted order. Images are decoded on demand
    (:class:`ImageFiles`; grey JPEGs become RGB); an ``input_shape`` other than
    ``[3, 64, 64]`` resizes them. Normalisation: mean (0.480, 0.448, 0.398), std
    (0.277, 0.269, 0.282) after scaling to [0, 1].

    Args:
        root: directory holding ``tiny-imagenet-200/``.
        download: download and extract the official zip when files are missing
            (about 240 MB; network needed).
        augment: random crops of the input size after 8-pixel zero padding, and
            horizontal flips.
        num_classes: declared K (must equal the number of wnids, 200).
        input_shape: declared ``[C, H, W]``; images are converted and resized to it.
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).
        memory_limit_mb: with ``loader=auto`` the runner decodes every image into memory
            when all splits fit in this many MiB (read by the runner; recorded here).

    References:
        Le & Yang, "Tiny ImageNet visual recognition challenge", Stanford CS231N, 2015.
    """
    name = "tiny_imagenet"
    base = resolve_root(name, root)
    check_options(
        name,
        download=download,
        augment=augment,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )
    shape = check_image_shape(name, input_shape)
    check_memory_limit(name, memory_limit_mb)
    folder = base / "tiny-imagenet-200"
    wnids_path, annotations_path = ensure_files(
        name,
        folder,
        ["wnids.txt", "val/val_annotations.txt"],
        root=base,
        download=download,
        fetch=lambda: _download_tiny_imagenet(base),
        how=f"extract {TINY_IMAGENET_URL} into {base}",
    )
    wnids = _read_wnids(wnids_path)
    check_declared(
        name,
        num_classes=num_classes,
        input_shape=input_shape,
        actual_classes=len(wnids),
        actual_shape=shape,
    )
    label = {w: k for k, w in enumerate(wnids)}

    train_paths: list[Path] = []
    train_y: list[int] = []
    for wnid in wnids:
        directory = folder / "train" / wnid / "images"
        if not directory.is_dir():
            raise FileNotFoundError(
                f"dataset '{name}': missing directory {directory} for class {wnid} listed in "
                f"{wnids_path}; is the extraction of tiny-imagenet-200.zip complete?"
            )
        files = _list_images(directory)
        if not files:
            raise FileNotFoundError(f"dataset '{name}': no images in {directory}")
        train_paths += files
        train_y += [label[wnid]] * len(files)

    val_dir = folder / "val" / "images"
    present = {p.name for p in _list_images(val_dir)} if val_dir.is_dir() else set()
    test_paths, test_y = [], []
    for file, wnid in _read_val_annotations(annotations_path):
        if wnid not in label:
            raise ValueError(f"{annotations_path}: class id {wnid!r} of {file} is not in wnids.txt")
        if file not in present:
            raise FileNotFoundError(
                f"dataset '{name}': {val_dir / file}, listed in {annotations_path}, is missing"
            )
        test_paths.append(val_dir / file)
        test_y.append(label[wnid])

    transform = BatchTransform(
        scale=1 / 255,
        mean=(0.480, 0.448, 0.398) if shape[0] == 3 else (0.4456,),
        std=(0.277, 0.269, 0.282) if shape[0] == 3 else (0.2705,),
        crop_padding=8 if augment else 0,
        flip=augment,
    )
    return bundle_with_official_test(
        name,
        ImageFiles(train_paths, shape),
        np.asarray(train_y),
        ImageFiles(test_paths, shape),
        np.asarray(test_y),
        num_classes=num_classes,
        input_shape=shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        transform=transform,
        info={
            "source": str(folder),
            "loader_requested": loader,  # the runner records the path used as "loader"
            "memory_limit_mb": memory_limit_mb,
            "classes": "wnids.txt, sorted",
        },
    )


# ---------------------------------------------------------------------- ImageFolder


def _scan_split(directory: Path) -> dict[str, list[Path]]:
    """Image files of every class folder (non-hidden subdirectory) of ``directory``."""
    return {
        d.name: _list_images(d)
        for d in sorted(directory.iterdir(), key=lambda d: d.name)
        if d.is_dir() and not d.name.startswith(".")
    }


def check_memory_limit(name: str, memory_limit_mb: float) -> None:
    """Fail clearly unless ``memory_limit_mb`` is a number >= 0 (the loader's own rule)."""
    try:
        _check_limit(memory_limit_mb)
    except ValueError as exc:
        raise ValueError(f"dataset '{name}': {exc}") from None


@serves_with("loader", "memory_limit_mb")
def imagefolder(
    *,
    root: str | os.PathLike | None,
    num_classes: int,
    input_shape: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    stats_samples: int = 1000,
    augment: bool = False,
    crop_padding: int = 4,
    flip: bool = True,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
    memory_limit_mb: float = MEMORY_LIMIT_MB,
) -> DataBundle:
    """Any image classification set stored as one folder per class.

    Layout: ``<root>/train/<class>/...`` and ``<root>/test/<class>/...`` (or
    ``<root>/val/<class>/...`` when there is no ``test/``); files in any format PIL
    opens, found recursively inside each class folder. Classes are the training
    folders' names in sorted order (label k is the k-th name, recorded in
    ``info["classes"]``); a test class folder must also exist under ``train/``.
    Images are decoded on demand (:class:`ImageFiles`), converted to RGB (or grey
    for one channel) and resized to the declared ``input_shape``. Normalisation:
    ``mean``/``std`` when given, otherwise computed from ``stats_samples`` images of
    the training split (recorded in ``info["normalisation"]``).

    Args:
        root: the folder holding ``train/`` and ``test/`` (or ``val/``); required.
        num_classes: declared K (must equal the number of class folders in ``train/``).
        input_shape: ``[C, H, W]`` every image is converted and resized to (C 1 or 3).
        mean, std: per-channel statistics after scaling to [0, 1], or None to compute them.
        stats_samples: training images decoded to compute ``mean``/``std`` when not given.
        augment: augment training batches with ``crop_padding`` and ``flip``.
        crop_padding: zero padding of the random crop, in pixels (used when ``augment``).
        flip: random horizontal flips (used when ``augment``).
        split_seed: seed of the stratified validation split and of the statistics sample.
        val_fraction: share of the training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).
        memory_limit_mb: with ``loader=auto`` the runner decodes every image into memory
            when all splits fit in this many MiB (read by the runner; recorded here).
    """
    name = "imagefolder"
    if root is None:
        raise ValueError(
            f"dataset '{name}': dataset.root is not set: give the folder holding train/<class>/ "
            "and test/<class>/ (or val/<class>/), e.g. dataset.root=/data/pets"
        )
    base = resolve_root(name, root)
    check_options(
        name,
        augment=augment,
        flip=flip,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )
    shape = check_image_shape(name, input_shape)
    check_memory_limit(name, memory_limit_mb)
    check_crop_padding(name, crop_padding)
    given = check_normalisation(name, mean, std, shape[0])
    if given is None and (
        isinstance(stats_samples, bool) or not isinstance(stats_samples, int) or stats_samples < 1
    ):
        raise ValueError(
            f"dataset '{name}': dataset.stats_samples={stats_samples!r} is invalid: use an "
            "int >= 1 (or give dataset.mean and dataset.std)"
        )
    train_dir = base / "train"
    test_dir = next((base / d for d in ("test", "val") if (base / d).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        missing = ["train/"] if not train_dir.is_dir() else []
        missing += ["test/ (or val/)"] if test_dir is None else []
        raise FileNotFoundError(
            f"dataset '{name}': {base} has no {' and no '.join(missing)}; expected "
            f"{base}/train/<class>/<image files> and {base}/test/<class>/<image files> "
            "(or val/ instead of test/). Set dataset.root to such a folder."
        )

    train = _scan_split(train_dir)
    empty = [c for c, files in train.items() if not files]
    if not train or empty:
        raise FileNotFoundError(
            f"dataset '{name}': "
            + (
                f"no class folders in {train_dir}"
                if not train
                else f"no image files in class folder(s) {', '.join(empty[:5])} of {train_dir}"
            )
        )
    classes = sorted(train)
    check_declared(
        name,
        num_classes=num_classes,
        input_shape=input_shape,
        actual_classes=len(classes),
        actual_shape=shape,
    )
    label = {c: k for k, c in enumerate(classes)}
    test = _scan_split(test_dir)
    unknown = sorted(set(test) - set(label))
    if unknown:
        raise ValueError(
            f"dataset '{name}': class folder(s) {', '.join(unknown[:5])} of {test_dir} have no "
            f"counterpart in {train_dir}"
        )
    if not any(test.values()):
        raise FileNotFoundError(f"dataset '{name}': no image files in {test_dir}")

    def flat(split: dict[str, list[Path]]) -> tuple[ImageFiles, np.ndarray]:
        paths = [p for c in sorted(split) for p in split[c]]
        labels = [label[c] for c in sorted(split) for _ in split[c]]
        return ImageFiles(paths, shape), np.asarray(labels, dtype=np.int64)

    bundle = bundle_with_official_test(
        name,
        *flat(train),
        *flat(test),
        num_classes=num_classes,
        input_shape=shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
    )
    if given is None:
        sample = sample_rows(len(bundle.train), stats_samples, split_seed)
        stats = channel_stats(bundle.train.x, sample, decimals=6)
        origin = f"{len(sample)} training images"
    else:
        stats, origin = given, "config"
    transform = BatchTransform(
        scale=1 / 255,
        mean=stats[0],
        std=stats[1],
        crop_padding=crop_padding if augment else 0,
        flip=flip and augment,
    )
    return replace(
        bundle,
        transform=transform,
        info={
            "source": str(base),
            "test_dir": test_dir.name,
            "loader_requested": loader,  # the runner records the path used as "loader"
            "memory_limit_mb": memory_limit_mb,
            "classes": classes,
            "normalisation": {"mean": list(stats[0]), "std": list(stats[1]), "from": origin},
        },
    )
