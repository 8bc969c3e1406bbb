"""Regularizers: terms added to any loss as ``weight * term``.

A regularizer is an ``nn.Module`` with a ``weight`` attribute whose forward
returns the unweighted batch-mean term. It receives ``logits`` and ``target``
and, only where its class lists them in ``needs``, ``features`` (penultimate
activations), ``index``, ``model`` and ``inputs``. Several stack:
``'regularizer=[entropy,logit_l2]'``.
"""

from losslab.regularizers.base import Regularizer

__all__ = ["Regularizer"]
