"""rl, attention, distill and recommend on every backend (issue 11).

Numeric functions compute with the input's own library on its device: the
same numbers as numpy float64 (1e-6; 1e-5 for float32), the input's kind,
dtype and device, autograd kept (``gradcheck`` in float64, also with respect
to a tensor temperature), and no tensor values copied to the host on the way
(checked by making every tensor -> host conversion fail while they run).
Functions that draw with a numpy Generator read tensors through the explicit
host conversion and give the same draws as numpy input.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.special as sc

from backends import Backend, needs_torch, on_every_backend, on_torch_backends, torch
from thermoscope.attention import attention_entropy, attention_weights
from thermoscope.distill import kd_loss
from thermoscope.recommend import exposure, sample_items
from thermoscope.rl import UCB1, BoltzmannPolicy, EpsilonGreedy
from thermoscope.sampling.schedules import Linear

needs_cuda = pytest.mark.skipif(
    torch is None or not torch.cuda.is_available(), reason="needs a CUDA device"
)

_RNG = np.random.default_rng(20240611)
# Distillation: (B, L, C) sequences, class 2 masked in both models on two positions.
S = _RNG.normal(0, 2, (3, 4, 6))
T = _RNG.normal(0, 4, (3, 4, 6))
S[0, 1, 2] = T[0, 1, 2] = S[2, 3, 2] = T[2, 3, 2] = -np.inf
Y = _RNG.integers(0, 6, (3, 4))
Y[0, 1] = 0
PAD = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
Y[~PAD] = -100  # transformers' padding label: ignored where the mask is False
# Attention: (B, Lq, d) queries against (B, Lk, d) keys.
Q = _RNG.normal(0, 1.5, (2, 3, 4))
K = _RNG.normal(0, 1.5, (2, 5, 4))
KEYS = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 1, 0], [1, 0, 0, 0, 1]], dtype=bool)
# Bandits: values exactly representable in float32, one unavailable action.
QV = np.array([[1.0, 0.5, -0.25, 2.0], [0.0, -np.inf, 3.0, 0.75]])


@contextlib.contextmanager
def no_host_copies() -> Iterator[None]:
    """Inside the block any tensor -> host conversion (.numpy, .cpu, .item, .tolist,
    np.asarray) raises; a scalar bool() per check is what validation may read."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tensor was copied to the host")

    if torch is None:  # numpy only: there is no tensor to copy
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        for name in ("numpy", "cpu", "item", "tolist", "__array__"):
            mp.setattr(torch.Tensor, name, refuse)
        yield


def _on(backend: Backend, x: np.ndarray) -> object:
    """Integer or boolean data (labels, masks, counts) in the backend's library and device."""
    return x if not backend.is_torch else torch.as_tensor(x, device=backend.device)


def _scalar(backend: Backend, result: object) -> float:
    """A reduced loss: a float for numpy, a 0-d tensor of the backend's dtype and device."""
    if not backend.is_torch:
        assert isinstance(result, float)
        return result
    assert isinstance(result, torch.Tensor)
    assert result.ndim == 0
    assert result.dtype == backend.dtype
    assert result.device.type == torch.device(backend.device).type
    return float(result)


# ------------------------------------------------------------------ kd_loss
@on_every_backend
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_kd_loss_agrees_with_numpy_float64(backend, reduction):
    kwargs = {"alpha": 0.6, "reduction": reduction}
    ref = kd_loss(S, T, 2.5, labels=Y, mask=PAD, **kwargs)
    s, t = backend.array(S), backend.array(T)
    with no_host_copies():
        got = kd_loss(s, t, 2.5, labels=_on(backend, Y), mask=_on(backend, PAD), **kwargs)
    if reduction == "none":
        backend.check(got)
        np.testing.assert_allclose(backend.numpy(got), ref, rtol=backend.rtol, atol=1e-12)
    else:
        assert _scalar(backend, got) == pytest.approx(ref, rel=backend.rtol)


