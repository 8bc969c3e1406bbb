"""The in-memory batch loader: indices, order and reproducibility."""

import torch

from losslab.datasets.base import Split
from losslab.datasets.loader import InMemoryLoader, epoch_permutation


def make_split(n: int = 103) -> Split:
    x = torch.arange(n, dtype=torch.float32)[:, None] * torch.ones(1, 3)
    return Split.clean(x, torch.arange(n) % 4)


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
