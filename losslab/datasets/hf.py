"""Image classification data sets from Hugging Face ``datasets``: hub ids or local folders.

Images are converted to the declared channels (``RGB`` or ``L``) and size and
kept as uint8 ``[N, C, H, W]``; scaling to ``[0, 1]``, per-channel
normalisation and training augmentation happen per batch on the training
device (:class:`~losslab.datasets.base.BatchTransform`). Data sets whose
pixels would not fit in ``memory_limit_mb`` are served as a lazy
:class:`~losslab.datasets.base.ImageSource` that decodes on demand.

The Hugging Face package is imported when a data set is loaded, never at
import of this module.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
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
)

log = logging.getLogger(__name__)

#: Image modes by number of channels.
MODES = {1: "L", 3: "RGB"}

#: Images decoded per batch when a split is read into memory.
_READ_BATCH = 512


def to_chw_uint8(item: Any, shape: Sequence[int]) -> np.ndarray:
    """One image as a uint8 array ``[C, H, W]`` of ``shape``.

    Accepts a PIL image (the ``Image`` feature), an undecoded ``{"bytes", "path"}``
    record, or an array ``[H, W]``, ``[H, W, C]`` or ``[C, H, W]`` (read as
    channels-first when the first axis has 1, 3 or 4 entries and the last has
    not, or fewer). Float arrays with values in ``[0, 1]`` are scaled by 255;
    other values are rounded and clipped to ``0..255``. The image is converted to
    ``RGB`` (C=3) or ``L`` (C=1) and resized to ``H x W`` with bilinear filtering
    when its size differs.
    """
    c, h, w = (int(s) for s in shape)
    if isinstance(item, Mapping) and ("bytes" in item or "path" in item):
        item = Image.open(io.BytesIO(item["bytes"]) if item.get("bytes") else item["path"])
    if not isinstance(item, Image.Image):
        item = Image.fromarray(_hwc_uint8(np.asarray(item)))
    if item.mode != MODES[c]:
        item = item.convert(MODES[c])
    if item.size != (w, h):
        item = item.resize((w, h), Image.Resampling.BILINEAR)
    arr = np.array(item, dtype=np.uint8)  # a writable copy
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))


def _hwc_uint8(a: np.ndarray) -> np.ndarray:
    """An array image as ``[H, W]`` or ``[H, W, C]`` uint8, ready for ``Image.fromarray``."""
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
        raise ValueError(f"an image array must be [H, W], [H, W, C] or [C, H, W], got {a.shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.size and np.nanmax(a) <= 1.0 and np.nanmin(a) >= 0.0:
            a = a * 255.0
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _image_column(ds: Any, key: str) -> Any:
    """Only the image column: decoded PIL images, or numpy arrays for array features."""
    import datasets

    column = ds.select_columns([key])
    if not isinstance(ds.features[key], datasets.Image):
        column = column.with_format("numpy")
    return column


class HFImageSource:
    """The images of one Hugging Face split, decoded on demand (see :class:`ImageSource`).

    Picklable, so DataLoader workers can decode in parallel: a data set read
    from disk is memory-mapped, not copied.

    Args:
        dataset: a ``datasets.Dataset``.
        image_key: its image column.
        shape: ``(C, H, W)`` of the served images.
    """

    def __init__(self, dataset: Any, image_key: str, shape: Sequence[int]) -> None:
        self.column = _image_column(dataset, image_key)
        self.key = image_key
        self.shape = tuple(int(s) for s in shape)

    def __len__(self) -> int:
        return len(self.column)

    def __getitem__(self, i: int) -> Tensor:
        return torch.from_numpy(to_chw_uint8(self.column[int(i)][self.key], self.shape))


def read_images(dataset: Any, image_key: str, shape: Sequence[int]) -> Tensor:
    """Every image of a Hugging Face split as one uint8 tensor ``[N, C, H, W]``."""
    out = torch.empty((len(dataset), *(int(s) for s in shape)), dtype=torch.uint8)
    i = 0
    for batch in _image_column(dataset, image_key).iter(batch_size=_READ_BATCH):
        for item in batch[image_key]:
            out[i] = torch.from_numpy(to_chw_uint8(item, shape))
            i += 1
    return out


def channel_stats(
    x: Tensor | ImageSource, samples: int, seed: int = 0
) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) standard deviation of uint8 images scaled by 1/255.

    In-memory images are all used; a lazy source contributes a random sample of
    at most ``samples`` images (drawn with ``seed``), so that loading does not
    decode the whole data set.
    """
    if isinstance(x, Tensor):
        chunks = x.split(1024)
    else:
        n = len(x)
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(n, size=min(n, int(samples)), replace=False))
        chunks = (
            torch.stack([x[int(i)] for i in picked[s : s + 256]])
            for s in range(0, len(picked), 256)
        )
    total = sq = None
    count = 0
    for chunk in chunks:
        f = chunk.to(torch.float64) / 255.0
        s, q = f.sum(dim=(0, 2, 3)), (f * f).sum(dim=(0, 2, 3))
        total, sq = (s, q) if total is None else (total + s, sq + q)
        count += f.shape[0] * f.shape[2] * f.shape[3]
    if total is None:
        raise ValueError("cannot compute mean/std of an empty training split")
    mean = total / count
    std = (sq / count - mean**2).clamp_min(0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return mean.tolist(), std.tolist()


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
            f"dataset.{key}={list(value)} is invalid: must be {channels} {rule}, one per channel"
        )
    return value


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
    memory_limit_mb: float = 4096,
    loader: str = "auto",
) -> DataBundle:
    """An image classification data set from Hugging Face ``datasets``.

    ``path`` is a local directory written by ``Dataset.save_to_disk`` or
    ``DatasetDict.save_to_disk`` (read with ``datasets.load_from_disk``), or
    anything ``datasets.load_dataset(path, name)`` accepts: a hub id (network
    needed unless cached) or a local folder of data files (``imagefolder``,
    parquet, ...). A single saved ``Dataset`` is one split, named by its
    ``split`` attribute or ``train``.

    The official test split is the test split. The validation split is
    ``val_split`` when given, otherwise a stratified ``val_fraction`` of the
    training split carved with ``split_seed``. Images are converted to the
    declared channels and size (see :func:`to_chw_uint8`); labels must be
    integer class ids in ``0..num_classes-1``.

    When all splits' pixels (``N * C * H * W`` bytes) fit in ``memory_limit_mb``
    they are decoded once into uint8 tensors, otherwise every split is an
    :class:`HFImageSource` decoded on demand. ``mean``/``std`` default to the
    per-channel statistics of the training split (of a sample of at most
    ``stats_samples`` images when lazy).

    Args:
        path: a saved data set's folder, a data-file folder, or a hub id (required).
        name: ``load_dataset``'s configuration name (null for saved data sets).
        train_split, test_split: split names.
        val_split: split name of a validation split, or null to carve one.
        image_key: the image column (``Image`` feature or arrays).
        label_key: the label column (``ClassLabel`` or integers).
        num_classes: declared K (required).
        input_shape: declared ``[C, H, W]`` (required); C is 1 (``L``) or 3 (``RGB``).
        mean, std: per-channel statistics of images scaled to ``[0, 1]``, or null.
        stats_samples: training images decoded to compute ``mean``/``std`` when
            they are null and the images are served lazily (in memory: all).
        augment: augment training batches with ``crop_padding`` and ``flip``.
        crop_padding: zero padding of the random crop, in pixels (with ``augment``).
        flip: random horizontal flips (with ``augment``).
        split_seed: seed of the carved validation split and of the statistics sample.
        val_fraction: share of the training split used for validation when
            ``val_split`` is null.
        memory_limit_mb: largest uint8 pixel volume, in MiB, decoded into memory.
        loader: how the runner serves batches; not used here.

    Raises:
        FileNotFoundError: nothing at ``path`` (neither saved data nor a loadable id).
        ValueError: a missing split or column, labels out of range, or an invalid
            argument.

    References:
        Lhoest et al., "Datasets: A Community Library for Natural Language
        Processing", EMNLP 2021 System Demonstrations. https://huggingface.co/docs/datasets
    """
    del loader
    required = {"path": path, "num_classes": num_classes, "input_shape": input_shape}
    unset = [f"dataset.{k}" for k, v in required.items() if v is None]
    if unset:
        raise ValueError(
            f"the hf data set needs {', '.join(unset)}: the data set's path or hub id, its "
            f"number of classes and the [C, H, W] to serve"
        )
    if not isinstance(path, str) or not path:
        raise ValueError(f"dataset.path={path!r} is invalid: give a hub id or a local directory")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"dataset.input_shape={list(shape)} is invalid: must be [C, H, W]")
    if shape[0] not in MODES:
        raise ValueError(
            f"dataset.input_shape={list(shape)} is invalid: C must be one of {sorted(MODES)} "
            f"(1: grayscale L, 3: RGB)"
        )
    if int(num_classes) < 2:
        raise ValueError(f"dataset.num_classes={num_classes} is invalid: must be >= 2")
    if (mean is None) != (std is None):
        raise ValueError(
            f"give both dataset.mean and dataset.std or neither (mean={mean}, std={std})"
        )
    mean_t, std_t = _stat("mean", mean, shape[0]), _stat("std", std, shape[0])
    _check_int("stats_samples", stats_samples, 1)
    _check_int("crop_padding", crop_padding, 0)
    augment, flip = _check_bool("augment", augment), _check_bool("flip", flip)
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

    pixels = sum(len(ds) for ds in parts.values()) * math.prod(shape)
    lazy = pixels > float(memory_limit_mb) * 2**20
    images: dict[str, Tensor | ImageSource] = {
        role: HFImageSource(ds, image_key, shape) if lazy else read_images(ds, image_key, shape)
        for role, ds in parts.items()
    }

    token = f"hf:{path}" + (f"/{name}" if name else "")
    bundle = bundle_with_official_test(
        token,
        images["train"],
        labels["train"],
        images["test"],
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
            "storage": "lazy" if lazy else "memory",
            "pixels_mb": round(pixels / 2**20, 3),
        },
    )
    if val_split is not None:
        bundle = replace(bundle, val=Split.clean(images["val"], labels["val"]))
    if mean_t is None:
        m, s = channel_stats(bundle.train.x, stats_samples, seed=split_seed)
        mean_t, std_t = tuple(m), tuple(s)
    bundle.info.update(mean=list(mean_t), std=list(std_t), stats_given=mean is not None)
    transform = BatchTransform(
        scale=1 / 255,
        mean=mean_t,
        std=std_t,
        crop_padding=crop_padding if augment else 0,
        flip=flip and augment,
    )
    log.info("dataset %s: %s, %s", token, bundle.sizes(), bundle.info["storage"])
    return replace(bundle, transform=transform)
