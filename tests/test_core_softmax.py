"""softmax, log_softmax and reweight against independent references.

References come from scipy.special (float64), mpmath at 50 digits and closed
forms; never from thermoscope itself.
"""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.special as sc

import thermoscope
from backends import needs_torch, torch
from thermoscope.core import log_softmax, reweight, softmax

# Any RuntimeWarning escaping from thermoscope is a bug: turn warnings into errors.
pytestmark = pytest.mark.filterwarnings("error")

TEMPERATURES = [1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 10.0, 1e3, 1e6]


# ------------------------------------------------------------------------- references
def mp_log_softmax(z, t) -> list:
    """log softmax(z / t) in 50-digit arithmetic; -inf entries are masked."""
    with mpmath.workdps(50):  # local precision: never change mpmath's global state
        zs = [mpmath.mpf(float(v)) if np.isfinite(v) else None for v in z]
        t = mpmath.mpf(float(t))
        scaled = [v / t for v in zs if v is not None]
        m = max(scaled)
        lse = m + mpmath.log(mpmath.fsum(mpmath.exp(s - m) for s in scaled))
        return [(v / t - lse) if v is not None else -mpmath.inf for v in zs]


def mp_softmax(z, t) -> np.ndarray:
    with mpmath.workdps(50):
        return np.array([float(mpmath.exp(v)) for v in mp_log_softmax(z, t)])


def mp_log_softmax_f(z, t) -> np.ndarray:
    return np.array([float(v) for v in mp_log_softmax(z, t)])


def scipy_softmax(z, t, axis=-1) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    return sc.softmax(z / t, axis=axis)


# ------------------------------------------------------------------------- API surface
def test_public_api_reexports_core():
    import thermoscope.core as core

    for name in [
        "softmax",
        "log_softmax",
        "reweight",
        "entropy",
        "perplexity",
        "max_probability",
        "temperature_for_entropy",
        "free_energy",
        "effective_temperature",
    ]:
        assert getattr(thermoscope, name) is getattr(core, name)
        assert name in thermoscope.__all__


@pytest.mark.parametrize("heavy", ["torch", "scipy.optimize", "scipy.special", "scipy.stats"])
def test_import_thermoscope_does_not_import_heavy_modules(heavy):
    # scipy.special and scipy.optimize each cost about 0.2 s to import: they load
    # on first use, so `import thermoscope` stays a small addition to numpy's.
    code = f"import sys, thermoscope, thermoscope.core; assert {heavy!r} not in sys.modules"
    env_path = str(Path(__file__).resolve().parents[1] / "src")
    res = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r}); {code}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr


# ------------------------------------------------------------------------- basic values
@pytest.mark.parametrize("t", TEMPERATURES)
def test_softmax_matches_scipy_random(t):
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(7, 11))
    np.testing.assert_allclose(softmax(z, t), scipy_softmax(z, t), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(
        log_softmax(z, t), sc.log_softmax(z / t, axis=-1), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_softmax_axis_argument(axis):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3, 4, 5))
    np.testing.assert_allclose(
        softmax(z, 0.7, axis=axis), scipy_softmax(z, 0.7, axis=axis), rtol=1e-12
    )
    np.testing.assert_allclose(
        log_softmax(z, 0.7, axis=axis), sc.log_softmax(z / 0.7, axis=axis), rtol=1e-12, atol=1e-12
    )
    assert softmax(z, 0.7, axis=axis).shape == z.shape


def test_default_temperature_is_one():
    z = np.array([0.3, -1.2, 2.5, 0.0])
    np.testing.assert_allclose(softmax(z), sc.softmax(z), rtol=1e-14)
    np.testing.assert_allclose(log_softmax(z), sc.log_softmax(z), rtol=1e-14)


def test_two_class_closed_form_is_sigmoid():
    # softmax([a, b], T)[0] = sigmoid((a - b) / T)
    for a, b, t in [(2.0, -1.0, 0.3), (5.0, 5.5, 4.0), (-30.0, 10.0, 7.0)]:
        p = softmax([a, b], t)
        assert p[0] == pytest.approx(sc.expit((a - b) / t), rel=1e-13)
        lp = log_softmax([a, b], t)
        assert lp[1] == pytest.approx(-np.logaddexp(0.0, (a - b) / t), rel=1e-13)


