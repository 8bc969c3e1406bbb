"""A stateful accumulator over batches that reuses :func:`classification_metrics`."""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.metrics.classification import classification_metrics


class MetricCollector:
    """Collect the logits and targets of a split batch by batch; compute the metrics once.

    Binned, sorted and ranked metrics (ECE, adaptive ECE, AURC) need every sample
    at once, so the collector keeps the batches, on their device, and
    :meth:`compute` evaluates :func:`classification_metrics` on their
    concatenation: the result equals the one-shot call on the whole split
    exactly, however the split was batched. Memory is ``O(N K)``.

    Example:
        >>> collector = MetricCollector()
        >>> collector.update(torch.tensor([[2.0, 0.0]]), torch.tensor([0]))
        >>> collector.update(torch.tensor([[0.0, 1.0], [3.0, 0.0]]), torch.tensor([0, 0]))
        >>> len(collector), round(collector.compute()["acc"], 4)
        (3, 0.6667)
        >>> collector.reset()
        >>> len(collector)
        0
    """

    def __init__(self) -> None:
        self._logits: list[Tensor] = []
        self._target: list[Tensor] = []
        self._n = 0

    def __len__(self) -> int:
        """Number of samples collected since the last :meth:`reset`."""
        return self._n

    def update(self, logits: Tensor, target: Tensor) -> None:
        """Store one batch (detached; targets moved to the logits' device).

        Args:
            logits: ``[B, K]``; ``K`` must match earlier batches.
            target: ``[B]`` integer classes.

        Raises:
            ValueError: on mismatched shapes or a ``K`` that differs from earlier batches.
        """
        if logits.ndim != 2 or target.ndim != 1 or logits.shape[0] != target.shape[0]:
            raise ValueError(
                f"expected logits [B, K] and target [B], got {list(logits.shape)} and "
                f"{list(target.shape)}"
            )
        if self._logits and logits.shape[1] != self._logits[0].shape[1]:
            raise ValueError(
                f"batch has {logits.shape[1]} classes, earlier batches {self._logits[0].shape[1]}"
            )
        self._logits.append(logits.detach())
        self._target.append(target.detach().to(logits.device))
        self._n += logits.shape[0]

    def compute(self, n_bins: int = 15) -> dict[str, float | None]:
        """:func:`classification_metrics` of all collected samples.

        Args:
            n_bins: bins for the calibration metrics.

        Returns:
            The metrics dict (see :func:`classification_metrics`).

        Raises:
            ValueError: when nothing was collected.
        """
        if not self._logits:
            raise ValueError("MetricCollector.compute() before any update()")
        return classification_metrics(torch.cat(self._logits), torch.cat(self._target), n_bins)

    def reset(self) -> None:
        """Drop every collected batch."""
        self._logits.clear()
        self._target.clear()
        self._n = 0
