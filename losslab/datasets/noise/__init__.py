"""Label noise applied to the training and validation labels of a data set.

A noise model is built from ``conf/noise/<token>.yaml``. It draws its
randomness only from ``noise.seed`` (never from the run's ``seed``, and never
from the global torch or numpy generators), so every loss in a comparison sees
identical noisy labels. Test labels are never corrupted.

One module per model, as in ``conf/noise/`` (config tokens):

- ``none``: clean labels (:class:`NoNoise`, :mod:`.none`).
- ``symmetric``: uniform flips to the other classes (:class:`SymmetricNoise`,
  :mod:`.symmetric`); the ``ldr/sym*`` and ``apl/sym*`` presets use it.
- ``asymmetric``: flips along a class mapping (:class:`AsymmetricNoise`,
  :mod:`.asymmetric`, with the named tables in :mod:`.mappings`); the
  ``ldr_letter``, ``ldr_vowel`` and ``ldr_news20`` presets hold the LDR benchmark's
  swaps, and the ``ldr/cyclic*``, ``ldr/<set>*`` and ``apl/asym*`` presets use it too.
- ``instance``: part/instance-dependent flips (:class:`InstanceNoise`, :mod:`.instance`).
- ``transition``: a K x K transition matrix read from a file (:class:`TransitionNoise`,
  :mod:`.transition`).
- ``human``: CIFAR-10N / CIFAR-100N human labels (:class:`HumanNoise`, :mod:`.human`).

:mod:`.base` holds the :class:`LabelNoise` base class, the record helpers and the
parameter checks. Every class is importable from this package, which is what the
YAMLs' ``_target_`` (``losslab.datasets.noise.SymmetricNoise``, ...) name.
"""

from losslab.datasets.noise.asymmetric import ASYMMETRIC_MAPPINGS, AsymmetricNoise
from losslab.datasets.noise.base import LabelNoise, empirical_transition_matrix, labels_sha
from losslab.datasets.noise.human import HUMAN_LABELS, HumanNoise
from losslab.datasets.noise.instance import InstanceNoise
from losslab.datasets.noise.none import NoNoise
from losslab.datasets.noise.symmetric import SymmetricNoise
from losslab.datasets.noise.transition import TransitionNoise, load_transition_matrix

__all__ = [
    "ASYMMETRIC_MAPPINGS",
    "HUMAN_LABELS",
    "AsymmetricNoise",
    "HumanNoise",
    "InstanceNoise",
    "LabelNoise",
    "NoNoise",
    "SymmetricNoise",
    "TransitionNoise",
    "empirical_transition_matrix",
    "labels_sha",
    "load_transition_matrix",
]