def test_log_softmax_is_computed_directly_not_as_log_of_softmax():
    # softmax underflows to 0 for the second entry; log_softmax must stay finite.
    lp = log_softmax([0.0, -1000.0])
    assert lp[1] == pytest.approx(-1000.0, rel=1e-15)
    lp = log_softmax([1.0, 0.0], 1e-4)
    assert lp[1] == pytest.approx(-1e4, rel=1e-12)
    assert lp[0] == 0.0 or abs(lp[0]) < 1e-300


def test_exp_log_softmax_equals_softmax():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=5, size=(4, 9))
    for t in [0.05, 1.0, 20.0]:
        np.testing.assert_allclose(
            np.exp(log_softmax(z, t)), softmax(z, t), rtol=1e-12, atol=1e-300
        )


def test_input_is_not_modified():
    z = np.array([[1.0, 2.0, -np.inf], [0.5, 0.5, 3.0]])
    before = z.copy()
    softmax(z, 0.3)
    log_softmax(z, 0.0)
    softmax(z, np.inf)
    np.testing.assert_array_equal(z, before)
    p = np.array([0.2, 0.0, 0.8])
    reweight(p, 0.5)
    np.testing.assert_array_equal(p, [0.2, 0.0, 0.8])


@pytest.mark.parametrize("t", [1.0, np.float32(0.5), np.float64(2.0), np.array(0.5), 3])
def test_scalar_temperature_kinds(t):
    z = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(softmax(z, t), scipy_softmax(z, float(t)), rtol=1e-12)


# ------------------------------------------------------------------------- stability matrix
STABILITY_LOGITS = [
    [1e4, -1e4, 0.0],
    [1e4, 1e4 - 1.0, -1e4],
    [-1e4, -1e4 + 0.5, -1e4 + 2.0],
    [0.0, 1e-3, -1e-3],
    [1e4, -1e4, 0.0, -np.inf],
]


