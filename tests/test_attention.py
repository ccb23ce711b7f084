"""attention_weights against torch's scaled_dot_product_attention, invariants and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

from backends import needs_torch, torch
from thermoscope.attention import attention_entropy, attention_weights

F = None if torch is None else torch.nn.functional


def _qk(q_shape, k_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(q_shape), rng.standard_normal(k_shape)


def _sdpa_weights(q, k, scale=None, mask=None):
    """The weights SDPA uses: its output when the values are the identity matrix."""
    qt, kt = torch.as_tensor(q), torch.as_tensor(k)
    eye = torch.eye(kt.shape[-2], dtype=qt.dtype)
    m = None if mask is None else torch.as_tensor(mask)
    return F.scaled_dot_product_attention(qt, kt, eye, attn_mask=m, scale=scale).numpy()


@needs_torch  # the reference is torch's scaled_dot_product_attention
# ---------------------------------------------------------------- vs torch SDPA
@pytest.mark.parametrize(
    ("q_shape", "k_shape"),
    [((5, 8), (7, 8)), ((2, 3, 5, 8), (2, 3, 7, 8)), ((2, 1, 4, 16), (1, 3, 6, 16))],
    ids=["2d", "BHLd", "broadcast"],
)
@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_default_temperature_matches_sdpa_default_scale(q_shape, k_shape, backend):
    q, k = _qk(q_shape, k_shape)
    conv = torch.tensor if backend == "torch" else np.asarray
    got = attention_weights(conv(q), conv(k))
    got = got.numpy() if backend == "torch" else got
    np.testing.assert_allclose(got, _sdpa_weights(q, k), rtol=1e-12, atol=1e-15)


@needs_torch  # the reference is torch's scaled_dot_product_attention
@pytest.mark.parametrize("temp", [0.1, 1.0, 3.0, 50.0])
@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_temperature_is_inverse_sdpa_scale_with_mask(temp, backend):
    q, k = _qk((2, 4, 6, 8), (2, 4, 9, 8), seed=1)
    rng = np.random.default_rng(2)
    mask = rng.random((6, 9)) < 0.6
    mask[:, 3] = True  # every query keeps a key
    conv = torch.tensor if backend == "torch" else np.asarray
    got = attention_weights(conv(q), conv(k), temperature=temp, mask=conv(mask))
    got = got.numpy() if backend == "torch" else got
    ref = _sdpa_weights(q, k, scale=1 / temp, mask=mask)
    np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-14)
    assert np.all(got[..., ~mask] == 0)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-12)


@needs_torch
def test_matches_explicit_softmax_with_per_head_temperature():
    q, k = _qk((3, 2, 5, 4), (3, 2, 6, 4), seed=3)
    temps = np.array([[0.5], [2.0]])  # (H, 1): one temperature per head
    got = attention_weights(q, k, temperature=temps)
    scores = q @ np.swapaxes(k, -1, -2)
    ref = special.softmax(scores / temps[:, :, None], axis=-1)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    got_t = attention_weights(torch.tensor(q), torch.tensor(k), temperature=temps)
    np.testing.assert_allclose(got_t.numpy(), ref, rtol=1e-12)


# ---------------------------------------------------------------- limits
@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_zero_temperature_is_hard_attention_and_inf_is_uniform(backend):
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    k = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    mask = np.array([[True, True, True, True], [True, False, True, True]])
    conv = torch.tensor if backend == "torch" else np.asarray
    hard = np.asarray(attention_weights(conv(q), conv(k), temperature=0.0))
    # Query 1 ties keys 1, 2 and 3 (score 1): the weight is shared equally.
    np.testing.assert_array_equal(hard, [[1, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3]])
    hard_masked = np.asarray(attention_weights(conv(q), conv(k), 0.0, mask=conv(mask)))
    np.testing.assert_array_equal(hard_masked[1], [0, 0, 0.5, 0.5])
    flat = np.asarray(attention_weights(conv(q), conv(k), math.inf, mask=conv(mask)))
    np.testing.assert_allclose(flat, [[0.25] * 4, [1 / 3, 0, 1 / 3, 1 / 3]], rtol=1e-15)


@needs_torch
def test_torch_limits_per_row_mix_with_finite_temperatures():
    q, k = _qk((3, 4), (5, 4), seed=4)
    temps = np.array([0.0, 2.0, np.inf])
    got = attention_weights(torch.tensor(q), torch.tensor(k), temperature=temps).numpy()
    np.testing.assert_allclose(got, attention_weights(q, k, temperature=temps), rtol=1e-12)


# ---------------------------------------------------------------- gradients
@needs_torch
def test_gradcheck_q_k_and_learnable_temperature():
    q, k = _qk((2, 3, 4), (2, 5, 4), seed=5)
    mask = torch.tensor([[True, True, False, True, True]] * 3)
    args = (
        torch.tensor(q, requires_grad=True),
        torch.tensor(k, requires_grad=True),
        torch.tensor(1.7, dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(lambda a, b, t: attention_weights(a, b, t, mask=mask), args)
    assert torch.autograd.gradcheck(lambda a, b, t: attention_entropy(a, b, t), args)


# ---------------------------------------------------------------- entropy
@needs_torch
def test_attention_entropy_matches_scipy():
    q, k = _qk((2, 5, 8), (2, 7, 8), seed=6)
    w = attention_weights(q, k, temperature=1.5)
    ref = stats.entropy(w, axis=-1)
    np.testing.assert_allclose(attention_entropy(q, k, temperature=1.5), ref, rtol=1e-12)
    np.testing.assert_allclose(
        attention_entropy(q, k, temperature=1.5, base=2), ref / np.log(2), rtol=1e-12
    )
    got_t = attention_entropy(torch.tensor(q), torch.tensor(k), temperature=1.5, base=2)
    np.testing.assert_allclose(got_t.numpy(), ref / np.log(2), rtol=1e-12)


# ---------------------------------------------------------------- properties
dims = st.integers(1, 6)
finite = st.floats(-5, 5)


@st.composite
def qk_pairs(draw):
    lq, lk, d = draw(st.integers(1, 5)), draw(st.integers(1, 6)), draw(dims)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.floats(0.1, 5))
    return rng.normal(0, scale, (lq, d)), rng.normal(0, scale, (lk, d)), rng


@given(qk_pairs(), st.floats(0.05, 50))
def test_rows_are_distributions(pair, temp):
    q, k, _ = pair
    w = attention_weights(q, k, temperature=temp)
    assert np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)


@given(qk_pairs(), st.floats(0.05, 20), st.floats(0.05, 20))
def test_scaling_queries_equals_dividing_temperature(pair, temp, c):
    """softmax(c q k^T / (c T)) = softmax(q k^T / T)."""
    q, k, _ = pair
    np.testing.assert_allclose(
        attention_weights(c * q, k, temperature=c * temp),
        attention_weights(q, k, temperature=temp),
        rtol=1e-9,
        atol=1e-12,
    )


@given(qk_pairs(), st.floats(0.05, 20))
def test_shifting_all_keys_changes_nothing(pair, temp):
    """Adding b to every key adds q . b to a query's every score: a per-row shift."""
    q, k, rng = pair
    b = rng.normal(0, 2, q.shape[-1])
    np.testing.assert_allclose(
        attention_weights(q, k + b, temperature=temp),
        attention_weights(q, k, temperature=temp),
        rtol=1e-7,
        atol=1e-10,
    )


