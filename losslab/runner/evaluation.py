"""Evaluation after each epoch: predictions of every split, their metrics, the
temperature fits and, under label noise, the memorisation diagnostics.

All logits are gathered on the device (in sample order across ranks) before
any metric is computed, so every rank computes the same numbers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from losslab.datasets.loader import Batches
from losslab.metrics import (
    classification_metrics,
    metrics_and_reliability,
    noisy_label_diagnostics,
    search_temperature,
    temperature_scaled_metrics,
)
from losslab.runner import distributed


def evaluate(
    model: nn.Module,
    loaders: dict[str, Batches],
    autocast: Any,
    n_bins: int,
    data: Any,
    ctx: distributed.Context = distributed.SINGLE,
    outputs: dict[str, tuple[Tensor, Tensor, Tensor]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Metrics of one evaluation, keyed ``<split>/<metric>``, and the test reliability bins.

    Val and test get :func:`classification_metrics`; a temperature fitted on the
    validation logits gives ``test/temperature``, ``test/ece_ts`` and
    ``test/nll_ts``; under label noise a pass over the training set gives the
    memorisation diagnostics (``train/noisy_memorized``, ...). When ``outputs`` is
    given, the ``(logits, labels, index)`` of ``val`` and ``test`` that the metrics
    were computed from are put in it (on the device, in sample order).
    """
    out: dict[str, Any] = {}
    logits: dict[str, tuple[Tensor, Tensor]] = {}
    index: dict[str, Tensor] = {}
    reliability = None
    for split in ("val", "test"):
        if split in loaders:
            *logits[split], index[split] = predict(model, loaders[split], autocast, ctx)
            if outputs is not None:
                outputs[split] = (*logits[split], index[split])
            if split == "test":
                metrics, reliability = metrics_and_reliability(*logits[split], n_bins)
            else:
                metrics = classification_metrics(*logits[split], n_bins)
            out.update({f"{split}/{k}": v for k, v in metrics.items()})
    if "val" in logits and "test" in logits:
        out.update(_temperature_fits(logits["val"], index["val"], logits["test"], n_bins, data))
    if "train_eval" in loaders:
        train_logits, _, _ = predict(model, loaders["train_eval"], autocast, ctx)
        device = train_logits.device
        diagnostics = noisy_label_diagnostics(
            train_logits,
            data.train.y.to(device),
            data.train.y_clean.to(device),
            data.train.is_noisy.to(device),
        )
        out.update({f"train/{k.removeprefix('train_')}": v for k, v in diagnostics.items()})
    return out, reliability


def _temperature_fits(
    val: tuple[Tensor, Tensor],
    val_index: Tensor,
    test: tuple[Tensor, Tensor],
    n_bins: int,
    data: Any,
) -> dict[str, Any]:
    """Test metrics at the temperature fitted on the validation (logits, labels) ``val``.

    Fitted on the validation labels the run has (noisy under label noise: what a
    practitioner has), and, where those are noisy, also on the clean ones (keys
    ending ``_clean``, with ``val/acc_clean``).
    """
    out: dict[str, Any] = {}
    fits = {"": val[1]}
    clean = _clean_val_labels(data, val_index, val[1])
    if clean is not None:
        out["val/acc_clean"] = float((val[0].argmax(1) == clean).float().mean())
        fits["_clean"] = clean
    for suffix, labels in fits.items():
        fit = search_temperature(val[0], labels)
        out[f"test/temperature{suffix}"] = fit.temperature
        out[f"test/temperature{suffix}_at_bound"] = fit.at_bound
        scaled = temperature_scaled_metrics(*test, fit.temperature, n_bins)
        out.update({f"test/{k}{suffix}": v for k, v in scaled.items()})
    return out


def _clean_val_labels(data: Any, index: Tensor, labels: Tensor) -> Tensor | None:
    """The clean labels of the validation rows ``index`` (as :func:`predict` returns them);
    None when the validation labels are clean or do not line up with ``labels``."""
    val = getattr(data, "val", None)
    if val is None or not bool(val.is_noisy.any()):
        return None
    at = index.cpu().long()
    if at.numel() != len(val.y) or not torch.equal(val.y[at].to(labels.device), labels):
        return None  # rows are not positions in the split: no clean fit rather than a wrong one
    return val.y_clean[at].to(labels.device)


@torch.inference_mode()
def predict(
    model: nn.Module,
    loader: Batches,
    autocast: Any,
    ctx: distributed.Context = distributed.SINGLE,
) -> tuple[Tensor, Tensor, Tensor]:
    """All logits (float32), labels and sample indices of a split, gathered on the device.

    Under data parallelism each rank predicts its shard; the shards are
    gathered and put back in sample order before anything is computed.
    """
    model.eval()
    logits, targets, indices = [], [], []
    for x, y, index in loader.batches():
        with autocast():
            logits.append(model(x).float())
        targets.append(y)
        indices.append(index)
    out, labels, index = torch.cat(logits), torch.cat(targets), torch.cat(indices)
    if ctx.enabled:
        index = distributed.gather_rows(ctx, index)
        order = index.argsort()
        out = distributed.gather_rows(ctx, out)[order]
        labels = distributed.gather_rows(ctx, labels)[order]
        index = index[order]
    return out, labels, index
