"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc_per_node=N -m losslab train ...`` starts N copies of the
command; each reads its rank from the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``). Then:

* ``trainer.batch_size`` is the *global* batch: every rank draws the same
  epoch permutation and augmentation, and takes its contiguous chunk of each
  global batch (:class:`ShardedBatches`), so one step on N ranks sees the
  inputs of one step of a single-process run;
* the model is wrapped in ``DistributedDataParallel``, which averages the
  gradients; each rank's objective is weighted by its share of the global
  batch (chunks differ by one sample when the batch does not divide), so that
  a step equals the single-process step on the global batch;
* per-sample state of losses and regularizers (the buffers each module names
  in ``per_sample_state``, e.g. ALDR-KL's ``lam``) is exchanged after every
  step, so every rank holds what a single process would;
* evaluation is sharded the same way and the logits are gathered (in sample
  order) before any metric is computed;
* only rank 0 writes (run directory, checkpoint, logs, logger).

Without ``WORLD_SIZE`` (or with 1) nothing here is active.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Context:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


#: A single process (the default everywhere).
SINGLE = Context()


def from_env() -> Context:
    """The context ``torchrun`` describes in the environment (single process if none)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return Context(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
    )


def setup(ctx: Context, device_type: str) -> None:
    """Join the process group (once): NCCL on GPUs, gloo on the CPU; share the CPU cores."""
    if not ctx.enabled:
        return
    if device_type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ctx.local_world_size))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")


def broadcast_object(ctx: Context, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(ctx: Context, tensor: Tensor) -> Tensor:
    """The element-wise mean of ``tensor`` over ranks (in place and returned)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= ctx.world_size
    return tensor


def gather_rows(ctx: Context, tensor: Tensor, sizes: list[int] | None = None) -> Tensor:
    """Concatenate every rank's rows (rank order); the row counts may differ.

    ``sizes``: every rank's row count when known (then nothing waits for an
    exchange of counts, which would synchronise the host with the GPU).
    """
    if not ctx.enabled:
        return tensor
    if sizes is None:
        n = torch.tensor([tensor.shape[0]], device=tensor.device)
        counts = [torch.zeros_like(n) for _ in range(ctx.world_size)]
        dist.all_gather(counts, n)
        sizes = [int(c) for c in counts]
    padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])


class ShardedBatches:
    """Each rank's contiguous chunk of every global batch of ``loader``.

    Training (``drop_small=True``): a global batch with fewer samples than
    ranks is dropped, so every rank takes the same number of steps.
    Evaluation: nothing is dropped; a rank may get an empty chunk.
    """

    def __init__(self, loader: Any, ctx: Context, *, drop_small: bool) -> None:
        self.loader, self.ctx, self.drop_small = loader, ctx, drop_small
        self.global_size = 0  # samples in the global batch of the last chunk yielded

    def __len__(self) -> int:
        n = len(self.loader)
        if self.drop_small and n and self._last_size() < self.ctx.world_size:
            n -= 1
        return n

    def _last_size(self) -> int:
        size = getattr(self.loader, "n", None)
        batch = getattr(self.loader, "batch_size", None)
        if size is None or batch is None:
            return self.ctx.world_size
        rest = size % batch
        return rest if rest and not getattr(self.loader, "drop_last", False) else batch

    def batches(self, epoch: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        for step, (x, y, index) in enumerate(self.loader.batches(epoch)):
            if step >= len(self):
                return
            self.global_size = len(index)
            yield tuple(  # type: ignore[misc]
                t.tensor_split(self.ctx.world_size)[self.ctx.rank] for t in (x, y, index)
            )


class FeaturesAndLogits(nn.Module):
    """``model`` returning ``(features, logits)``, so that one DDP forward serves
    regularizers that need the penultimate features."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.model.forward_features(x)
        return features, self.model.head(features)


def wrap(ctx: Context, model: nn.Module, device: torch.device, with_features: bool) -> nn.Module:
    """The module the training step calls: DDP around the model (or its features+logits view)."""
    module = FeaturesAndLogits(model) if with_features else model
    if not ctx.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def chunk_sizes(ctx: Context, global_size: int) -> list[int]:
    """Rows of each rank's chunk of a global batch (as ``tensor_split`` cuts it)."""
    base, extra = divmod(global_size, ctx.world_size)
    return [base + (r < extra) for r in range(ctx.world_size)]


def sync_per_sample_state(
    ctx: Context, modules: list[nn.Module], index: Tensor, global_size: int
) -> None:
    """Give every rank the rows of per-sample buffers that other ranks updated this step.

    Each module names its per-sample buffers (first dimension: the training
    samples) in ``per_sample_state``; the rows of this step's samples are
    gathered from the ranks that own them and written everywhere.
    """
    if not ctx.enabled:
        return
    owners = [
        m for module in modules for m in module.modules() if getattr(m, "per_sample_state", ())
    ]
    if not owners:
        return
    sizes = chunk_sizes(ctx, global_size)
    all_index = gather_rows(ctx, index, sizes)
    for owner in owners:
        for name in owner.per_sample_state:
            buffer = getattr(owner, name)
            rows = buffer[index]
            buffer[all_index] = gather_rows(ctx, rows.to(buffer.device), sizes)
