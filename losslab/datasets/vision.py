"""The torchvision family of image sets, read from their official files.

MNIST, Fashion-MNIST, KMNIST, CIFAR-10, CIFAR-100 and SVHN are read here from
the files their authors distribute, in the directory layout torchvision uses
under ``root``; torchvision is used only to download missing files (its dataset
classes verify checksums, so they are not used to read). Images are kept in
memory as uint8 tensors ``[N, C, H, W]``; scaling to [0, 1], per-channel
normalisation and training augmentation are declared as a
:class:`~losslab.datasets.base.BatchTransform` and applied per batch by the runner.

One loader, :func:`load_vision`, serves them all; what tells the data sets apart
(their name, file layout and format, torchvision class, normalisation and
augmentation) is written in ``conf/dataset/<token>.yaml``, so a new data set in
one of the formats of :data:`FORMATS` is one YAML file. It returns a
:class:`~losslab.datasets.base.DataBundle` whose test split is the official test
split and whose validation split is a stratified share of the official training
split (``source_index`` is the position in that split).

The helpers that check options and locate (or download) files are shared with
:mod:`losslab.datasets.folder`.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from losslab.datasets.base import BatchTransform, DataBundle, bundle_with_official_test, serves_with
from losslab.datasets.loader import LOADERS
from losslab.datasets.stats import channel_stats

log = logging.getLogger(__name__)

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
        loader: how the runner serves batches: one of
            :data:`~losslab.datasets.loader.LOADERS`.
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
    if loader not in LOADERS:
        raise ValueError(
            f"dataset '{name}': dataset.loader={loader!r} is invalid: use one of "
            f"{', '.join(LOADERS)}"
        )


def check_crop_padding(name: str, crop_padding: Any) -> int:
    """``dataset.crop_padding`` if it is an int >= 0, otherwise a ValueError."""
    if isinstance(crop_padding, bool) or not isinstance(crop_padding, int) or crop_padding < 0:
        raise ValueError(
            f"dataset '{name}': dataset.crop_padding={crop_padding!r} is invalid: use an int >= 0"
        )
    return crop_padding


def _stats_option(name: str, key: str, value: Sequence[float] | None, channels: int) -> tuple:
    try:
        stats = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        stats = ()
    if len(stats) != channels or (key == "std" and min(stats) <= 0):
        raise ValueError(
            f"dataset '{name}': dataset.{key}={value!r} is invalid: give {channels} "
            f"number(s), one per channel{' (> 0)' if key == 'std' else ''}, or null to "
            "compute it from training images"
        )
    return stats


def check_normalisation(
    name: str, mean: Sequence[float] | None, std: Sequence[float] | None, channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` as tuples of ``channels`` numbers (std > 0), or None when both are
    null (the loader computes them); a ValueError when only one is given or a value is bad."""
    if (mean is None) != (std is None):
        raise ValueError(f"dataset '{name}': give both dataset.mean and dataset.std, or neither")
    if mean is None:
        return None
    return _stats_option(name, "mean", mean, channels), _stats_option(name, "std", std, channels)


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


def read_svhn_mat(path: Path, classes: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN "format 2" file (``train_32x32.mat``, ``test_32x32.mat``).

    A MATLAB file with ``X`` uint8 ``[32, 32, 3, N]`` (row, column, channel,
    image) and ``y`` ``[N, 1]`` with labels 1..10, where 10 means digit 0 (labels
    outside ``0..classes-1`` are an error).

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
    check_labels(path, y, classes)
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), y % 10


def _describe(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {list(a.shape)}"
    return type(a).__name__


# ---------------------------------------------------------------------------- loaders


def _read_idx_split(paths: Sequence[Path], files: VisionFiles) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = paths
    return _read_mnist_split(images_path, labels_path, files.classes)


def _read_cifar_split(paths: Sequence[Path], files: VisionFiles) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_cifar_batch(p, files.label_key) for p in paths]
    for path, (_, labels) in zip(paths, parts, strict=True):
        check_labels(path, labels, files.classes)
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def _read_svhn_split(paths: Sequence[Path], files: VisionFiles) -> tuple[np.ndarray, np.ndarray]:
    (path,) = paths
    return read_svhn_mat(path, files.classes)


