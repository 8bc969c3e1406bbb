"""Classification data sets from Hugging Face ``datasets``: hub ids or local folders.

One column holds the inputs, served in the dtype that keeps them exact:

* pixels (an ``Image`` column, or integer arrays with ``input_shape [C, H, W]``)
  are converted to the declared channels (``RGB`` or ``L``) and size and kept as
  uint8 ``[N, C, H, W]``; scaling by 1/255 happens per batch;
* numbers (float or boolean arrays, or integer arrays with any other shape, e.g.
  feature vectors ``[d]``) are served as float32 of exactly the declared shape,
  unscaled.

A conversion that would change a value (a pixel outside 0..255, an integer that
float32 cannot hold, a missing value, a float array of another size) is an error
that names the column, the row and the value; nothing is rounded or clipped.
Normalisation (per channel, or per feature for vectors) and training
augmentation happen per batch on the training device
(:class:`~losslab.datasets.base.BatchTransform`). Inputs are read into memory or
served as a lazy :class:`~losslab.datasets.base.ImageSource` as
:func:`~losslab.datasets.loader.choose_loader` decides for ``dataset.loader``.

The Hugging Face package is imported when a data set is loaded, never at
import of this module.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from losslab.datasets.base import (
    BatchTransform,
    DataBundle,
    ImageSource,
    Split,
    bundle_with_official_test,
    serves_with,
)
from losslab.datasets.loader import (
    MEMORY_LIMIT_MB,
    check_loader,
    check_memory_limit,
    choose_loader,
    nbytes,
)
from losslab.datasets.stats import channel_stats, sample_rows

log = logging.getLogger(__name__)

#: Image modes by number of channels.
MODES = {1: "L", 3: "RGB"}

#: Rows converted per batch when a split is read into memory.
_READ_BATCH = 512

#: Integers up to this magnitude are exact in float32 (its 24-bit significand).
FLOAT32_EXACT = 2**24


def _first_bad(mask: np.ndarray) -> int:
    """Index of the first row of a ``[B, ...]`` boolean mask with a True entry."""
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def _pixel_array(a: np.ndarray, where: str) -> np.ndarray:
    """An integer array image as ``[H, W]`` or ``[H, W, C]`` uint8, ready for ``Image.fromarray``."""
    if a.dtype.kind not in "iu":
        raise ValueError(
            f"{where} holds an array of {a.dtype}, not integer pixels: float and boolean "
            f"arrays are served as float32 values (see Inputs)"
        )
    if a.size and (a.min() < 0 or a.max() > 255):
        bad = a.min() if a.min() < 0 else a.max()
        raise ValueError(
            f"{where} holds the pixel value {bad}, outside 0..255: integer arrays with "
            f"dataset.input_shape=[C, H, W] are served as uint8 images, and clipping would "
            f"change them; store the column as floats to serve its values unchanged"
        )
    channels = (1, 3, 4)
    if (
        a.ndim == 3
        and a.shape[0] in channels
        and (a.shape[-1] not in channels or a.shape[0] < a.shape[-1])
    ):  # [C, H, W]
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(
            f"{where}: an image array must be [H, W], [H, W, C] or [C, H, W], got {list(a.shape)}"
        )
    return np.ascontiguousarray(a, dtype=np.uint8)


def to_chw_uint8(item: Any, shape: Sequence[int], where: str = "an image") -> np.ndarray:
    """One image as a uint8 array ``[C, H, W]`` of ``shape``.

    Accepts a PIL image (the ``Image`` feature), an undecoded ``{"bytes", "path"}``
    record, or an integer array ``[H, W]``, ``[H, W, C]`` or ``[C, H, W]`` (read as
    channels-first when the first axis has 1, 3 or 4 entries and the last has
    not, or fewer) with values in ``0..255``. The image is converted to ``RGB``
    (C=3) or ``L`` (C=1) and resized to ``H x W`` with bilinear filtering when its
    size differs.

    Raises:
        ValueError: a float or boolean array (not pixels: see :class:`Inputs`), or
            values outside ``0..255``; ``where`` names the item in the message.
    """
    c, h, w = (int(s) for s in shape)
    if isinstance(item, Mapping) and ("bytes" in item or "path" in item):
        item = Image.open(io.BytesIO(item["bytes"]) if item.get("bytes") else item["path"])
    if not isinstance(item, Image.Image):
        item = Image.fromarray(_pixel_array(np.asarray(item), where))
    if item.mode != MODES[c]:
        item = item.convert(MODES[c])
    if item.size != (w, h):
        item = item.resize((w, h), Image.Resampling.BILINEAR)
    arr = np.array(item, dtype=np.uint8)  # a writable copy
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))


def _as_declared(a: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """A batch ``[B, *stored]`` in the layout ``[B, *shape]``: as stored, or, for
    ``shape = (C, H, W)``, from ``[B, H, W, C]`` or (C=1) ``[B, H, W]``; never resized."""
    stored = tuple(a.shape[1:])
    if stored == shape:
        return a
    if stored == () and shape == (1,):  # one number per row
        return a[:, None]
    if len(shape) == 3:
        c, h, w = shape
        if stored == (h, w, c):
            return a.transpose(0, 3, 1, 2)
        if c == 1 and stored == (h, w):
            return a[:, None]
    raise ValueError(
        f"{where} holds arrays of shape {list(stored)} but dataset.input_shape={list(shape)}: "
        f"numeric arrays are served as they are stored, never resized; set "
        f"dataset.input_shape={list(stored)}"
    )


def to_float32(batch: Any, shape: Sequence[int], where: str, first_row: int = 0) -> np.ndarray:
    """Rows of numbers as one float32 array ``[B, *shape]``, or an error if any value changes.

    Float values are kept (float64 is rounded to float32, the precision training
    uses); integers must have magnitude at most :data:`FLOAT32_EXACT`; booleans
    become 0 and 1. NaN, infinity and float64 values beyond the float32 range are
    errors, as are rows of different shapes and non-numeric values. ``where``
    names the column, ``first_row`` the row of ``batch[0]``, in messages.
    """
    shape = tuple(int(s) for s in shape)
    a = np.asarray(batch)
    if a.dtype == object:  # rows of different shapes, or nested non-numeric values
        try:
            a = np.stack([np.asarray(row) for row in batch])
        except ValueError:
            sizes = sorted({np.shape(row) for row in batch})
            raise ValueError(
                f"{where} holds rows of different shapes {[list(s) for s in sizes[:4]]}; "
                f"every row must have dataset.input_shape={list(shape)}"
            ) from None
    if a.dtype.kind not in "biuf":
        raise ValueError(
            f"{where} holds {a.dtype} values (row {first_row}: {np.ravel(a[:1])[:3].tolist()}), "
            f"not numbers or images"
        )
    a = _as_declared(a, shape, where)
    if a.dtype.kind in "iu" and a.size:
        big = np.abs(a.astype(np.float64)) > FLOAT32_EXACT
        if big.any():
            r = _first_bad(big)
            raise ValueError(
                f"{where}, row {first_row + r}, holds the integer {a[r][big[r]].flat[0]}, which "
                f"float32 cannot represent exactly (magnitude above 2**24 = {FLOAT32_EXACT}); "
                f"shift or rescale the column before saving the data set"
            )
    with np.errstate(over="ignore"):  # float64 beyond the float32 range: reported below
        out = a.astype(np.float32)
    if a.dtype.kind == "f" and out.size:
        bad = ~np.isfinite(out)
        if bad.any():
            r = _first_bad(bad)
            value = a[r][bad[r]].flat[0]
            if np.isfinite(value):
                what = f"{value}, beyond the float32 range; rescale the column"
            elif np.isnan(value):
                what = "NaN (a missing value); fill in or drop missing values"
            else:
                what = f"{value}; replace infinite values"
            raise ValueError(
                f"{where}, row {first_row + r}, holds {what} before saving the data set"
            )
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class Inputs:
    """How the input column becomes model inputs of ``shape``.

    Attributes:
        key: the column.
        shape: the declared input shape.
        pixels: uint8 images (an ``Image`` column, or integer arrays with a
            ``[C, H, W]`` shape); otherwise float32 values.
    """

    key: str
    shape: tuple[int, ...]
    pixels: bool

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8 if self.pixels else torch.float32

    @property
    def scale(self) -> float:
        """Multiplier that brings stored values to model inputs (before normalisation)."""
        return 1 / 255 if self.pixels else 1.0

    def convert(self, items: Any, split: str, first_row: int = 0) -> np.ndarray:
        """Column values ``items`` (rows ``first_row...`` of ``split``) as ``[B, *shape]``."""
        where = f"column {self.key!r} of split {split!r}"
        if not self.pixels:
            return to_float32(items, self.shape, where, first_row)
        out = np.empty((len(items), *self.shape), dtype=np.uint8)
        for j, item in enumerate(items):
            out[j] = to_chw_uint8(item, self.shape, f"{where}, row {first_row + j},")
        return out


def _column(ds: Any, key: str) -> Any:
    """Only the input column: decoded images, or numpy arrays in their stored dtype."""
    import datasets

    column = ds.select_columns([key])
    if not isinstance(ds.features[key], datasets.Image):
        column = column.with_format("numpy", dtype=None)  # not the formatter's float32/int64
    return column


def inspect_inputs(ds: Any, key: str, shape: Sequence[int], split: str) -> Inputs:
    """Whether column ``key`` of ``ds`` holds pixels or numbers, checked against ``shape``."""
    import datasets

    shape = tuple(int(s) for s in shape)
    image_shape = len(shape) == 3
    hint = ""
    if isinstance(ds.features[key], datasets.Image):
        pixels, kind = True, "an Image column"
    else:
        first = _column(ds, key)[0][key] if len(ds) else np.zeros(shape)
        if isinstance(first, Mapping) and ("bytes" in first or "path" in first):
            pixels, kind = True, "a column of encoded images"
        else:
            dtype = np.asarray(first).dtype
            pixels, kind = image_shape and dtype.kind in "iu", f"a column of {dtype} arrays"
            hint = "; or store the column as floats to serve it unchanged in any shape"
    if pixels and (not image_shape or shape[0] not in MODES):
        raise ValueError(
            f"dataset.image_key={key!r} is {kind} (split {split!r}), served as uint8 images: "
            f"dataset.input_shape must be [C, H, W] with C one of {sorted(MODES)} "
            f"(1: grayscale L, 3: RGB), got {list(shape)}{hint}"
        )
    return Inputs(key, shape, pixels)


class HFImageSource:
    """The inputs of one Hugging Face split, converted on demand (see :class:`ImageSource`).

    Picklable, so DataLoader workers can convert in parallel: a data set read
    from disk is memory-mapped, not copied.

    Args:
        dataset: a ``datasets.Dataset``.
        image_key: its input column.
        shape: the served shape (``(C, H, W)`` for images, e.g. ``(d,)`` for vectors).
        split: the split's name, for messages.
    """

    def __init__(
        self, dataset: Any, image_key: str, shape: Sequence[int], split: str = "train"
    ) -> None:
        self.inputs = inspect_inputs(dataset, image_key, shape, split)
        self.column = _column(dataset, image_key)
        self.split = split

    @property
    def shape(self) -> tuple[int, ...]:
        return self.inputs.shape

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: int) -> Tensor:
        item = self.column[int(i)][self.inputs.key]
        return torch.from_numpy(self.inputs.convert([item], self.split, int(i))[0])


def read_inputs(source: HFImageSource) -> Tensor:
    """Every row of a source's split as one tensor ``[N, *shape]``, converted in batches."""
    inputs = source.inputs
    out = torch.empty((len(source), *inputs.shape), dtype=inputs.dtype)
    i = 0
    for batch in source.column.iter(batch_size=_READ_BATCH):
        values = inputs.convert(batch[inputs.key], source.split, i)
        out[i : i + len(values)] = torch.from_numpy(values)
        i += len(values)
    return out