@pytest.mark.parametrize("z", STABILITY_LOGITS, ids=lambda z: str(z))
@pytest.mark.parametrize("t", [1e-6, 1e-2, 1.0, 1e2, 1e6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stability_matrix(z, t, dtype):
    x = np.asarray(z, dtype=dtype)
    p = softmax(x, t)
    lp = log_softmax(x, t)
    assert p.dtype == dtype
    assert lp.dtype == dtype
    finite = np.isfinite(x)
    assert np.all(np.isfinite(p))
    assert np.all(np.isfinite(lp[finite]))
    assert np.all(lp[~finite] == -np.inf)
    assert np.all(p[~finite] == 0)
    assert float(np.sum(p, dtype=np.float64)) == pytest.approx(
        1.0, abs=4 * float(np.finfo(dtype).eps)
    )
    # reference from the (already rounded) input at 50 digits
    ref = mp_softmax(x.astype(np.float64), t)
    ref_log = mp_log_softmax_f(x.astype(np.float64), t)
    eps = float(np.finfo(dtype).eps)
    # p = exp(log p): an absolute error eps * |log p| in the exponent is a relative
    # error of the same size in p, so the allowed error grows with |log p|.
    with np.errstate(invalid="ignore"):
        cond = 1.0 + np.abs(np.where(finite, ref_log, 0.0))
    err = np.abs(p.astype(np.float64) - ref)
    assert np.all(err <= 8 * eps * cond * ref + 4 * float(np.finfo(dtype).tiny)), (p, ref)
    np.testing.assert_allclose(lp[finite], ref_log[finite], rtol=8 * eps, atol=8 * eps)


@pytest.mark.parametrize(
    ("z", "t", "dtype"),
    [
        ([1e300, -1e300, 0.0], 1e-10, np.float64),
        ([1.7e308, 0.0, -1.7e308], 1.0, np.float64),
        ([1e38, -1e38, 0.0], 0.5, np.float32),
        ([3e38, 2e38, -3e38], 1e-6, np.float32),
        ([1.0, 0.0, 0.5], 1e-320, np.float64),  # subnormal T: 1/T overflows
    ],
)
def test_extreme_range_is_one_hot(z, t, dtype):
    """Finite logits and a valid T must never produce NaN, even when z / T overflows."""
    x = np.asarray(z, dtype=dtype)
    # No NaN, and no stray RuntimeWarning leaking to the caller either.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = softmax(x, t)
        lp = log_softmax(x, t)
    assert p.dtype == dtype
    assert lp.dtype == dtype
    np.testing.assert_array_equal(p, np.array([1.0, 0.0, 0.0], dtype=dtype))
    assert lp[0] == 0.0
    assert np.all(lp[1:] < -1e30)  # -inf allowed where the true value is not representable


def test_large_temperature_close_differences():
    # z / T differences of ~1e-10: softmax must not lose them to a bad subtraction
    z = np.array([1e4, 1e4 + 1.0, 1e4 - 1.0])
    t = 1e10
    np.testing.assert_allclose(softmax(z, t), mp_softmax(z, t), rtol=1e-14)
    np.testing.assert_allclose(log_softmax(z, t), mp_log_softmax_f(z, t), rtol=1e-14)


# ------------------------------------------------------------------------- dtypes
def test_integer_logits_give_float64():
    z = np.array([3, 1, 2], dtype=np.int32)
    p = softmax(z, 0.5)
    assert isinstance(p, np.ndarray)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, scipy_softmax([3.0, 1.0, 2.0], 0.5), rtol=1e-14)
    assert log_softmax(np.array([3, 1, 2], dtype=np.int64)).dtype == np.float64


def test_list_input_returns_numpy_float64():
    p = softmax([1, 2, 3], 2.0)
    assert isinstance(p, np.ndarray)
    assert p.dtype == np.float64
    np.testing.assert_allclose(p, scipy_softmax([1.0, 2.0, 3.0], 2.0), rtol=1e-14)
    lp = log_softmax([[1.0, 2.0], [0.0, -1.0]])
    assert isinstance(lp, np.ndarray)
    assert lp.shape == (2, 2)


def test_float16_numpy_in_float16_out_computed_in_float32():
    # In float16, 100 / 0.01 = 1e4 but 200 / 0.01 overflows (max 65504).
    x = np.array([200.0, 199.0, 0.0], dtype=np.float16)
    p = softmax(x, 0.01)
    assert p.dtype == np.float16
    np.testing.assert_array_equal(p, np.array([1.0, 0.0, 0.0], dtype=np.float16))
    lp = log_softmax(x, 0.01)
    assert lp.dtype == np.float16
    np.testing.assert_allclose(lp.astype(np.float64), [0.0, -100.0, -20000.0], rtol=1e-3)
    # ordinary values agree with a float32/64 reference to float16 accuracy
    y = np.array([1.5, -0.25, 3.0, 0.0], dtype=np.float16)
    np.testing.assert_allclose(
        softmax(y, 0.7).astype(np.float64), scipy_softmax(y.astype(np.float64), 0.7), atol=1e-3
    )


def test_float16_log_softmax_values():
    y = np.array([1.5, -0.25, 3.0, 0.0], dtype=np.float16)
    lp = log_softmax(y, 0.7)
    assert lp.dtype == np.float16
    np.testing.assert_allclose(
        lp.astype(np.float64), sc.log_softmax(y.astype(np.float64) / 0.7), rtol=2e-3, atol=2e-3
    )


# ------------------------------------------------------------------------- T = 0 and T -> 0
def test_zero_temperature_unique_max_is_one_hot():
    z = np.array([0.3, 2.0, -1.0, 1.999])
    np.testing.assert_array_equal(softmax(z, 0.0), [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(softmax(z, 0), [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(log_softmax(z, 0.0), [-np.inf, 0.0, -np.inf, -np.inf])


def test_zero_temperature_ties_are_uniform_over_ties():
    z = np.array([1.0, 3.0, 3.0, 0.0, 3.0])
    np.testing.assert_allclose(softmax(z, 0.0), [0, 1 / 3, 1 / 3, 0, 1 / 3], rtol=1e-15)
    lp = log_softmax(z, 0.0)
    np.testing.assert_allclose(lp[[1, 2, 4]], np.log(1 / 3), rtol=1e-15)
    assert np.all(lp[[0, 3]] == -np.inf)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_zero_temperature_keeps_dtype_and_masks(dtype):
    z = np.array([-np.inf, 5.0, 5.0, -np.inf, 4.0], dtype=dtype)
    p = softmax(z, 0.0)
    assert p.dtype == dtype
    np.testing.assert_array_equal(p, np.array([0, 0.5, 0.5, 0, 0], dtype=dtype))


def test_temperature_to_zero_approaches_the_zero_limit():
    z = np.array([0.5, 2.0, 1.0, 1.9])
    limit = softmax(z, 0.0)
    # 0.1 / T gap: the runner-up gets exp(-0.1/T)
    for t in [1e-2, 1e-3, 1e-4]:
        p = softmax(z, t)
        assert np.max(np.abs(p - limit)) <= 2 * np.exp(-0.1 / t) + 1e-15
    np.testing.assert_array_equal(softmax(z, 1e-5), limit)


def test_temperature_to_zero_with_ties_approaches_uniform_over_ties():
    z = np.array([2.0, 2.0, 1.0])
    np.testing.assert_allclose(softmax(z, 1e-3), [0.5, 0.5, 0.0], atol=1e-300)
    np.testing.assert_allclose(softmax(z, 1e-3), softmax(z, 0.0), atol=1e-300)
    np.testing.assert_allclose(log_softmax(z, 1e-3)[:2], np.log(0.5), rtol=1e-14)


# ------------------------------------------------------------------------- T = inf and T -> inf
def test_infinite_temperature_is_uniform_over_finite_entries():
    z = np.array([1.0, -np.inf, 5e3, -2.0])
    np.testing.assert_allclose(softmax(z, np.inf), [1 / 3, 0, 1 / 3, 1 / 3], rtol=1e-15)
    assert softmax(z, np.inf)[1] == 0.0
    lp = log_softmax(z, float("inf"))
    np.testing.assert_allclose(lp[[0, 2, 3]], -np.log(3), rtol=1e-15)
    assert lp[1] == -np.inf


def test_large_temperature_approaches_uniform():
    z = np.array([3.0, -1.0, 0.5, 2.0])
    for t in [1e3, 1e6, 1e12]:
        # |p_i - 1/K| <= spread / T to first order
        assert np.max(np.abs(softmax(z, t) - 0.25)) <= 4.0 / t
    np.testing.assert_allclose(softmax(z, 1e300), np.full(4, 0.25), rtol=1e-15)


# ------------------------------------------------------------------------- masking
@pytest.mark.parametrize("t", [0.0, 1e-6, 0.5, 1.0, 1e6, np.inf])
def test_masked_entries_are_exactly_zero(t):
    z = np.array([[-np.inf, 2.0, 1.0, -np.inf], [0.0, -np.inf, -np.inf, -np.inf]])
    p = softmax(z, t)
    lp = log_softmax(z, t)
    mask = np.isneginf(z)
    assert np.all(p[mask] == 0.0)
    assert np.all(lp[mask] == -np.inf)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-15)
    # the single surviving entry of row 2 is certain
    assert p[1, 0] == 1.0
    assert lp[1, 0] == 0.0
    # masked entries do not change the others
    if 0 < t < np.inf:
        np.testing.assert_allclose(p[0, 1:3], scipy_softmax([2.0, 1.0], t), rtol=1e-12, atol=1e-300)


# ------------------------------------------------------------------------- per-row temperature
def test_per_row_temperature_2d():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 6))
    t = np.array([0.1, 1.0, 7.0, 0.5])
    p = softmax(z, t)
    lp = log_softmax(z, t)
    for i in range(4):
        np.testing.assert_allclose(p[i], scipy_softmax(z[i], t[i]), rtol=1e-12)
        np.testing.assert_allclose(lp[i], sc.log_softmax(z[i] / t[i]), rtol=1e-12, atol=1e-12)


def test_per_row_temperature_with_zero_and_inf():
    z = np.array([[1.0, 3.0, 2.0], [3.0, 3.0, 1.0], [0.0, -np.inf, 5.0], [1.0, 2.0, 4.0]])
    t = np.array([0.0, 0.0, np.inf, 1.0])
    p = softmax(z, t)
    np.testing.assert_array_equal(p[0], [0, 1, 0])
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0], rtol=1e-15)
    np.testing.assert_allclose(p[2], [0.5, 0, 0.5], rtol=1e-15)
    np.testing.assert_allclose(p[3], sc.softmax(z[3]), rtol=1e-13)


