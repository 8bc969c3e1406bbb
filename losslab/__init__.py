"""losslab: head-to-head comparison of classification losses.

One command trains one (dataset, model, loss, regularizers, label noise, seed)
combination and records accuracy, calibration and entropy metrics; Hydra
multiruns sweep combinations; ``losslab compare`` tabulates them.

Importing the package is cheap: heavy dependencies (torch, hydra, matplotlib)
are imported by the subpackages that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