@given(qk_pairs(), st.floats(0.05, 20))
def test_rotation_and_key_permutation(pair, temp):
    q, k, rng = pair
    rot, _ = np.linalg.qr(rng.standard_normal((q.shape[-1], q.shape[-1])))
    w = attention_weights(q, k, temperature=temp)
    np.testing.assert_allclose(attention_weights(q @ rot, k @ rot, temp), w, rtol=1e-8, atol=1e-12)
    perm = rng.permutation(k.shape[0])
    np.testing.assert_allclose(attention_weights(q, k[perm], temp), w[:, perm], rtol=1e-12)


@given(qk_pairs(), st.floats(0.05, 10), st.floats(1.01, 10))
def test_entropy_rises_with_temperature_and_argmax_is_kept(pair, temp, factor):
    q, k, _ = pair
    cold, hot = attention_weights(q, k, temp), attention_weights(q, k, temp * factor)
    assert np.all(stats.entropy(hot, axis=-1) >= stats.entropy(cold, axis=-1) - 1e-9)
    top = np.argmax(cold, axis=-1)
    rows = np.arange(len(top))
    assert np.all(hot[rows, top] >= hot.max(axis=-1) - 1e-12)


@given(qk_pairs())
def test_default_is_sqrt_d(pair):
    q, k, _ = pair
    np.testing.assert_array_equal(
        attention_weights(q, k), attention_weights(q, k, temperature=math.sqrt(q.shape[-1]))
    )