def test_per_row_temperature_axis0():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(5, 3))  # distributions along axis 0, 3 "rows"
    t = np.array([0.2, 1.0, 3.0])
    p = softmax(z, t, axis=0)
    for j in range(3):
        np.testing.assert_allclose(p[:, j], scipy_softmax(z[:, j], t[j]), rtol=1e-12)


def test_per_row_temperature_3d_middle_axis():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(2, 5, 3))
    t = rng.uniform(0.1, 3.0, size=(2, 3))  # shape with axis 1 removed
    p = softmax(z, t, axis=1)
    for a in range(2):
        for c in range(3):
            np.testing.assert_allclose(p[a, :, c], scipy_softmax(z[a, :, c], t[a, c]), rtol=1e-12)


# ------------------------------------------------------------------------- torch
@needs_torch
@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "float16", "bfloat16"], ids=lambda d: f"torch.{d}"
)
def test_torch_tensor_in_tensor_out(dtype):
    tdtype = getattr(torch, dtype)
    z = torch.tensor([[2.0, 1.0, 0.5, -1.0], [0.0, 0.0, 3.0, -np.inf]], dtype=tdtype)
    t = 0.7
    p = softmax(z, t)
    lp = log_softmax(z, t)
    assert isinstance(p, torch.Tensor)
    assert isinstance(lp, torch.Tensor)
    assert p.dtype == tdtype
    assert lp.dtype == tdtype
    ref = torch.softmax(z.to(torch.float64) / t, dim=-1)
    ref_log = torch.log_softmax(z.to(torch.float64) / t, dim=-1)
    tol = {"float32": 1e-6, "float64": 1e-13, "float16": 2e-3, "bfloat16": 1.6e-2}[dtype]
    torch.testing.assert_close(p.to(torch.float64), ref, rtol=tol, atol=tol)
    finite = torch.isfinite(z)
    torch.testing.assert_close(lp.to(torch.float64)[finite], ref_log[finite], rtol=tol, atol=tol)
    assert p[1, 3].item() == 0.0
    assert lp[1, 3].item() == -np.inf


