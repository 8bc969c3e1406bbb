"""Split metrics against independent implementations (plain NumPy, torchmetrics, sklearn)."""

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_calibration_error,
)

from losslab.metrics import (
    METRIC_KEYS,
    adaptive_calibration_error,
    area_under_risk_coverage,
    binned_calibration,
    brier_score,
    classification_metrics,
    classwise_calibration_error,
    expected_calibration_error,
    fit_temperature,
    max_calibration_error,
    metrics_and_reliability,
    noisy_label_diagnostics,
    reliability_bins,
    target_rank,
    temperature,
    temperature_scaled_metrics,
)
from losslab.metrics.calibration import top_label_adaptive_ece, top_label_ece, top_label_mce
from losslab.metrics.classification import entropy_of_log_probs
from tests.metrics import reference

CASES = [(400, 10, 3.0), (64, 2, 1.0), (300, 100, 6.0), (50, 5, 2.0), (200, 3, 0.3)]


def random_case(seed: int, n: int, k: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k)) * scale, rng.integers(0, k, n)


def assert_close(got: dict, want: dict, tol: float = 1e-9) -> None:
    assert list(got) == list(want)
    for key, value in want.items():
        if value is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(value, abs=tol), key


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("n", "k", "scale"), CASES)
def test_matches_numpy_reference(seed, n, k, scale):
    logits, target = random_case(seed, n, k, scale)
    got = classification_metrics(torch.tensor(logits), torch.tensor(target), n_bins=15)
    assert_close(got, reference.metrics(logits, target, 15))


@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_other_bin_counts_match_numpy_reference(n_bins):
    logits, target = random_case(3, 150, 4, 2.0)
    got = classification_metrics(torch.tensor(logits), torch.tensor(target), n_bins=n_bins)
    assert_close(got, reference.metrics(logits, target, n_bins))


@pytest.mark.parametrize("k", [2, 5, 10])
@pytest.mark.parametrize("n_bins", [5, 15, 20])
def test_ece_and_mce_match_torchmetrics(k, n_bins):
    torch.manual_seed(n_bins + k)
    logits, target = torch.randn(1000, k) * 2, torch.randint(0, k, (1000,))
    probs = torch.softmax(logits.double(), dim=1)
    m = classification_metrics(logits, target, n_bins)
    for key, norm in (("ece", "l1"), ("mce", "max")):
        theirs = multiclass_calibration_error(probs, target, k, n_bins=n_bins, norm=norm)
        assert m[key] == pytest.approx(float(theirs), abs=1e-6), key
    assert float(expected_calibration_error(probs, target, n_bins)) == pytest.approx(m["ece"])
    assert float(max_calibration_error(probs, target, n_bins)) == pytest.approx(m["mce"])


@pytest.mark.parametrize("n_bins", [1, 7, 15])
@pytest.mark.parametrize(("n", "k", "scale"), CASES)
def test_runner_path_equals_the_public_functions(n, k, scale, n_bins):
    """The one-pass metrics of the runner are the public metric functions' values."""
    z, y = map(torch.as_tensor, random_case(11, n, k, scale))
    m, bins = metrics_and_reliability(z, y, n_bins)
    logp = torch.log_softmax(z.double(), dim=-1)
    probs = logp.exp()
    logp_max, pred = logp.max(dim=-1)
    conf, correct = logp_max.exp(), pred == y
    # the same confidences: the same function, so the same float64 bits
    assert m["ece"] == float(top_label_ece(conf, correct, n_bins))
    assert m["mce"] == float(top_label_mce(conf, correct, n_bins))
    assert m["ece_adaptive"] == float(top_label_adaptive_ece(conf, correct, n_bins))
    assert m["ece_classwise"] == float(classwise_calibration_error(probs, y, n_bins))
    assert m["aurc"] == float(area_under_risk_coverage(conf, correct))
    assert m["brier"] == float(brier_score(probs, y).mean())
    h = entropy_of_log_probs(logp)
    assert m["entropy"] == float(h.mean())
    for key, group in (("entropy_correct", correct), ("entropy_incorrect", ~correct)):
        if group.any():
            assert m[key] == pytest.approx(float(h[group].mean()), abs=1e-12), key
        else:
            assert m[key] is None, key
    count, acc, mean_conf = binned_calibration(conf, correct, n_bins)
    assert bins == {
        "n_bins": n_bins,
        "count": count.tolist(),
        "acc": acc.tolist(),
        "conf": mean_conf.tolist(),
    }
    # the probability-level API (top-label confidence taken from the probabilities)
    for key, fn in (
        ("ece", expected_calibration_error),
        ("mce", max_calibration_error),
        ("ece_adaptive", adaptive_calibration_error),
    ):
        assert m[key] == pytest.approx(float(fn(probs, y, n_bins)), abs=1e-12), key
    t = 1.7
    scaled = torch.softmax(z.double() / t, dim=-1)
    ece_ts = temperature_scaled_metrics(z, y, t, n_bins)["ece_ts"]
    assert ece_ts == pytest.approx(float(expected_calibration_error(scaled, y, n_bins)), abs=1e-12)


