"""Classifiers built for any input shape and class count.

Every model is a :class:`~losslab.models.base.Classifier`: ``forward(x)``
returns logits and equals ``head(forward_features(x))``, so feature-level
regularizers can use the penultimate activations.
"""

from losslab.models.base import Classifier

__all__ = ["Classifier"]
