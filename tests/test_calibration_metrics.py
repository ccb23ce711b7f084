"""Calibration metrics against torchmetrics, scikit-learn, torch and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from backends import needs_torch, torch
from thermoscope.calibration._nll import nll_derivatives
from thermoscope.calibration.metrics import (
    brier_score,
    calibration_summary,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _random_probs(rng: np.random.Generator, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of Gaussian logits at a random per-row scale, and uniform labels."""
    z = rng.normal(size=(n, c)) * rng.uniform(0.3, 4.0, size=(n, 1))
    return _softmax(z), rng.integers(0, c, size=n)


def _reference_ece(conf, hit, edges, norm):
    """Independent loop over bins: [e_k, e_{k+1}), last bin closed (Guo et al. 2017)."""
    n_bins = len(edges) - 1
    n = len(conf)
    gaps, weights = [], []
    for k in range(n_bins):
        lo, hi = edges[k], edges[k + 1]
        mask = (conf >= lo) & ((conf < hi) if k < n_bins - 1 else (conf <= hi))
        if mask.any():
            gaps.append(abs(hit[mask].mean() - conf[mask].mean()))
            weights.append(mask.sum() / n)
    gaps, weights = np.array(gaps), np.array(weights)
    if norm == "l1":
        return float(np.sum(weights * gaps))
    if norm == "l2":
        return float(np.sqrt(np.sum(weights * gaps**2)))
    return float(gaps.max())


# ---------------------------------------------------------------------------
# torchmetrics parity
# ---------------------------------------------------------------------------


def _torchmetrics_ce(probs: np.ndarray, labels: np.ndarray, n_bins: int, norm: str) -> float:
    from torchmetrics.functional.classification import multiclass_calibration_error

    return float(
        multiclass_calibration_error(
            torch.from_numpy(probs),
            torch.from_numpy(labels),
            num_classes=probs.shape[1],
            n_bins=n_bins,
            norm=norm,
        )
    )