def test_label_noise_entropies_are_the_split_entropy():
    logits, target = random_case(12, 120, 6, 2.0)
    z, y = torch.tensor(logits), torch.tensor(target)
    noisy = torch.arange(120) % 4 == 0
    d = noisy_label_diagnostics(z, y, y, noisy)
    h = entropy_of_log_probs(torch.log_softmax(z, dim=-1))
    assert d["train_entropy_noisy"] == pytest.approx(float(h[noisy].mean()), abs=1e-12)
    assert d["train_entropy_clean"] == pytest.approx(float(h[~noisy].mean()), abs=1e-12)


@pytest.mark.parametrize("k", [2, 5, 12])
def test_accuracies_match_torchmetrics(k):
    torch.manual_seed(k)
    logits, target = torch.randn(500, k), torch.randint(0, k, (500,))
    m = classification_metrics(logits, target)
    top1 = multiclass_accuracy(logits, target, k, average="micro", top_k=1)
    assert m["acc"] == pytest.approx(float(top1), abs=1e-6)
    if k >= 5:
        top5 = multiclass_accuracy(logits, target, k, average="micro", top_k=5)
        assert m["acc_top5"] == pytest.approx(float(top5), abs=1e-6)
    else:
        assert "acc_top5" not in m


@pytest.mark.parametrize("k", [2, 10])
def test_nll_brier_entropy_match_sklearn_and_scipy(k):
    logits, target = random_case(7, 300, k, 2.5)
    m = classification_metrics(torch.tensor(logits), torch.tensor(target))
    p = reference.softmax(logits)
    labels = list(range(k))
    assert m["nll"] == pytest.approx(log_loss(target, p, labels=labels), abs=1e-9)
    brier = brier_score_loss(target, p, labels=labels, scale_by_half=False)
    assert m["brier"] == pytest.approx(brier, abs=1e-9)
    assert m["entropy"] == pytest.approx(scipy_entropy(p, axis=1).mean(), abs=1e-9)


def test_keys_and_json():
    logits, target = random_case(0, 40, 6, 1.0)
    m = classification_metrics(torch.tensor(logits), torch.tensor(target))
    assert tuple(m) == METRIC_KEYS
    assert all(type(v) is float for v in m.values())
    json.dumps(m, allow_nan=False)
    small = classification_metrics(torch.zeros(3, 4), torch.tensor([0, 1, 2]))
    assert tuple(small) == tuple(key for key in METRIC_KEYS if key != "acc_top5")


def test_perfect_and_all_wrong():
    logits = torch.eye(4).repeat(10, 1) * 50.0
    target = torch.arange(4).repeat(10)
    m = classification_metrics(logits, target)
    assert m["acc"] == 1.0 and m["ece"] == pytest.approx(0.0, abs=1e-12)
    assert m["nll"] == pytest.approx(0.0, abs=1e-12)
    assert m["entropy"] == pytest.approx(0.0, abs=1e-12)
    assert m["entropy_correct"] == pytest.approx(0.0, abs=1e-12)
    assert m["entropy_incorrect"] is None
    assert m["aurc"] == 0.0 and m["brier"] == pytest.approx(0.0, abs=1e-12)
    assert m["mce"] == pytest.approx(0.0, abs=1e-12)
    json.dumps(m, allow_nan=False)

    wrong = classification_metrics(logits, (target + 1) % 4)
    assert wrong["acc"] == 0.0 and wrong["ece"] == pytest.approx(1.0)
    assert wrong["mce"] == pytest.approx(1.0) and wrong["ece_adaptive"] == pytest.approx(1.0)
    assert wrong["nll"] == pytest.approx(50.0)
    assert wrong["brier"] == pytest.approx(2.0)
    assert wrong["aurc"] == 1.0
    assert wrong["entropy_correct"] is None and wrong["entropy_incorrect"] is not None
    json.dumps(wrong, allow_nan=False)


