"""Data parallelism under torchrun: sharding, and 2 gloo processes against 1 process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from losslab.datasets.base import BatchTransform, Split
from losslab.datasets.loader import InMemoryLoader
from losslab.runner.distributed import Context, ShardedBatches
from tests.conftest import run_train

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo"
)


def _loader(n: int, batch: int) -> InMemoryLoader:
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(n) % 3
    split = Split(x=x, y=y, y_clean=y, is_noisy=torch.zeros(n, dtype=torch.bool))
    transform = BatchTransform(scale=1 / 255, crop_padding=2, flip=True)
    return InMemoryLoader(split, batch, transform=transform, shuffle=True, seed=4)


@pytest.mark.parametrize(("n", "batch", "world"), [(50, 8, 2), (50, 8, 3), (49, 16, 2), (17, 8, 3)])
def test_shards_partition_every_global_batch(n, batch, world):
    loader = _loader(n, batch)
    full = list(loader.batches(epoch=1))
    shards = [
        list(ShardedBatches(loader, Context(rank=r, world_size=world), drop_small=True).batches(1))
        for r in range(world)
    ]
    steps = {len(s) for s in shards}
    assert len(steps) == 1  # every rank takes the same number of steps
    (kept,) = steps
    assert kept == len(full) - (len(full[-1][2]) < world)
    for step in range(kept):
        x, y, index = full[step]
        # the chunks, in rank order, are the global batch: same samples, same augmentation
        torch.testing.assert_close(torch.cat([s[step][0] for s in shards]), x, rtol=0, atol=0)
        assert torch.equal(torch.cat([s[step][1] for s in shards]), y)
        assert torch.equal(torch.cat([s[step][2] for s in shards]), index)


def test_evaluation_shards_keep_every_sample():
    y = torch.zeros(5, dtype=torch.long)
    split = Split(x=torch.randn(5, 4), y=y, y_clean=y, is_noisy=torch.zeros(5, dtype=torch.bool))
    loader = InMemoryLoader(split, 4)
    seen = [
        idx
        for r in range(3)
        for _, _, idx in ShardedBatches(
            loader, Context(rank=r, world_size=3), drop_small=False
        ).batches()
    ]
    assert sorted(torch.cat(seen).tolist()) == list(range(5))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": str(tmp_path / "scratch"), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    (tmp_path / "scratch").mkdir(exist_ok=True)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={_free_port()}",
            "-m",
            "losslab",
            "train",
            f"hydra.run.dir={run_dir}",
            "trainer.device=cpu",
            *overrides,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _close(a: dict, b: dict, split: str, key: str, tol: float) -> bool:
    return abs(a["final"][split][key] - b["final"][split][key]) <= tol


@pytest.mark.parametrize(
    "overrides",
    [
        ("trainer.epochs=2",),
        # stateful loss and regularizer: lambda_i and ELR targets exchanged every step
        (
            "trainer.epochs=2",
            "dataset=synthetic",
            "trainer.batch_size=67",  # odd: every global batch splits unevenly (34 + 33)
            "loss=aldr",
            "regularizer=[elr]",
            "optimizer.lr=0.02",
        ),
    ],
    ids=["ce", "aldr+elr"],
)
def test_two_gloo_processes_match_one_process(tmp_path, overrides):
    proc = _torchrun(tmp_path, tmp_path / "ddp", *overrides)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank did (2 cores / 2 processes)
    try:
        code, single = run_train(tmp_path / "single", "trainer.device=cpu", *overrides)
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    ddp = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert ddp["status"] == "completed"
    # Same global batch, data and step; only the order of floating-point sums differs
    # (measured: differences of about 1e-7 after two epochs).
    for split in ("val", "test"):
        n = ddp["data"]["sizes"][split]
        assert _close(ddp, single, split, "acc", 1.5 / n), split
        assert _close(ddp, single, split, "nll", 1e-5), split
        assert _close(ddp, single, split, "ece", 1e-5), split
    assert _close(ddp, single, "train", "loss", 1e-5)
    if "loss=aldr" in overrides:
        assert _close(ddp, single, "train", "loss_stats/lam_mean", 1e-5)
    # One run directory, written by rank 0 alone; nothing left by rank 1.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "scratch", "single"]
    assert not list((tmp_path / "scratch").glob("losslab-*"))  # rank 1's Hydra scratch
    assert not (tmp_path / "outputs").exists()


def test_two_processes_resume_from_rank_zeros_checkpoint(tmp_path):
    run_dir = tmp_path / "ddp"
    assert _torchrun(tmp_path, run_dir, "trainer.epochs=2").returncode == 0
    first = json.loads((run_dir / "results.json").read_text())
    (run_dir / "results.json").unlink()  # as if preempted after the last checkpoint
    proc = _torchrun(tmp_path, run_dir, "trainer.epochs=2")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    again = json.loads((run_dir / "results.json").read_text())
    assert "resuming from" in (run_dir / "train.log").read_text()
    assert again["final"] == first["final"]
