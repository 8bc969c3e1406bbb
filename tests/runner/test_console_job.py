"""``make_reporter(console, job=...)``: every epoch line and progress description names its job."""

from __future__ import annotations

import io
import logging
import re

from rich.console import Console

from losslab.runner.console import PlainReporter, RichReporter, epoch_line, make_reporter

EPOCHS = 3


def record(epoch: int) -> dict:
    return {
        "epoch": epoch,
        "train/loss": 1.0 / epoch,
        "val/acc": 0.5 + 0.1 * epoch,
        "val/ece": 0.05,
        "test/acc": 0.4 + 0.1 * epoch,
        "test/ece": 0.06,
        "time/train_s": 0.25,
        "time/eval_s": 0.25,
    }


def bar_lines(printed: str) -> list[str]:
    """The progress lines a terminal shows, without its control sequences."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", printed)
    return [
        line.strip() for line in re.split(r"[\r\n]", text) if "epochs" in line or "batches" in line
    ]


def drive(reporter) -> None:
    reporter.start(EPOCHS, batches=2, first_epoch=0)
    for epoch in range(1, EPOCHS + 1):
        reporter.step()
        reporter.step()
        reporter.epoch_end(record(epoch))
    reporter.close()


def test_plain_lines_start_with_the_job(caplog):
    console = Console(file=io.StringIO(), force_terminal=False)
    reporter = make_reporter(console, job="job 3")
    assert isinstance(reporter, PlainReporter)
    with caplog.at_level(logging.INFO, logger="losslab"):
        drive(reporter)
    lines = [r.getMessage() for r in caplog.records if r.name == "losslab"]
    assert lines == [f"[job 3] {epoch_line(record(e), EPOCHS)}" for e in range(1, EPOCHS + 1)]
    assert lines[1].startswith("[job 3] epoch 2/3 loss 0.5000 | val acc 0.7000")


def test_progress_descriptions_start_with_the_job(caplog):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    reporter = make_reporter(console, job="job 3")
    assert isinstance(reporter, RichReporter)
    with caplog.at_level(logging.DEBUG, logger="losslab"):
        drive(reporter)
    descriptions = [task.description for task in reporter.progress.tasks]
    # escaped for rich markup, so that "[job 3]" is printed rather than read as a style
    assert descriptions == [r"\[job 3] epochs", r"\[job 3] batches"]
    shown = bar_lines(out.getvalue())
    assert any(line.startswith("[job 3] epochs") for line in shown)
    assert any(line.startswith("[job 3] batches") for line in shown)
    assert all(line.startswith("[job 3] ") for line in shown), shown
    assert any(line.startswith("[job 3] epochs") and "3/3" in line for line in shown)
    lines = [r.getMessage() for r in caplog.records if r.name == "losslab"]
    assert lines == [f"[job 3] {epoch_line(record(e), EPOCHS)}" for e in range(1, EPOCHS + 1)]


def test_without_a_job_nothing_is_prefixed(caplog):
    reporter = make_reporter(Console(file=io.StringIO(), force_terminal=False))
    with caplog.at_level(logging.INFO, logger="losslab"):
        drive(reporter)
    lines = [r.getMessage() for r in caplog.records if r.name == "losslab"]
    assert lines[0].startswith("epoch 1/3 ") and not any(line.startswith("[") for line in lines)
    out = io.StringIO()
    rich = make_reporter(Console(file=out, force_terminal=True, width=120, color_system=None))
    drive(rich)
    assert [t.description for t in rich.progress.tasks] == ["epochs", "batches"]
    shown = bar_lines(out.getvalue())
    assert shown and all(line.startswith(("epochs", "batches")) for line in shown), shown