def _open(path: str, name: str | None) -> tuple[dict[str, Any], str]:
    """The splits at ``path`` and how they were found (``saved`` or ``load_dataset``)."""
    import datasets

    local = Path(path).expanduser()
    if local.is_dir() and any((local / f).is_file() for f in ("dataset_dict.json", "state.json")):
        if name is not None:
            raise ValueError(
                f"dataset.name={name!r} is a configuration of a hub or data-file data set, but "
                f"dataset.path={path!r} is a data set saved with save_to_disk; set "
                f"dataset.name=null"
            )
        loaded = datasets.load_from_disk(str(local))
        how = "saved"
    else:
        if not local.exists() and path.startswith(("/", "./", "../", "~")):
            raise FileNotFoundError(
                f"dataset.path={path!r} not found: looked for a data set saved with "
                f"Dataset.save_to_disk (or data files) at {local}, which does not exist"
            )
        try:
            loaded = datasets.load_dataset(path, name)
        except (ConnectionError, FileNotFoundError, OSError) as exc:
            kind = "data files" if local.exists() else "a Hugging Face hub id"
            raise FileNotFoundError(
                f"dataset.path={path!r} (dataset.name={name!r}) could not be loaded: it is not a "
                f"data set saved with save_to_disk, and loading it as {kind} with "
                f"datasets.load_dataset failed (no network may be available: the hub needs one "
                f"unless the data set is in the local cache): {exc}"
            ) from exc
        how = "load_dataset"
    if isinstance(loaded, datasets.Dataset):
        return {str(loaded.split) if loaded.split is not None else "train": loaded}, how
    if isinstance(loaded, Mapping):
        return dict(loaded), how
    raise ValueError(
        f"dataset.path={path!r} gave a {type(loaded).__name__}, not a Dataset or DatasetDict"
    )


