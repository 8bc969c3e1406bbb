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

The two alternate ``--repeats`` times; the ratio is of the fastest repeat of
each (the least disturbed by other work on the machine; medians are printed too). Fixed
per-run costs outside the trainer (composing the config, building the data,
the plots at the end) are reported beside it, not in the ratio.

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


def bare_loop(args: argparse.Namespace, device: torch.device) -> float:
    """Seconds for ``args.epochs`` epochs of the hand-written loop (train + val/test accuracy)."""
    data = load_synthetic(**_data_kwargs(args))
    x, y = data.train.x.to(device), data.train.y.to(device)
    evals = [(s.x.to(device), s.y.to(device)) for s in (data.val, data.test)]
    torch.manual_seed(args.seed)
    model = MLP(data.input_shape, data.num_classes, width=args.width, depth=args.depth).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    n, bs = len(y), args.batch_size
    _sync(device)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        g = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        order = torch.randperm(n, generator=g).to(device)
        for b in range(math.ceil(n / bs)):
            idx = order[b * bs : (b + 1) * bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.inference_mode():
            accs = [
                (
                    torch.cat([model(ex[i : i + 1024]) for i in range(0, len(ey), 1024)]).argmax(1)
                    == ey
                )
                .float()
                .mean()
                for ex, ey in evals
            ]
        [float(a) for a in accs]  # read once per epoch, like any logger would
    _sync(device)
    return time.perf_counter() - start


def _data_kwargs(args: argparse.Namespace) -> dict:
    return {
        "num_classes": args.classes,
        "input_shape": (args.features,),
        "num_samples": args.samples,
        "separation": 0.5,
    }


def losslab_run(args: argparse.Namespace, device: torch.device, run_dir: Path) -> dict:
    """Trainer seconds and whole-run seconds of ``losslab train`` with the same settings."""
    from losslab.runner import app, loop

    timed: dict[str, float] = {}
    fit = loop.fit

    def timed_fit(*a, **k):
        _sync(device)
        t0 = time.perf_counter()
        out = fit(*a, **k)
        _sync(device)
        timed["fit"] = time.perf_counter() - t0
        return out

    loop.fit = timed_fit
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
        loop.fit = fit
    total = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"losslab train failed (exit {code}); see {run_dir}/train.log")
    return {"fit": timed["fit"], "total": total}


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
    args = p.parse_args(argv)
    device = torch.device(args.device)

    bare_times, fit_times, totals = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up of both sides (allocator, lazily loaded kernels, imports), not timed.
        bare_loop(args, device)
        losslab_run(args, device, Path(tmp) / "warm-up")
        for r in range(args.repeats):
            bare_times.append(bare_loop(args, device))
            timing = losslab_run(args, device, Path(tmp) / f"run{r}")
            fit_times.append(timing["fit"])
            totals.append(timing["total"])
            print(
                f"repeat {r + 1}: bare {bare_times[-1]:.3f} s, losslab trainer "
                f"{fit_times[-1]:.3f} s (whole run {totals[-1]:.3f} s)",
                file=sys.stderr,
            )
    bare, ours = min(bare_times), min(fit_times)
    result = {
        "benchmark": "overhead",
        "ratio": round(ours / bare, 4),
        "median_ratio": round(statistics.median(fit_times) / statistics.median(bare_times), 4),
        "bare_s": round(bare, 4),
        "losslab_trainer_s": round(ours, 4),
        "losslab_whole_run_s": round(statistics.median(totals), 4),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "train_samples": None,
        "batch_size": args.batch_size,
        "model": f"MLP {args.features}-{'-'.join([str(args.width)] * args.depth)}-{args.classes}",
        "torch": torch.__version__,
    }
    result["train_samples"] = len(load_synthetic(**_data_kwargs(args)).train.y)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