def test_uniform_predictions():
    k = 5
    m = classification_metrics(torch.zeros(20, k), torch.arange(20) % k)
    assert m["entropy"] == pytest.approx(np.log(k)) and m["nll"] == pytest.approx(np.log(k))
    assert m["brier"] == pytest.approx(1 - 1 / k)
    # argmax is class 0 everywhere; rank by index on ties: classes 0..4 all in the top 5
    assert m["acc"] == pytest.approx(0.2) and m["acc_top5"] == 1.0


def test_top5_ties_break_by_class_index():
    # every logit tied: the top 5 are classes 0..4
    target = torch.arange(10)
    rank = target_rank(torch.zeros(10, 10), target)
    assert rank.tolist() == list(range(10))
    m = classification_metrics(torch.zeros(10, 10), target)
    assert m["acc"] == pytest.approx(0.1) and m["acc_top5"] == pytest.approx(0.5)


def test_every_sample_in_one_bin():
    # confidence 0.7 for every sample, 60 % correct: every binned gap is |0.6 - 0.7|
    probs = torch.tensor([[0.7, 0.3]], dtype=torch.float64).repeat(10, 1)
    target = torch.tensor([0] * 6 + [1] * 4)
    assert float(expected_calibration_error(probs, target, 15)) == pytest.approx(0.1)
    m = classification_metrics(probs.log(), target)
    assert m["ece"] == pytest.approx(0.1) and m["mce"] == pytest.approx(0.1)
    # equal-mass groups split tied confidences in input order: 10 groups of one sample
    assert m["ece_adaptive"] == pytest.approx((6 * 0.3 + 4 * 0.7) / 10)
    assert float(adaptive_calibration_error(probs, target, 1)) == pytest.approx(0.1)
    # one confidence for all: AURC is the error rate (ties averaged)
    assert m["aurc"] == pytest.approx(0.4)


def test_two_classes_by_hand():
    # p(class 0) = 0.8, 0.3; targets 0, 0 -> predictions 0 (conf 0.8), 1 (conf 0.7)
    p = torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=torch.float64)
    m = classification_metrics(p.log(), torch.tensor([0, 0]), n_bins=10)
    assert m["acc"] == 0.5
    assert m["nll"] == pytest.approx(-(math.log(0.8) + math.log(0.3)) / 2)
    assert m["brier"] == pytest.approx((2 * 0.2**2 + 2 * 0.7**2) / 2)
    assert m["ece"] == pytest.approx((0.2 + 0.7) / 2)  # two bins: |1 - 0.8|, |0 - 0.7|
    assert m["mce"] == pytest.approx(0.7)
    # class 0 (bins of 0.8 and 0.3, both targets 0): |1-0.8|/2 + |1-0.3|/2
    # class 1 (bins of 0.2 and 0.7, no target 1):    |0-0.2|/2 + |0-0.7|/2
    assert m["ece_classwise"] == pytest.approx(((0.2 + 0.7) / 2 + (0.2 + 0.7) / 2) / 2)
    assert m["aurc"] == pytest.approx((0 + 1 / 2) / 2)  # the wrong one is the less confident
    assert m["entropy_correct"] == pytest.approx(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2)))