def _split(splits: dict[str, Any], key: str, which: str, path: str) -> Any:
    if key not in splits:
        raise ValueError(
            f"dataset.{which}={key!r} is not a split of {path!r}; available splits: "
            f"{sorted(splits)}"
        )
    return splits[key]


def _labels(ds: Any, label_key: str, which: str, num_classes: int) -> np.ndarray:
    y = np.asarray(ds.with_format("numpy", columns=[label_key])[label_key])
    if y.ndim != 1 or (len(y) and not np.issubdtype(y.dtype, np.integer)):
        raise ValueError(
            f"dataset.label_key={label_key!r} in split {which!r} must hold integer class ids "
            f"(e.g. a ClassLabel column), got dtype {y.dtype} and shape {list(y.shape)}"
        )
    bad = np.unique(y[(y < 0) | (y >= num_classes)])
    if len(bad):
        hint = "; -1 marks an unlabelled sample in Hugging Face data sets" if -1 in bad else ""
        raise ValueError(
            f"labels out of range in split {which!r}: {bad[:10].tolist()} are not in "
            f"0..{num_classes - 1} (dataset.num_classes={num_classes}){hint}"
        )
    return y.astype(np.int64)


def _check_columns(ds: Any, which: str, keys: dict[str, str]) -> None:
    for option, column in keys.items():
        if column not in ds.column_names:
            raise ValueError(
                f"dataset.{option}={column!r} is not a column of split {which!r}; available "
                f"columns: {ds.column_names}"
            )


