"""The ``losslab`` command: a thin dispatcher to the subcommands.

Imports nothing heavy at start-up: each subcommand imports what it needs, so
``losslab --help`` stays instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

USAGE = """\
usage: losslab <command> [args...]

Compare classification losses head-to-head: train one (dataset, model, loss,
regularizers, label noise, seed) combination per run, sweep with Hydra.

commands:
  train     train one configuration, or sweep with -m (Hydra overrides;
            `losslab train --help` lists every config group and option)
  compare   head-to-head table of runs: groups over seeds, mean +- std, p-values,
            pivots, CSV/Markdown/LaTeX and plots (`losslab compare --help`)
  study     tune every loss with the same budget (grid or seeded TPE, on the
            validation split or k folds), re-run the selected configurations
            with several seeds and compare them (`losslab study --help`)
  evaluate  evaluate a saved run on its test split (or another data set) without
            training: metrics, reliability, per-sample predictions
  runs      list the runs under a directory with their status, choices, epoch
            and headline metrics
  losses    list every loss: family, parameters, description, reference

options:
  -h, --help     show this message
  --version      print the version

examples:
  losslab train
  losslab train model=cnn trainer.epochs=10 seed=1
  losslab train -m 'loss=ce,gce,nce_rce,ldr' seed=0,1,2
  losslab compare multirun/2026-11-22/10-00-00-ab12cd
  losslab study loss=ce,gce,nce_rce,ldr noise=symmetric noise.rate=0.4 study.trials=6
"""


def _train(argv: list[str]) -> int:
    from losslab.runner.app import launch

    return launch(argv)


def _losses(argv: list[str]) -> int:
    from losslab.runner.catalog import main as losses_main

    return losses_main(argv)


def _study(argv: list[str]) -> int:
    from losslab.runner.study.run import main as study_main

    return study_main(argv)


def _evaluate(argv: list[str]) -> int:
    from losslab.runner.evaluate import main as evaluate_main

    return evaluate_main(argv)


def _runs(argv: list[str]) -> int:
    from losslab.report.listing import main as runs_main

    return runs_main(argv)


def _compare(argv: list[str]) -> int:
    from losslab.report.compare import main as compare_main

    return compare_main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": _train,
    "compare": _compare,
    "study": _study,
    "evaluate": _evaluate,
    "runs": _runs,
    "losses": _losses,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``losslab`` console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        from losslab import __version__

        print(f"losslab {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        sys.stderr.write(
            f"losslab: unknown command '{args[0]}'. Valid commands: {', '.join(COMMANDS)}\n"
            "Run `losslab --help` for usage.\n"
        )
        return 2
    return command(args[1:])