def test_single_sample():
    m = classification_metrics(torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([1]))
    p = torch.softmax(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64), 0)
    assert m["acc"] == 0.0 and m["aurc"] == 1.0
    assert m["ece"] == pytest.approx(float(p[0])) and m["mce"] == pytest.approx(float(p[0]))
    assert m["ece_adaptive"] == pytest.approx(float(p[0]))  # one sample, 14 empty groups
    assert m["nll"] == pytest.approx(-math.log(float(p[1])))
    assert m["entropy_correct"] is None and m["entropy_incorrect"] == pytest.approx(m["entropy"])
    json.dumps(m, allow_nan=False)


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


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_logits_are_computed_in_float64(dtype):
    torch.manual_seed(1)
    logits, target = (torch.randn(100, 6) * 3).to(dtype), torch.randint(0, 6, (100,))
    assert classification_metrics(logits, target) == classification_metrics(logits.double(), target)


def test_non_finite_logits_give_none_not_nan():
    logits = torch.tensor([[math.nan, 0.0], [1.0, 0.0]])
    m = classification_metrics(logits, torch.tensor([0, 0]))
    assert m["nll"] is None and m["entropy"] is None
    assert all(v is None or math.isfinite(v) for v in m.values())
    json.dumps(m, allow_nan=False)


def test_brier_score_per_sample():
    p = torch.tensor([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]], dtype=torch.float64)
    assert brier_score(p, torch.tensor([1, 0])).tolist() == [0.25 + 0.5625 + 0.0625, 0.0]


@pytest.mark.parametrize("case", CASES)
def test_metrics_and_reliability_in_one_pass(case):
    """The runner's one-pass call gives what the two separate calls give."""
    z, y = map(torch.as_tensor, random_case(7, *case))
    metrics, bins = metrics_and_reliability(z, y, n_bins=10)
    assert metrics == classification_metrics(z, y, n_bins=10)
    assert bins == reliability_bins(z, y, n_bins=10)


HOST_CALLS = [
    lambda z, y: classification_metrics(z, y),
    lambda z, y: reliability_bins(z, y),
    lambda z, y: metrics_and_reliability(z, y),
    lambda z, y: fit_temperature(z, y),
    lambda z, y: temperature_scaled_metrics(z, y, 1.5),
    lambda z, y: noisy_label_diagnostics(z, y, (y + 1) % 7, torch.arange(len(y)) % 3 == 0),
]


@pytest.mark.parametrize("call", HOST_CALLS)
def test_a_single_host_transfer(monkeypatch, call):
    """Everything stays a tensor until one ``tolist`` at the end.

    ``fit_temperature`` keeps its bracket on the host only for CPU tensors; emptying
    the list of such devices runs the path taken on GPUs here.
    """
    monkeypatch.setattr(temperature, "_HOST_SEARCH_DEVICES", ())
    logits, target = torch.randn(64, 7), torch.randint(0, 7, (64,))
    calls: list[str] = []
    for name in ("tolist", "item", "__bool__", "__float__", "__int__", "__index__", "numpy"):
        real = getattr(torch.Tensor, name)

        def spy(self, *args, _name=name, _real=real):
            calls.append(_name)
            return _real(self, *args)

        monkeypatch.setattr(torch.Tensor, name, spy)
    call(logits, target)
    monkeypatch.undo()
    assert calls == ["tolist"]


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="expected logits"):
        classification_metrics(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_bins=0"):
        binned_calibration(torch.zeros(3), torch.zeros(3), n_bins=0)
    with pytest.raises(ValueError, match="n_bins=0"):
        classification_metrics(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), n_bins=0)
    with pytest.raises(ValueError, match="empty split"):
        classification_metrics(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        classification_metrics(torch.zeros(3, 2), torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        classification_metrics(torch.zeros(3, 2), torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match="integer classes"):
        classification_metrics(torch.zeros(3, 2), torch.zeros(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    logits, target = random_case(5, 2000, 10, 3.0)
    cpu = classification_metrics(torch.tensor(logits), torch.tensor(target))
    gpu = classification_metrics(torch.tensor(logits).cuda(), torch.tensor(target).cuda())
    assert_close(gpu, cpu, tol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_results_are_bitwise_reproducible():
    logits, target = random_case(6, 20000, 50, 3.0)
    z, y = torch.tensor(logits).float().cuda(), torch.tensor(target).cuda()
    first = classification_metrics(z, y)
    assert all(classification_metrics(z, y) == first for _ in range(3))