@on_torch_backends
def test_kd_loss_tensor_temperature_gets_a_gradient(backend):
    s = backend.array(S, requires_grad=True)
    temp = torch.tensor(2.5, dtype=backend.dtype, device=backend.device, requires_grad=True)
    kwargs = {"labels": Y, "alpha": 0.6, "mask": PAD}
    with no_host_copies():
        loss = kd_loss(s, backend.array(T), temp, **kwargs)
    assert loss.grad_fn is not None
    loss.backward()
    assert torch.isfinite(s.grad).all()
    h = 1e-5
    slope = (kd_loss(S, T, 2.5 + h, **kwargs) - kd_loss(S, T, 2.5 - h, **kwargs)) / (2 * h)
    assert float(temp.grad) == pytest.approx(slope, rel=100 * backend.rtol)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_kd_loss_gradcheck_student_and_temperature(reduction):
    # A small slice keeps the numerical Jacobian cheap; it holds a masked class and padding.
    s = torch.tensor(S[:2, :3], requires_grad=True)
    temp = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    t, y, m = torch.tensor(T[:2, :3]), torch.tensor(Y[:2, :3]), torch.tensor(PAD[:2, :3])

    def f(a, b):
        return kd_loss(a, t, b, labels=y, alpha=0.6, mask=m, reduction=reduction)

    assert torch.autograd.gradcheck(f, (s, temp), eps=1e-6, atol=1e-7)


@needs_torch
def test_kd_loss_tensor_temperature_with_numpy_logits_computes_in_torch():
    temp = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    loss = kd_loss(S, T, temp, labels=Y, alpha=0.6, mask=PAD)
    assert isinstance(loss, torch.Tensor)
    assert loss.dtype == torch.float64
    assert loss.grad_fn is not None
    assert float(loss.detach()) == pytest.approx(kd_loss(S, T, 3.0, labels=Y, alpha=0.6, mask=PAD))


@needs_torch
@pytest.mark.parametrize(
    ("temp", "exc", "message"),
    [
        (0.0, ValueError, "got 0.0."),
        (-2.0, ValueError, "got -2.0."),
        (math.inf, ValueError, "got inf."),
        ([1.0, 2.0], TypeError, "got tensor("),
        (True, TypeError, "got tensor(True)"),
    ],
)
def test_kd_loss_bad_tensor_temperature(temp, exc, message):
    with pytest.raises(exc, match="`temperature` must be a positive finite number") as info:
        kd_loss(torch.tensor(S), torch.tensor(T), torch.tensor(temp), alpha=1.0)
    assert message in str(info.value)


@needs_torch
def test_kd_loss_tensor_labels_and_mask_are_checked_on_device():
    s, t = torch.tensor(S), torch.tensor(T)
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 5\], got 7"):
        kd_loss(s, t, 2.0, labels=torch.full((3, 4), 7))
    with pytest.raises(TypeError, match="`labels` must be integer class indices"):
        kd_loss(s, t, 2.0, labels=torch.full((3, 4), 0.5))
    with pytest.raises(TypeError, match="`mask` must be boolean"):
        kd_loss(s, t, 2.0, alpha=1.0, mask=torch.full((3, 4), 0.5))
    with pytest.raises(ValueError, match="`mask` must keep at least one position"):
        kd_loss(s, t, 2.0, alpha=1.0, mask=torch.zeros(3, 4, dtype=torch.bool))
    # 0/1 float labels and masks are accepted, as numpy ones are.
    ref = kd_loss(S, T, 2.0, labels=Y, alpha=0.5, mask=PAD)
    got = kd_loss(s, t, 2.0, labels=torch.tensor(Y, dtype=torch.float64), alpha=0.5,
                  mask=torch.tensor(PAD, dtype=torch.float32))  # fmt: skip
    assert float(got) == pytest.approx(ref, rel=1e-12)


