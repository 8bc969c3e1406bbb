"""Plain NumPy reference implementations, written out from the definitions.

Loops over samples and bins on purpose: they share no code and no vectorised
trick (sum rewriting, scatter, flat bin ids) with ``losslab.metrics``.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def in_bin(values: np.ndarray, b: int, n_bins: int) -> np.ndarray:
    """Members of right-closed bin ``(b/n, (b+1)/n]``; 0 belongs to the first bin."""
    lo, hi = b / n_bins, (b + 1) / n_bins
    return ((values > lo) & (values <= hi)) | ((b == 0) & (values == 0))


def ece(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    n, total = len(conf), 0.0
    for b in range(n_bins):
        members = [i for i in range(n) if in_bin(conf[i : i + 1], b, n_bins)[0]]
        if members:
            acc_b = np.mean([correct[i] for i in members])
            conf_b = np.mean([conf[i] for i in members])
            total += len(members) / n * abs(acc_b - conf_b)
    return total


def mce(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    gaps = []
    for b in range(n_bins):
        mask = in_bin(conf, b, n_bins)
        if mask.any():
            gaps.append(abs(correct[mask].mean() - conf[mask].mean()))
    return float(max(gaps))


def adaptive_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int) -> float:
    """Equal-mass bins: stable ascending sort, then ``np.array_split`` into ``n_bins`` parts."""
    order = np.argsort(conf, kind="stable")
    total = 0.0
    for group in np.array_split(order, n_bins):
        if len(group):
            total += len(group) / len(conf) * abs(correct[group].mean() - conf[group].mean())
    return total


def classwise_ece(p: np.ndarray, target: np.ndarray, n_bins: int) -> float:
    n, k = p.shape
    per_class = []
    for c in range(k):
        outcome = (target == c).astype(float)
        total = 0.0
        for b in range(n_bins):
            mask = in_bin(p[:, c], b, n_bins)
            if mask.any():
                total += mask.sum() / n * abs(outcome[mask].mean() - p[mask, c].mean())
        per_class.append(total)
    return float(np.mean(per_class))


def aurc(conf: np.ndarray, correct: np.ndarray) -> float:
    """Mean risk over coverages 1..N, samples sorted by descending confidence.

    Exact for distinct confidences (ties are tested separately).
    """
    order = np.argsort(-conf, kind="stable")
    risks = []
    for i in range(1, len(conf) + 1):
        kept = order[:i]
        risks.append(np.sum(~correct[kept]) / i)
    return float(np.mean(risks))


def entropy(p: np.ndarray) -> np.ndarray:
    return np.array([-sum(q * np.log(q) for q in row if q > 0) for row in p])


def metrics(logits: np.ndarray, target: np.ndarray, n_bins: int = 15) -> dict[str, float | None]:
    """Every key of ``classification_metrics``, from the definitions."""
    p = softmax(logits)
    n, k = p.shape
    pred = p.argmax(1)
    conf = p.max(1)
    correct = pred == target
    h = entropy(p)
    out: dict[str, float | None] = {"acc": float(np.mean(correct))}
    if k >= 5:
        top5 = [target[i] in np.argsort(-logits[i], kind="stable")[:5] for i in range(n)]
        out["acc_top5"] = float(np.mean(top5))
    out |= {
        "nll": float(np.mean([-np.log(p[i, target[i]]) for i in range(n)])),
        "brier": float(
            np.mean([sum((p[i, c] - (c == target[i])) ** 2 for c in range(k)) for i in range(n)])
        ),
        "ece": ece(conf, correct, n_bins),
        "ece_adaptive": adaptive_ece(conf, correct, n_bins),
        "ece_classwise": classwise_ece(p, target, n_bins),
        "mce": mce(conf, correct, n_bins),
        "entropy": float(np.mean(h)),
        "entropy_correct": float(np.mean(h[correct])) if correct.any() else None,
        "entropy_incorrect": float(np.mean(h[~correct])) if (~correct).any() else None,
        "aurc": aurc(conf, correct),
    }
    return out