def _grid_probs(rng: np.random.Generator, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 probabilities whose top entry is a multiple of 2**-8 (never 1.0).

    Per-bin sums of such confidences are exact even in float32, so torchmetrics'
    float32 accumulation adds no error and the comparison tests the binning and
    the formulas themselves at 1e-6.
    """
    probs, labels = _random_probs(rng, n, c)
    top = probs.argmax(axis=1)
    rows = np.arange(n)
    p_top = np.ceil(probs[rows, top] * 256) / 256
    keep = p_top < 1.0
    rest = probs.copy()
    rest[rows, top] = 0.0
    rest *= ((1.0 - p_top) / rest.sum(axis=1))[:, None]
    rest[rows, top] = p_top
    return rest[keep].astype(np.float32), labels[keep]


@needs_torch
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize(("n", "c"), [(1_000, 2), (10_000, 3), (100_000, 10), (20_000, 100)])
def test_ece_equals_torchmetrics(n: int, c: int, norm: str) -> None:
    probs, labels = _grid_probs(np.random.default_rng(n + c), n, c)
    for n_bins in (10, 15):
        expected = _torchmetrics_ce(probs, labels, n_bins, norm)
        got = expected_calibration_error(probs, labels, n_bins=n_bins, norm=norm)
        assert got == pytest.approx(expected, abs=1e-6)


@needs_torch
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize(("n", "c"), [(1_000, 2), (30_000, 5), (100_000, 10)])
def test_ece_equals_torchmetrics_on_float32_softmax(n: int, c: int, norm: str) -> None:
    # Generic float32 softmax output: the only difference left is torchmetrics'
    # float32 accumulation, ~1e-7 relative per sum, which a bin's gap can
    # amplify for the max norm (1.3e-6 seen at 1e5 samples); l1 and l2 average it.
    probs, labels = _random_probs(np.random.default_rng(7 * n + c), n, c)
    probs = probs.astype(np.float32)
    assert np.all(probs.max(axis=1) < 1.0)  # generic: no sample in torchmetrics' phantom bin
    tol = 5e-6 if norm == "max" else 1e-6
    expected = _torchmetrics_ce(probs, labels, 15, norm)
    assert expected_calibration_error(probs, labels, norm=norm) == pytest.approx(expected, abs=tol)


@needs_torch
def test_confidences_exactly_on_representable_edges_agree_with_torchmetrics() -> None:
    # k/8 is exact in float32 and float64: both libraries put an edge value in
    # the bin it opens, so they agree exactly.
    rng = np.random.default_rng(3)
    n, c = 4_000, 4
    top = rng.choice(np.arange(2, 8) / 8, size=n)  # 0.25 .. 0.875, all on edges of 8 bins
    rest = (1.0 - top) / (c - 1)
    probs = np.repeat(rest[:, None], c, axis=1)
    cls = rng.integers(0, c, size=n)
    probs[np.arange(n), cls] = top
    labels = np.where(rng.uniform(size=n) < top, cls, (cls + 1) % c)
    probs = probs.astype(np.float32)
    for norm in ("l1", "l2", "max"):
        expected = _torchmetrics_ce(probs, labels, 8, norm)
        got = expected_calibration_error(probs, labels, n_bins=8, norm=norm)
        assert got == pytest.approx(expected, abs=1e-6)
        conf = probs.max(axis=1).astype(np.float64)
        hit = (probs.argmax(axis=1) == labels).astype(float)
        assert got == pytest.approx(_reference_ece(conf, hit, np.arange(9) / 8, norm), abs=1e-12)


@needs_torch
def test_confidence_one_counts_in_last_bin_regression_torchmetrics_3510() -> None:
    # torchmetrics (issue 3510) counts conf == 1.0 in a hidden extra bin; here it
    # belongs to the last bin [14/15, 1], as in Guo et al. and np.histogram.
    probs = np.array([[0.95, 0.05], [1.0, 0.0], [0.96, 0.04], [1.0, 0.0]])
    labels = np.array([0, 1, 0, 0])
    curve = reliability_curve(probs, labels)
    assert curve.count[-1] == 4
    assert curve.count.sum() == 4
    assert curve.accuracy[-1] == pytest.approx(0.75)
    conf = probs.max(axis=1)
    hit = (probs.argmax(axis=1) == labels).astype(float)
    for norm in ("l1", "l2", "max"):
        ref = _reference_ece(conf, hit, np.arange(16) / 15, norm)
        assert expected_calibration_error(probs, labels, norm=norm) == pytest.approx(ref, abs=1e-15)
    # One bin holding everything: |0.75 - 0.9775| in every norm.
    assert expected_calibration_error(probs, labels) == pytest.approx(0.2275)


# ---------------------------------------------------------------------------
# Bin-edge convention
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 15, 20, 100])
def test_bin_edge_convention(n_bins: int) -> None:
    k = np.arange(n_bins + 1)
    on_edge = k / n_bins
    just_below = np.nextafter(on_edge[1:], -np.inf)
    values = np.concatenate([on_edge, just_below])
    expected = np.concatenate([np.minimum(k, n_bins - 1), k[1:] - 1])
    # 1-D input is P(y = 1): each value is its own confidence, binned as documented.
    counts = reliability_curve(values, np.ones(values.size, dtype=int), n_bins=n_bins).count
    assert counts.tolist() == np.bincount(expected, minlength=n_bins).tolist()
    for v, bin_ in zip(values, expected, strict=True):
        one = reliability_curve(np.array([v]), np.array([1]), n_bins=n_bins).count
        assert int(np.argmax(one)) == bin_, (v, bin_)


def test_one_fifteenth_falls_in_the_second_of_15_bins() -> None:
    assert reliability_curve([1 / 15], [1]).count.tolist() == [0, 1] + [0] * 13
    assert reliability_curve([np.nextafter(1 / 15, 0)], [1]).count[0] == 1
    assert reliability_curve([0.0], [0]).count[0] == 1
    assert reliability_curve([1.0], [1]).count[-1] == 1
    # 3/10 is exact here; np.linspace(0, 1, 11)[3] is one ulp above 0.3.
    assert reliability_curve([0.3], [1], n_bins=10).count[3] == 1


# ---------------------------------------------------------------------------
# scikit-learn parity: reliability curve, log loss, Brier
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_binary_reliability_curve_equals_sklearn(strategy: str, n_bins: int) -> None:
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(n_bins)
    # (N - 1) * k / n_bins is never whole for N - 1 = 1001 = 7 * 11 * 13: no data on edges.
    p = rng.beta(0.7, 0.7, size=1_002)
    y = (rng.uniform(size=p.size) < p**1.3).astype(int)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    curve = reliability_curve(p, y, n_bins=n_bins, strategy=strategy)
    np.testing.assert_allclose(curve.accuracy[curve.nonempty], prob_true, rtol=1e-14)
    np.testing.assert_allclose(curve.confidence[curve.nonempty], prob_pred, rtol=1e-14)
    assert curve.count.sum() == p.size
    assert np.all(np.isnan(curve.accuracy[~curve.nonempty]))


def test_sklearn_puts_edge_values_in_the_lower_bin_thermoscope_in_the_upper() -> None:
    # The documented divergence: sklearn searches with side="left".
    from sklearn.calibration import calibration_curve

    p, y = np.array([0.2, 0.5]), np.array([0, 1])
    _, sk_pred = calibration_curve(y, p, n_bins=2)
    curve = reliability_curve(p, y, n_bins=2)
    assert sk_pred.tolist() == [pytest.approx(0.35)]  # both in [0, 0.5]
    assert curve.count.tolist() == [1, 1]  # 0.5 opens [0.5, 1]


@needs_torch
@pytest.mark.parametrize("c", [2, 3, 10])
def test_nll_equals_sklearn_log_loss_and_torch(c: int) -> None:
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(c)
    z = rng.normal(size=(500, c)) * 3
    y = rng.integers(0, c, size=500)
    p = _softmax(z)
    expected = log_loss(y, y_proba=p, labels=np.arange(c))
    assert negative_log_likelihood(p, y) == pytest.approx(expected, rel=1e-12)
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(y)).item()
    assert negative_log_likelihood(z, y, from_logits=True) == pytest.approx(ce, rel=1e-12)


@needs_torch
def test_nll_binary_equals_sklearn_and_torch() -> None:
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    z = rng.normal(size=400) * 4
    y = rng.integers(0, 2, size=400)
    p = 1 / (1 + np.exp(-z))
    assert negative_log_likelihood(p, y) == pytest.approx(log_loss(y, y_proba=p), rel=1e-10)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(z), torch.from_numpy(y.astype(np.float64))
    ).item()
    assert negative_log_likelihood(z, y, from_logits=True) == pytest.approx(bce, rel=1e-12)


@needs_torch
def test_nll_from_extreme_logits_is_exact_where_softmax_underflows() -> None:
    z = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 5.0], [-1e4, -1e4, 1e4]])
    y = np.array([2, 1, 0])
    with np.errstate(under="ignore", divide="ignore"):
        naive = -np.log(_softmax(z)[np.arange(3), y])
    assert np.isinf(naive).any()  # the naive route breaks here
    ce = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(y)).item()
    got = negative_log_likelihood(z, y, from_logits=True)
    assert np.isfinite(got)
    assert got == pytest.approx(ce, rel=1e-12)
    assert got == pytest.approx((2e4 + 0.0 + 2e4) / 3, rel=1e-12)
    assert negative_log_likelihood(np.array([-1e4, 1e4]), np.array([1, 0]), from_logits=True) == (
        pytest.approx(1e4)
    )


def test_nll_of_zero_probability_on_true_label_is_inf() -> None:
    # Documented choice: no clipping. sklearn clips at float64 eps instead.
    from sklearn.metrics import log_loss

    p, y = np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([1, 0])
    assert negative_log_likelihood(p, y) == np.inf
    assert log_loss(y, y_proba=p) == pytest.approx((-np.log(np.finfo(float).eps) + np.log(2)) / 2)
    assert negative_log_likelihood(np.array([0.0]), np.array([1])) == np.inf


def test_nll_masked_logits() -> None:
    z = np.array([[0.0, -np.inf, 0.0], [1.0, 2.0, -np.inf]])
    assert negative_log_likelihood(z, [0, 1], from_logits=True) == pytest.approx(
        (np.log(2) + np.log1p(np.exp(-1.0))) / 2
    )
    assert negative_log_likelihood(z, [1, 1], from_logits=True) == np.inf


@pytest.mark.parametrize("c", [2, 3, 7])
def test_brier_equals_closed_form_and_sklearn(c: int) -> None:
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(c)
    p, y = _random_probs(rng, 300, c)
    closed = np.mean(np.sum((p - np.eye(c)[y]) ** 2, axis=1))
    assert brier_score(p, y) == pytest.approx(closed, rel=1e-13)
    sk = brier_score_loss(y, p, labels=np.arange(c), scale_by_half=False)
    assert brier_score(p, y) == pytest.approx(sk, rel=1e-12)
    z = np.log(p)
    assert brier_score(z, y, from_logits=True) == pytest.approx(closed, rel=1e-12)


def test_brier_binary_equals_sklearn_and_is_half_the_two_column_value() -> None:
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(5)
    p = rng.uniform(size=200)
    y = rng.integers(0, 2, size=200)
    assert brier_score(p, y) == pytest.approx(brier_score_loss(y, p), rel=1e-13)
    two = np.stack([1 - p, p], axis=1)
    assert brier_score(two, y) == pytest.approx(2 * brier_score(p, y), rel=1e-13)


# ---------------------------------------------------------------------------
# Class-wise ECE, strategies, logits, torch input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_classwise_ece_equals_per_class_loop(strategy: str, norm: str) -> None:
    rng = np.random.default_rng(11)
    c, n_bins = 4, 10
    p, y = _random_probs(rng, 2_001, c)
    per_class = []
    for k in range(c):
        pk = p[:, k]
        if strategy == "uniform":
            edges = np.arange(n_bins + 1) / n_bins
        else:
            edges = np.percentile(pk, np.linspace(0, 1, n_bins + 1) * 100)
        per_class.append(_reference_ece(pk, (y == k).astype(float), edges, norm))
    got = expected_calibration_error(
        p, y, n_bins=n_bins, strategy=strategy, norm=norm, classwise=True
    )
    assert got == pytest.approx(np.mean(per_class), rel=1e-12)


def test_quantile_top_label_equals_reference() -> None:
    rng = np.random.default_rng(2)
    p, y = _random_probs(rng, 1_001, 5)
    conf = p.max(axis=1)
    hit = (p.argmax(axis=1) == y).astype(float)
    edges = np.percentile(conf, np.linspace(0, 1, 8) * 100)
    for norm in ("l1", "l2", "max"):
        got = expected_calibration_error(p, y, n_bins=7, strategy="quantile", norm=norm)
        assert got == pytest.approx(_reference_ece(conf, hit, edges, norm), rel=1e-12)
    counts = reliability_curve(p, y, n_bins=7, strategy="quantile").count
    assert counts.max() - counts.min() <= 1  # equal mass


@needs_torch
def test_logits_and_torch_input_match_numpy_probabilities() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(700, 6)) * 2
    y = rng.integers(0, 6, size=700)
    p = _softmax(z)
    s_p = calibration_summary(p, y)
    s_z = calibration_summary(z, y, from_logits=True)
    s_t = calibration_summary(torch.from_numpy(z), torch.from_numpy(y), from_logits=True)
    for s in (s_z, s_t):
        for key, value in s_p.as_dict().items():
            assert s.as_dict()[key] == pytest.approx(value, rel=1e-12, abs=1e-15)
    assert maximum_calibration_error(p, y) == s_p.mce
    assert expected_calibration_error(p, y, norm="l2") == s_p.ece_l2
    assert brier_score(p, y) == pytest.approx(s_p.brier, rel=1e-13)
    assert negative_log_likelihood(p, y) == pytest.approx(s_p.nll, rel=1e-13)
    assert s_p.accuracy == np.mean(p.argmax(axis=1) == y)


@needs_torch
def test_binary_input_ece_equals_torchmetrics_binary() -> None:
    from torchmetrics.functional.classification import binary_calibration_error

    rng = np.random.default_rng(8)
    p = rng.uniform(0.001, 0.999, size=5_000).astype(np.float32)
    y = (rng.uniform(size=p.size) < p).astype(np.int64)
    for norm in ("l1", "l2", "max"):
        tm = binary_calibration_error(torch.from_numpy(p), torch.from_numpy(y), norm=norm).item()
        assert expected_calibration_error(p, y, norm=norm) == pytest.approx(tm, abs=1e-6)


# ---------------------------------------------------------------------------
# Invariants and a statistical test
# ---------------------------------------------------------------------------


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    c=st.integers(2, 8),
    n_bins=st.integers(1, 30),
    strategy=st.sampled_from(["uniform", "quantile"]),
    classwise=st.booleans(),
)
def test_ece_bounds_and_norm_order(
    seed: int, n: int, c: int, n_bins: int, strategy: str, classwise: bool
) -> None:
    rng = np.random.default_rng(seed)
    p, y = _random_probs(rng, n, c)
    kw = {"n_bins": n_bins, "strategy": strategy, "classwise": classwise}
    l1 = expected_calibration_error(p, y, **kw)
    l2 = expected_calibration_error(p, y, norm="l2", **kw)
    mx = maximum_calibration_error(p, y, **kw)
    assert 0.0 <= l1 <= 1.0
    assert 0.0 <= l2 <= 1.0
    assert 0.0 <= mx <= 1.0
    # Weighted means of gaps: l1 <= l2 <= max (power-mean inequality).
    assert l1 <= l2 + 1e-12
    assert l2 <= mx + 1e-12


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), c=st.integers(2, 6))
def test_summary_metrics_are_in_range(seed: int, n: int, c: int) -> None:
    rng = np.random.default_rng(seed)
    p, y = _random_probs(rng, n, c)
    s = calibration_summary(p, y)
    assert 0.0 <= s.brier <= 2.0
    assert s.nll >= 0.0
    assert 0.0 <= s.accuracy <= 1.0
    assert s.curve.count.sum() == n
    assert s.mce >= s.ece


def _calibration_chi2(p: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[float, int]:
    """Sum over bins of (correct - expected correct)^2 / variance; chi2 with one dof per bin."""
    conf = p.max(axis=1)
    hit = p.argmax(axis=1) == y
    curve = reliability_curve(p, y, n_bins=n_bins)
    idx = np.searchsorted(curve.edges[1:-1], conf, side="right")
    var = np.bincount(idx, weights=conf * (1 - conf), minlength=n_bins)
    diff = np.bincount(idx, weights=hit - conf, minlength=n_bins)
    used = var > 0
    return float(np.sum(diff[used] ** 2 / var[used])), int(used.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perfectly_calibrated_data_has_small_ece(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 50_000
    p, _ = _random_probs(rng, n, 5)
    # Labels drawn from the predicted distribution: calibrated by construction.
    y = (rng.uniform(size=(n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    y = np.minimum(y, 4)
    ece = expected_calibration_error(p, y)
    conf = p.max(axis=1)
    # Each bin's |correct - expected| has mean <= sqrt(var); 4x is a loose,
    # seed-independent bound of about 0.02 here.
    bound = 4 * np.sqrt(np.sum(conf * (1 - conf)) * 15) / n
    assert ece < bound
    chi2, dof = _calibration_chi2(p, y, 15)
    assert stats.chi2.sf(chi2, dof) > 1e-3
    # Power check: the same test flags overconfident labels drawn at T = 2.
    q = _softmax(np.log(p) / 2)
    y_hot = (rng.uniform(size=(n, 1)) > np.cumsum(q, axis=1)).sum(axis=1)
    chi2_bad, dof_bad = _calibration_chi2(p, np.minimum(y_hot, 4), 15)
    assert stats.chi2.sf(chi2_bad, dof_bad) < 1e-6
    assert expected_calibration_error(p, np.minimum(y_hot, 4)) > 5 * ece


# ---------------------------------------------------------------------------
# NLL derivatives in beta
# ---------------------------------------------------------------------------


@needs_torch
@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 2.5])
def test_nll_derivatives_equal_torch_autograd(beta: float) -> None:
    rng = np.random.default_rng(9)
    z = rng.normal(size=(200, 5)) * 3
    z[0, 2] = -np.inf  # a masked class
    y = rng.integers(0, 5, size=200)
    y[0] = 1
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)

    def nll(b):
        s = torch.where(torch.isfinite(zt), b * torch.nan_to_num(zt, neginf=0.0), -torch.inf)
        return torch.nn.functional.cross_entropy(s, yt, reduction="sum")

    b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    value = nll(b)
    (grad,) = torch.autograd.grad(value, b)
    hess = torch.autograd.functional.hessian(nll, torch.tensor(beta, dtype=torch.float64))
    d = nll_derivatives(z, y, beta)
    assert d.n == 200
    assert d.nll_sum == pytest.approx(value.item(), rel=1e-12)
    assert d.grad_sum == pytest.approx(grad.item(), rel=1e-10, abs=1e-10)
    assert d.hess_sum == pytest.approx(hess.item(), rel=1e-10)


def test_nll_derivatives_extreme_logits_and_binary() -> None:
    z = np.array([[1e4, 0.0], [0.0, 1e4]])
    d = nll_derivatives(z, [0, 0], beta=1.0)
    assert d.nll_sum == pytest.approx(1e4)
    assert d.grad_sum == pytest.approx(1e4)
    assert d.hess_sum == 0.0
    logodds = np.array([1.5, -0.5, 3.0])
    y = np.array([1, 1, 0])
    two = np.stack([np.zeros(3), logodds], axis=1)
    assert tuple(nll_derivatives(logodds, y, 0.7)) == pytest.approx(
        tuple(nll_derivatives(two, y, 0.7))
    )


@given(seed=st.integers(0, 2**32 - 1), beta=st.floats(1e-3, 10.0))
def test_nll_hessian_is_nonnegative_and_matches_finite_differences(seed: int, beta: float) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(20, 4)) * 2
    y = rng.integers(0, 4, size=20)
    d = nll_derivatives(z, y, beta)
    assert d.hess_sum >= 0.0
    h = 1e-6
    up, down = nll_derivatives(z, y, beta + h), nll_derivatives(z, y, beta - h)
    assert d.grad_sum == pytest.approx((up.nll_sum - down.nll_sum) / (2 * h), rel=1e-5, abs=1e-5)
    assert d.hess_sum == pytest.approx((up.grad_sum - down.grad_sum) / (2 * h), rel=1e-5, abs=1e-5)


# ---------------------------------------------------------------------------
# Bad input: exact exception type and the argument's name
# ---------------------------------------------------------------------------

_P = np.array([[0.7, 0.3], [0.4, 0.6]])
_Y = np.array([0, 1])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"labels": [0, 2]}, ValueError, r"`labels` must be class indices in \[0, 1\], got 2"),
        ({"labels": [-1, 0]}, ValueError, r"`labels` must be class indices in \[0, 1\], got -1"),
        (
            {"labels": [0.5, 1.0]},
            TypeError,
            r"`labels` must be integer class indices, got dtype float64 with value \[0.5",
        ),
        ({"labels": [True, False]}, TypeError, r"`labels` must be integer class indices"),
        ({"labels": ["a", "b"]}, TypeError, r"`labels` must be a numeric"),
        ({"labels": [0, 1, 1]}, ValueError, r"`labels` must have shape \(2,\)"),
        ({"labels": [[0, 1]]}, ValueError, r"`labels` must have shape \(2,\)"),
        ({"probs": [[0.7, np.nan], [0.4, 0.6]]}, ValueError, r"`probs` must be finite"),
        ({"probs": [[np.inf, 0.3], [0.4, 0.6]]}, ValueError, r"`probs` must be finite"),
        ({"probs": [[0.7, 0.2], [0.4, 0.6]]}, ValueError, r"`probs` must sum to 1"),
        ({"probs": [[1.2, -0.2], [0.4, 0.6]]}, ValueError, r"`probs` must lie in \[0, 1\]"),
        ({"probs": np.zeros((0, 2)), "labels": []}, ValueError, r"`probs` must not be empty"),
        ({"probs": [], "labels": []}, ValueError, r"`probs` must not be empty"),
        ({"probs": np.full((2, 2, 2), 0.5)}, ValueError, r"`probs` must be 1-D .* or 2-D"),
        ({"probs": [[1.0], [1.0]]}, ValueError, r"`probs` must have at least 2 classes"),
        ({"probs": [1.5, 0.2]}, ValueError, r"`probs` must lie in \[0, 1\]"),
        ({"probs": [np.nan, 0.2]}, ValueError, r"`probs` must be finite"),
        ({"probs": [["a", "b"]]}, TypeError, r"`probs` must be a numeric"),
        ({"from_logits": "yes"}, TypeError, r"`from_logits` must be True or False"),
    ],
)
@pytest.mark.parametrize(
    "func",
    [
        expected_calibration_error,
        maximum_calibration_error,
        brier_score,
        negative_log_likelihood,
        reliability_curve,
        calibration_summary,
    ],
)
def test_bad_input(func, kwargs, exc, match) -> None:
    args = {"probs": _P, "labels": _Y, **kwargs}
    with pytest.raises(exc, match=match):
        func(**args)


@pytest.mark.parametrize(
    ("probs", "exc", "match"),
    [
        ([[0.0, np.nan]], ValueError, r"`probs` must not contain NaN"),
        ([[0.0, np.inf]], ValueError, r"`probs` must be finite or -inf"),
        ([[-np.inf, -np.inf]], ValueError, r"`probs` must keep at least one finite entry"),
        ([np.inf], ValueError, r"`probs` must be finite log-odds"),
    ],
)
def test_bad_logits(probs, exc, match) -> None:
    with pytest.raises(exc, match=match):
        negative_log_likelihood(probs, [0], from_logits=True)
    with pytest.raises(exc, match=match):
        expected_calibration_error(probs, [0], from_logits=True)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_bins": 0}, ValueError, r"`n_bins` must be an integer >= 1, got 0"),
        ({"n_bins": -3}, ValueError, r"`n_bins` must be an integer >= 1, got -3"),
        ({"n_bins": 2.5}, TypeError, r"`n_bins` must be an integer >= 1, got 2.5"),
        ({"n_bins": True}, TypeError, r"`n_bins` must be an integer >= 1, got True"),
        ({"strategy": "equal"}, ValueError, r"`strategy` must be one of 'uniform', 'quantile'"),
        ({"norm": "l3"}, ValueError, r"`norm` must be one of 'l1', 'l2', 'max', got 'l3'"),
    ],
)
def test_bad_options(kwargs, exc, match) -> None:
    with pytest.raises(exc, match=match):
        expected_calibration_error(_P, _Y, **kwargs)
    if "norm" not in kwargs:
        with pytest.raises(exc, match=match):
            reliability_curve(_P, _Y, **kwargs)
        with pytest.raises(exc, match=match):
            calibration_summary(_P, _Y, **kwargs)


@pytest.mark.parametrize(
    ("beta", "exc", "match"),
    [
        (-1.0, ValueError, r"`beta` must be a finite number >= 0, got -1.0"),
        (np.inf, ValueError, r"`beta` must be a finite number >= 0, got inf"),
        (np.nan, ValueError, r"`beta` must be a finite number >= 0, got nan"),
        ("x", TypeError, r"`beta` must be a finite number >= 0, got 'x'"),
    ],
)
def test_bad_beta(beta, exc, match) -> None:
    with pytest.raises(exc, match=match):
        nll_derivatives([[1.0, 0.0]], [0], beta)


def test_nll_derivatives_bad_logits() -> None:
    with pytest.raises(ValueError, match=r"`logits` must not contain NaN"):
        nll_derivatives([[1.0, np.nan]], [0], 1.0)
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 1\], got 3"):
        nll_derivatives([[1.0, 0.0]], [3], 1.0)
    with pytest.raises(ValueError, match=r"`logits` must have at least 2 classes"):
        nll_derivatives([[1.0]], [0], 1.0)


# ---------------------------------------------------------------------------
# The fast path: blocked top-label scan, screened validation, bin by multiplying
# ---------------------------------------------------------------------------


def _with_ties(rng: np.random.Generator, probs: np.ndarray, labels: np.ndarray) -> None:
    """Give some rows of the first third a maximum shared by two columns, the label on either.

    The rest stays tie-free, so that both the tie-free blocks and the blocks
    with a tie are exercised.
    """
    n, c = probs.shape
    rows = rng.choice(n // 3, size=max(1, n // 100), replace=False)
    first = rng.integers(0, c - 1, size=rows.size)
    second = first + 1 + (rng.integers(0, c, size=rows.size) % (c - 1 - first))
    probs[rows] = 0.1 / (c - 2) if c > 2 else 0.0
    probs[rows, first] = 0.45 if c > 2 else 0.5
    probs[rows, second] = probs[rows, first]
    labels[rows] = np.where(rng.uniform(size=rows.size) < 0.5, first, second)


def _layouts(probs: np.ndarray) -> dict[str, np.ndarray]:
    """The same matrix C-ordered, F-ordered, as a strided column view and 4 bytes off alignment."""
    n, c = probs.shape
    wide = np.zeros((n, c + 1), dtype=probs.dtype)
    wide[:, :c] = probs
    raw = np.zeros(probs.nbytes + probs.itemsize, dtype=np.uint8)
    shifted = raw[4 : 4 + probs.nbytes].view(probs.dtype).reshape(n, c)
    shifted[...] = probs
    return {
        "C": probs,
        "F": np.asfortranarray(probs),
        "strided": wide[:, :c],
        "unaligned": shifted,
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("n", "c"), [(20_001, 2), (20_000, 3), (20_003, 10), (9_001, 16), (5_000, 17), (3_001, 100)]
)
def test_blocked_top_label_equals_argmax(dtype: type, n: int, c: int) -> None:
    # Several blocks, a shorter last one, rows with tied maxima (the first
    # maximum is the prediction, as numpy's argmax picks it), and memory layouts
    # that take the paired (8-byte) and the plain transposition.
    rng = np.random.default_rng(n + c)
    probs, labels = _random_probs(rng, n, c)
    labels = np.where(rng.uniform(size=n) < 0.5, probs.argmax(axis=1), labels)  # many hits
    _with_ties(rng, probs, labels)
    probs = probs.astype(dtype)
    conf = probs.max(axis=1).astype(np.float64)
    hit = probs.argmax(axis=1) == labels
    assert np.count_nonzero(probs == probs.max(axis=1, keepdims=True)) > n  # ties present
    for name, p in _layouts(probs).items():
        s = calibration_summary(p, labels, n_bins=15)
        assert s.accuracy == np.mean(hit), name
        np.testing.assert_array_equal(
            s.curve.count, np.bincount(np.minimum((conf * 15).astype(int), 14), minlength=15)
        )
        for norm in ("l1", "l2", "max"):
            ref = _reference_ece(conf, hit.astype(float), np.arange(16) / 15, norm)
            got = expected_calibration_error(p, labels, norm=norm)
            assert got == pytest.approx(ref, rel=1e-12, abs=1e-15), (name, norm)


def test_blocked_top_label_from_logits_with_ties() -> None:
    rng = np.random.default_rng(11)
    z = rng.normal(size=(30_000, 6))
    z[::7, 4] = z[::7, 1] = z[::7].max(axis=1) + 1.0  # tied top logits: class 1 is predicted
    labels = rng.integers(0, 6, size=z.shape[0])
    labels[::14] = 4
    s = calibration_summary(z, labels, from_logits=True)
    assert s.accuracy == np.mean(z.argmax(axis=1) == labels)


def _row_with_sum(total: float, c: int, dtype: type) -> np.ndarray:
    row = np.full(c, 1.0 / c, dtype=dtype)
    row[-1] = dtype(total - float(row[:-1].sum(dtype=np.float64)))
    return row


@pytest.mark.parametrize(("c", "dtype"), [(10, np.float32), (100, np.float32), (5, np.float64)])
def test_row_sum_screen_keeps_check_probabilities_tolerance(c: int, dtype: type) -> None:
    # check_probabilities accepts |sum - 1| <= tol; the fast screen leaves a
    # safety margin below tol and hands rows in that margin to the exact check.
    # Rows just inside tol must pass and rows just outside must fail, wherever
    # in the data they sit, exactly as before the fast path.
    eps = float(np.finfo(dtype).eps)
    tol = eps + 1e-6 * max(1.0, np.sqrt(c))
    rng = np.random.default_rng(c)
    base, labels = _random_probs(rng, 25_000, c)
    base = base.astype(dtype)
    for where in (0, 12_345, 24_999):
        for offset, ok in ((0.8 * tol, True), (-0.8 * tol, True), (1.6 * tol, False)):
            probs = base.copy()
            probs[where] = _row_with_sum(1.0 + offset, c, dtype)
            total = float(probs[where].sum())  # numpy's own sum, as check_probabilities takes it
            assert (abs(total - 1.0) <= tol) == ok
            if ok:
                expected_calibration_error(probs, labels)
            else:
                with pytest.raises(ValueError, match=r"`probs` must sum to 1 along axis 1"):
                    expected_calibration_error(probs, labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([np.nan], r"`probs` must be finite probabilities, got NaN or inf\."),
        ([np.inf], r"`probs` must be finite probabilities, got NaN or inf\."),
        ([np.inf, -np.inf], r"`probs` must be finite probabilities, got NaN or inf\."),
        ([-0.25, 1.25], r"`probs` must lie in \[0, 1\], got .*-0\.25"),
        ([1.5, -0.5], r"`probs` must lie in \[0, 1\], got .*1\.5"),
        ([3e38, 3e38], r"`probs` must lie in \[0, 1\], got .*3e\+38"),
    ],
)
def test_bad_entries_in_any_block_give_the_documented_error(
    dtype: type, bad: list, match: str
) -> None:
    # No floating-point warning may escape the screen either (warnings are errors here).
    rng = np.random.default_rng(5)
    base, labels = _random_probs(rng, 20_000, 4)
    for row in (0, 9_999, 19_999):
        probs = base.astype(dtype)
        probs[row, : len(bad)] = bad
        with pytest.raises(ValueError, match=match):
            expected_calibration_error(probs, labels)
        with pytest.raises(ValueError, match=match):
            calibration_summary(probs, labels)


def _edge_values(n_bins: int) -> np.ndarray:
    """Every edge k / n_bins, its float64 neighbours, and float32 values around it."""
    on = np.arange(n_bins + 1) / n_bins
    f32 = on.astype(np.float32).astype(np.float64)
    values = np.concatenate(
        [
            on,
            np.nextafter(on, -1.0),
            np.nextafter(on, 2.0),
            f32,
            np.nextafter(on.astype(np.float32), np.float32(-1)).astype(np.float64),
            np.nextafter(on.astype(np.float32), np.float32(2)).astype(np.float64),
        ]
    )
    return values[(values >= 0) & (values <= 1)]


@pytest.mark.parametrize("n_bins", [*range(1, 40), 97, 100, 128, 1000, 4097])
def test_uniform_bin_index_equals_searchsorted_on_and_around_every_edge(n_bins: int) -> None:
    from thermoscope.calibration._binning import uniform_bin_index, uniform_edges

    inner = uniform_edges(n_bins)[1:-1]
    values = _edge_values(n_bins)
    expected = np.searchsorted(inner, values, side="right")
    np.testing.assert_array_equal(uniform_bin_index(values, n_bins), expected)
    as32 = values.astype(np.float32)
    expected32 = np.searchsorted(inner, as32.astype(np.float64), side="right")
    np.testing.assert_array_equal(uniform_bin_index(as32, n_bins), expected32)


@given(
    values=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50),
    n_bins=st.integers(1, 10_000),
)
def test_uniform_bin_index_property(values: list[float], n_bins: int) -> None:
    from thermoscope.calibration._binning import bin_index, uniform_bin_index, uniform_edges

    v = np.array(values)
    edges = uniform_edges(n_bins)
    expected = np.searchsorted(edges[1:-1], v, side="right")
    np.testing.assert_array_equal(uniform_bin_index(v, n_bins), expected)
    np.testing.assert_array_equal(bin_index(v, edges), expected)
    v32 = v.astype(np.float32)
    expected32 = np.searchsorted(edges[1:-1], v32.astype(np.float64), side="right")
    np.testing.assert_array_equal(uniform_bin_index(v32, n_bins), expected32)
