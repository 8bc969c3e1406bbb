"""One epoch of CIFAR-shaped data with crop + flip: losslab's in-memory fast path
against a torchvision Dataset + DataLoader with the equivalent transforms.

    python scripts/bench_data.py [--n 50000] [--batch-size 512] [--device cpu]

The data is random uint8 of shape [n, 3, 32, 32] (the pixel values do not matter
for speed). The baseline is what torchvision's CIFAR10 does per sample: a PIL
image from the HWC array, RandomCrop(32, padding=4), RandomHorizontalFlip,
ToTensor, Normalize, batched by a DataLoader with one worker per CPU core (and
pinned memory on CUDA). Both sides produce every batch on the device and touch
it so that no work is skipped. The last line printed is one JSON object with
``"ratio"``: DataLoader seconds per epoch / fast-path seconds per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from losslab.datasets.base import BatchTransform, Split
from losslab.datasets.loader import InMemoryLoader

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class PilDataset(torch.utils.data.Dataset):
    """A torchvision-style dataset: HWC uint8 array -> PIL -> transforms."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform) -> None:
        self.data, self.targets, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.data[i])), int(self.targets[i])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--epochs", type=int, default=2, help="timed epochs per side (after one warm-up)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, args.n)

    # losslab fast path: the split lives on the device as uint8 NCHW
    split = Split.clean(
        torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)
    )
    fast = InMemoryLoader(
        split,
        args.batch_size,
        device,
        shuffle=True,
        seed=0,
        transform=BatchTransform(scale=1 / 255, mean=MEAN, std=STD, crop_padding=4, flip=True),
    )

    def fast_epoch(epoch: int) -> float:
        total = torch.zeros((), device=device)
        for x, y, _ in fast.batches(epoch):
            total += x[:, 0, 0, 0].sum() + y.sum()
        sync()
        return float(total)

    # torchvision baseline
    tf = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    loader = torch.utils.data.DataLoader(
        PilDataset(images, labels, tf),
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )

    def baseline_epoch(epoch: int) -> float:
        total = torch.zeros((), device=device)
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            total += x[:, 0, 0, 0].sum() + y.sum()
        sync()
        return float(total)

    def timed(fn) -> float:
        fn(0)  # warm-up (worker start, allocations)
        t0 = time.perf_counter()
        for epoch in range(1, args.epochs + 1):
            fn(epoch)
        return (time.perf_counter() - t0) / args.epochs

    fast_s = timed(fast_epoch)
    base_s = timed(baseline_epoch)
    print(f"fast path      {fast_s:8.3f} s/epoch  {args.n / fast_s:10.0f} samples/s")
    print(
        f"DataLoader+PIL {base_s:8.3f} s/epoch  {args.n / base_s:10.0f} samples/s  ({args.workers} workers)"
    )
    print(
        json.dumps(
            {
                "benchmark": "data",
                "ratio": round(base_s / fast_s, 2),
                "fast_s_per_epoch": round(fast_s, 3),
                "dataloader_s_per_epoch": round(base_s, 3),
                "n": args.n,
                "batch_size": args.batch_size,
                "workers": args.workers,
                "device": str(device),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
