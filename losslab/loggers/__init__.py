"""Experiment loggers selected with ``logger=<token>``.

A logger receives the resolved config once, every epoch's record, and the
final results; the run directory's own files (metrics.jsonl, results.json)
are written by the runner whatever logger is chosen.

The interface (duck-typed, see :class:`NullLogger`):

- ``start(config, run_dir)``: once, before training, with the resolved config;
- ``log(record, step)``: after every evaluation, with the epoch's flat record
  (``train/loss``, ``val/acc``, ...) and the epoch number as the step;
- ``finish(results, run_dir)``: once, after ``results.json`` and the plots are
  written, also for failed runs.

Options: ``none`` (:class:`NullLogger`), ``csv`` (:class:`CsvLogger`:
``RUN_DIR/metrics.csv``) and ``wandb`` (:class:`WandbLogger`).

Run values: a logger that needs ``sweep_dir`` (the multirun sweep directory,
None for a single run) takes it as a constructor argument and names it in the
class attribute ``run_values = ("sweep_dir",)``; the runner passes exactly the
declared run values as keyword arguments.
"""

from losslab.loggers.csv import CsvLogger
from losslab.loggers.none import NullLogger, summary_of
from losslab.loggers.wandb import WANDB_MODES, WandbLogger

__all__ = ["WANDB_MODES", "CsvLogger", "NullLogger", "WandbLogger", "summary_of"]
