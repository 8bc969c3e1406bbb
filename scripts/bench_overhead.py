"""Overhead of losslab's trainer against a minimal hand-written PyTorch loop.

Both train the same model (losslab's MLP, same initialisation) on the same
data (losslab's synthetic Gaussian clusters, held in memory on the device),
with the same batch size, optimizer (SGD, momentum 0.9, weight decay 5e-4),
cosine schedule and cross-entropy, and evaluate val and test once per epoch:

* bare: ``for x, y in batches: loss = F.cross_entropy(model(x), y);
  opt.zero_grad(); loss.backward(); opt.step()``, then val/test accuracy;
* losslab: ``losslab train dataset=synthetic loss=ce ...`` in this process,
  timing its trainer (``losslab.runner.loop.fit``: every epoch's training,
  full evaluation with all metrics and temperature scaling, the checkpoint and
  the metrics file).

The two are interleaved in one process: other work on a shared machine
changes its speed by 10-20 % over seconds, so whole runs timed one after the
other differ by more than the overhead measured, while stretches a fraction of a
second apart see the same machine. Each repeat is one ``losslab train`` run in
which the bare loop takes ``--chunk`` steps after every ``--chunk`` of losslab's
(16 on the CPU), or an epoch after each of losslab's epochs (``--chunk 0``, the
default on a GPU, where timing a few steps would need the host to wait for the
device). Chunks rather than single steps: alternating every step makes both
loops refill the caches at every step, a cost common to both that pulls the
ratio toward 1. The bare loop's time is the sum of its timed steps and
evaluations, losslab's the time of ``fit`` less the bare loop's. losslab writes
each epoch's checkpoint in a background thread; the bare loop's evaluation
starts only when that write is done, and the wait counts as losslab's time (the
write is timed as if it were not overlapped). The ratio printed is the median
over ``--repeats`` of the repeats' ratios. Fixed per-run costs outside the
trainer (composing the config, building the data, the plots at the end) are
reported beside it (``losslab_whole_run_s``), not in it.

    python scripts/bench_overhead.py                  # CPU
    python scripts/bench_overhead.py --device cuda

The last line printed is one JSON object:
``{"benchmark": "overhead", "ratio": losslab_time / bare_time, ...}``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from losslab.datasets.synthetic import load_synthetic
from losslab.models.mlp import MLP


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BareLoop:
    """The hand-written loop, driven a step or an epoch at a time from outside.

    Each method times itself and adds its seconds to ``seconds``; set-up (data,
    model, optimizer) happens in ``__init__``, untimed.
    """

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        data = load_synthetic(**_data_kwargs(args))
        self.x, self.y = data.train.x.to(device), data.train.y.to(device)
        self.evals = [(s.x.to(device), s.y.to(device)) for s in (data.val, data.test)]
        torch.manual_seed(args.seed)
        self.model = MLP(data.input_shape, data.num_classes, width=args.width, depth=args.depth).to(
            device
        )
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=args.epochs)
        self.seed, self.bs, self.device = args.seed, args.batch_size, device
        self.steps_per_epoch = math.ceil(len(self.y) / self.bs)
        self.epoch, self.done, self.seconds = 0, 0, 0.0
        self.order = torch.empty(0)

    def step(self) -> None:
        """One training step (the first of an epoch also draws its order)."""
        t0 = time.perf_counter()
        if self.done == 0:
            self.model.train()
            g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
            self.order = torch.randperm(len(self.y), generator=g).to(self.device)
        idx = self.order[self.done * self.bs : (self.done + 1) * self.bs]
        loss = F.cross_entropy(self.model(self.x[idx]), self.y[idx])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.done += 1
        self.seconds += time.perf_counter() - t0

    def end_epoch(self) -> None:
        """The epoch's remaining steps, the schedule step and val/test accuracy."""
        while self.done < self.steps_per_epoch:
            self.step()
        t0 = time.perf_counter()
        self.sched.step()
        self.model.eval()
        with torch.inference_mode():
            accs = [
                (
                    torch.cat(
                        [self.model(ex[i : i + 1024]) for i in range(0, len(ey), 1024)]
                    ).argmax(1)
                    == ey
                )
                .float()
                .mean()
                for ex, ey in self.evals
            ]
        [float(a) for a in accs]  # read once per epoch, like any logger would
        _sync(self.device)
        self.epoch, self.done = self.epoch + 1, 0
        self.seconds += time.perf_counter() - t0


def _data_kwargs(args: argparse.Namespace) -> dict:
    return {
        "num_classes": args.classes,
        "input_shape": (args.features,),
        "num_samples": args.samples,
        "separation": 0.5,
    }


