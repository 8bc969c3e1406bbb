"""Batches ``(x, y, index)`` from a split held as tensors on the training device."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from losslab.datasets.base import Split


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The sample order of one epoch: a permutation of ``range(n)`` on the CPU.

    It depends only on ``(seed, epoch)``: every run with the same ``seed``
    visits the data in the same order whatever its loss, model or device, and a
    resumed run continues the order exactly without saved generator state.
    """
    g = torch.Generator()
    # Distinct, well-mixed seeds per (seed, epoch); both are small non-negative ints.
    g.manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1))
    return torch.randperm(n, generator=g)


class InMemoryLoader:
    """Iterates one split in batches without DataLoader workers.

    The split's tensors are moved to ``device`` once; each batch is gathered
    there with one index tensor, so there is no per-sample Python work.

    Args:
        split: the split to serve (``y`` is what training sees; may be noisy).
        batch_size: samples per batch (>= 1).
        device: where the tensors live.
        shuffle: a new order every epoch (training) or the stored order (eval).
        seed: seed of the order (the run's ``seed``).
        drop_last: drop a last, smaller batch.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device | str = "cpu",
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid: must be >= 1")
        self.x = split.x.to(device)
        self.y = split.y.to(device)
        self.n = len(split)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Yield ``(x, y, index)`` for one epoch; ``index`` are dataset positions."""
        if self.shuffle:
            order = epoch_permutation(self.n, self.seed, epoch).to(self.device)
        else:
            order = torch.arange(self.n, device=self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.x[idx], self.y[idx], idx
