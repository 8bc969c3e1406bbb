"""Memorisation diagnostics on noisy training labels."""

import json
import math

import numpy as np
import pytest
import torch

from losslab.metrics import DIAGNOSTIC_KEYS, noisy_label_diagnostics
from tests.metrics import reference


def test_hand_made_case():
    # 6 samples, 3 classes; samples 3, 4, 5 carry a noisy label
    logits = torch.tensor(
        [
            [4.0, 0.0, 0.0],  # clean y=0, pred 0: right
            [0.0, 4.0, 0.0],  # clean y=1, pred 1: right
            [0.0, 0.0, 0.0],  # clean y=2, pred 0 (uniform): wrong
            [0.0, 5.0, 0.0],  # clean 0, noisy 1, pred 1: memorised
            [0.0, 0.0, 5.0],  # clean 2, noisy 0, pred 2: recovered
            [0.0, 0.0, 5.0],  # clean 1, noisy 0, pred 2: neither
        ]
    )
    y_clean = torch.tensor([0, 1, 2, 0, 2, 1])
    y_noisy = torch.tensor([0, 1, 2, 1, 0, 0])
    d = noisy_label_diagnostics(logits, y_noisy, y_clean, y_noisy != y_clean)
    assert tuple(d) == DIAGNOSTIC_KEYS
    assert d["train_noisy_memorized"] == pytest.approx(1 / 3)
    assert d["train_noisy_recovered"] == pytest.approx(1 / 3)
    assert d["train_clean_acc"] == pytest.approx(2 / 3)

    def h(z):
        p = reference.softmax(np.array([z]))[0]
        return -(p * np.log(p)).sum()

    clean_h = (2 * h([4.0, 0.0, 0.0]) + math.log(3)) / 3
    assert d["train_entropy_clean"] == pytest.approx(clean_h)
    assert d["train_entropy_noisy"] == pytest.approx(h([0.0, 5.0, 0.0]))


def test_empty_groups_are_none():
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    none_noisy = noisy_label_diagnostics(logits, y, y, torch.zeros(8, dtype=torch.bool))
    assert none_noisy["train_noisy_memorized"] is None
    assert none_noisy["train_noisy_recovered"] is None
    assert none_noisy["train_entropy_noisy"] is None
    assert none_noisy["train_clean_acc"] is not None
    all_noisy = noisy_label_diagnostics(logits, (y + 1) % 3, y, torch.ones(8, dtype=torch.bool))
    assert all_noisy["train_clean_acc"] is None and all_noisy["train_entropy_clean"] is None
    assert all_noisy["train_noisy_memorized"] is not None
    json.dumps([none_noisy, all_noisy], allow_nan=False)


def test_matches_numpy_loop():
    rng = np.random.default_rng(0)
    n, k = 300, 5
    logits = rng.standard_normal((n, k)) * 2
    y_clean = rng.integers(0, k, n)
    flip = rng.random(n) < 0.4
    y_noisy = np.where(flip, (y_clean + rng.integers(1, k, n)) % k, y_clean)
    is_noisy = y_noisy != y_clean
    d = noisy_label_diagnostics(*(torch.tensor(a) for a in (logits, y_noisy, y_clean, is_noisy)))
    pred = logits.argmax(1)
    h = reference.entropy(reference.softmax(logits))
    noisy = [i for i in range(n) if is_noisy[i]]
    clean = [i for i in range(n) if not is_noisy[i]]
    want = {
        "train_noisy_memorized": np.mean([pred[i] == y_noisy[i] for i in noisy]),
        "train_noisy_recovered": np.mean([pred[i] == y_clean[i] for i in noisy]),
        "train_clean_acc": np.mean([pred[i] == y_clean[i] for i in clean]),
        "train_entropy_clean": np.mean([h[i] for i in clean]),
        "train_entropy_noisy": np.mean([h[i] for i in noisy]),
    }
    for key, value in want.items():
        assert d[key] == pytest.approx(value, abs=1e-12), key


def test_bad_shapes():
    with pytest.raises(ValueError, match="expected logits"):
        noisy_label_diagnostics(
            torch.zeros(3, 2),
            torch.zeros(3, dtype=torch.long),
            torch.zeros(3, dtype=torch.long),
            torch.zeros(2, dtype=torch.bool),
        )
    with pytest.raises(ValueError, match="outside"):
        noisy_label_diagnostics(
            torch.zeros(2, 2),
            torch.tensor([0, 1]),
            torch.tensor([0, 3]),
            torch.tensor([False, True]),
        )