@needs_torch
def test_kd_loss_infinite_loss_on_padding_does_not_poison_the_mean():
    s = np.array([[0.0, -np.inf], [1.0, 0.0]])  # row 0 would be an infinite loss
    t = np.array([[0.0, 0.0], [0.0, 1.0]])
    keep = np.array([False, True])
    ref = kd_loss(s[1:], t[1:], 1.0, alpha=1.0)
    assert kd_loss(s, t, 1.0, alpha=1.0, mask=keep) == pytest.approx(ref, rel=1e-15)
    got = kd_loss(torch.tensor(s), torch.tensor(t), 1.0, alpha=1.0, mask=torch.tensor(keep))
    assert float(got) == pytest.approx(ref, rel=1e-15)


@needs_torch
def test_kd_loss_half_precision_is_computed_in_float32():
    s, t = torch.tensor(S, dtype=torch.bfloat16), torch.tensor(T, dtype=torch.bfloat16)
    got = kd_loss(s, t, 2.0, labels=torch.tensor(Y), alpha=0.5, mask=torch.tensor(PAD))
    assert got.dtype == torch.float32
    ref = kd_loss(s.double().numpy(), t.double().numpy(), 2.0, labels=Y, alpha=0.5, mask=PAD)
    assert float(got) == pytest.approx(ref, rel=1e-5)


# ---------------------------------------------------------------- attention
TEMPERATURES = {
    "default": None,
    "hard": 0.0,
    "warm": 0.7,
    "uniform": math.inf,
    "per-query": np.array([[0.0, 1.3, math.inf], [0.4, 2.0, 0.9]]),
}


@on_every_backend
@pytest.mark.parametrize("which", sorted(TEMPERATURES))
def test_attention_agrees_with_numpy_float64(backend, which):
    temp = TEMPERATURES[which]
    ref_w = attention_weights(Q, K, temp, mask=KEYS)
    ref_h = attention_entropy(Q, K, temp, mask=KEYS)
    tt = backend.array(temp) if backend.is_torch and isinstance(temp, np.ndarray) else temp
    q, k, keys = backend.array(Q), backend.array(K), _on(backend, KEYS)
    with no_host_copies():
        w = attention_weights(q, k, tt, mask=keys)
        h = attention_entropy(q, k, tt, mask=keys)
    backend.check(w)
    backend.check(h)
    np.testing.assert_allclose(backend.numpy(w), ref_w, rtol=backend.rtol, atol=1e-12)
    np.testing.assert_allclose(backend.numpy(h), ref_h, rtol=backend.rtol, atol=1e-6)
    assert np.all(backend.numpy(w)[:, ~KEYS] == 0)


@needs_torch
def test_attention_matches_scipy_per_query_temperature():
    temp = TEMPERATURES["per-query"]
    scores = np.where(KEYS, Q @ np.swapaxes(K, -1, -2), -np.inf)
    warm = np.isfinite(temp) & (temp > 0)
    ref = sc.softmax(scores / np.where(warm, temp, 1.0)[..., None], axis=-1)
    got = attention_weights(torch.tensor(Q), torch.tensor(K), torch.tensor(temp), mask=KEYS)
    np.testing.assert_allclose(got.numpy()[warm], ref[warm], rtol=1e-12)


@needs_torch
def test_attention_gradcheck_q_k_and_per_query_temperature():
    args = (
        torch.tensor(Q[:1], requires_grad=True),
        torch.tensor(K[:1], requires_grad=True),
        torch.tensor([[0.8, 1.3, 2.1]], dtype=torch.float64, requires_grad=True),
    )
    keys = torch.tensor(KEYS)
    assert torch.autograd.gradcheck(lambda a, b, t: attention_weights(a, b, t, mask=keys), args)
    assert torch.autograd.gradcheck(lambda a, b, t: attention_entropy(a, b, t, mask=keys), args)


