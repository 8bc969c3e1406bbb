"""The background writer of per-epoch records: what it writes, when it fsyncs, its errors."""

from __future__ import annotations

import json

import pytest
import torch

from losslab.runner import records
from losslab.runner.checkpointing import RecordWriter


def write_epochs(tmp_path, writer: RecordWriter, epochs: int) -> None:
    history: list[dict] = []
    for epoch in range(1, epochs + 1):
        history.append({"epoch": epoch, "val/acc": epoch / 10})
        state = {"epoch": epoch, "weights": torch.full((3,), float(epoch))}
        writer.submit(
            tmp_path / records.CHECKPOINT,
            state,
            tmp_path / records.METRICS,
            list(history),
            final=epoch == epochs,
        )
    writer.wait()


@pytest.mark.parametrize(("interval", "synced"), [(float("inf"), 2), (0.0, 8)])
def test_fsync_at_most_once_an_interval_and_at_the_end(tmp_path, monkeypatch, interval, synced):
    calls: list[int] = []
    real = records.os.fsync
    monkeypatch.setattr(records.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    write_epochs(tmp_path, RecordWriter(sync_interval=interval), epochs=4)
    # each write is a checkpoint and a metrics file: only the final pair is synced
    # when the interval never passes, every pair when it always has
    assert len(calls) == synced
    ckpt = torch.load(tmp_path / records.CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 4 and ckpt["weights"].tolist() == [4.0] * 3
    lines = (tmp_path / records.METRICS).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == [records.CHECKPOINT, records.METRICS]


def test_a_failed_write_is_raised_by_wait(tmp_path):
    writer = RecordWriter()
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the run directory should be
    writer.submit(blocker / "checkpoint.pt", {}, blocker / "metrics.jsonl", [], final=True)
    with pytest.raises(OSError):
        writer.wait()
    writer.wait()  # the error is raised once


def test_unsynced_atomic_write_replaces_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(records.os, "fsync", lambda fd: pytest.fail("fsync called"))
    path = tmp_path / "x.bin"
    records.atomic_write_bytes(path, b"old", durable=False)
    records.atomic_write_bytes(path, b"new", durable=False)
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]


def test_snapshot_is_a_copy_made_into_the_last_one():
    from losslab.runner.checkpointing import _snapshot

    weight, step = torch.arange(6.0).reshape(2, 3), torch.tensor(1)
    state = {"model": {"w": weight}, "opt": [step, {"lr": 0.1}], "epoch": 1}
    first = _snapshot(state)
    assert torch.equal(first["model"]["w"], weight) and first["opt"][1] == {"lr": 0.1}
    weight.add_(1.0)  # training goes on changing the original
    assert first["model"]["w"][0, 0] == 0.0
    memory = first["model"]["w"].data_ptr()
    second = _snapshot(state, first)
    assert second["model"]["w"].data_ptr() == memory  # no new memory for the same tensor
    assert torch.equal(second["model"]["w"], weight) and second["model"]["w"] is not weight
    # a tensor of another shape or dtype gets new memory
    state["model"]["w"] = torch.zeros(3, 2)
    third = _snapshot(state, second)
    assert third["model"]["w"].shape == (3, 2) and third["model"]["w"].data_ptr() != memory
