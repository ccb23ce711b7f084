"""Gumbel-softmax: distribution (chi-square, two-sample moments), straight-through, annealer."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from thermoscope.sampling import goodness_of_fit  # noqa: E402
from thermoscope.sampling.schedules import Cosine, ExponentialDecay, Linear, Piecewise  # noqa: E402
from thermoscope.training import GumbelAnnealer, LearnableTemperature, gumbel_softmax  # noqa: E402

LOGITS = torch.tensor([1.0, 0.0, -0.5, 2.0, float("-inf"), 0.3], dtype=torch.float64)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("t", [0.1, 1.0, 5.0])
def test_argmax_counts_follow_softmax_of_the_logits(hard, t):
    # The Gumbel-max argmax is distributed as softmax(logits) whatever T.
    n = 20_000
    y = gumbel_softmax(LOGITS.expand(n, -1), t, hard=hard, generator=_gen(123))
    counts = np.bincount(y.argmax(dim=1).numpy(), minlength=LOGITS.numel())
    fit = goodness_of_fit(counts, torch.softmax(LOGITS, dim=0).numpy())
    assert fit.removed_draws == 0
    assert fit.p_value is not None
    assert fit.p_value > 1e-3


def test_relaxed_moments_match_torch_gumbel_softmax_two_sample():
    # Independent streams (seeds 1 and 2), n draws each. Per class the difference of
    # means has standard error sqrt(v1/n + v2/n); the difference of variances
    # sqrt((m4_1 - v1^2)/n + (m4_2 - v2^2)/n). |z| < 4.5 over 2 x 6 statistics: a
    # false alarm below 1e-4 for a correct implementation.
    n, t = 40_000, 0.7
    logits = LOGITS.float()
    ours = gumbel_softmax(logits.expand(n, -1), t, generator=_gen(1)).double()
    torch.manual_seed(2)
    ref = F.gumbel_softmax(logits.expand(n, -1), tau=t).double()
    a, b = ours, ref
    m_a, m_b = a.mean(0), b.mean(0)
    v_a, v_b = a.var(0), b.var(0)
    se_mean = torch.sqrt(v_a / n + v_b / n)
    m4_a = ((a - m_a) ** 4).mean(0)
    m4_b = ((b - m_b) ** 4).mean(0)
    se_var = torch.sqrt((m4_a - v_a**2) / n + (m4_b - v_b**2) / n)
    live = se_mean > 0  # the masked class is exactly 0 in both
    assert bool((a[:, 4] == 0).all())
    assert bool((b[:, 4] == 0).all())
    z_mean = ((m_a - m_b)[live] / se_mean[live]).abs()
    z_var = ((v_a - v_b)[live] / se_var[live]).abs()
    assert float(z_mean.max()) < 4.5, z_mean
    assert float(z_var.max()) < 4.5, z_var


def test_same_stream_as_torch_gives_the_same_samples():
    logits = torch.randn(50, 7, generator=_gen(0))
    torch.manual_seed(99)
    want = F.gumbel_softmax(logits, tau=0.3)
    got = gumbel_softmax(logits, 0.3, generator=_gen(99))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_transcription_with_per_row_temperature_along_dim_0():
    z = torch.randn(4, 3, dtype=torch.float64, generator=_gen(5))
    t = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)  # one per column: dim=0 slices
    got = gumbel_softmax(z, t, dim=0, generator=_gen(6))
    e = torch.empty_like(z).exponential_(generator=_gen(6))
    want = torch.softmax((z - torch.log(e)) / t[None, :], dim=0)
    torch.testing.assert_close(got, want)


def test_straight_through_forward_is_one_hot_and_backward_is_relaxed():
    z = torch.randn(8, 5, dtype=torch.float64, generator=_gen(7), requires_grad=True)
    w = torch.randn(8, 5, dtype=torch.float64, generator=_gen(8))
    hard = gumbel_softmax(z, 0.5, hard=True, generator=_gen(9))
    soft = gumbel_softmax(z, 0.5, generator=_gen(9))
    assert bool(((hard == 0) | (hard == 1)).all())
    assert hard.sum(1).tolist() == [1.0] * 8
    assert torch.equal(hard.argmax(1), soft.argmax(1))
    (g_hard,) = torch.autograd.grad((hard * w).sum(), z)
    (g_soft,) = torch.autograd.grad((soft * w).sum(), z)
    torch.testing.assert_close(g_hard, g_soft, rtol=0, atol=0)


def test_seeds_reproduce_and_differ():
    z = torch.zeros(3, 4)
    a = gumbel_softmax(z, 1.0, generator=11)
    assert torch.equal(a, gumbel_softmax(z, 1.0, generator=_gen(11)))
    assert torch.equal(a, gumbel_softmax(z, 1.0, generator=11))
    assert not torch.equal(a, gumbel_softmax(z, 1.0, generator=12))


def test_gradcheck_logits_and_temperature():
    z = torch.randn(3, 4, dtype=torch.float64, generator=_gen(13), requires_grad=True)
    t = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: gumbel_softmax(a, b, generator=_gen(14)), (z, t))


def test_learnable_temperature_is_accepted():
    lt = LearnableTemperature(0.5).double()
    z = torch.randn(2, 3, dtype=torch.float64, generator=_gen(15))
    y = gumbel_softmax(z, lt, generator=_gen(16))
    torch.testing.assert_close(y, gumbel_softmax(z, 0.5, generator=_gen(16)))
    (y[:, 0]).sum().backward()
    assert lt.raw.grad is not None
    assert bool(lt.raw.grad != 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_returns_its_dtype(dtype):
    z = torch.randn(4, 6, generator=_gen(17)).to(dtype)
    y = gumbel_softmax(z, 0.5, generator=_gen(18))
    assert y.dtype == dtype
    want = gumbel_softmax(z.float(), 0.5, generator=_gen(18))
    torch.testing.assert_close(y.float(), want, rtol=1e-2, atol=1e-2)


@given(
    rows=st.lists(
        st.lists(st.one_of(st.floats(-30, 30), st.just(-math.inf)), min_size=3, max_size=3).filter(
            lambda r: any(math.isfinite(v) for v in r)
        ),
        min_size=1,
        max_size=4,
    ),
    t=st.floats(0.01, 20.0),
    seed=st.integers(0, 2**31),
    hard=st.booleans(),
)
def test_samples_are_distributions_and_masked_entries_are_zero(rows, t, seed, hard):
    z = torch.tensor(rows, dtype=torch.float64)
    y = gumbel_softmax(z, t, hard=hard, generator=seed)
    assert bool((y >= 0).all())
    assert bool(torch.isfinite(y).all())
    torch.testing.assert_close(y.sum(1), torch.ones(len(rows), dtype=torch.float64))
    assert bool((y[torch.isinf(z)] == 0).all())


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (
            lambda: gumbel_softmax(torch.zeros(3), 0.0),
            ValueError,
            "`temperature` must be finite and > 0, got 0.0",
        ),
        (
            lambda: gumbel_softmax(torch.zeros(3), float("nan")),
            ValueError,
            "`temperature` must be finite and > 0, got nan",
        ),
        (
            lambda: gumbel_softmax(torch.zeros(2, 3), torch.ones(3)),
            ValueError,
            "`temperature` must be a scalar or have one value per row",
        ),
        (
            lambda: gumbel_softmax(torch.tensor([0.0, float("nan")]), 1.0),
            ValueError,
            "`logits` must not contain NaN",
        ),
        (
            lambda: gumbel_softmax(torch.full((2,), -math.inf), 1.0),
            ValueError,
            "`logits` must keep at least one finite entry",
        ),
        (
            lambda: gumbel_softmax(torch.zeros(3), 1.0, dim=1),
            ValueError,
            "`dim` must be in [-1, 0]",
        ),
        (
            lambda: gumbel_softmax(torch.zeros(3), 1.0, hard=1),
            TypeError,
            "`hard` must be True or False",
        ),
        (
            lambda: gumbel_softmax(torch.zeros(3), 1.0, generator=-1),
            ValueError,
            "`generator` must be an integer >= 0",
        ),
        (
            lambda: gumbel_softmax(torch.zeros(3), 1.0, generator=1.5),
            TypeError,
            "`generator` must be a torch.Generator",
        ),
        (
            lambda: gumbel_softmax(np.zeros(3), 1.0),
            TypeError,
            "`logits` must be a torch tensor, got ndarray",
        ),
        (
            lambda: gumbel_softmax(torch.tensor(1.0), 1.0),
            ValueError,
            "`logits` must have at least 1 dimension",
        ),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert message in str(info.value)


# -- GumbelAnnealer -----------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        ExponentialDecay(5.0, end=0.05, steps=10),
        Cosine(2.0, 0.1, steps=7),
        Linear(1.0, 0.5, steps=4),
        Piecewise(boundaries=(3, 6), values=(1.0, 0.5, 0.25)),
    ],
)
def test_annealer_follows_its_schedule_step_by_step(schedule):
    a = GumbelAnnealer(schedule)
    seen = [a.temperature] + [a.step() for _ in range(12)]
    assert seen == [schedule(s) for s in range(13)]
    assert a.current_step == 12
    assert a.temperature == seen[-1]


def test_exponential_is_the_dalle_recipe_in_closed_form():
    a = GumbelAnnealer.exponential(start=5.0, end=0.05, steps=100)
    temps = [a.temperature] + [a.step() for _ in range(120)]
    want = [5.0 * (0.05 / 5.0) ** (min(s, 100) / 100) for s in range(121)]
    np.testing.assert_allclose(temps, want, rtol=1e-12)
    assert GumbelAnnealer.linear(1.0, 0.5, steps=2).step() == 0.75
    assert GumbelAnnealer.cosine(1.0, 0.5, steps=2).step() == 0.75


def test_annealer_state_round_trip_and_start_step():
    a = GumbelAnnealer.exponential(steps=50)
    for _ in range(17):
        a.step()
    b = GumbelAnnealer.exponential(steps=50)
    b.load_state_dict(a.state_dict())
    assert b.current_step == 17
    assert b.temperature == a.temperature
    assert [a.step() for _ in range(5)] == [b.step() for _ in range(5)]
    c = GumbelAnnealer.exponential(steps=50, start=5.0, end=0.05)
    assert GumbelAnnealer(c.schedule, start_step=22).temperature == a.temperature


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda: GumbelAnnealer("fast"), TypeError, "`schedule` must be a schedule or a callable"),
        (
            lambda: GumbelAnnealer(Linear(1.0, 0.5, 2), start_step=-1),
            ValueError,
            "`start_step` must be an integer >= 0",
        ),
        (
            lambda: GumbelAnnealer(Linear(0.0, 0.5, 2)),
            ValueError,
            "`schedule` must give a finite temperature > 0, got 0.0 at step 0",
        ),
        (
            lambda: GumbelAnnealer.exponential(steps=0),
            ValueError,
            "`steps` must be an integer >= 1",
        ),
        (
            lambda: GumbelAnnealer(Linear(1.0, 0.5, 2)).load_state_dict({"step": -2}),
            ValueError,
            "`state['step']` must be an integer >= 0",
        ),
        (
            lambda: GumbelAnnealer(Linear(1.0, 0.5, 2)).load_state_dict({"epoch": 2}),
            ValueError,
            "`state` must be a dict with the one key 'step'",
        ),
    ],
)
def test_annealer_bad_input(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert message in str(info.value)


def test_annealer_refuses_a_schedule_that_reaches_zero_at_that_step():
    a = GumbelAnnealer(Linear(1.0, 0.0, steps=2))
    assert a.step() == 0.5
    with pytest.raises(ValueError, match=r"got 0\.0 at step 2"):
        a.step()
    assert a.current_step == 1  # the failed step did not advance


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gumbel_softmax_on_cuda_with_a_seed_and_a_cpu_generator_refused():
    z = torch.randn(1000, 5, generator=_gen(19)).cuda()
    y = gumbel_softmax(z, 0.5, hard=True, generator=3)
    assert y.device.type == "cuda"
    assert torch.equal(y, gumbel_softmax(z, 0.5, hard=True, generator=3))
    with pytest.raises(ValueError, match="`generator` must be on the logits' device"):
        gumbel_softmax(z, 0.5, generator=_gen(1))
