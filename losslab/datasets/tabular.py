"""Tabular data sets: LIBSVM-format files and OpenML tables.

Features are served as float32 tensors ``[N, d]``, standardised per feature
with the mean and standard deviation of the training split only (constant
features get a scale of 1, as in scikit-learn's ``StandardScaler``), so nothing
leaks from validation or test. Labels are encoded to ``0..K-1``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from losslab.datasets.base import (
    DataBundle,
    bundle_from_arrays,
    bundle_with_official_test,
    serves_with,
    stratified_split,
)
from losslab.datasets.loader import (
    MEMORY_LIMIT_MB,
    check_loader,
    check_memory_limit,
    fits_in_memory,
)

log = logging.getLogger(__name__)

#: The LIBSVM data repository's multiclass page, where the preset files come from.
LIBSVM_PAGE = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html"

#: Compressed forms that ``sklearn.datasets.load_svmlight_file`` reads directly
#: (the repository distributes its larger files as ``.bz2``).
_COMPRESSED = (".bz2", ".gz")


# --------------------------------------------------------------------------- shared helpers


def _check_fraction(key: str, value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"dataset.{key}={value} is invalid: must be in [0, 1)")


def _encode_labels(name: str, values: np.ndarray, num_classes: int) -> tuple[np.ndarray, list]:
    """Labels as ``0..K-1`` in the sorted order of their distinct values."""
    classes, codes = np.unique(values, return_inverse=True)
    if classes.dtype.kind == "f" and np.array_equal(classes, np.round(classes)):
        classes = classes.astype(np.int64)  # LIBSVM labels are parsed as floats
    if len(classes) > int(num_classes):
        shown = ", ".join(str(c) for c in classes[:20]) + (" ..." if len(classes) > 20 else "")
        raise ValueError(
            f"dataset '{name}': the data has {len(classes)} distinct labels ({shown}) but "
            f"dataset.num_classes={num_classes}; set dataset.num_classes={len(classes)}"
        )
    return codes.astype(np.int64).reshape(-1), classes.tolist()


def _standardize_features(bundle: DataBundle) -> None:
    """Standardise every split's features in place with the training split's statistics.

    Per feature: ``(x - mean) / std`` with the population mean and standard
    deviation of ``bundle.train.x``; features that are constant in training get
    ``std = 1``. Statistics are accumulated in float64 over row chunks of about
    2**24 values (128 MiB), not over a float64 copy of the data.
    """
    train = bundle.train.x
    n, d = train.shape[0], train.shape[1]
    chunk = max(1, 2**24 // max(d, 1))
    total = torch.zeros(d, dtype=torch.float64)
    for rows in train.split(chunk):
        total += rows.sum(0, dtype=torch.float64)
    mean = total / max(n, 1)
    sq = torch.zeros(d, dtype=torch.float64)
    for rows in train.split(chunk):
        sq += ((rows.double() - mean) ** 2).sum(0)
    std = (sq / max(n, 1)).sqrt()
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    mean32, std32 = mean.float(), std.float()
    for split in (bundle.train, bundle.val, bundle.test):
        for rows in split.x.split(chunk):  # views: the split is updated in place
            rows.sub_(mean32).div_(std32)
    bundle.info["standardize"] = {"per_feature": True, "statistics": "training split"}


# --------------------------------------------------------------------------- LIBSVM files


def _resolve(root: Path, file: str) -> Path | None:
    """``root / file``, or its ``.bz2``/``.gz`` form as distributed; None when absent."""
    path = root / file
    for candidate in (path, *(path.with_name(path.name + ext) for ext in _COMPRESSED)):
        if candidate.is_file():
            return candidate
    return None


@serves_with("loader", "memory_limit_mb")
def load_libsvm(
    *,
    root: str,
    train_file: str | None = None,
    test_file: str | None = None,
    num_features: int | None = None,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    zero_based: bool = False,
    memory_limit_mb: float = MEMORY_LIMIT_MB,
    loader: str = "auto",
) -> DataBundle:
    """A multiclass data set in the LIBSVM text format (``label index:value ...`` lines).

    Files are read with :func:`sklearn.datasets.load_svmlight_files` with
    ``n_features=num_features``, so the training and test matrices have the
    same width even when a feature index only occurs in one of them. Files may
    be plain or compressed (``.bz2``/``.gz`` next to the configured name is
    found too). Nothing is ever downloaded.

    Labels are remapped to ``0..K-1`` in the sorted order of the union of the
    training and test label values (many LIBSVM files number classes from 1).
    Features are densified to float32 and standardised per feature with
    training-split statistics.

    With ``test_file`` the official test file is the test split and a stratified
    validation split of ``val_fraction`` is carved from the training file;
    without it, a stratified test split of ``test_fraction`` is carved first.
    Both splits are fixed by ``split_seed``.

    Args:
        root: folder holding the files (``~`` is expanded).
        train_file: training file name under ``root`` (required).
        test_file: test file name under ``root``, or None to carve a test split.
        num_features: number of features d, the largest feature index (required).
        num_classes: declared K (required); an error when the files hold more
            distinct labels.
        input_shape: declared input shape, ``[num_features]`` (None: that).
        split_seed: seed of the stratified splits.
        val_fraction: share of the training samples used for validation.
        test_fraction: share of all samples used for test when ``test_file`` is None.
        zero_based: feature indices start at 0 (LIBSVM's own format starts at 1;
            files written by ``sklearn.datasets.dump_svmlight_file`` start at 0).
        memory_limit_mb: largest dense feature matrix (train and test together,
            float32) that may be built, in MiB.
        loader: how the runner serves the (in-memory) features: ``auto`` or ``memory``
            (tensors on the training device) or ``dataloader``; checked here.

    Returns:
        The bundle; its name is the training file's stem (``letter.scale`` gives
        ``letter``).

    Raises:
        FileNotFoundError: a file is missing (the message names the expected paths).
        ValueError: an invalid argument, unparsable files, more labels than
            ``num_classes``, or a dense matrix larger than ``memory_limit_mb``.

    References:
        Chang & Lin, "LIBSVM: A library for support vector machines", ACM TIST
        2(3), 2011. Data sets: https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/
    """
    from sklearn.datasets import load_svmlight_files

    check_loader(loader)
    check_memory_limit(memory_limit_mb)
    required = {"train_file": train_file, "num_features": num_features, "num_classes": num_classes}
    unset = [f"dataset.{k}" for k, v in required.items() if v is None]
    if unset:
        raise ValueError(
            f"the libsvm data set needs {', '.join(unset)} (or a preset such as "
            f"dataset=letter); files come from {LIBSVM_PAGE}"
        )
    if input_shape is None:
        input_shape = [int(num_features)]
    name = Path(str(train_file)).name.split(".")[0] or "libsvm"
    if int(num_features) < 1:
        raise ValueError(f"dataset.num_features={num_features} is invalid: must be >= 1")
    if int(num_classes) < 2:
        raise ValueError(f"dataset.num_classes={num_classes} is invalid: must be >= 2")
    _check_fraction("val_fraction", val_fraction)
    if test_file is None:
        _check_fraction("test_fraction", test_fraction)

    base = Path(str(root)).expanduser()
    files = [str(train_file)] + ([str(test_file)] if test_file else [])
    paths = [_resolve(base, f) for f in files]
    missing = [f for f, p in zip(files, paths, strict=True) if p is None]
    if missing:
        expected = ", ".join(str(base / f) for f in missing)
        raise FileNotFoundError(
            f"dataset '{name}': LIBSVM file(s) not found: {expected} (also looked for "
            f"{'/'.join(_COMPRESSED)} forms). Download them from the LIBSVM data sets page "
            f"{LIBSVM_PAGE} into dataset.root={base}; nothing is downloaded automatically."
        )

    try:
        loaded = load_svmlight_files(
            [str(p) for p in paths],
            n_features=int(num_features),
            dtype=np.float32,
            zero_based=bool(zero_based),
        )
    except ValueError as exc:
        raise ValueError(
            f"dataset '{name}': cannot read {[str(p) for p in paths]} as LIBSVM files with "
            f"dataset.num_features={num_features}, dataset.zero_based={zero_based}: {exc}"
        ) from exc
    matrices, raw_labels = loaded[0::2], loaded[1::2]

    rows = sum(m.shape[0] for m in matrices)
    dense_mb = rows * int(num_features) * 4 / 2**20
    if not fits_in_memory(rows * int(num_features) * 4, memory_limit_mb):
        raise ValueError(
            f"dataset '{name}': the dense float32 feature matrix would take {dense_mb:,.0f} MiB "
            f"({rows:,} samples x {int(num_features):,} features), more than "
            f"dataset.memory_limit_mb={memory_limit_mb}; raise dataset.memory_limit_mb if the "
            f"machine has the memory"
        )

    codes, classes = _encode_labels(name, np.concatenate(raw_labels), num_classes)
    info = {
        "source": "libsvm",
        "files": [str(p) for p in paths],
        "label_values": classes,
    }
    if test_file:
        n_train = matrices[0].shape[0]
        bundle = bundle_with_official_test(
            name,
            torch.from_numpy(matrices[0].toarray()),
            codes[:n_train],
            torch.from_numpy(matrices[1].toarray()),
            codes[n_train:],
            num_classes=num_classes,
            input_shape=input_shape,
            split_seed=split_seed,
            val_fraction=val_fraction,
            info=info,
        )
    else:
        bundle = bundle_from_arrays(
            name,
            matrices[0].toarray(),
            codes,
            num_classes=num_classes,
            input_shape=input_shape,
            split_seed=split_seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            info=info,
        )
    _standardize_features(bundle)
    log.info("dataset %s: %s", name, bundle.sizes())
    return bundle


# --------------------------------------------------------------------------- OpenML tables


def _carved_rows(
    y: np.ndarray, *, test_fraction: float, val_fraction: float, split_seed: int
) -> np.ndarray:
    """The training rows that :func:`bundle_from_arrays` keeps (same calls, same seed)."""
    _, rest = stratified_split(y, [test_fraction], seed=split_seed)
    _, train_rel = stratified_split(y[rest], [val_fraction], seed=split_seed)
    return rest[train_rel]


def _encode_table(data: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Float64 feature matrix (NaN where missing), categorical-column mask, and column names.

    Categorical columns (pandas ``category``, ``object``, ``string`` or ``bool``
    dtypes) are ordinal-encoded: the category's position in the column's
    category list (OpenML's declared order), or in the sorted distinct values
    when no order is declared.
    """
    import pandas as pd
    import scipy.sparse as sp

    if sp.issparse(data):
        x = data.toarray().astype(np.float64)
        return x, np.zeros(x.shape[1], dtype=bool), [f"f{i}" for i in range(x.shape[1])]
    if not isinstance(data, pd.DataFrame):
        x = np.asarray(data, dtype=np.float64)
        return x, np.zeros(x.shape[1], dtype=bool), [f"f{i}" for i in range(x.shape[1])]
    columns, categorical = [], []
    for col in data.columns:
        s = data[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
            categorical.append(True)
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            columns.append(s.to_numpy(dtype=np.float64, na_value=np.nan))
            categorical.append(False)
        else:
            present = s.notna().to_numpy()
            values = s.astype(str).to_numpy()
            levels = np.unique(values[present])
            codes = np.full(len(s), np.nan)
            codes[present] = np.searchsorted(levels, values[present])
            columns.append(codes)
            categorical.append(True)
    x = np.stack(columns, axis=1) if columns else np.zeros((len(data), 0))
    return x, np.asarray(categorical, dtype=bool), [str(c) for c in data.columns]


def _encode_target(name: str, target: Any, num_classes: int) -> tuple[np.ndarray, list, np.ndarray]:
    """Labels ``0..K-1`` of the labelled rows, the label values, and the labelled-row mask.

    Categorical targets keep OpenML's declared category order; others are
    ordered by sorting their distinct values.
    """
    import pandas as pd

    if getattr(target, "ndim", 1) != 1:
        raise ValueError(
            f"dataset '{name}': the target must be one column, got shape {target.shape}; "
            f"set dataset.target_column to a single column"
        )
    t = target if isinstance(target, pd.Series) else pd.Series(np.asarray(target))
    has_label = t.notna().to_numpy()
    t = t[has_label]
    if isinstance(t.dtype, pd.CategoricalDtype):
        y, present = _encode_labels(name, t.cat.codes.to_numpy(), num_classes)
        return y, [str(t.cat.categories[c]) for c in present], has_label
    if pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t):
        y, values = _encode_labels(name, t.to_numpy(dtype=np.float64), num_classes)
    else:
        y, values = _encode_labels(name, t.astype(str).to_numpy(), num_classes)
    return y, values, has_label


