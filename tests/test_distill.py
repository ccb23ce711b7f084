"""kd_loss against torch's kl_div/cross_entropy, scipy, finite differences and Hinton's limit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats

from backends import needs_torch, torch
from thermoscope.distill import kd_loss

F = None if torch is None else torch.nn.functional

TEMPS = [0.5, 1.0, 2.0, 4.0, 8.0]


def _pair(shape, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    return rng.normal(0, scale, shape), rng.normal(0, 2 * scale, shape)


def _torch_reference(s, t, temp, labels=None, alpha=1.0):
    """The common torch recipe: kl_div(batchmean) * T^2 mixed with cross_entropy."""
    s, t = torch.as_tensor(s), torch.as_tensor(t)
    soft = F.kl_div(F.log_softmax(s / temp, -1), F.softmax(t / temp, -1), reduction="batchmean")
    loss = alpha * temp**2 * soft
    if alpha < 1:
        loss = loss + (1 - alpha) * F.cross_entropy(s, torch.as_tensor(labels))
    return loss


# ------------------------------------------------------------ against torch
@needs_torch
@pytest.mark.parametrize("temp", TEMPS)
def test_soft_term_equals_torch_kl_div_batchmean_times_t2(temp):
    s, t = _pair((16, 10), seed=1)
    got = kd_loss(s, t, temp, alpha=1.0)
    assert got == pytest.approx(_torch_reference(s, t, temp).item(), rel=1e-12)


@needs_torch
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("temp", [1.0, 4.0])
def test_mixed_loss_equals_kl_div_plus_cross_entropy(alpha, temp):
    s, t = _pair((16, 10), seed=2)
    y = np.random.default_rng(3).integers(0, 10, 16)
    ref = _torch_reference(s, t, temp, y, alpha).item()
    assert kd_loss(s, t, temp, labels=y, alpha=alpha) == pytest.approx(ref, rel=1e-12)
    got = kd_loss(torch.tensor(s), torch.tensor(t), temp, labels=torch.tensor(y), alpha=alpha)
    assert got.item() == pytest.approx(ref, rel=1e-12)


def test_soft_term_equals_scipy_kl_per_example():
    """An independent path: scipy.stats.entropy(p, q) is KL(p || q)."""
    s, t = _pair((8, 5), seed=4)
    temp = 3.0
    kl = [
        stats.entropy(special.softmax(ti / temp), special.softmax(si / temp))
        for si, ti in zip(s, t, strict=True)
    ]
    got = kd_loss(s, t, temp, alpha=1.0, reduction="none")
    np.testing.assert_allclose(got, temp**2 * np.array(kl), rtol=1e-10)


@needs_torch
def test_per_element_mean_is_c_times_too_small():
    """The KLDivLoss(reduction="mean") pitfall: it divides by B * C instead of B."""
    s, t = _pair((6, 7), seed=5)
    s_t, t_t = torch.tensor(s), torch.tensor(t)
    per_element = F.kl_div(F.log_softmax(s_t, -1), F.softmax(t_t, -1), reduction="none").mean()
    assert kd_loss(s, t, 1.0, alpha=1.0) == pytest.approx(7 * per_element.item(), rel=1e-12)


# ------------------------------------------------------- numpy and torch agree
@needs_torch
@pytest.mark.parametrize("shape", [(10,), (4, 10), (3, 5, 10)], ids=["C", "BC", "BLV"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_numpy_and_torch_agree(shape, reduction):
    s, t = _pair(shape, seed=6)
    rng = np.random.default_rng(7)
    y = rng.integers(0, 10, shape[:-1])
    mask = rng.random(shape[:-1]) < 0.7 if len(shape) == 3 else None
    if mask is not None:
        mask.flat[0] = True
    kwargs = {"labels": y, "alpha": 0.6, "reduction": reduction, "mask": mask}
    ref = kd_loss(s, t, 2.5, **kwargs)
    got = kd_loss(torch.tensor(s), torch.tensor(t), 2.5, **kwargs)
    assert isinstance(got, torch.Tensor)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-15)
    if reduction == "none":
        assert isinstance(ref, np.ndarray)
        assert ref.shape == shape[:-1]
    else:
        assert isinstance(ref, float)


@needs_torch
def test_output_kinds_and_dtypes():
    s, t = _pair((4, 6), seed=8)
    f32 = kd_loss(
        torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32), 2.0, alpha=1.0
    )
    assert f32.dtype == torch.float32
    assert f32.item() == pytest.approx(kd_loss(s, t, 2.0, alpha=1.0), rel=1e-5)
    bf16 = kd_loss(torch.tensor(s, dtype=torch.bfloat16), torch.tensor(t), 2.0, alpha=1.0)
    assert bf16.dtype == torch.float32
    # A numpy teacher with a torch student is computed by torch, on the student's graph.
    s_t = torch.tensor(s, requires_grad=True)
    mixed = kd_loss(s_t, t, 2.0, alpha=1.0)
    assert mixed.requires_grad
    assert mixed.item() == pytest.approx(kd_loss(s, t, 2.0, alpha=1.0), rel=1e-12)


# -------------------------------------------------------------- gradients
@needs_torch
@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_gradcheck_float64(alpha):
    s, t = _pair((3, 4, 5), seed=9, scale=1.0)
    y = torch.tensor(np.random.default_rng(10).integers(0, 5, (3, 4)))
    mask = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    s_t = torch.tensor(s, requires_grad=True)
    t_t = torch.tensor(t, requires_grad=True)

    def f(a, b):
        return kd_loss(a, b, 3.0, labels=y, alpha=alpha, mask=mask)

    assert torch.autograd.gradcheck(f, (s_t, t_t), eps=1e-6, atol=1e-8)


@needs_torch
def test_student_gradient_is_t_times_q_minus_p():
    """d/ds of T^2 KL(p || q) is T (q - p) per example; batchmean divides by B."""
    s, t = _pair((5, 6), seed=11)
    temp, alpha = 3.0, 0.7
    s_t = torch.tensor(s, requires_grad=True)
    kd_loss(s_t, torch.tensor(t), temp, alpha=1.0).mul(alpha).backward()
    q, p = special.softmax(s / temp, axis=-1), special.softmax(t / temp, axis=-1)
    np.testing.assert_allclose(s_t.grad.numpy(), alpha * temp * (q - p) / 5, rtol=1e-10)


@needs_torch
def test_masked_classes_give_finite_gradients():
    """-inf in both teacher and student at a class: that class drops out, no NaN anywhere."""
    s = torch.tensor([[1.0, -math.inf, 0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0.0, -math.inf, 1.5, 1.0]], dtype=torch.float64, requires_grad=True)
    loss = kd_loss(s, t, 2.0, alpha=1.0)
    loss.backward()
    assert torch.isfinite(s.grad).all()
    assert torch.isfinite(t.grad).all()
    dropped = kd_loss([[1.0, 0.5, 2.0]], [[0.0, 1.5, 1.0]], 2.0, alpha=1.0)
    assert loss.item() == pytest.approx(dropped, rel=1e-12)


def test_student_masking_a_teacher_class_is_infinite_loss():
    assert kd_loss([[0.0, -np.inf]], [[0.0, 0.0]], 1.0, alpha=1.0) == math.inf


# ------------------------------------------------ T^2 and the high-T limit
def _grad_norm(fn, s, t, temp):
    s_t = torch.tensor(s, requires_grad=True)
    fn(s_t, torch.tensor(t), temp).backward()
    return float(s_t.grad.norm())


@needs_torch
def test_t_squared_keeps_soft_gradient_magnitude_roughly_constant():
    """Documented band: for logits of sd 2 (student) and 4 (teacher), the gradient norm of
    T^2 KL changes by less than 25% over T in {2, 4, 8, 16}; the plain KL's (torch's own
    kl_div, no T^2) falls like 1/T^2 within the same band."""
    s, t = _pair((64, 10), seed=12, scale=2.0)
    temps = [2.0, 4.0, 8.0, 16.0]
    with_t2 = np.array(
        [_grad_norm(lambda a, b, T: kd_loss(a, b, T, alpha=1.0), s, t, T) for T in temps]
    )
    plain = np.array(
        [
            _grad_norm(
                lambda a, b, T: F.kl_div(
                    F.log_softmax(a / T, -1), F.softmax(b / T, -1), reduction="batchmean"
                ),
                s,
                t,
                T,
            )
            for T in temps
        ]
    )
    assert with_t2.max() / with_t2.min() < 1.25
    ratio = plain / plain[0]
    expected = (temps[0] / np.array(temps)) ** 2
    assert np.all(ratio / expected > 1 / 1.25)
    assert np.all(ratio / expected < 1.25)
    assert ratio[-1] < 1 / 40  # from T = 2 to T = 16: at least 40x smaller


@needs_torch
@pytest.mark.parametrize("temp", [1e2, 1e3, 1e4])
def test_high_temperature_limit_is_logit_matching(temp):
    """Hinton et al. 2.1: with zero-mean logits, d(T^2 KL)/ds_i -> (s_i - t_i) / C and the
    loss -> ||s - t||^2 / (2C). The error of the first-order expansion is O(1/T)."""
    rng = np.random.default_rng(13)
    s, t = rng.normal(0, 1, 7), rng.normal(0, 1, 7)
    s, t = s - s.mean(), t - t.mean()
    c = s.size
    s_t = torch.tensor(s, requires_grad=True)
    loss = kd_loss(s_t, torch.tensor(t), temp, alpha=1.0)
    loss.backward()
    limit = (s - t) / c
    assert np.max(np.abs(s_t.grad.numpy() - limit)) < 10 / temp * np.max(np.abs(limit))
    assert loss.item() == pytest.approx(np.sum((s - t) ** 2) / (2 * c), rel=10 / temp)
    # Proportional to the logit differences: the same direction, cosine -> 1.
    g = s_t.grad.numpy()
    assert g @ (s - t) / (np.linalg.norm(g) * np.linalg.norm(s - t)) > 1 - 10 / temp


@needs_torch
def test_high_temperature_limit_removes_the_means():
    """Without zero-mean logits the limit is the centred difference: softmax ignores shifts."""
    s, t = np.array([3.0, 1.0, 0.0, 2.0]), np.array([10.0, 9.0, 12.0, 11.0])
    s_t = torch.tensor(s, requires_grad=True)
    kd_loss(s_t, torch.tensor(t), 1e4, alpha=1.0).backward()
    d = (s - s.mean()) - (t - t.mean())
    np.testing.assert_allclose(s_t.grad.numpy(), d / 4, atol=1e-3)


# --------------------------------------------------------------- sequences
def test_sequence_mask_averages_per_token_like_an_explicit_loop():
    s, t = _pair((3, 6, 8), seed=14)
    rng = np.random.default_rng(15)
    y = rng.integers(0, 8, (3, 6))
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    y[~mask] = -100  # transformers' padding label, ignored where the mask is False
    temp, alpha = 2.0, 0.75
    per_token = []
    for b in range(3):
        for i in range(6):
            if mask[b, i]:
                p = special.softmax(t[b, i] / temp)
                kl = np.sum(p * (np.log(p) - special.log_softmax(s[b, i] / temp)))
                ce = -special.log_softmax(s[b, i])[y[b, i]]
                per_token.append(alpha * temp**2 * kl + (1 - alpha) * ce)
    got = kd_loss(s, t, temp, labels=y, alpha=alpha, mask=mask)
    assert got == pytest.approx(np.mean(per_token), rel=1e-12)
    total = kd_loss(s, t, temp, labels=y, alpha=alpha, mask=mask, reduction="sum")
    assert total == pytest.approx(np.sum(per_token), rel=1e-12)
    each = kd_loss(s, t, temp, labels=y, alpha=alpha, mask=mask, reduction="none")
    assert np.all(each[~mask] == 0)
    np.testing.assert_allclose(each[mask], per_token, rtol=1e-12)
    # 0/1 integer masks (transformers' attention_mask) work the same.
    assert kd_loss(s, t, temp, labels=y, alpha=alpha, mask=mask.astype(int)) == got


@needs_torch
def test_sequence_mean_is_torch_batchmean_on_flattened_tokens():
    """torch's batchmean on (B, L, V) divides by B only: L times our per-token mean."""
    s, t = _pair((2, 5, 6), seed=16)
    got = kd_loss(s, t, 2.0, alpha=1.0)
    flat = _torch_reference(s.reshape(10, 6), t.reshape(10, 6), 2.0).item()
    per_sequence = _torch_reference(s, t, 2.0).item()
    assert got == pytest.approx(flat, rel=1e-12)
    assert per_sequence == pytest.approx(5 * got, rel=1e-12)