def _check_int(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"dataset.{key}={value!r} is invalid: must be an integer >= {low}")
    return value


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"dataset.{key}={value!r} is invalid: must be true or false")
    return value


def _stat(key: str, value: Sequence[float] | None, channels: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    value = tuple(float(v) for v in value)
    if len(value) != channels or (key == "std" and min(value) <= 0):
        rule = "positive values" if key == "std" else "values"
        raise ValueError(
            f"dataset.{key}={list(value)} is invalid: must be {channels} {rule}, one per "
            f"channel (per feature for vectors)"
        )
    return value


def _check_transform(
    shape: tuple[int, ...],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    stats_samples: Any,
    crop_padding: Any,
    augment: Any,
    flip: Any,
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Check the normalisation and augmentation options; ``(mean, std)`` as tuples, or
    ``(None, None)`` when they are to be computed."""
    if (mean is None) != (std is None):
        raise ValueError(
            f"give both dataset.mean and dataset.std or neither (mean={mean}, std={std})"
        )
    mean_t, std_t = _stat("mean", mean, shape[0]), _stat("std", std, shape[0])
    _check_int("stats_samples", stats_samples, 1)
    _check_int("crop_padding", crop_padding, 0)
    augment = _check_bool("augment", augment)
    _check_bool("flip", flip)
    if augment and len(shape) != 3:
        raise ValueError(
            f"dataset.augment=true crops and flips images [C, H, W], but "
            f"dataset.input_shape={list(shape)}; set dataset.augment=false"
        )
    return mean_t, std_t


@serves_with("loader", "memory_limit_mb")
def load_hf(
    *,
    path: str | None = None,
    name: str | None = None,
    train_split: str = "train",
    test_split: str = "test",
    val_split: str | None = None,
    image_key: str = "image",
    label_key: str = "label",
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    stats_samples: int = 10_000,
    augment: bool = False,
    crop_padding: int = 4,
    flip: bool = True,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    memory_limit_mb: float = MEMORY_LIMIT_MB,
    loader: str = "auto",
) -> DataBundle:
    """A classification data set from Hugging Face ``datasets``: images or numeric arrays.

    ``path`` is a local directory written by ``Dataset.save_to_disk`` or
    ``DatasetDict.save_to_disk`` (read with ``datasets.load_from_disk``), or
    anything ``datasets.load_dataset(path, name)`` accepts: a hub id (network
    needed unless cached) or a local folder of data files (``imagefolder``,
    parquet, ...). A single saved ``Dataset`` is one split, named by its
    ``split`` attribute or ``train``.

    The official test split is the test split. The validation split is
    ``val_split`` when given, otherwise a stratified ``val_fraction`` of the
    training split carved with ``split_seed``. Labels must be integer class ids
    in ``0..num_classes-1``.

    Column ``image_key`` holds the inputs (see :class:`Inputs`): images (an
    ``Image`` column, or integer arrays with ``input_shape [C, H, W]``) are
    converted to the declared channels and size and kept as uint8 (see
    :func:`to_chw_uint8`); numeric arrays (floats, booleans, or integers with
    any other shape, e.g. feature vectors ``[d]``) are served as float32 exactly
    as stored (see :func:`to_float32`). A conversion that would change a value is
    an error.

    Inputs are read into tensors when :func:`~losslab.datasets.loader.choose_loader`
    picks ``memory`` for ``loader`` and ``memory_limit_mb`` (the runner makes the
    same choice), otherwise every split is an :class:`HFImageSource` converted on
    demand; ``info["loader"]`` records which. ``mean``/``std`` default to the
    statistics of at most ``stats_samples`` training rows
    (:func:`~losslab.datasets.stats.channel_stats`):
    per channel for images scaled to ``[0, 1]``, per feature for vectors.

    Args:
        path: a saved data set's folder, a data-file folder, or a hub id (required).
        name: ``load_dataset``'s configuration name (null for saved data sets).
        train_split, test_split: split names.
        val_split: split name of a validation split, or null to carve one.
        image_key: the input column (``Image`` feature or arrays).
        label_key: the label column (``ClassLabel`` or integers).
        num_classes: declared K (required).
        input_shape: declared shape of one input (required): ``[C, H, W]`` for
            images (C is 1, ``L``, or 3, ``RGB``), ``[d]`` for vectors.
        mean, std: per-channel (images scaled to ``[0, 1]``) or per-feature (vectors)
            statistics, or null to compute them.
        stats_samples: training rows used to compute ``mean``/``std`` when they are
            null (all rows when there are fewer).
        augment: augment training batches with ``crop_padding`` and ``flip`` (images).
        crop_padding: zero padding of the random crop, in pixels (with ``augment``).
        flip: random horizontal flips (with ``augment``).
        split_seed: seed of the carved validation split and of the statistics sample.
        val_fraction: share of the training split used for validation when
            ``val_split`` is null.
        memory_limit_mb: with ``loader=auto``, the largest input volume (all splits,
            in the served dtype), in MiB, read into memory.
        loader: ``auto``, ``memory`` or ``dataloader`` (see :mod:`losslab.datasets.loader`).

    Raises:
        FileNotFoundError: nothing at ``path`` (neither saved data nor a loadable id).
        ValueError: a missing split or column, labels out of range, a value that the
            conversion would change, or an invalid argument.

    References:
        Lhoest et al., "Datasets: A Community Library for Natural Language
        Processing", EMNLP 2021 System Demonstrations. https://huggingface.co/docs/datasets
    """
    required = {"path": path, "num_classes": num_classes, "input_shape": input_shape}
    unset = [f"dataset.{k}" for k, v in required.items() if v is None]
    if unset:
        raise ValueError(
            f"the hf data set needs {', '.join(unset)}: the data set's path or hub id, its "
            f"number of classes and the shape to serve ([C, H, W] for images, [d] for vectors)"
        )
    if not isinstance(path, str) or not path:
        raise ValueError(f"dataset.path={path!r} is invalid: give a hub id or a local directory")
    loader, memory_limit_mb = check_loader(loader), check_memory_limit(memory_limit_mb)
    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(
            f"dataset.input_shape={list(shape)} is invalid: give [C, H, W] for images or [d] "
            f"for vectors, every size >= 1"
        )
    if int(num_classes) < 2:
        raise ValueError(f"dataset.num_classes={num_classes} is invalid: must be >= 2")
    mean_t, std_t = _check_transform(shape, mean, std, stats_samples, crop_padding, augment, flip)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"dataset.val_fraction={val_fraction} is invalid: must be in [0, 1)")

    splits, how = _open(path, name)
    chosen = {"train": train_split, "test": test_split}
    if val_split is not None:
        chosen["val"] = val_split
    parts = {role: _split(splits, key, f"{role}_split", path) for role, key in chosen.items()}
    for role, ds in parts.items():
        _check_columns(ds, chosen[role], {"image_key": image_key, "label_key": label_key})
    labels = {role: _labels(ds, label_key, chosen[role], num_classes) for role, ds in parts.items()}

    sources = {
        role: HFImageSource(ds, image_key, shape, chosen[role]) for role, ds in parts.items()
    }
    kinds = {role: src.inputs.pixels for role, src in sources.items()}
    if len(set(kinds.values())) > 1:
        raise ValueError(
            f"dataset.image_key={image_key!r} holds images in some splits and numbers in "
            f"others: { ({chosen[r]: 'images' if p else 'numbers' for r, p in kinds.items()}) }"
        )
    inputs = sources["train"].inputs
    whole = [Split.clean(sources[role], labels[role]) for role in parts]
    mode = choose_loader(loader, whole, memory_limit_mb)
    volume = sum(nbytes(split) for split in whole)
    x: dict[str, Tensor | ImageSource] = {
        role: read_inputs(src) if mode == "memory" else src for role, src in sources.items()
    }

    token = f"hf:{path}" + (f"/{name}" if name else "")
    bundle = bundle_with_official_test(
        token,
        x["train"],
        labels["train"],
        x["test"],
        labels["test"],
        num_classes=num_classes,
        input_shape=shape,
        split_seed=split_seed,
        val_fraction=0.0 if val_split is not None else float(val_fraction),
        info={
            "source": "huggingface",
            "path": path,
            "name": name,
            "opened_with": "load_from_disk" if how == "saved" else "load_dataset",
            "splits": chosen,
            "inputs": "uint8 images" if inputs.pixels else "float32 values",
            "loader": mode,
            "inputs_mb": round(volume / 2**20, 3),
        },
    )
    if val_split is not None:
        bundle = replace(bundle, val=Split.clean(x["val"], labels["val"]))
    if mean_t is None:
        rows = sample_rows(len(bundle.train.x), stats_samples, split_seed)
        mean_t, std_t = channel_stats(bundle.train.x, rows, scale=inputs.scale, min_std=1e-6)
    bundle.info.update(mean=list(mean_t), std=list(std_t), stats_given=mean is not None)
    transform = BatchTransform(
        scale=inputs.scale,
        mean=mean_t,
        std=std_t,
        crop_padding=crop_padding if augment else 0,
        flip=flip and augment,
    )
    log.info("dataset %s: %s, %s, %s", token, bundle.sizes(), bundle.info["inputs"], mode)
    return replace(bundle, transform=transform)