class FileFormat(NamedTuple):
    """How one split's files (in the order listed) become images ``[N, C, H, W]`` and labels."""

    read: Callable[[Sequence[Path], VisionFiles], tuple[np.ndarray, np.ndarray]]
    files_per_split: int | None  # None: one or more


#: The values of ``dataset.files.format``.
FORMATS: dict[str, FileFormat] = {
    "idx": FileFormat(_read_idx_split, 2),
    "cifar": FileFormat(_read_cifar_split, None),
    "svhn": FileFormat(_read_svhn_split, 1),
}


@dataclass(frozen=True)
class VisionFiles:
    """Where a data set's official files are and how to read and download them
    (``dataset.files`` of ``conf/dataset/<token>.yaml``).

    Attributes:
        format: ``idx`` (MNIST-style IDX images and labels: each split lists its
            images file, then its labels file), ``cifar`` (CIFAR "python version"
            batches: each split lists its batch files) or ``svhn`` (one SVHN
            "format 2" ``.mat`` file per split); see :data:`FORMATS`.
        folder: where the files are, relative to ``dataset.root`` (``""``: the root).
        train, test: the file names of the official training and test splits.
        classes: labels in the files are ``0..classes-1`` (checked per file).
        torchvision: the ``torchvision.datasets`` class that downloads the files.
        download_splits: the keyword arguments of each download call of that class
            (e.g. ``[{train: true}]``).
        how: how a user provides the files by hand, for messages; ``{root}`` is
            replaced by ``dataset.root``.
        label_key: the labels' key in a CIFAR batch (``labels``, ``fine_labels``
            for CIFAR-100's fine classes).
        suffixes: accepted name endings of each file, in order of preference
            (``["", ".gz"]``: compressed or not).
    """

    format: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    classes: int
    torchvision: str
    download_splits: tuple[dict, ...]
    how: str
    label_key: str = "labels"
    suffixes: tuple[str, ...] = ("",)

    @classmethod
    def from_config(cls, name: str, files: Mapping[str, Any]) -> VisionFiles:
        """``dataset.files`` checked: known keys, a known format, the files each split needs."""
        if not isinstance(files, Mapping):
            raise ValueError(
                f"dataset '{name}': dataset.files={files!r} is invalid: give the mapping of "
                "the official files (see conf/dataset/cifar10.yaml)"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(map(str, files)) - known)
        missing = sorted(
            f.name for f in fields(cls) if f.default is MISSING and f.name not in files
        )
        if unknown or missing:
            problem = "unknown keys " + ", ".join(unknown) if unknown else ""
            problem += ("; " if unknown and missing else "") + (
                "missing keys " + ", ".join(missing) if missing else ""
            )
            raise ValueError(f"dataset '{name}': dataset.files has {problem}")
        spec = cls(
            format=str(files["format"]),
            folder=str(files["folder"]),
            train=tuple(str(f) for f in files["train"]),
            test=tuple(str(f) for f in files["test"]),
            classes=int(files["classes"]),
            torchvision=str(files["torchvision"]),
            download_splits=tuple(
                {str(k): v for k, v in split.items()} for split in files["download_splits"]
            ),
            how=str(files["how"]),
            label_key=str(files.get("label_key", "labels")),
            suffixes=tuple(str(x) for x in files.get("suffixes", ("",))),
        )
        if spec.format not in FORMATS:
            raise ValueError(
                f"dataset '{name}': dataset.files.format={spec.format!r} is invalid: use one of "
                f"{', '.join(FORMATS)}"
            )
        count = FORMATS[spec.format].files_per_split
        for split in ("train", "test"):
            listed = getattr(spec, split)
            if not listed or (count is not None and len(listed) != count):
                raise ValueError(
                    f"dataset '{name}': dataset.files.{split}={list(listed)} is invalid: format "
                    f"{spec.format} reads {count or 'one or more'} file(s) per split"
                )
        return spec