# ---------------------------------------------------------------- errors
Q, K = np.zeros((3, 4)), np.zeros((5, 4))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_feature_size_mismatch(backend):
    conv = torch.tensor if backend == "torch" else np.asarray
    with pytest.raises(
        ValueError, match=r"`k` must have the feature size of `q` \(last axis, d = 4\), got d = 3"
    ):
        attention_weights(conv(Q), conv(np.zeros((5, 3))))


def test_batch_mismatch_and_rank():
    with pytest.raises(ValueError, match="`k` must have batch dimensions that broadcast"):
        attention_weights(np.zeros((2, 3, 4)), np.zeros((3, 5, 4)))
    with pytest.raises(
        ValueError, match=r"`q` must have shape \(\.\.\., Lq, d\), got shape \(4,\)"
    ):
        attention_weights(np.zeros(4), K)
    with pytest.raises(ValueError, match="`k` must not be empty"):
        attention_weights(Q, np.zeros((0, 4)))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_bad_temperature(backend):
    conv = torch.tensor if backend == "torch" else np.asarray
    with pytest.raises(ValueError, match=r"`temperature` must be >= 0, got -1\.0"):
        attention_weights(conv(Q), conv(K), temperature=-1.0)
    with pytest.raises(ValueError, match="`temperature` must be a number >= 0, got nan"):
        attention_weights(conv(Q), conv(K), temperature=math.nan)
    with pytest.raises(
        ValueError,
        match=r"`temperature` must be a scalar or broadcast to one value per query, shape \(3,\)",
    ):
        attention_weights(conv(Q), conv(K), temperature=[1.0, 2.0])
    with pytest.raises(TypeError, match="`temperature` must be a number >= 0"):
        attention_weights(conv(Q), conv(K), temperature="warm")


@needs_torch
def test_bad_temperature_tensor():
    with pytest.raises(ValueError, match="`temperature` must be >= 0"):
        attention_weights(torch.tensor(Q), torch.tensor(K), temperature=torch.tensor(-2.0))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_bad_mask(backend):
    conv = torch.tensor if backend == "torch" else np.asarray
    with pytest.raises(TypeError, match="`mask` must be boolean"):
        attention_weights(conv(Q), conv(K), mask=conv(np.ones((3, 5))))
    with pytest.raises(
        ValueError,
        match=r"`mask` must broadcast to the scores' shape \(\.\.\., Lq, Lk\) = \(3, 5\)",
    ):
        attention_weights(conv(Q), conv(K), mask=conv(np.ones((5, 3), dtype=bool)))
    dead = np.ones((3, 5), dtype=bool)
    dead[1] = False
    with pytest.raises(
        ValueError,
        match=r"`mask` must let every query attend to at least one key, got a query with none "
        r"at index \(1,\)",
    ):
        attention_weights(conv(Q), conv(K), mask=conv(dead))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_non_finite_inputs(backend):
    conv = torch.tensor if backend == "torch" else np.asarray
    bad = Q.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"`q` must be finite, got nan at index \(1, 2\)"):
        attention_weights(conv(bad), conv(K))
    with pytest.raises(ValueError, match="`k` must be finite"):
        attention_weights(conv(Q), conv(np.full((5, 4), np.inf)))


@needs_torch
def test_non_numeric_and_bad_base():
    with pytest.raises(TypeError, match="`q` must be a numeric"):
        attention_weights([["a"]], K)
    with pytest.raises(ValueError, match="`base` must be a positive number other than 1"):
        attention_entropy(torch.tensor(Q), torch.tensor(K), base=1.0)
