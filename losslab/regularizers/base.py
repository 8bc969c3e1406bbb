"""The regularizer contract."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

#: Everything the runner can hand to a regularizer beyond ``logits`` and ``target``.
AVAILABLE_INPUTS = frozenset({"features", "index", "model", "inputs"})


class Regularizer(nn.Module):
    """Base class: holds ``weight`` and declares which extra inputs it needs.

    Subclasses set ``needs`` to a subset of ``{"features", "index", "model", "inputs"}``
    and implement ``forward(logits, target, **extra)`` returning the unweighted term.

    Run values: a regularizer that needs facts known only once the data is loaded
    takes them as constructor arguments and names them in ``run_values``
    (e.g. ``run_values = ("num_samples", "num_classes")``); the runner passes
    exactly the declared ones as keyword arguments. It supplies ``num_samples``
    (size of the training split), ``num_classes`` (K) and ``class_counts``
    (training labels per class, ``[K]``).

    Args:
        weight: multiplier the runner applies to the term (>= 0).
    """

    needs: ClassVar[frozenset[str]] = frozenset()
    #: The run values this regularizer takes at construction (see above); none by default.
    run_values: ClassVar[tuple[str, ...]] = ()

    def __init__(self, weight: float) -> None:
        super().__init__()
        if float(weight) < 0:
            raise ValueError(f"regularizer weight={weight} is invalid: must be >= 0")
        unknown = self.needs - AVAILABLE_INPUTS
        if unknown:
            raise TypeError(f"{type(self).__name__}.needs has unknown inputs {sorted(unknown)}")
        self.weight = float(weight)

    def forward(self, logits: Tensor, target: Tensor, **extra: object) -> Tensor:
        raise NotImplementedError