@serves_with("loader")
def load_vision(
    *,
    name: str,
    files: Mapping[str, Any],
    num_classes: int,
    input_shape: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    crop_padding: int = 0,
    flip: bool = False,
    root: str | os.PathLike = "data",
    download: bool = True,
    augment: bool = False,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    loader: str = "auto",
) -> DataBundle:
    """An image set of the torchvision family, read from its official files.

    What the data set is comes from its YAML (``conf/dataset/<token>.yaml``):
    ``name``, the file layout ``files`` (:class:`VisionFiles`), the normalisation
    ``mean``/``std`` and the augmentation ``crop_padding``/``flip``. Images stay in
    memory as uint8 ``[N, C, H, W]``; the per-batch scaling by 1/255, normalisation
    and (with ``augment``) random crops after ``crop_padding`` pixels of zero
    padding and horizontal flips (when ``flip``) are a
    :class:`~losslab.datasets.base.BatchTransform`. The official test split is the
    test split; the validation split is a stratified ``val_fraction`` of the
    official training split (``source_index`` is the position in it).

    Without a network use :func:`preset` (``preset("cifar10", root=...)``) to load a
    data set by its config token.

    Args:
        name: the data set's token (``DataBundle.name``; named mappings of
            asymmetric noise with ``mapping: auto`` are looked up by it).
        files: where the official files are and how to read and download them.
        num_classes: declared K (checked against the labels).
        input_shape: declared ``[C, H, W]`` (checked against the images).
        mean, std: per-channel statistics after scaling to [0, 1]; both null:
            computed from the training split (rounded to 6 decimals, recorded in
            ``info["normalisation"]``).
        crop_padding: zero padding of the random crops, in pixels (with ``augment``).
        flip: random horizontal flips (with ``augment``).
        root: the data directory; the files are in ``<root>/<files.folder>/``.
        download: download the official files with torchvision when missing
            (network needed).
        augment: augment training batches with ``crop_padding`` and ``flip``.
        split_seed: seed of the stratified validation split.
        val_fraction: share of the official training images used for validation.
        loader: how the runner serves batches (``auto | memory | dataloader``).

    Raises:
        FileNotFoundError: files are missing and were not (or could not be)
            downloaded; the message names the folder, the files and the remedy.
        ValueError: an invalid option, a corrupt file, or data that disagree with
            ``num_classes``/``input_shape``.
    """
    base = resolve_root(name, root)
    check_options(
        name,
        download=download,
        augment=augment,
        flip=flip,
        split_seed=split_seed,
        val_fraction=val_fraction,
        loader=loader,
    )
    check_crop_padding(name, crop_padding)
    spec = VisionFiles.from_config(name, files)
    directory = base / spec.folder
    paths = ensure_files(
        name,
        directory,
        [*spec.train, *spec.test],
        root=base,
        download=download,
        fetch=_torchvision_fetch(spec.torchvision, base, spec.download_splits),
        how=spec.how.replace("{root}", str(base)),
        suffixes=spec.suffixes,
    )
    read = FORMATS[spec.format].read
    train_x, train_y = read(paths[: len(spec.train)], spec)
    test_x, test_y = read(paths[len(spec.train) :], spec)
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
        info={"source": str(directory), "loader": loader},
    )
    stats = check_normalisation(name, mean, std, bundle.input_shape[0])
    if stats is None:
        stats = channel_stats(bundle.train.x, decimals=6)
        bundle.info["normalisation"] = {
            "mean": list(stats[0]),
            "std": list(stats[1]),
            "from": "train split",
        }
    transform = BatchTransform(
        scale=1 / 255,
        mean=stats[0],
        std=stats[1],
        crop_padding=crop_padding if augment else 0,
        flip=flip and augment,
    )
    return replace(bundle, transform=transform)