# ----------------------------------------------------------- properties
logit_rows = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=6),
    elements=st.floats(-30, 30),
)


@given(logit_rows, st.floats(0.1, 20), st.floats(-50, 50))
def test_nonnegative_zero_on_itself_and_shift_invariant(s, temp, shift):
    rng = np.random.default_rng(0)
    t = s + rng.normal(0, 3, s.shape)
    loss = kd_loss(s, t, temp, alpha=1.0)
    assert loss >= -1e-12
    assert kd_loss(s, s + shift, temp, alpha=1.0) == pytest.approx(0.0, abs=1e-9)
    shifted = kd_loss(s + shift, t - shift, temp, alpha=1.0)
    assert shifted == pytest.approx(loss, rel=1e-7, abs=1e-9)


@given(st.floats(1e3, 1e6))
def test_huge_logits_stay_finite(scale):
    s = np.array([[1.0, -1.0, 0.5]]) * scale
    t = np.array([[0.9, -1.0, 0.6]]) * scale
    loss = kd_loss(s, t, 1.0, labels=[0], alpha=0.5)
    assert math.isfinite(loss)
    assert loss >= 0


@needs_torch
def test_float32_torch_close_to_float64():
    s, t = _pair((32, 50), seed=17, scale=5.0)
    lo = kd_loss(
        torch.tensor(s, dtype=torch.float32), torch.tensor(t, dtype=torch.float32), 4.0, alpha=1.0
    )
    assert lo.item() == pytest.approx(kd_loss(s, t, 4.0, alpha=1.0), rel=1e-5)


