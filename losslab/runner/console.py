"""What a person sees: a rich progress bar on a terminal, one plain line per
epoch otherwise (CI logs), and a table of final and best metrics at the end."""

from __future__ import annotations

import logging
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

log = logging.getLogger("losslab")

#: Metrics shown in the per-epoch line and the final table, in this order.
SHOWN = ("acc", "nll", "ece", "entropy")


def epoch_line(record: dict[str, Any], epochs: int) -> str:
    """``epoch 3/30 loss 0.1234 | val acc 0.9650 ece 0.0213 | test acc ...``."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['train/loss']:.4f}"]
    parts += [
        f"{k.removeprefix('train/')} {v:.4f}"
        for k, v in record.items()
        if k.startswith("train/reg/")
    ]
    for split in ("val", "test"):
        if f"{split}/acc" in record:
            parts.append(
                f"| {split} "
                + " ".join(f"{m} {record[f'{split}/{m}']:.4f}" for m in ("acc", "ece"))
            )
    parts.append(f"| {record['time/train_s'] + record['time/eval_s']:.1f}s")
    return " ".join(parts)


class BelowWarning(logging.Filter):
    """Passes the records below WARNING: the console's stdout handler, whose warnings
    and errors go to stderr instead (``conf/hydra/job_logging/losslab.yaml``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


def _tagged(text: str, job: str | None) -> str:
    """``[job 3] text`` when ``job`` is given, else ``text``."""
    return f"[{job}] {text}" if job else text


class PlainReporter:
    """One log line per epoch; for non-interactive output.

    Args:
        job: a label (``"job 3"``) that starts every line, so that the lines of
            jobs running side by side can be told apart; None for none.
    """

    def __init__(self, job: str | None = None) -> None:
        self.epochs = 0
        self.job = job

    def start(self, epochs: int, batches: int, first_epoch: int) -> None:
        self.epochs = epochs

    def step(self) -> None:
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:
        log.info(_tagged(epoch_line(record, self.epochs), self.job))

    def close(self) -> None:
        pass


class RichReporter:
    """A live progress bar over epochs and the batches of the current epoch.

    Args:
        console: where the bars are drawn.
        job: a label (``"job 3"``) that starts every bar's description and
            epoch line; None for none.
    """

    def __init__(self, console: Console, job: str | None = None) -> None:
        self.console = console
        self.job = job
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )
        self.epochs = 0
        self.epoch_task: Any = None
        self.batch_task: Any = None

    def start(self, epochs: int, batches: int, first_epoch: int) -> None:
        self.epochs = epochs
        self.progress.start()
        self.epoch_task = self.progress.add_task(
            escape(_tagged("epochs", self.job)), total=epochs, completed=first_epoch, info=""
        )
        self.batch_task = self.progress.add_task(
            escape(_tagged("batches", self.job)), total=batches, info=""
        )

    def step(self) -> None:
        self.progress.advance(self.batch_task)

    def epoch_end(self, record: dict[str, Any]) -> None:
        info = f"val acc {record.get('val/acc', float('nan')):.4f}  loss {record['train/loss']:.4f}"
        self.progress.update(self.epoch_task, advance=1, info=info)
        self.progress.reset(self.batch_task)
        logging.getLogger("losslab").debug(_tagged(epoch_line(record, self.epochs), self.job))

    def close(self) -> None:
        self.progress.stop()


def make_reporter(console: Console, *, job: str | None = None) -> PlainReporter | RichReporter:
    """A progress bar on a terminal, plain lines otherwise.

    Args:
        console: the run's console.
        job: a label such as ``"job 3"`` that starts every epoch line and progress
            description (``[job 3] epoch 2/10 ...``), so that the output of jobs
            running in parallel can be told apart; None (a single run) for none.
    """
    if console.is_terminal:
        return RichReporter(console, job=job)
    return PlainReporter(job=job)


def stdout_console() -> Console:
    return Console(file=sys.stdout, highlight=False)


def results_table(results: dict[str, Any]) -> Table:
    """Final and best (by validation accuracy) val/test metrics of one run."""
    table = Table(title=f"losslab: {results.get('status', '?')}", title_justify="left")
    for name in ("record", "split", "epoch", *SHOWN):
        table.add_column(name, justify="left" if name in ("record", "split") else "right")
    for label in ("final", "best"):
        rec = results.get(label) or {}
        for split in ("val", "test"):
            values = rec.get(split) or {}
            if not values:
                continue
            table.add_row(
                label,
                split,
                str(rec.get("epoch", "-")),
                *("-" if values.get(m) is None else f"{values[m]:.4f}" for m in SHOWN),
            )
    return table
