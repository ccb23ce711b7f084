"""LearnableTemperature: readout, parametrizations, hard and soft bounds and their gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import thermoscope  # noqa: E402
from thermoscope.training import LearnableTemperature  # noqa: E402


def _grad_of(lt, fn):
    lt.zero_grad()
    fn(lt.temperature).backward()
    return float(lt.raw.grad)


@pytest.mark.parametrize("parametrization", ["log_t", "log_scale"])
@pytest.mark.parametrize("bound", ["hard", "soft"])
@pytest.mark.parametrize("init", [0.011, 0.07, 1.0, 42.0])
def test_readout_is_the_init_and_scale_is_its_inverse(parametrization, bound, init):
    lt = LearnableTemperature(init, parametrization=parametrization, bound=bound).double()
    assert math.isclose(lt.temperature.tolist(), init, rel_tol=1e-6)
    assert math.isclose(lt.scale.tolist(), 1 / init, rel_tol=1e-6)
    assert lt.temperature.ndim == 0
    assert lt.temperature.requires_grad


def test_raw_holds_log_t_or_log_scale_with_the_hard_bound():
    assert math.isclose(LearnableTemperature(0.5).raw.tolist(), math.log(0.5), rel_tol=1e-6)
    lt = LearnableTemperature(0.5, parametrization="log_scale")
    assert math.isclose(lt.raw.tolist(), math.log(2.0), rel_tol=1e-6)


def test_clip_is_clips_initialisation_and_cap():
    lt = LearnableTemperature.clip()
    # openai/CLIP model.py: logit_scale = log(1 / 0.07); the paper caps exp(logit_scale) at 100.
    assert math.isclose(lt.raw.tolist(), math.log(1 / 0.07), rel_tol=1e-6)
    assert (lt.parametrization, lt.bound, lt.min_t, lt.max_t) == ("log_scale", "hard", 0.01, 100.0)
    with torch.no_grad():
        lt.raw.fill_(10.0)  # scale e^10: beyond the cap
    assert math.isclose(lt.scale.tolist(), 100.0, rel_tol=1e-5)


def test_forward_divides_by_t_and_keeps_the_dtype():
    lt = LearnableTemperature(0.25)
    z = torch.tensor([[1.0, -2.0, 0.5]])
    torch.testing.assert_close(lt(z), z * 4)
    half = lt(z.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), z * 4)
    assert lt(torch.tensor([2, 4])).dtype == torch.float64  # integers compute in float64


@pytest.mark.parametrize("parametrization", ["log_t", "log_scale"])
def test_hard_bound_gradient_at_the_bound_is_the_unbounded_one(parametrization):
    lt = LearnableTemperature(1.0, parametrization=parametrization, max_t=2.0).double()
    s = 1.0 if parametrization == "log_t" else -1.0
    with torch.no_grad():
        lt.raw.fill_(s * math.log(2.0))  # exactly at max_t
    # T = exp(s * raw): dT/draw = s * T.
    assert math.isclose(_grad_of(lt, lambda t: t), s * 2.0, rel_tol=1e-12)
    assert math.isclose(_grad_of(lt, lambda t: -t), -s * 2.0, rel_tol=1e-12)


@pytest.mark.parametrize("parametrization", ["log_t", "log_scale"])
def test_hard_bound_beyond_passes_only_the_inward_gradient(parametrization):
    lt = LearnableTemperature(1.0, parametrization=parametrization, min_t=0.5, max_t=2.0).double()
    s = 1.0 if parametrization == "log_t" else -1.0
    with torch.no_grad():
        lt.raw.fill_(s * (math.log(2.0) + 1.0))  # T would be 2e: clamped to 2
    assert math.isclose(lt.temperature.tolist(), 2.0, rel_tol=1e-12)
    # Minimising T asks for a smaller T: inward, the gradient (at the bound's value) passes.
    assert math.isclose(_grad_of(lt, lambda t: t), s * 2.0, rel_tol=1e-12)
    # Maximising T asks to go further out: nothing passes.
    assert _grad_of(lt, lambda t: -t) == 0.0
    with torch.no_grad():
        lt.raw.fill_(s * (math.log(0.5) - 1.0))  # below min_t
    assert math.isclose(lt.temperature.tolist(), 0.5, rel_tol=1e-12)
    assert math.isclose(_grad_of(lt, lambda t: -t), -s * 0.5, rel_tol=1e-12)
    assert _grad_of(lt, lambda t: t) == 0.0


def test_hard_bound_is_never_stuck_where_a_plain_clamp_is():
    lt = LearnableTemperature(0.1, min_t=0.05).double()
    opt = torch.optim.SGD(lt.parameters(), lr=0.5)
    for _ in range(40):  # drive T down into the bound and past it
        opt.zero_grad()
        (-1.0 / lt.temperature).backward()  # wants T -> 0 ever more strongly
        opt.step()
    assert math.isclose(lt.temperature.tolist(), 0.05, rel_tol=1e-12)
    beyond = lt.raw.tolist()
    assert beyond <= math.log(0.05)
    plain = torch.tensor(beyond, dtype=torch.float64, requires_grad=True)
    torch.exp(plain.clamp(math.log(0.05), math.log(100.0))).backward()
    assert float(plain.grad) == 0.0 or beyond == math.log(0.05)  # a plain clamp: no way back
    for _ in range(3):  # the objective flips: T should rise again
        opt.zero_grad()
        (-lt.temperature).backward()
        opt.step()
    assert lt.temperature.tolist() > 0.05


def test_clamp_projects_the_parameter_and_soft_needs_none():
    lt = LearnableTemperature(1.0, min_t=0.1, max_t=10.0)
    with torch.no_grad():
        lt.raw.fill_(-7.0)
    assert lt.clamp_() is lt
    assert math.isclose(lt.raw.tolist(), math.log(0.1), rel_tol=1e-6)
    soft = LearnableTemperature(1.0, bound="soft")
    with torch.no_grad():
        soft.raw.fill_(-7.0)
    assert soft.clamp_().raw.tolist() == -7.0


@given(raw=st.floats(-60.0, 60.0), parametrization=st.sampled_from(["log_t", "log_scale"]))
def test_soft_bound_stays_inside_and_has_the_closed_form_gradient(raw, parametrization):
    lt = LearnableTemperature(
        1.0, parametrization=parametrization, min_t=0.01, max_t=100.0, bound="soft"
    ).double()
    with torch.no_grad():
        lt.raw.fill_(raw)
    t = lt.temperature.tolist()
    assert 0.01 <= t <= 100.0
    # log T = s * h * tanh(raw / h) with h = log 100 (m = 0 for symmetric bounds):
    # dT/draw = T * s * (1 - tanh(raw / h)^2).
    s = 1.0 if parametrization == "log_t" else -1.0
    h = math.log(100.0)
    assert math.isclose(t, math.exp(s * h * math.tanh(raw / h)), rel_tol=1e-12)
    slope = 1 / math.cosh(raw / h) ** 2  # 1 - tanh^2 without cancellation
    # Autograd forms 1 - tanh^2 by subtraction: relative error about eps / slope.
    tol = 1e-9 + 1e-14 / slope
    assert math.isclose(_grad_of(lt, lambda x: x), t * s * slope, rel_tol=tol, abs_tol=1e-300)


@pytest.mark.parametrize("target", [0.01 * (1 + 1e-6), 100.0 * (1 - 1e-6)])
def test_soft_bound_gradient_is_not_zero_next_to_the_bound(target):
    lt = LearnableTemperature(target, bound="soft").double()
    g = _grad_of(lt, lambda t: torch.log(t))
    assert g != 0.0
    assert math.isclose(g, 1 - (math.log(target) / math.log(100.0)) ** 2, rel_tol=1e-6)


@pytest.mark.parametrize("bound", ["hard", "soft"])
@pytest.mark.parametrize("parametrization", ["log_t", "log_scale"])
def test_gradcheck_forward_wrt_the_parameter(bound, parametrization):
    lt = LearnableTemperature(0.3, parametrization=parametrization, bound=bound).double()
    z = torch.tensor([1.0, -2.0, 0.25], dtype=torch.float64)
    raw = lt.raw.detach().clone().requires_grad_()
    fn = lambda r: torch.func.functional_call(lt, {"raw": r}, (z,))  # noqa: E731
    assert torch.autograd.gradcheck(fn, (raw,))


def test_not_learnable_is_a_buffer():
    lt = LearnableTemperature(0.5, learnable=False)
    assert list(lt.parameters()) == []
    assert set(lt.state_dict()) == {"raw"}
    assert not lt.temperature.requires_grad


def test_state_dict_round_trip():
    a = LearnableTemperature(0.3, parametrization="log_scale", bound="soft")
    b = LearnableTemperature(2.0, parametrization="log_scale", bound="soft")
    b.load_state_dict(a.state_dict())
    assert b.temperature.tolist() == a.temperature.tolist()


def test_works_as_the_temperature_of_thermoscope_softmax():
    lt = LearnableTemperature(0.5).double()
    z = torch.tensor([[2.0, 1.0, -1.0]], dtype=torch.float64)
    p = thermoscope.softmax(z, lt.temperature)
    torch.testing.assert_close(p, torch.softmax(z / 0.5, dim=-1))
    p[0, 0].backward()
    assert lt.raw.grad is not None
    assert float(lt.raw.grad) != 0.0


def test_repr_shows_the_value_and_settings():
    text = repr(LearnableTemperature.clip())
    assert "temperature=0.07," in text
    assert "parametrization='log_scale'" in text
    assert "min_t=0.01" in text


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"parametrization": "t"}, ValueError, "`parametrization` must be 'log_t' or 'log_scale'"),
        ({"bound": "clip"}, ValueError, "`bound` must be 'hard' or 'soft', got 'clip'"),
        ({"min_t": 0.0}, ValueError, "`min_t` must be finite and > 0, got 0.0"),
        ({"max_t": math.inf}, ValueError, "`max_t` must be finite and > 0, got inf"),
        ({"min_t": 2.0, "max_t": 1.0}, ValueError, "`max_t` must be > `min_t` (2.0), got 1.0"),
        ({"init": math.nan}, ValueError, "`init` must be finite and > 0, got nan"),
        ({"init": "0.5"}, TypeError, "`init` must be a number > 0"),
        ({"init": 1000.0}, ValueError, "`init` must be in [0.01, 100.0]"),
        ({"init": 100.0, "bound": "soft"}, ValueError, "`init` must be in (0.01, 100.0)"),
        ({"learnable": 1}, TypeError, "`learnable` must be True or False"),
    ],
)
def test_bad_settings_are_refused(kwargs, exc, message):
    with pytest.raises(exc) as info:
        LearnableTemperature(**kwargs)
    assert message in str(info.value)


def test_forward_refuses_non_tensors():
    with pytest.raises(TypeError, match="`logits` must be a torch tensor"):
        LearnableTemperature()(np.zeros(3))