# ----------------------------------------------------------------- errors
S, T = np.zeros((2, 3)), np.ones((2, 3))


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_mismatched_shapes(backend):
    s, t = np.zeros((2, 3)), np.zeros((2, 4))
    if backend == "torch":
        s, t = torch.tensor(s), torch.tensor(t)
    with pytest.raises(
        ValueError,
        match=r"`teacher_logits` must have the shape of `student_logits`, \(2, 3\), got \(2, 4\)",
    ):
        kd_loss(s, t, 2.0, alpha=1.0)


@pytest.mark.parametrize("temp", [0, 0.0, -1.0, math.inf, math.nan])
def test_temperature_must_be_positive_finite(temp):
    with pytest.raises(ValueError, match="`temperature` must be a positive finite number"):
        kd_loss(S, T, temp, alpha=1.0)


@pytest.mark.parametrize("temp", ["hot", None, [1.0, 2.0], True])
def test_temperature_type(temp):
    with pytest.raises(TypeError, match="`temperature` must be a positive finite number"):
        kd_loss(S, T, temp, alpha=1.0)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, math.nan])
def test_alpha_outside_unit_interval(alpha):
    with pytest.raises(ValueError, match=r"`alpha` must be in \[0, 1\]"):
        kd_loss(S, T, 2.0, labels=[0, 1], alpha=alpha)


