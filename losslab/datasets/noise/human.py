"""Real human label noise of CIFAR-10N / CIFAR-100N (``noise=human``)."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from losslab.datasets.base import DataBundle, Split
from losslab.datasets.noise.base import LabelNoise, check_choice, invalid

HUMAN_LABELS = {
    "aggre": "aggre_label",
    "rand1": "random_label1",
    "rand2": "random_label2",
    "rand3": "random_label3",
    "worst": "worse_label",
    "noisy100": "noisy_label",
}
"""``noise.label`` -> key of the CIFAR-N label file (CIFAR-10N: the first five; CIFAR-100N:
``noisy100``)."""

_CIFAR_N_SOURCE = (
    "the label files CIFAR-10_human.pt and CIFAR-100_human.pt come from the CIFAR-N "
    "release (http://www.noisylabels.com, https://github.com/UCSC-REAL/cifar-10-100n, "
    "folder data/) and are never bundled with losslab: download one and pass its path"
)


def _source_index(split: Split) -> np.ndarray:
    """Position of every sample of ``split`` in its source's official order."""
    if split.source_index is None:
        return np.arange(len(split))
    return split.source_index.cpu().numpy().astype(np.int64)


def _read_label_file(path: Path, shown: str) -> Mapping:
    """A dict saved with ``torch.save`` or pickle (or a ``.npy`` holding one)."""
    try:
        if path.suffix.lower() == ".npy":
            obj = np.load(path, allow_pickle=True)
            obj = obj.item() if obj.dtype == object and obj.ndim == 0 else obj
        else:
            try:
                obj = torch.load(path, map_location="cpu", weights_only=False)
            except (RuntimeError, pickle.UnpicklingError):
                with path.open("rb") as fh:
                    obj = pickle.load(fh)
    except Exception as exc:
        raise invalid("file", shown, f"cannot read a CIFAR-N label file from it: {exc}") from exc
    if not isinstance(obj, Mapping):
        raise invalid(
            "file", shown, f"expected a dict of label arrays, found a {type(obj).__name__}"
        )
    return obj


def _label_array(obj: Mapping, key: str, shown: str) -> np.ndarray:
    arr = np.asarray(obj[key].cpu() if isinstance(obj[key], torch.Tensor) else obj[key])
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise invalid(
            "file",
            shown,
            f"'{key}' must be a 1-D integer array, found shape {arr.shape} of {arr.dtype}",
        )
    return arr.astype(np.int64)


