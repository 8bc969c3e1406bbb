"""LDR-KL and ALDR-KL against an arbitrary-precision reference of the paper's formulas,
at logits from -1e4 to 1e4: values and gradients in float64, finiteness in float32/bf16.

The reference uses mpmath (60 digits) and differentiates numerically, so it shares
no code and no algebra with the implementation. Zhu, Ying, Yang, ICML 2023,
arXiv:2112.14869: LDR-KL, eq. (3) with the normalised scores of Section 6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from losslab.losses.ldr import ALDRKLLoss, LDRKLLoss

mp = pytest.importorskip("mpmath").mp
mp.dps = 60

# Rows of one batch [B, K=5]; each is checked on its own and as part of the batch.
ROWS = [
    [-30.0, -40.0, -35.0, -33.0, -31.0],  # every logit below -27.6 (the clamp of the old code)
    [-1e4, -1e4 + 3.0, -1e4 + 1.0, -1e4 - 2.0, -1e4 + 0.5],  # all very negative
    [-1e4, -9e3, -8e3, -5e3, -1e3],  # very negative, far apart
    [1e4, 1e4 - 5.0, 1e4 + 2.0, 1e4 - 1.0, 1e4 + 0.25],  # all very positive
    [-1e4, -20.0, 0.0, 20.0, 1e4],  # the whole range in one row
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [1.5, -0.3, 2.2, -4.0, 0.7],  # ordinary
    [-700.0, -745.0, -800.0, -710.0, -760.0],  # around the float64 underflow of exp
    [-90.0, -100.0, -105.0, -88.0, -95.0],  # around the float32 underflow of exp
    [3e-14, -1e-14, 2e-14, -4e-14, 1e-14],  # tiny (the abs-mean scores of ALDR)
]
TARGETS = [1, 0, 4, 2, 3, 0, 2, 1, 3, 4]
K = 5


def _softplus(v):
    return mp.log1p(mp.exp(v))


def _smoothed_max(f, y, lam, margin):
    """lam log( (1/K) sum_k exp((margin [k != y] + f_k - f_y) / lam) )."""
    terms = [mp.exp((margin * (k != y) + f[k] - f[y]) / lam) for k in range(len(f))]
    return lam * mp.log(mp.fsum(terms) / len(f))


def ldr_ref(z, y, lam, margin):
    s = [_softplus(mp.mpf(v)) for v in z]
    mean = mp.fsum(s) / len(s)
    return _smoothed_max([v / mean for v in s], y, lam, margin)


def aldr_scores_ref(z, softplus):
    s = [_softplus(mp.mpf(v)) if softplus else mp.mpf(v) for v in z]
    mean = mp.fsum(abs(v) for v in s) / len(s)
    return [v / mean for v in s]


def aldr_lambda_ref(z, lam_old, lam0, alpha, softplus):
    """The paper's closed-form lambda_i: lam0 (1 - KL(softmax(f/lam_old) || 1/K)/(alpha log K))."""
    f = aldr_scores_ref(z, softplus)
    e = [mp.exp(v / lam_old) for v in f]
    q = [v / mp.fsum(e) for v in e]
    kl = mp.fsum(p * mp.log(len(f) * p) for p in q)
    return lam0 * (1 - kl / (alpha * mp.log(len(f))))


def aldr_ref(z, y, lam, lam0, alpha, margin, softplus):
    """ALDR-KL at a given lambda_i (held fixed for the gradient, as in the paper)."""
    f = aldr_scores_ref(z, softplus)
    penalty = alpha * mp.log(len(f)) / (2 * lam0) * (lam - lam0) ** 2
    return _smoothed_max(f, y, lam, margin) - penalty


def ref_value_and_grad(fn, z):
    """Value and gradient of ``fn(list of K numbers)`` by high-precision numerical diff."""
    point = [mp.mpf(v) for v in z]
    value = fn(point)
    grad = []
    for k in range(len(point)):
        order = tuple(int(j == k) for j in range(len(point)))
        grad.append(mp.diff(lambda *v: fn(list(v)), point, order))
    return float(value), np.array([float(g) for g in grad])


def torch_value_and_grad(loss_fn, z, y, dtype=torch.float64, **kw):
    logits = torch.tensor([z], dtype=dtype, requires_grad=True)
    value = loss_fn(logits, torch.tensor([y]), **kw)
    value.backward()
    return float(value.detach()), logits.grad[0].double().numpy()


