"""Split metrics against independent implementations (plain NumPy, torchmetrics)."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from losslab.metrics import binned_calibration, classification_metrics, expected_calibration_error


def numpy_reference(logits: np.ndarray, target: np.ndarray, n_bins: int) -> dict[str, float]:
    """The definitions, written out sample by sample and bin by bin."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    n = len(target)
    conf, pred = p.max(1), p.argmax(1)
    ece = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(n) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if members:
            acc_b = np.mean([pred[i] == target[i] for i in members])
            conf_b = np.mean([conf[i] for i in members])
            ece += len(members) / n * abs(acc_b - conf_b)
    return {
        "acc": float(np.mean(pred == target)),
        "nll": float(np.mean([-np.log(p[i, target[i]]) for i in range(n)])),
        "ece": ece,
        "entropy": float(np.mean([-(p[i] * np.log(p[i])).sum() for i in range(n)])),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "k", "scale"), [(500, 10, 3.0), (64, 2, 1.0), (300, 100, 6.0)])
def test_matches_numpy_reference(seed, n, k, scale):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k)) * scale
    target = rng.integers(0, k, n)
    got = classification_metrics(torch.tensor(logits), torch.tensor(target), n_bins=15)
    want = numpy_reference(logits, target, 15)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


@pytest.mark.parametrize("n_bins", [5, 15, 20])
def test_ece_matches_torchmetrics(n_bins):
    torch.manual_seed(n_bins)
    probs = torch.softmax(torch.randn(1000, 10) * 2, dim=1)
    target = torch.randint(0, 10, (1000,))
    ours = expected_calibration_error(probs.double(), target, n_bins)
    theirs = multiclass_calibration_error(probs, target, num_classes=10, n_bins=n_bins, norm="l1")
    assert float(ours) == pytest.approx(float(theirs), abs=1e-6)


def test_perfect_and_all_wrong():
    logits = torch.eye(4).repeat(10, 1) * 50.0
    target = torch.arange(4).repeat(10)
    m = classification_metrics(logits, target)
    assert m["acc"] == 1.0 and m["ece"] == pytest.approx(0.0, abs=1e-12)
    assert m["nll"] == pytest.approx(0.0, abs=1e-12) and m["entropy"] == pytest.approx(
        0.0, abs=1e-12
    )
    wrong = classification_metrics(logits, (target + 1) % 4)
    assert wrong["acc"] == 0.0 and wrong["ece"] == pytest.approx(1.0)
    assert wrong["nll"] == pytest.approx(50.0)


def test_uniform_predictions():
    k = 5
    m = classification_metrics(torch.zeros(20, k), torch.arange(20) % k)
    assert m["entropy"] == pytest.approx(np.log(k)) and m["nll"] == pytest.approx(np.log(k))


def test_every_sample_in_one_bin():
    # confidence 0.7 for every sample, 60 % correct: ECE = |0.6 - 0.7|
    probs = torch.tensor([[0.7, 0.3]]).repeat(10, 1)
    target = torch.tensor([0] * 6 + [1] * 4)
    assert float(expected_calibration_error(probs, target, 15)) == pytest.approx(0.1)


def test_bins_are_right_closed():
    # 0.25 and 0.5 are exact in binary: they fall in the bin they close.
    conf = torch.tensor([0.0, 0.25, 0.2500001, 0.5, 1.0], dtype=torch.float64)
    count, _, _ = binned_calibration(conf, torch.ones(5), n_bins=4)
    assert count.tolist() == [2.0, 2.0, 0.0, 1.0]


def test_batchwise_logits_give_the_same_result():
    torch.manual_seed(0)
    logits, target = torch.randn(300, 7), torch.randint(0, 7, (300,))
    whole = classification_metrics(logits, target)
    gathered = classification_metrics(torch.cat(logits.split(64)), torch.cat(target.split(64)))
    assert whole == gathered


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="expected logits"):
        classification_metrics(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins=0"):
        binned_calibration(torch.zeros(3), torch.zeros(3), n_bins=0)