def test_alpha_type_and_shape():
    with pytest.raises(TypeError, match="`alpha`"):
        kd_loss(S, T, 2.0, labels=[0, 1], alpha="half")
    with pytest.raises(ValueError, match="`alpha` must be a scalar"):
        kd_loss(S, T, 2.0, labels=[0, 1], alpha=[0.5, 0.5])


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
@pytest.mark.parametrize("labels", [[0, 3], [-1, 0]], ids=["too-big", "negative"])
def test_labels_out_of_range(backend, labels):
    y = torch.tensor(labels) if backend == "torch" else labels
    s, t = (torch.tensor(S), torch.tensor(T)) if backend == "torch" else (S, T)
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 2\]"):
        kd_loss(s, t, 2.0, labels=y)


def test_labels_missing_type_and_shape():
    with pytest.raises(ValueError, match="`labels` must be given when `alpha` < 1"):
        kd_loss(S, T, 2.0)
    with pytest.raises(TypeError, match="`labels` must be integer class indices"):
        kd_loss(S, T, 2.0, labels=[0.5, 1.0])
    with pytest.raises(ValueError, match=r"`labels` must have shape \(2,\)"):
        kd_loss(S, T, 2.0, labels=[0, 1, 2])


def test_bad_reduction():
    with pytest.raises(ValueError, match="`reduction` must be one of 'mean', 'sum', 'none'"):
        kd_loss(S, T, 2.0, alpha=1.0, reduction="batchmean")


def test_bad_mask():
    with pytest.raises(ValueError, match="`mask` must have the logits' shape"):
        kd_loss(S, T, 2.0, alpha=1.0, mask=[True])
    with pytest.raises(ValueError, match="`mask` must keep at least one position"):
        kd_loss(S, T, 2.0, alpha=1.0, mask=[False, False])
    with pytest.raises(TypeError, match="`mask` must be boolean"):
        kd_loss(S, T, 2.0, alpha=1.0, mask=[0.5, 1.0])


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=needs_torch)])
def test_bad_logit_values(backend):
    bad = np.array([[0.0, np.nan, 1.0], [0.0, 0.0, 0.0]])
    conv = torch.tensor if backend == "torch" else np.asarray
    with pytest.raises(ValueError, match="`student_logits` must not contain NaN"):
        kd_loss(conv(bad), conv(T), 2.0, alpha=1.0)
    with pytest.raises(
        ValueError, match=r"`teacher_logits` must be finite or -inf \(masked\), got \+inf"
    ):
        kd_loss(conv(S), conv(np.where(np.isnan(bad), np.inf, bad)), 2.0, alpha=1.0)
    with pytest.raises(ValueError, match="`teacher_logits` must keep at least one finite entry"):
        kd_loss(conv(S), conv(np.full((2, 3), -np.inf)), 2.0, alpha=1.0)


def test_non_numeric_and_scalar_logits():
    with pytest.raises(TypeError, match="`student_logits` must be a numeric"):
        kd_loss(["a", "b"], [1.0, 2.0], 2.0, alpha=1.0)
    with pytest.raises(ValueError, match="`student_logits` must have at least 1 dimension"):
        kd_loss(1.0, 1.0, 2.0, alpha=1.0)
    with pytest.raises(ValueError, match="`student_logits` must not be empty"):
        kd_loss(np.zeros((0, 3)), np.zeros((0, 3)), 2.0, alpha=1.0)
