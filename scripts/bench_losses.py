"""Time forward+backward of every loss relative to cross-entropy, in one run.

    python scripts/bench_losses.py [--device cpu|cuda] [--repeats N]

For each shape ([1024, 100] and [256, 1000] by default) and each loss token in
the config tree, it times ``loss(logits, target, index=...).backward()`` (median
of ``--repeats`` timed rounds of ``--inner`` calls, after warm-up) and divides by
the same measurement of ``ce``. The last line printed is one JSON object:
``{"benchmark": "losses", "max_ratio": ..., ...}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from omegaconf import OmegaConf

from losslab.runner.build import build
from losslab.runner.catalog import LOSS_CONF


def make(token: str, num_samples: int, num_classes: int):
    node = OmegaConf.load(LOSS_CONF / f"{token}.yaml")
    return build("loss", node, num_samples=num_samples, num_classes=num_classes)


def make_step(loss_fn, logits, target, index):
    def step():
        x = logits.detach().requires_grad_()
        loss_fn(x, target, index=index).backward()

    return step


def time_all(steps: dict, inner: int, repeats: int, sync) -> dict[str, float]:
    """Median seconds per call of every step; rounds interleave the losses so that
    a slow moment of the machine does not land on one loss only."""
    for step in steps.values():
        for _ in range(3):
            step()
    sync()
    rounds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                step()
            sync()
            rounds[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(r) for name, r in rounds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inner", type=int, default=10)
    parser.add_argument("--shapes", default="1024x100,256x1000")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    tokens = sorted(p.stem for p in LOSS_CONF.glob("*.yaml"))
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]

    ratios: dict[str, dict[str, float]] = {}
    for b, k in shapes:
        g = torch.Generator().manual_seed(0)
        logits = (torch.randn(b, k, generator=g) * 3).to(device)
        target = torch.randint(0, k, (b,), generator=g).to(device)
        index = torch.arange(b, device=device)
        steps = {
            token: make_step(
                make(token, num_samples=b, num_classes=k).to(device), logits, target, index
            )
            for token in tokens
        }
        times = time_all(steps, args.inner, args.repeats, sync)
        shape = f"{b}x{k}"
        print(f"\n[{shape}] on {device}: ce {times['ce'] * 1e6:.1f} us per forward+backward")
        print(f"{'loss':<14} {'us':>9} {'x ce':>7}")
        for token in sorted(tokens, key=times.get):
            ratio = times[token] / times["ce"]
            ratios.setdefault(token, {})[shape] = ratio
            print(f"{token:<14} {times[token] * 1e6:>9.1f} {ratio:>7.2f}")

    worst = max(ratios, key=lambda t: max(ratios[t].values()))
    summary = {
        "benchmark": "losses",
        "device": str(device),
        "max_ratio": round(max(ratios[worst].values()), 3),
        "max_ratio_loss": worst,
        "ldr_max_ratio": round(max(ratios["ldr"].values()), 3),
        "aldr_max_ratio": round(max(ratios["aldr"].values()), 3),
        "over_3x": sorted(t for t, r in ratios.items() if max(r.values()) > 3),
        "shapes": [f"{b}x{k}" for b, k in shapes],
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
