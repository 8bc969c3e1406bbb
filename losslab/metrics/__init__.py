"""Accuracy, calibration and entropy metrics computed from logits.

Metric names are the same everywhere (console, metrics.jsonl, results.json,
wandb, compare); fractions are stored in [0, 1].
"""

from losslab.metrics.classification import (
    binned_calibration,
    classification_metrics,
    expected_calibration_error,
    predictive_entropy,
)

__all__ = [
    "binned_calibration",
    "classification_metrics",
    "expected_calibration_error",
    "predictive_entropy",
]
