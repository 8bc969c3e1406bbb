"""Serving batches: indices, order, reproducibility, on-device crop/flip, both serving paths."""

import pytest
import torch

from losslab.datasets.base import BatchTransform, Split
from losslab.datasets.loader import (
    InMemoryLoader,
    StreamingLoader,
    apply_transform,
    choose_loader,
    epoch_permutation,
    materialize,
    random_crop,
    random_flip,
)


def make_split(n: int = 103) -> Split:
    x = torch.arange(n, dtype=torch.float32)[:, None] * torch.ones(1, 3)
    return Split.clean(x, torch.arange(n) % 4)


def image_split(n: int = 40, size: int = 8) -> Split:
    # every pixel of image i holds 1 + i (mod 255): an image identifies its sample, never 0
    x = (
        (1 + torch.arange(n)[:, None, None, None] % 255)
        .to(torch.uint8)
        .expand(n, 3, size, size)
        .clone()
    )
    return Split.clean(x, torch.arange(n) % 5)


class ListSource:
    """A lazy image source backed by a tensor (stands in for files on disk)."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def test_each_epoch_visits_every_index_once():
    split = make_split()
    loader = InMemoryLoader(split, batch_size=10, shuffle=True, seed=0)
    assert len(loader) == 11
    for epoch in range(3):
        seen = []
        for x, y, idx in loader.batches(epoch):
            # every batch carries the dataset index of each sample
            assert torch.equal(x[:, 0].long(), idx) and torch.equal(y, split.y[idx])
            seen.append(idx)
        assert torch.equal(torch.sort(torch.cat(seen)).values, torch.arange(103))


def test_order_depends_on_seed_and_epoch_only():
    a = [idx for _, _, idx in InMemoryLoader(make_split(), 16, shuffle=True, seed=5).batches(2)]
    b = [idx for _, _, idx in InMemoryLoader(make_split(), 16, shuffle=True, seed=5).batches(2)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not torch.equal(epoch_permutation(103, 5, 2), epoch_permutation(103, 5, 3))
    assert not torch.equal(epoch_permutation(103, 5, 2), epoch_permutation(103, 6, 2))


def test_eval_order_is_stored_order_and_drop_last():
    loader = InMemoryLoader(make_split(25), batch_size=10)
    assert torch.equal(torch.cat([i for _, _, i in loader.batches()]), torch.arange(25))
    assert len(InMemoryLoader(make_split(25), batch_size=10, drop_last=True)) == 2


def test_random_crop_shifts_within_the_padding():
    torch.manual_seed(0)
    x = torch.rand(512, 1, 6, 6) + 1.0  # strictly positive: padding shows as zeros
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # each crop is the image shifted by (dy, dx) in [-2, 2]; recover the shift
    shifts = set()
    for i in range(64):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(
                out[i],
                torch.nn.functional.pad(x[i], (2, 2, 2, 2))[:, 2 + dy : 8 + dy, 2 + dx : 8 + dx],
            )
        ]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 10  # many of the 25 possible offsets occur
    # offsets are uniform: the share of un-shifted crops is about 1/25
    zero_rows = (out[:, 0, 0, :] == 0).all(dim=1).float().mean()  # top row padded: dy < 0
    assert 0.3 < float(zero_rows) < 0.5  # P(dy < 0) = 2/5


def test_random_flip_is_a_fair_coin():
    x = torch.arange(8.0).view(1, 1, 1, 8).repeat(4000, 1, 1, 1)
    out = random_flip(x, torch.Generator().manual_seed(1))
    flipped = out[:, 0, 0, 0] == 7
    assert torch.equal(out[flipped], x[flipped].flip(3)) and torch.equal(out[~flipped], x[~flipped])
    assert abs(float(flipped.float().mean()) - 0.5) < 0.03


def test_transform_scales_normalises_and_augments_train_only():
    split = image_split()
    t = BatchTransform(
        scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), crop_padding=2, flip=True
    )
    x = split.x[:4]
    plain = apply_transform(x, t)
    torch.testing.assert_close(plain, (x.float() / 255 - 0.5) / 0.25)
    train = next(iter(InMemoryLoader(split, 8, transform=t, shuffle=True, seed=0).batches(0)))[0]
    assert train.dtype == torch.float32 and train.shape == (8, 3, 8, 8)
    # zero padding is black before normalisation: its normalised value appears
    assert torch.isclose(train, torch.tensor(-2.0)).any()
    evals = next(iter(InMemoryLoader(split, 8, transform=t).batches(0)))[0]
    assert not torch.isclose(evals, torch.tensor(-2.0)).any()  # eval batches are never padded


def test_identical_batches_and_augmentations_for_identical_seeds():
    t = BatchTransform(scale=1 / 255, crop_padding=2, flip=True)
    runs = [
        [
            x
            for x, _, _ in InMemoryLoader(
                image_split(), 8, transform=t, shuffle=True, seed=3
            ).batches(1)
        ]
        for _ in range(2)
    ]
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))
    other = [
        x
        for x, _, _ in InMemoryLoader(image_split(), 8, transform=t, shuffle=True, seed=4).batches(
            1
        )
    ]
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], other, strict=True))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_streaming_path_matches_the_memory_path(num_workers):
    split = image_split()
    lazy = Split.clean(ListSource(split.x), split.y)
    t = BatchTransform(scale=1 / 255, crop_padding=2, flip=True)
    memory = list(InMemoryLoader(split, 8, transform=t, shuffle=True, seed=2).batches(3))
    stream = list(
        StreamingLoader(
            lazy, 8, transform=t, shuffle=True, seed=2, num_workers=num_workers
        ).batches(3)
    )
    assert len(memory) == len(stream) == 5
    for (xa, ya, ia), (xb, yb, ib) in zip(memory, stream, strict=True):
        assert torch.equal(ia, ib) and torch.equal(ya, yb) and torch.equal(xa, xb)


def test_materialize_and_choice_of_loader():
    split = image_split()
    lazy = Split.clean(ListSource(split.x), split.y)
    assert torch.equal(materialize(lazy.x, batch_size=7), split.x)
    assert choose_loader("auto", [split], memory_limit_mb=0) == "memory"
    assert choose_loader("auto", [lazy], memory_limit_mb=1) == "memory"
    assert choose_loader("auto", [lazy], memory_limit_mb=1e-6) == "dataloader"
    assert choose_loader("dataloader", [split], memory_limit_mb=1) == "dataloader"
    with pytest.raises(ValueError, match="dataset.loader='gpu'.*auto"):
        choose_loader("gpu", [split], 1)


def test_one_seed_formula_for_order_augmentation_and_mixing():
    from losslab.datasets.loader import (
        AUGMENT_STREAM,
        MIXING_STREAM,
        ORDER_STREAM,
        augment_generator,
        epoch_seed,
    )
    from losslab.datasets.mixing import Mixing

    seeds = {epoch_seed(7, 3, s) for s in (ORDER_STREAM, AUGMENT_STREAM, MIXING_STREAM)}
    assert len(seeds) == 3  # the streams are independent
    assert Mixing.generator(7, 3).initial_seed() == epoch_seed(7, 3, MIXING_STREAM)
    cpu = torch.device("cpu")
    assert augment_generator(7, 3, cpu).initial_seed() == epoch_seed(7, 3, AUGMENT_STREAM)
    g = torch.Generator().manual_seed(epoch_seed(7, 3, ORDER_STREAM))
    assert torch.equal(epoch_permutation(50, 7, 3), torch.randperm(50, generator=g))
    # the formula itself is part of the record: changing it changes every run's data order
    assert epoch_seed(1, 2, 2) == 1_000_003 + 2 * 7_919 + 2 * 104_729
