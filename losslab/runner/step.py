"""One training step: the objective, its Mixup/CutMix mixing, and the closure the
optimizer calls (once; SAM twice).

The objective is the loss plus each regularizer's ``weight * term``. Every step
returns its detached ``[objective, loss, reg terms...]`` as evaluated by the
first closure call, at the weights before the step; :class:`EpochTerms` keeps
them on the device and sums them once per epoch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from losslab.datasets.mixing import Mix
from losslab.runner import distributed

#: ``trainer.precision`` -> the dtype of autocast (None: no autocast).
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16}

Autocast = Callable[[], contextlib.AbstractContextManager]


def autocast_for(precision: str, device: torch.device) -> Autocast:
    """A new autocast context at each call (one per forward pass), for ``precision``."""
    dtype = AUTOCAST_DTYPES[precision]

    def autocast() -> contextlib.AbstractContextManager:
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    return autocast


def forwards(
    model: nn.Module,
    ctx: distributed.Context,
    device: torch.device,
    use_features: bool,
    compile_: bool,
) -> tuple[nn.Module, nn.Module]:
    """The forward of evaluation (the model, compiled where asked) and that of training.

    Training calls the model, or a ``(features, logits)`` view of it when a
    regularizer needs features, wrapped in DDP across ranks.
    """
    stepper = distributed.wrap(ctx, model, device, use_features)
    forward = torch.compile(model) if compile_ else model
    train_forward = forward if stepper is model else stepper
    if compile_ and stepper is not model:
        train_forward = torch.compile(stepper)
    return forward, train_forward


def grad_scale(ctx: distributed.Context, index: Tensor, loader: Any) -> float:
    """The weight of this rank's objective: 1 in a single process.

    DDP averages the gradients over ranks; weighting each rank's batch mean by
    its share of the global batch (times the number of ranks) makes that average
    the mean over the global batch, also when the chunks differ by one sample.
    """
    return len(index) * ctx.world_size / loader.global_size if ctx.enabled else 1.0


class Objective:
    """The training objective of a batch and the unweighted terms it is made of."""

    def __init__(self, loss: nn.Module, regularizers: dict[str, nn.Module], model: nn.Module):
        self.loss, self.regularizers, self.model = loss, regularizers, model
        # what each regularizer is given besides logits and targets
        self.needs = {n: frozenset(getattr(r, "needs", ())) for n, r in regularizers.items()}
        self.use_features = any("features" in n for n in self.needs.values())

    def terms(
        self, logits: Tensor, features: Tensor | None, inputs: Tensor, target: Tensor, index: Tensor
    ) -> tuple[Tensor, list[Tensor]]:
        """``loss + sum(weight * term)`` and ``[loss, term...]`` for the labels ``target``."""
        loss = self.loss(logits, target, index=index)
        objective, terms = loss, [loss]
        available = {"features": features, "index": index, "model": self.model, "inputs": inputs}
        for name, reg in self.regularizers.items():
            term = reg(logits, target, **{k: available[k] for k in self.needs[name]})
            objective = objective + reg.weight * term
            terms.append(term)
        return objective, terms

    def __call__(
        self,
        logits: Tensor,
        features: Tensor | None,
        inputs: Tensor,
        target: Tensor,
        index: Tensor,
        mix: Mix | None = None,
    ) -> tuple[Tensor, list[Tensor]]:
        """:meth:`terms`; for a mixed batch, mixed over both label sets with weight ``lam``."""
        objective, terms = self.terms(logits, features, inputs, target, index)
        if mix is None:
            return objective, terms
        p = mix.perm
        other, others = self.terms(logits, features, inputs, target[p], index[p])
        objective = mix.lam * objective + (1 - mix.lam) * other
        terms = [mix.lam * a + (1 - mix.lam) * b for a, b in zip(terms, others, strict=True)]
        return objective, terms


class Closure:
    """What the optimizer calls for one batch: zero the gradients, recompute the
    objective at the current weights, backpropagate, clip.

    ``first`` holds the detached ``(objective, loss, reg terms...)`` of the first
    call, the statistics of the step at the weights it started from.
    """

    def __init__(
        self,
        step: Step,
        inputs: Tensor,
        target: Tensor,
        index: Tensor,
        mix: Mix | None,
        grad_scale: float,
    ) -> None:
        self.step, self.inputs, self.target, self.index = step, inputs, target, index
        self.mix, self.grad_scale = mix, grad_scale
        self.first: tuple[Tensor, ...] | None = None

    def __call__(self) -> Tensor:
        step = self.step
        # each call (SAM makes two per step) computes the gradients afresh
        step.optimizer.zero_grad(set_to_none=True)
        with step.autocast():
            if step.objective.use_features:
                features, logits = step.forward(self.inputs)
            else:
                features, logits = None, step.forward(self.inputs)
            objective, terms = step.objective(
                logits, features, self.inputs, self.target, self.index, self.mix
            )
        scale = self.grad_scale  # this rank's share of the global batch (see grad_scale)
        (objective * scale if scale != 1.0 else objective).backward()
        if step.grad_clip is not None:
            nn.utils.clip_grad_norm_(step.model.parameters(), step.grad_clip)
        if self.first is None:
            self.first = (objective.detach(), *(t.detach() for t in terms))
        return objective


class Step:
    """One optimizer step on a batch; returns the batch's detached terms (see :class:`Closure`)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        forward: nn.Module,
        objective: Objective,
        autocast: Autocast,
        model: nn.Module,
        grad_clip: float | None,
    ) -> None:
        self.optimizer, self.forward, self.objective = optimizer, forward, objective
        self.autocast, self.model, self.grad_clip = autocast, model, grad_clip

    def __call__(
        self,
        x: Tensor,
        target: Tensor,
        index: Tensor,
        mix: Mix | None = None,
        grad_scale: float = 1.0,
    ) -> tuple[Tensor, ...]:
        """Step on the batch ``x`` (on ``mix.inputs`` for a mixed batch)."""
        inputs = mix.inputs if mix is not None else x
        closure = Closure(self, inputs, target, index, mix, grad_scale)
        self.optimizer.step(closure)
        if closure.first is None:
            raise RuntimeError(f"{type(self.optimizer).__name__}.step did not call its closure")
        return closure.first


class EpochTerms:
    """Each step's terms of one epoch, kept on the device (no host sync per step)."""

    def __init__(self, width: int, device: torch.device) -> None:
        self.width, self.device = width, device  # width: terms per step
        self.steps: list[tuple[Tensor, ...]] = []
        self.weights: list[float] = []  # each step's grad_scale

    def add(self, terms: tuple[Tensor, ...], weight: float) -> None:
        self.steps.append(terms)
        self.weights.append(weight)

    def sums(self) -> Tensor:
        """Sums over the steps of each term (float64), each step weighted."""
        if not self.steps:
            return torch.zeros(self.width, device=self.device, dtype=torch.float64)
        steps, width = self.steps, self.width
        table = torch.stack([torch.stack([s[j] for s in steps]) for j in range(width)], 1).double()
        if any(w != 1.0 for w in self.weights):
            weights = torch.tensor(self.weights, dtype=torch.float64, device=self.device)
            table = table * weights[:, None]
        return table.sum(dim=0)