@needs_torch
def test_attention_gradients_stay_finite_at_the_limits():
    q = torch.tensor(Q, requires_grad=True)
    temp = torch.tensor([0.0, 1.0, math.inf], dtype=torch.float64, requires_grad=True)
    w = attention_weights(q, torch.tensor(K), temp, mask=torch.tensor(KEYS))
    assert w.grad_fn is not None
    (w * torch.arange(5.0, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(q.grad).all()
    assert torch.isfinite(temp.grad).all()


@needs_torch
def test_attention_keeps_the_input_dtype():
    for dtype in (torch.float16, torch.bfloat16):
        w = attention_weights(torch.tensor(Q, dtype=dtype), torch.tensor(K, dtype=dtype))
        assert w.dtype == dtype
        ref = attention_weights(torch.tensor(Q, dtype=dtype).double().numpy(),
                                torch.tensor(K, dtype=dtype).double().numpy())  # fmt: skip
        np.testing.assert_allclose(w.double().numpy(), ref, atol=1e-2)
    assert attention_weights(Q.astype(np.float16), K.astype(np.float16)).dtype == np.float16
    assert attention_weights(Q.astype(np.float32), K).dtype == np.float64
    # numpy data with a tensor temperature: computed by torch, gradient to the temperature.
    temp = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    w = attention_weights(Q, K, temp)
    assert isinstance(w, torch.Tensor)
    assert w.grad_fn is not None


# --------------------------------------------------------------------- rl
@on_every_backend
@pytest.mark.parametrize("temp", [0.0, 0.3, 2.0, math.inf])
def test_boltzmann_probs_agree_with_numpy(backend, temp):
    ref = BoltzmannPolicy(temp).probs(QV)
    q = backend.array(QV)
    with no_host_copies():
        got = BoltzmannPolicy(temp).probs(q)
    backend.check(got)
    np.testing.assert_allclose(backend.numpy(got), ref, rtol=backend.rtol, atol=1e-12)
    if 0 < temp < math.inf:
        np.testing.assert_allclose(ref, sc.softmax(QV / temp, axis=-1), rtol=1e-12)


@on_every_backend
def test_boltzmann_schedule_steps_per_row(backend):
    pi = BoltzmannPolicy(Linear(2.0, 0.1, steps=10))
    steps = np.array([0, 7])
    with no_host_copies():
        got = pi.probs(backend.array(QV), step=steps)
    backend.check(got)
    np.testing.assert_allclose(backend.numpy(got), pi.probs(QV, step=steps), rtol=backend.rtol)


@needs_torch
def test_boltzmann_probs_gradcheck():
    q = torch.tensor(QV, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: BoltzmannPolicy(0.7).probs(a), (q,))
    assert BoltzmannPolicy(0.7).probs(q).grad_fn is not None


@on_every_backend
def test_epsilon_greedy_and_ucb_index_agree_with_numpy(backend):
    q = QV[:, [0, 2, 3]]  # finite values only
    counts = np.array([[3, 0, 2], [1, 4, 5]])
    with no_host_copies():
        p = EpsilonGreedy(0.2).probs(backend.array(q))
        p1 = EpsilonGreedy(0.2).probs(backend.array(q[0]))
        idx = UCB1(c=1.5).index(backend.array(q), _on(backend, counts))
        idx_np_counts = UCB1(c=1.5).index(backend.array(q), counts)
    for got, ref in (
        (p, EpsilonGreedy(0.2).probs(q)),
        (p1, EpsilonGreedy(0.2).probs(q[0])),
        (idx, UCB1(c=1.5).index(q, counts)),
        (idx_np_counts, UCB1(c=1.5).index(q, counts)),
    ):
        backend.check(got)
        assert tuple(got.shape) == ref.shape
        np.testing.assert_allclose(backend.numpy(got), ref, rtol=backend.rtol)


@needs_torch
def test_ucb_tensor_counts_are_checked_on_device():
    q = torch.tensor([0.1, 0.2])
    with pytest.raises(ValueError, match=r"`counts` must be an integer >= 0, got -2"):
        UCB1().index(q, torch.tensor([1, -2]))
    with pytest.raises(TypeError, match="`counts` must be an integer >= 0"):
        UCB1().index(q, torch.tensor([1.5, 2.0]))
    with pytest.raises(ValueError, match=r"`counts` must have the shape of `q_values` \(1, 2\)"):
        UCB1().index(q, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"`q_values` must be finite, got -inf\."):
        EpsilonGreedy(0.1).probs(torch.tensor([0.0, -math.inf]))


@on_every_backend
def test_draws_read_tensors_on_the_host_and_match_numpy(backend):
    rows = np.tile(QV, (50, 1))
    pi = BoltzmannPolicy(0.8)
    draws = pi.sample(backend.array(rows), rng=3)
    assert isinstance(draws, np.ndarray)
    np.testing.assert_array_equal(draws, pi.sample(rows, rng=3))
    assert pi.sample(backend.array(QV[0]), rng=3) == pi.sample(QV[0], rng=3)
    finite = rows[:, [0, 2, 3]]
    for policy in (EpsilonGreedy(0.3), UCB1()):
        counts = np.ones(finite.shape, dtype=np.int64)
        got = policy.select(backend.array(finite), _on(backend, counts), rng=4)
        np.testing.assert_array_equal(got, policy.select(finite, counts, rng=4))


# ---------------------------------------------------------------- recommend
@on_every_backend
def test_sample_items_and_exposure_read_tensors_on_the_host(backend):
    scores = np.tile(QV, (30, 1))
    temps = np.linspace(0.0, 2.0, 60)
    ref = sample_items(scores, temps, k=2, rng=5)
    got = sample_items(backend.array(scores), backend.array(temps), k=2, rng=5)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(exposure(_on(backend, ref), 4), exposure(ref, 4))


# --------------------------------------------------------------------- CUDA
@needs_cuda
def test_cuda_kd_loss_labels_mask_and_temperature_stay_on_device():
    dev = "cuda"
    s = torch.tensor(S, dtype=torch.float32, device=dev, requires_grad=True)
    temp = torch.tensor(2.5, device=dev, requires_grad=True)
    labels, mask = torch.tensor(Y, device=dev), torch.tensor(PAD, device=dev)
    with no_host_copies():
        loss = kd_loss(s, torch.tensor(T, device=dev), temp, labels=labels, alpha=0.6, mask=mask)
    assert loss.device.type == "cuda"
    assert loss.dtype == torch.float32
    loss.backward()
    assert s.grad.device.type == "cuda"
    assert temp.grad is not None
    ref = kd_loss(S, T, 2.5, labels=Y, alpha=0.6, mask=PAD)
    assert float(loss.detach()) == pytest.approx(ref, rel=1e-5)


@needs_cuda
def test_cuda_attention_with_device_mask_and_learnable_temperature():
    dev = "cuda"
    q = torch.tensor(Q, device=dev, requires_grad=True)
    temp = torch.tensor([[0.5, 1.0, 2.0], [1.5, 0.0, math.inf]], device=dev, requires_grad=True)
    with no_host_copies():
        keys = torch.tensor(KEYS, device=dev)
        w = attention_weights(q, torch.tensor(K, device=dev), temp, mask=keys)
        h = attention_entropy(q, torch.tensor(K, device=dev), temp, mask=keys)
    assert w.device.type == "cuda"
    assert h.device.type == "cuda"
    (w.sum() + h.sum()).backward()
    assert torch.isfinite(q.grad).all()
    ref = attention_weights(Q, K, temp.detach().cpu().double().numpy(), mask=KEYS)
    np.testing.assert_allclose(w.detach().cpu().numpy(), ref, rtol=1e-12, atol=1e-15)


@needs_cuda
def test_cuda_bandit_numerics_stay_on_device():
    q = torch.tensor(QV, device="cuda")
    with no_host_copies():
        p = BoltzmannPolicy(0.5).probs(q)
        e = EpsilonGreedy(0.1).probs(q[:, [0, 2, 3]])
        u = UCB1().index(q[:, [0, 2, 3]], torch.ones(2, 3, dtype=torch.int64, device="cuda"))
    assert {p.device.type, e.device.type, u.device.type} == {"cuda"}
    np.testing.assert_allclose(p.cpu().numpy(), BoltzmannPolicy(0.5).probs(QV), rtol=1e-12)
