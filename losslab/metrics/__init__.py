"""Accuracy, calibration and entropy metrics computed from logits.

Metric names are the same everywhere (console, metrics.jsonl, results.json,
wandb, compare); fractions are stored in [0, 1]. Every metric is a pure function
of tensors that stays on the input's device; the functions that return Python
values (:func:`classification_metrics`, :func:`temperature_scaled_metrics`,
:func:`fit_temperature`, :func:`noisy_label_diagnostics`, :func:`reliability_bins`,
:func:`metrics_and_reliability`) make one device-to-host transfer each and return
float or None, never NaN.
"""

from losslab.metrics.calibration import (
    adaptive_calibration_error,
    binned_calibration,
    classwise_calibration_error,
    equal_mass_bins,
    equal_width_bins,
    expected_calibration_error,
    max_calibration_error,
)
from losslab.metrics.classification import (
    METRIC_KEYS,
    area_under_risk_coverage,
    brier_score,
    classification_metrics,
    metrics_and_reliability,
    reliability_bins,
    target_rank,
)
from losslab.metrics.label_noise import DIAGNOSTIC_KEYS, noisy_label_diagnostics
from losslab.metrics.temperature import (
    TemperatureFit,
    fit_temperature,
    search_temperature,
    temperature_scaled_metrics,
)

__all__ = [
    "DIAGNOSTIC_KEYS",
    "METRIC_KEYS",
    "TemperatureFit",
    "adaptive_calibration_error",
    "area_under_risk_coverage",
    "binned_calibration",
    "brier_score",
    "classification_metrics",
    "classwise_calibration_error",
    "equal_mass_bins",
    "equal_width_bins",
    "expected_calibration_error",
    "fit_temperature",
    "max_calibration_error",
    "metrics_and_reliability",
    "noisy_label_diagnostics",
    "reliability_bins",
    "search_temperature",
    "target_rank",
    "temperature_scaled_metrics",
]
