"""End-to-end training throughput of ResNet-18 on CIFAR-shaped data: losslab against
the fastest hand-written loop on the same settings.

The data are CIFAR-10-format files (random pixels, 50,000 training and 10,000
test images) written to a temporary directory and read by ``dataset=cifar10``;
losslab and the bare loop both train losslab's ResNet-18 (CIFAR stem) with SGD
(lr 0.1, momentum 0.9, weight decay 5e-4, cosine), cross-entropy, random crop
+ flip, and evaluate val (5,000) and test (10,000) once per epoch. The bare
loop is what the fastest public CIFAR code does: uint8 images resident on the
GPU, crop/flip/normalise as whole-batch tensor operations, channels_last,
bf16 autocast, ``torch.compile``, no host synchronisation inside an epoch.

Throughput is training samples per second over the epochs after the first
(which holds compilation and warm-up), wall clock, evaluation and
checkpointing included. For each mode (``fp32``, ``bf16``, ``bf16+compile``)
it prints losslab's and the bare loop's throughput, the fraction of the bare
throughput losslab reaches, and the ratio of epoch times (losslab / bare).

    python scripts/bench_train.py                          # on a GPU
    python scripts/bench_train.py --device cpu --samples 2000 --epochs 2 --modes fp32

The last line printed is one JSON object:
``{"benchmark": "train", "ratio": <losslab / bare epoch time, bf16+compile>, "modes": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

import losslab
from losslab.datasets.vision import load_vision
from losslab.models.resnet import ResNet18

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MODES = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+compile": ("bf16", True)}


def cifar10(**options):
    """``dataset=cifar10`` as the runner builds it: its YAML's values, ``options`` replacing them."""
    path = Path(losslab.__file__).parent / "conf" / "dataset" / "cifar10.yaml"
    values = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    del values["_target_"]
    return load_vision(**{**values, **options})


def write_cifar10(root: Path, n_train: int, n_test: int) -> None:
    """CIFAR-10 "python version" batches with random pixels and labels."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def dump(name: str, n: int) -> None:
        batch = {
            "batch_label": name,
            "labels": rng.integers(0, 10, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=4)

    for b in range(1, 6):
        dump(f"data_batch_{b}", n_train // 5)
    dump("test_batch", n_test)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{k}" for k in range(10)]}, f)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(root: Path, args: argparse.Namespace, precision: str, compile_: bool) -> float:
    """Seconds per epoch (mean over the epochs after the first) of the hand-written loop."""
    device = torch.device(args.device)
    data = cifar10(root=root, download=False)
    x = data.train.x.to(device)  # uint8 [N, 3, 32, 32], resident on the device
    y = data.train.y.to(device)
    evals = [(s.x.to(device), s.y.to(device)) for s in (data.val, data.test)]
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    torch.manual_seed(0)
    model = ResNet18(data.input_shape, 10).to(device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    forward = torch.compile(model) if compile_ else model
    dtype = torch.bfloat16 if precision == "bf16" else None

    def norm(batch: torch.Tensor) -> torch.Tensor:
        return ((batch.float() - mean) / std).contiguous(memory_format=fmt)

    n, bs = len(y), args.batch_size
    rows = torch.arange(32, device=device)
    ends = []
    for epoch in range(args.epochs):
        model.train()
        g = torch.Generator(device=device).manual_seed(epoch)
        order = torch.randperm(n, device=device, generator=g)
        for b in range(math.ceil(n / bs)):
            idx = order[b * bs : (b + 1) * bs]
            batch = F.pad(x[idx], (4, 4, 4, 4))
            off = torch.randint(0, 9, (2, len(idx)), device=device, generator=g)
            r = (off[0][:, None] + rows)[:, None, :, None]
            c = (off[1][:, None] + rows)[:, None, None, :]
            batch = batch[
                torch.arange(len(idx), device=device)[:, None, None, None],
                torch.arange(3, device=device)[None, :, None, None],
                r,
                c,
            ]
            flip = torch.rand(len(idx), device=device, generator=g) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(forward(norm(batch)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        correct = []
        with (
            torch.inference_mode(),
            torch.autocast(device.type, dtype=dtype, enabled=dtype is not None),
        ):
            for ex, ey in evals:
                logits = torch.cat(
                    [forward(norm(ex[i : i + 1024])).float() for i in range(0, len(ey), 1024)]
                )
                correct.append((logits.argmax(1) == ey).float().mean())
        [float(c) for c in correct]  # one read per epoch
        _sync(device)
        ends.append(time.perf_counter())
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def losslab_run(root: Path, run_dir: Path, args, precision: str, compile_: bool) -> float:
    """Seconds per epoch (after the first) of ``losslab train`` with the same settings."""
    from losslab.runner import app, checkpointing

    ends: list[float] = []
    write = checkpointing.write_metrics

    def stamp(path, records, *rest):  # called once per epoch, after the checkpoint
        write(path, records, *rest)
        if records:
            ends.append(time.perf_counter())

    checkpointing.write_metrics = stamp
    try:
        code = app.launch(
            [
                f"hydra.run.dir={run_dir}",
                "dataset=cifar10",
                f"dataset.root={root}",
                "dataset.download=false",
                "model=resnet18",
                "loss=ce",
                f"trainer.epochs={args.epochs}",
                f"trainer.batch_size={args.batch_size}",
                f"trainer.device={args.device}",
                f"trainer.precision={precision}",
                f"trainer.compile={str(compile_).lower()}",
            ]
        )
    finally:
        checkpointing.write_metrics = write
    if code != 0:
        raise SystemExit(f"losslab train failed (exit {code}); see {run_dir}/train.log")
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--epochs", type=int, default=4, help="the first one is not timed")
    p.add_argument("--samples", type=int, default=50_000, help="training images written")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--modes", default=",".join(MODES), help=f"among {', '.join(MODES)}")
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be >= 2 (the first epoch is not timed)")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_cifar10(root, args.samples, max(args.samples // 5, 10))
        n_train = len(cifar10(root=root, download=False).train.y)
        for mode in args.modes.split(","):
            precision, compile_ = MODES[mode]
            bare = bare_loop(root, args, precision, compile_)
            ours = losslab_run(root, Path(tmp) / f"run-{mode}", args, precision, compile_)
            results[mode] = {
                "losslab_samples_per_s": round(n_train / ours, 1),
                "bare_samples_per_s": round(n_train / bare, 1),
                "fraction_of_bare": round(bare / ours, 4),
                "losslab_epoch_s": round(ours, 4),
                "bare_epoch_s": round(bare, 4),
            }
            print(f"{mode}: {json.dumps(results[mode])}", file=sys.stderr)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    last = results.get("bf16+compile") or next(iter(results.values()))
    out = {
        "benchmark": "train",
        "ratio": round(last["losslab_epoch_s"] / last["bare_epoch_s"], 4),
        "device": name,
        "train_samples": n_train,
        "batch_size": args.batch_size,
        "epochs_timed": args.epochs - 1,
        "torch": torch.__version__,
        "modes": results,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