@needs_torch
def test_torch_matches_numpy_float64():
    rng = np.random.default_rng(6)
    z = rng.normal(scale=4, size=(3, 8))
    t = np.array([0.3, 1.0, 5.0])
    np.testing.assert_allclose(softmax(torch.from_numpy(z), t).numpy(), softmax(z, t), rtol=1e-15)
    np.testing.assert_allclose(
        log_softmax(torch.from_numpy(z), 2.0).numpy(), log_softmax(z, 2.0), rtol=1e-15
    )


@needs_torch
def test_torch_integer_tensor_gives_float64():
    p = softmax(torch.tensor([1, 2, 3]), 1.0)
    assert isinstance(p, torch.Tensor)
    assert p.dtype == torch.float64
    np.testing.assert_allclose(p.numpy(), sc.softmax([1.0, 2.0, 3.0]), rtol=1e-14)


@needs_torch
def test_torch_requires_grad_input_is_accepted():
    z = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    p = softmax(z, 2.0)
    np.testing.assert_allclose(p.detach().numpy(), scipy_softmax([1.0, 2.0, 3.0], 2.0), rtol=1e-6)


# ------------------------------------------------------------------------- reweight
def test_reweight_matches_softmax_of_log_probs():
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(8), size=5)
    for t in [0.0, 0.1, 0.5, 1.0, 3.0, np.inf]:
        with np.errstate(divide="ignore"):
            ref = softmax(np.log(p), t)
        np.testing.assert_allclose(reweight(p, t), ref, rtol=1e-12, atol=1e-300)


def test_reweight_closed_form_power():
    rng = np.random.default_rng(8)
    p = rng.dirichlet(np.ones(6))
    for t in [0.25, 0.5, 2.0, 4.0]:
        q = p ** (1 / t)
        np.testing.assert_allclose(reweight(p, t), q / q.sum(), rtol=1e-12)