def _impute(x: np.ndarray, categorical: np.ndarray, rows: np.ndarray) -> dict[str, int]:
    """Fill NaNs in place from the training rows: means of numeric columns, modes of
    categorical ones (0 when a column is missing in every training row)."""
    filled = {}
    train = x[rows]
    for j in np.flatnonzero(np.isnan(x).any(axis=0)):
        seen = train[:, j][~np.isnan(train[:, j])]
        if len(seen) == 0:
            fill = 0.0
        elif categorical[j]:
            values, counts = np.unique(seen, return_counts=True)
            fill = float(values[np.argmax(counts)])
        else:
            fill = float(seen.mean())
        missing = np.isnan(x[:, j])
        filled[int(j)] = int(missing.sum())
        x[missing, j] = fill
    return filled


@serves_with("loader")
def load_openml(
    *,
    name: str | None = None,
    data_id: int | None = None,
    version: int | str = "active",
    target_column: str | None = None,
    num_classes: int,
    num_features: int,
    input_shape: Sequence[int],
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    data_home: str | None = None,
    loader: str = "auto",
) -> DataBundle:
    """A classification table from OpenML, through :func:`sklearn.datasets.fetch_openml`.

    Needs network the first time; scikit-learn caches the download under
    ``data_home`` (default ``~/scikit_learn_data``) and later runs read the cache.

    Preprocessing, all fitted on the training split only:

    * categorical features are ordinal-encoded (one column per feature: the
      category's index in OpenML's declared category order), so ``num_features``
      is the number of feature columns OpenML lists, whatever the category
      counts; one-hot encoding would make it depend on them;
    * missing values are imputed with the training split's mean (numeric
      features) or most frequent category (categorical features);
    * every feature is then standardised per feature with training statistics.

    Labels are encoded to ``0..K-1`` in the sorted order of the distinct target
    values; rows without a target value are dropped. No official test split
    exists, so stratified test and validation splits are carved with
    ``split_seed``.

    Args:
        name: the OpenML data set name (give ``name`` or ``data_id``, not both).
        data_id: the OpenML data set id.
        version: version of a data set given by ``name`` (``active``: the oldest
            active one).
        target_column: the label column; None: the data set's default target.
        num_classes: declared K, checked against the data.
        num_features: declared number of feature columns, checked against the data.
        input_shape: declared input shape, ``[num_features]``.
        split_seed: seed of the stratified splits.
        val_fraction: share of the non-test samples used for validation.
        test_fraction: share of all samples used for test.
        data_home: scikit-learn's download cache folder (None: its default).
        loader: how the runner serves the (in-memory) features: ``auto`` or ``memory``
            (tensors on the training device) or ``dataloader``; checked here.

    Raises:
        ValueError: an invalid argument, a target that is missing or not a single
            column, or data that disagrees with the declared counts.

    References:
        Vanschoren, van Rijn, Bischl & Torgo, "OpenML: networked science in machine
        learning", SIGKDD Explorations 15(2), 2013. https://www.openml.org
    """
    from sklearn.datasets import fetch_openml

    check_loader(loader)
    if (name is None) == (data_id is None):
        raise ValueError(
            f"dataset: give exactly one of dataset.name and dataset.data_id "
            f"(got name={name!r}, data_id={data_id!r}); set the other to null"
        )
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    token = f"openml:{name if name is not None else data_id}"
    query: dict[str, Any] = (
        {"name": str(name), "version": version} if name is not None else {"data_id": int(data_id)}
    )
    raw = fetch_openml(
        **query,
        target_column=target_column if target_column is not None else "default-target",
        data_home=data_home,
        as_frame="auto",
    )
    if raw.target is None:
        raise ValueError(
            f"dataset '{token}' has no default target; set dataset.target_column to one of "
            f"{list(getattr(raw, 'feature_names', []))}"
        )
    x, categorical, columns = _encode_table(raw.data)
    if x.shape[1] != int(num_features):
        raise ValueError(
            f"dataset '{token}': dataset.num_features={num_features} but the data has "
            f"{x.shape[1]} feature columns"
        )
    y, classes, has_label = _encode_target(token, raw.target, num_classes)
    if not has_label.all():
        log.warning("dataset %s: dropping %d rows without a label", token, (~has_label).sum())
        x = x[has_label]

    rows = _carved_rows(
        y, test_fraction=test_fraction, val_fraction=val_fraction, split_seed=split_seed
    )
    imputed = _impute(x, categorical, rows)
    bundle = bundle_from_arrays(
        token,
        x,
        y,
        num_classes=num_classes,
        input_shape=input_shape,
        split_seed=split_seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        info={
            "source": "openml",
            **query,
            "target_column": target_column,
            "categorical": [c for c, cat in zip(columns, categorical, strict=True) if cat],
            "encoding": "ordinal",
            "imputed": {columns[j]: n for j, n in imputed.items()},
            "label_values": classes,
            "dropped_unlabelled": int((~has_label).sum()),
        },
    )
    if not np.array_equal(bundle.train.source_index.numpy(), rows):
        raise RuntimeError("internal: the imputation rows differ from the training split")
    _standardize_features(bundle)
    return bundle