def interleaved_run(
    args: argparse.Namespace, device: torch.device, run_dir: Path, chunk: int
) -> dict:
    """One ``losslab train`` run with the bare loop interleaved: ``chunk`` bare steps
    after every ``chunk`` losslab steps, or (``chunk=0``) a bare epoch after each
    losslab epoch.

    losslab's seconds are those of ``fit`` less the bare loop's. At the end of
    each epoch the bare loop waits for losslab's checkpoint write, which counts
    as losslab's time.
    """
    from losslab.runner import app, checkpointing, loop

    bare = BareLoop(args, device)
    writers: list[checkpointing.RecordWriter] = []
    timed = {"fit": 0.0}

    class TrackedWriter(checkpointing.RecordWriter):
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            writers.append(self)

    fit = loop.fit

    def timed_fit(*a, **k):
        reporter = k["reporter"]
        step, epoch_end = reporter.step, reporter.epoch_end
        count = [0]

        def after_step() -> None:
            count[0] += 1
            if chunk and count[0] % chunk == 0:
                for _ in range(min(chunk, bare.steps_per_epoch - bare.done)):
                    bare.step()
            step()

        def after_epoch(record: dict) -> None:
            count[0] = 0
            writers[-1].wait()
            _sync(device)
            bare.end_epoch()
            epoch_end(record)

        reporter.step, reporter.epoch_end = after_step, after_epoch
        _sync(device)
        t0 = time.perf_counter()
        out = fit(*a, **k)
        _sync(device)
        timed["fit"] = time.perf_counter() - t0
        return out

    loop.fit, checkpointing.RecordWriter = timed_fit, TrackedWriter
    t0 = time.perf_counter()
    try:
        code = app.launch(
            [
                f"hydra.run.dir={run_dir}",
                "dataset=synthetic",
                f"dataset.num_classes={args.classes}",
                f"dataset.input_shape=[{args.features}]",
                f"dataset.num_samples={args.samples}",
                "dataset.separation=0.5",
                "model=mlp",
                f"model.width={args.width}",
                f"model.depth={args.depth}",
                "loss=ce",
                f"trainer.epochs={args.epochs}",
                f"trainer.batch_size={args.batch_size}",
                f"trainer.device={device.type}",
                f"seed={args.seed}",
            ]
        )
    finally:
        loop.fit, checkpointing.RecordWriter = fit, TrackedWriter.__base__
    total = time.perf_counter() - t0 - bare.seconds
    if code != 0:
        raise SystemExit(f"losslab train failed (exit {code}); see {run_dir}/train.log")
    if bare.epoch != args.epochs:
        raise SystemExit(f"the bare loop ran {bare.epoch} epochs, not {args.epochs}")
    return {"losslab": timed["fit"] - bare.seconds, "bare": bare.seconds, "total": total}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--samples", type=int, default=30000)
    p.add_argument("--features", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="steps per turn; 0: an epoch per turn (default: 16 on the CPU, 0 on a GPU)",
    )
    args = p.parse_args(argv)
    device = torch.device(args.device)
    chunk = args.chunk if args.chunk is not None else (16 if device.type == "cpu" else 0)

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up of both sides (allocator, lazily loaded kernels, imports), not timed.
        interleaved_run(args, device, Path(tmp) / "warm-up", chunk)
        for r in range(args.repeats):
            runs.append(interleaved_run(args, device, Path(tmp) / f"run{r}", chunk))
            bare, ours = runs[-1]["bare"], runs[-1]["losslab"]
            print(
                f"repeat {r + 1}: bare {bare:.3f} s, losslab trainer {ours:.3f} s "
                f"(ratio {ours / bare:.4f}; whole run {runs[-1]['total']:.3f} s)",
                file=sys.stderr,
            )
    ratios = [run["losslab"] / run["bare"] for run in runs]
    result = {
        "benchmark": "overhead",
        "ratio": round(statistics.median(ratios), 4),
        "ratio_range": [round(min(ratios), 4), round(max(ratios), 4)],
        "interleave": f"{chunk} steps" if chunk else "epochs",
        "bare_s": round(statistics.median(run["bare"] for run in runs), 4),
        "losslab_trainer_s": round(statistics.median(run["losslab"] for run in runs), 4),
        "losslab_whole_run_s": round(statistics.median(run["total"] for run in runs), 4),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "train_samples": len(load_synthetic(**_data_kwargs(args)).train.y),
        "batch_size": args.batch_size,
        "model": f"MLP {args.features}-{'-'.join([str(args.width)] * args.depth)}-{args.classes}",
        "torch": torch.__version__,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