def assert_close(got, want, rtol):
    """Value and gradient within ``rtol``; gradients also within 1e-15 absolute, the
    rounding of ``p_y - 1`` in the fused cross-entropy backward when the smoothed max
    saturates (the same as for ``ce``)."""
    value, grad = got
    want_value, want_grad = want
    assert value == pytest.approx(want_value, rel=rtol, abs=rtol)
    atol = rtol * float(np.abs(want_grad).max()) + 1e-15
    np.testing.assert_allclose(grad, want_grad, rtol=rtol, atol=atol)


def test_issue_example_every_logit_below_minus_27():
    """Softplus normalisation is shift invariant in the limit z -> -inf: z and z + 25 agree."""
    y = torch.tensor([1])
    z = torch.tensor([[-30.0, -40.0, -35.0]])
    want = float(ldr_ref([-30.0, -40.0, -35.0], 1, 10.0, 0.1))
    assert want == pytest.approx(1.1711, abs=1e-4)
    loss_fn = LDRKLLoss(lam=10.0, margin=0.1)
    assert float(loss_fn(z, y)) == pytest.approx(want, rel=1e-5)
    assert float(loss_fn(z.double(), y)) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(("lam", "margin"), [(10.0, 0.1), (1.0, 0.1), (0.1, 0.5)])
@pytest.mark.parametrize("row", range(len(ROWS)))
def test_ldr_value_and_gradient_match_reference(row, lam, margin):
    z, y = ROWS[row], TARGETS[row]
    want = ref_value_and_grad(lambda v: ldr_ref(v, y, lam, margin), z)
    got = torch_value_and_grad(LDRKLLoss(lam=lam, margin=margin), z, y)
    assert_close(got, want, rtol=1e-9)


@pytest.mark.parametrize("softplus", [True, False])
@pytest.mark.parametrize("row", range(len(ROWS)))
def test_aldr_value_lambda_and_gradient_match_reference(row, softplus):
    z, y = ROWS[row], TARGETS[row]
    if not softplus and not any(z):
        pytest.skip("z / mean|z| has no value at z = 0")
    lam0, alpha, margin = 10.0, 2.0, 0.1
    lam = aldr_lambda_ref(z, lam0, lam0, alpha, softplus)
    want = ref_value_and_grad(lambda v: aldr_ref(v, y, lam, lam0, alpha, margin, softplus), z)
    loss_fn = ALDRKLLoss(num_samples=3, lam0=lam0, alpha=alpha, margin=margin, softplus=softplus)
    got = torch_value_and_grad(loss_fn, z, y, index=torch.tensor([2]))
    assert float(loss_fn.lam[2]) == pytest.approx(float(lam), rel=1e-10)
    assert_close(got, want, rtol=1e-9)


def test_batch_equals_rows():
    """The per-row values above, averaged, are the batch value (rows do not interact)."""
    loss_fn = LDRKLLoss(lam=10.0, margin=0.1)
    z = torch.tensor(ROWS, dtype=torch.float64)
    want = np.mean([float(ldr_ref(r, y, 10.0, 0.1)) for r, y in zip(ROWS, TARGETS, strict=True)])
    assert float(loss_fn(z, torch.tensor(TARGETS))) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_precision_is_close_and_finite(dtype):
    """float32 and bf16 logits (computed in float32): close to the reference, gradients finite."""
    lossy = {torch.float32: 1e-4, torch.bfloat16: 2e-2}[dtype]
    for loss_fn, index in (
        (LDRKLLoss(lam=10.0, margin=0.1), None),
        (LDRKLLoss(lam=0.1, margin=0.1), None),
        (ALDRKLLoss(num_samples=len(ROWS), softplus=True), torch.arange(len(ROWS))),
    ):
        for z, y in zip(ROWS, TARGETS, strict=True):
            rounded = [float(v) for v in torch.tensor(z).to(dtype).double()]
            kw = {} if index is None else {"index": torch.tensor([0])}
            value, grad = torch_value_and_grad(loss_fn, z, y, dtype=dtype, **kw)
            assert math.isfinite(value) and np.isfinite(grad).all(), (z, value, grad)
            if isinstance(loss_fn, LDRKLLoss):
                want = float(ldr_ref(rounded, y, loss_fn.lam, loss_fn.margin))
                assert value == pytest.approx(want, rel=lossy, abs=lossy)


def test_no_clamp_left_in_the_scores():
    """f = softplus(z) / mean softplus(z) has mean exactly 1 for any finite logits."""
    z = torch.tensor(ROWS, dtype=torch.float64)
    loss_fn = ALDRKLLoss(num_samples=1, softplus=True)
    f = loss_fn.scores(z)
    np.testing.assert_allclose(f.mean(dim=1).numpy(), 1.0, rtol=1e-13)