def test_reweight_with_zeros_keeps_them_zero():
    p = np.array([0.0, 0.5, 0.0, 0.3, 0.2])
    for t in [0.0, 1e-3, 0.5, 1.0, 10.0, 1e6, np.inf]:
        q = reweight(p, t)
        assert np.all(q[[0, 2]] == 0.0)
        assert q.sum() == pytest.approx(1.0, abs=1e-15)
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(q, softmax(np.log(p), t), rtol=1e-12, atol=1e-300)
    # T = inf: uniform over the non-zero probabilities
    np.testing.assert_allclose(reweight(p, np.inf), [0, 1 / 3, 0, 1 / 3, 1 / 3], rtol=1e-15)


def test_reweight_identity_at_t1():
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(10))
    np.testing.assert_allclose(reweight(p, 1.0), p, rtol=1e-13)


def test_reweight_zero_temperature_is_uniform_over_maximal_probabilities():
    np.testing.assert_array_equal(reweight([0.2, 0.5, 0.3], 0.0), [0, 1, 0])
    np.testing.assert_allclose(reweight([0.4, 0.2, 0.4, 0.0], 0.0), [0.5, 0, 0.5, 0], rtol=1e-15)


def test_reweight_is_computed_in_log_space():
    # 0.5 ** 10000 underflows to 0 in a naive power: 0/0.
    np.testing.assert_allclose(reweight([0.5, 0.5], 1e-4), [0.5, 0.5], rtol=1e-15)
    # (2/3) ** 1000 ~ 1e-176 survives in log space (0.4 ** 1000 underflows).
    q = reweight([0.6, 0.4], 1e-3)
    assert q[1] == pytest.approx(float(mpmath.mpf(2) ** 1000 / mpmath.mpf(3) ** 1000), rel=1e-9)
    assert q[0] == 1.0


def test_reweight_dtype_and_kinds():
    p32 = np.array([0.25, 0.75], dtype=np.float32)
    assert reweight(p32, 0.5).dtype == np.float32
    q = reweight([0.25, 0.75], 0.5)
    assert isinstance(q, np.ndarray)
    assert q.dtype == np.float64
    np.testing.assert_allclose(q, [0.1, 0.9], rtol=1e-14)  # 1/16 : 9/16


@needs_torch
def test_reweight_of_a_tensor_is_a_tensor_of_its_dtype():
    tq = reweight(torch.tensor([0.25, 0.75], dtype=torch.float64), 0.5)
    assert isinstance(tq, torch.Tensor)
    assert tq.dtype == torch.float64
    np.testing.assert_allclose(tq.numpy(), [0.1, 0.9], rtol=1e-14)


def test_reweight_axis_and_per_row_temperature():
    rng = np.random.default_rng(10)
    p = rng.dirichlet(np.ones(4), size=3).T  # distributions along axis 0
    t = np.array([0.5, 1.0, 2.0])
    q = reweight(p, t, axis=0)
    for j in range(3):
        r = p[:, j] ** (1 / t[j])
        np.testing.assert_allclose(q[:, j], r / r.sum(), rtol=1e-12)


# -------------------------------------------------------------------------- small edge cases
@pytest.mark.parametrize("t", [0.0, 1e-300, 1.0, 1e300, np.inf])
def test_single_entry_is_certain(t):
    np.testing.assert_array_equal(softmax([[5.0], [-3.0]], t), [[1.0], [1.0]])
    np.testing.assert_array_equal(log_softmax([7.0], t), [0.0])
    np.testing.assert_array_equal(softmax([7.0, -np.inf], t), [1.0, 0.0])


def test_negative_zero_temperature_is_the_greedy_limit():
    np.testing.assert_array_equal(softmax([1.0, 3.0, 2.0], -0.0), [0.0, 1.0, 0.0])


def test_log_softmax_of_near_certain_entry_keeps_relative_accuracy():
    # log p_0 = -log1p(exp(-40)) ~ -4.25e-18: not rounded to 0
    lp = log_softmax([0.0, -40.0])
    assert lp[0] == pytest.approx(-math.log1p(math.exp(-40.0)), rel=1e-12)
    lp = log_softmax([0.0, -40.0], 2.0)
    assert lp[0] == pytest.approx(-math.log1p(math.exp(-20.0)), rel=1e-12)
