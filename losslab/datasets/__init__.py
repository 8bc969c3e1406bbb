"""Data sets and label noise.

Every loader returns a :class:`~losslab.datasets.base.DataBundle` whose three
splits hold inputs, (possibly noisy) labels, the clean labels and a per-sample
``is_noisy`` flag. Label noise (:mod:`losslab.datasets.noise`) is applied to the
training and validation labels only; test labels are never corrupted.

This subpackage is ``losslab.datasets``; it never shadows Hugging Face's
top-level ``datasets`` package (do not run files in it as scripts).
"""

from losslab.datasets.base import DataBundle, Split, stratified_split

__all__ = ["DataBundle", "Split", "stratified_split"]
