"""The core on every backend: same numbers as numpy float64, the input's kind, dtype and device.

Also the autograd contract: a tensor with ``requires_grad`` gives a result with
a gradient, checked by ``torch.autograd.gradcheck`` in float64, including the
gradient with respect to a tensor temperature.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import needs_torch, on_every_backend, torch
from thermoscope import (
    entropy,
    free_energy,
    log_softmax,
    max_probability,
    perplexity,
    reweight,
    softmax,
)

FAST = settings(max_examples=60, deadline=None)

Z = np.array([[2.0, 1.0, 0.5, -1.0], [0.0, 0.0, 3.0, -np.inf], [5.0, 2.2, 2.0, 4.5]])


@on_every_backend
@pytest.mark.parametrize("t", [0.05, 0.5, 1.0, 3.0, 1e4])
def test_softmax_and_log_softmax_agree_with_scipy(backend, t):
    z = backend.array(Z)
    p, lp = softmax(z, t), log_softmax(z, t)
    backend.check(p)
    backend.check(lp)
    ref = sc.softmax(Z / t, axis=-1)
    np.testing.assert_allclose(backend.numpy(p), ref, rtol=backend.rtol, atol=1e-12)
    finite = np.isfinite(Z)
    with np.errstate(divide="ignore"):
        ref_log = np.log(ref)
    np.testing.assert_allclose(
        backend.numpy(lp)[finite], ref_log[finite], rtol=backend.rtol, atol=1e-6
    )
    assert np.all(np.isneginf(backend.numpy(lp)[~finite]))


@on_every_backend
def test_limits_greedy_uniform_and_tiny_temperature(backend):
    z = backend.array([[3.0, 3.0, 1.0, -np.inf], [1000.0, 1.0, 0.0, -5.0]])
    np.testing.assert_array_equal(
        backend.numpy(softmax(z, 0.0)), [[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
    )
    np.testing.assert_allclose(
        backend.numpy(softmax(z, np.inf)), [[1 / 3, 1 / 3, 1 / 3, 0.0], [0.25] * 4], rtol=1e-7
    )
    tiny = backend.numpy(softmax(z, 1e-30))
    assert np.all(np.isfinite(tiny))
    np.testing.assert_array_equal(tiny[1], [1.0, 0.0, 0.0, 0.0])


@on_every_backend
def test_per_row_temperature_including_limits(backend):
    t = np.array([0.0, 0.7, np.inf])
    got = backend.numpy(softmax(backend.array(Z), t))
    np.testing.assert_allclose(got[1], [*sc.softmax(Z[1][:3] / 0.7).tolist(), 0.0], rtol=1e-6)
    np.testing.assert_array_equal(got[0], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(got[2], [0.25] * 4, rtol=1e-7)


@on_every_backend
def test_entropy_perplexity_max_probability_reweight(backend):
    p_np = sc.softmax(np.array([[2.0, 1.0, 0.1, -1.0], [0.0, 0.0, 1.0, 3.0]]), axis=-1)
    p = backend.array(p_np)
    h = entropy(p)
    backend.check(h)
    ref_h = -np.sum(p_np * np.log(p_np), axis=-1)
    np.testing.assert_allclose(backend.numpy(h), ref_h, rtol=backend.rtol)
    np.testing.assert_allclose(
        backend.numpy(entropy(p, base=2)), ref_h / np.log(2), rtol=backend.rtol
    )
    np.testing.assert_allclose(backend.numpy(perplexity(p)), np.exp(ref_h), rtol=backend.rtol)
    np.testing.assert_allclose(backend.numpy(max_probability(p)), p_np.max(-1), rtol=backend.rtol)
    q = reweight(p, 0.5)
    backend.check(q)
    ref_q = p_np**2 / (p_np**2).sum(-1, keepdims=True)
    np.testing.assert_allclose(backend.numpy(q), ref_q, rtol=backend.rtol * 10)


@on_every_backend
def test_free_energy_minimum_is_minus_t_logsumexp(backend):
    z_np = np.array([2.0, 1.0, 0.5])
    for t in [0.3, 1.0, 4.0]:
        z = backend.array(z_np)
        f = free_energy(softmax(z, t), z, t)
        backend.check(f)
        ref = -t * sc.logsumexp(z_np / t)
        np.testing.assert_allclose(backend.numpy(f), ref, rtol=backend.rtol * 10)


@on_every_backend
@FAST
@given(
    z=st.lists(st.floats(-50, 50), min_size=2, max_size=12),
    t=st.floats(1e-2, 1e3),
    c=st.floats(-100, 100),
)
def test_property_distribution_order_and_shift_invariance(backend, z, t, c):
    zn = np.array(z)
    p = backend.numpy(softmax(backend.array(zn), t))
    assert np.all(p >= 0)
    assert abs(p.sum() - 1) < 1e-5
    # Order is kept: a larger logit never has a smaller probability.
    order = np.argsort(zn, kind="stable")
    assert np.all(np.diff(p[order]) >= -1e-6)
    shifted = backend.numpy(softmax(backend.array(zn + c), t))
    atol = 1e-9
    if backend.dtype_name == "float32":
        # Rounding z + c to float32 moves each logit by up to half an ulp; through
        # softmax(z / T) that is up to ulp / T in a probability, on top of float32 noise.
        ulp = float(np.spacing(np.float32(np.max(np.abs(zn)) + abs(c))))
        atol = 2e-5 + ulp / t
    np.testing.assert_allclose(shifted, p, atol=atol)


@needs_torch
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_half_precision_tensors_computed_in_float32_returned_in_their_dtype(dtype_name):
    dtype = getattr(torch, dtype_name)
    z = torch.tensor([[2.0, 1.0, 0.5]], dtype=dtype)
    p = softmax(z, 0.5)
    assert p.dtype == dtype
    np.testing.assert_allclose(
        p.to(torch.float64).numpy(), sc.softmax(z.to(torch.float64).numpy() / 0.5, -1), atol=1e-2
    )


# ------------------------------------------------------------------ autograd
def _grad_inputs(seed=0, shape=(3, 5)):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64) * 2


@needs_torch
@pytest.mark.parametrize("fn", [softmax, log_softmax], ids=lambda f: f.__name__)
def test_gradcheck_wrt_logits_and_tensor_temperature(fn):
    z = _grad_inputs().requires_grad_(True)
    t = torch.tensor([0.5, 1.3, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, t: fn(z, t), (z, t))
    scalar_t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, t: fn(z, t), (z, scalar_t))


@needs_torch
def test_gradcheck_with_masked_logits_keeps_gradients_finite():
    z = _grad_inputs(1)
    mask = torch.zeros_like(z, dtype=torch.bool)
    mask[0, 1] = mask[2, 4] = True
    z = z.masked_fill(mask, float("-inf")).requires_grad_(True)
    t = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    loss = (softmax(z, t) * torch.arange(5.0, dtype=torch.float64)).sum()
    loss.backward()
    assert torch.isfinite(t.grad)
    assert torch.all(torch.isfinite(z.grad))
    assert torch.all(z.grad[mask] == 0)


@needs_torch
def test_gradient_matches_torch_softmax_reference():
    z = _grad_inputs(2).requires_grad_(True)
    t = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    w = torch.linspace(-1, 1, 5, dtype=torch.float64)
    (log_softmax(z, t) * w).sum().backward()
    z2 = z.detach().clone().requires_grad_(True)
    t2 = t.detach().clone().requires_grad_(True)
    (torch.log_softmax(z2 / t2, -1) * w).sum().backward()
    torch.testing.assert_close(z.grad, z2.grad)
    torch.testing.assert_close(t.grad, t2.grad)


@needs_torch
def test_gradcheck_reweight_entropy_perplexity_free_energy():
    z = _grad_inputs(3)
    p = torch.softmax(z, -1).requires_grad_(True)
    t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, t: reweight(p, t), (p, t))
    # entropy / perplexity checks accept p off the simplex only within tolerance:
    # gradcheck perturbs by 1e-6, inside the sum-to-1 tolerance.
    assert torch.autograd.gradcheck(lambda p: entropy(p), (p,))
    assert torch.autograd.gradcheck(lambda p: perplexity(p), (p,))
    zz = z.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, z, t: free_energy(p, z, t), (p, zz, t))


@needs_torch
def test_requires_grad_results_have_a_graph():
    z = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    for out in (softmax(z, 0.5), log_softmax(z, 0.5), entropy(softmax(z, 0.5))):
        assert out.requires_grad
        assert out.grad_fn is not None
    # A learnable temperature trains: the entropy bonus moves T.
    log_t = torch.zeros((), requires_grad=True)
    entropy(softmax(z, log_t.exp())).backward()
    assert log_t.grad is not None
    assert log_t.grad > 0  # entropy rises with T


@needs_torch
def test_tensor_temperature_must_match_numpy_rules():
    z = torch.tensor([[1.0, 2.0]])
    with pytest.raises(ValueError, match="temperature"):
        softmax(z, torch.tensor(-1.0))
    with pytest.raises(ValueError, match="temperature"):
        softmax(z, torch.tensor(float("nan")))
    with pytest.raises(ValueError, match="temperature"):
        softmax(z, torch.tensor([1.0, 2.0, 3.0]))


@needs_torch
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([[1.0, float("nan")]], "NaN"),
        ([[1.0, float("inf")]], r"\+inf"),
        ([[float("-inf"), float("-inf")]], "all -inf"),
    ],
)
def test_tensor_logit_errors_name_the_argument(bad, message):
    with pytest.raises(ValueError, match=f"`logits`.*{message}"):
        softmax(torch.tensor(bad), 1.0)


@pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_stays_on_device_with_gradient():
    z = torch.randn(4, 7, device="cuda", requires_grad=True)
    t = torch.tensor(0.5, device="cuda", requires_grad=True)
    p = softmax(z, t)
    assert p.device.type == "cuda"
    p[:, 0].sum().backward()
    assert z.grad.device.type == "cuda"
    assert t.grad.device.type == "cuda"