class HumanNoise(LabelNoise):
    """Real human label noise of CIFAR-10N / CIFAR-100N (``noise=human``).

    The CIFAR-N release re-annotated the 50,000 CIFAR training images on Amazon
    Mechanical Turk. Its label file is a ``torch.save``'d dict of arrays in the
    official training order; the noisy label of a sample is
    ``file[key][source_index]``. ``noise.label`` picks the annotation:

    - CIFAR-10N: ``aggre`` (majority vote, ~9 % noise), ``rand1``, ``rand2``,
      ``rand3`` (one annotator each, ~17 %), ``worst`` (a wrong one where any, ~40 %);
    - CIFAR-100N: ``noisy100`` (~40 %).

    The file's ``clean_label`` must equal the data set's clean labels at the
    aligned positions, or the file belongs to another data set. Human noise has no
    nominal rate (recorded as None); its realised rate is recorded. ``seed`` is
    kept for the record but draws nothing.

    Args:
        file: the label file (``CIFAR-10_human.pt`` or ``CIFAR-100_human.pt``, never
            bundled); None (the YAML default) only builds the model: :meth:`apply` fails.
        label: which annotation: ``aggre``, ``rand1``, ``rand2``, ``rand3``, ``worst``
            or ``noisy100``.
        seed: recorded with the run.

    Raises:
        ValueError: a bad ``label``, a missing or unreadable file or key, or (at
            :meth:`apply`) no file, a file shorter than ``max(source_index) + 1``, or a
            file whose clean labels disagree with the data set's.

    References:
        Wei et al., "Learning with Noisy Labels Revisited: A Study Using Real-World
        Human Annotations", ICLR 2022.
    """

    kind = "human"

    def __init__(self, file: str | None = None, label: str = "aggre", seed: int = 0) -> None:
        super().__init__(rate=None, seed=seed)
        self.label = check_choice("label", label, tuple(HUMAN_LABELS))
        self.file = None if file is None else str(file)
        self.noisy_labels: np.ndarray | None = None
        self.clean_labels: np.ndarray | None = None
        if file is not None:
            self._load(Path(file).expanduser())

    def _load(self, path: Path) -> None:
        shown = self.file
        if not path.is_file():
            raise invalid("file", shown, f"no such file; {_CIFAR_N_SOURCE}")
        obj = _read_label_file(path, shown)
        key = HUMAN_LABELS[self.label]
        if key not in obj and self.label == "noisy100" and "noise_label" in obj:
            key = "noise_label"  # the spelling of the release's .npy copy
        for needed in (key, "clean_label"):
            if needed not in obj:
                raise invalid(
                    "file",
                    shown,
                    f"it has no key '{needed}' (needed by noise.label={self.label}); its keys: "
                    f"{sorted(map(str, obj))}. CIFAR-10N files hold aggre/rand1/rand2/rand3/"
                    "worst, CIFAR-100N files hold noisy100",
                )
        self.noisy_labels = _label_array(obj, key, shown)
        self.clean_labels = _label_array(obj, "clean_label", shown)
        if len(self.noisy_labels) != len(self.clean_labels):
            raise invalid(
                "file",
                shown,
                f"'{key}' holds {len(self.noisy_labels)} labels but 'clean_label' holds "
                f"{len(self.clean_labels)}",
            )

    def prepare(self, data: DataBundle) -> None:
        if self.noisy_labels is None or self.clean_labels is None:
            raise ValueError(
                "noise=human needs noise.file=<path of CIFAR-10_human.pt or "
                f"CIFAR-100_human.pt>; it has no default: {_CIFAR_N_SOURCE}"
            )
        k = data.num_classes
        top = int(max(self.noisy_labels.max(initial=0), self.clean_labels.max(initial=0)))
        if top >= k or min(self.noisy_labels.min(initial=0), self.clean_labels.min(initial=0)) < 0:
            raise invalid(
                "file",
                self.file,
                f"it holds labels up to {top} but the data set '{data.name}' has K={k} "
                f"classes (0..{k - 1}): it belongs to another data set",
            )
        for name in ("train", "val"):
            self._check_alignment(getattr(data, name), name, data.name)

    def _check_alignment(self, split: Split, name: str, dataset: str) -> None:
        """Fail unless ``split``'s samples sit in the file with matching clean labels."""
        assert self.noisy_labels is not None and self.clean_labels is not None
        n = len(split)
        if n == 0:
            return
        index = _source_index(split)
        length = len(self.noisy_labels)
        if index.min() < 0 or index.max() >= length:
            raise invalid(
                "file",
                self.file,
                f"it holds {length} labels but the {name} split of '{dataset}' refers to "
                f"source index {int(index.max())} (needs at least {int(index.max()) + 1}); "
                "the file follows the official CIFAR training order (50,000 images)",
            )
        wrong = int((self.clean_labels[index] != split.y_clean.cpu().numpy()).sum())
        if wrong:
            raise invalid(
                "file",
                self.file,
                f"its clean_label disagrees with the clean labels of '{dataset}' at {wrong} of "
                f"{n} {name} samples aligned by source_index: the file belongs to another data "
                "set (CIFAR-10N files go with cifar10, CIFAR-100N files with cifar100)",
            )

    def corrupt(
        self, labels: np.ndarray, num_classes: int, rng: np.random.Generator, split: Split
    ) -> np.ndarray:
        assert self.noisy_labels is not None  # checked by prepare
        return self.noisy_labels[_source_index(split)].copy()

    def params(self) -> dict[str, Any]:
        return {"file": self.file, "label": self.label}

    def nominal_rate(self, data: DataBundle) -> float | None:
        return None
