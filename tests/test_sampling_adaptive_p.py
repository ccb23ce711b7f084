"""AdaptiveP against a float64 transcription of llama.cpp's adaptive-p, its state and its rules.

The transcription below follows ``llama_sampler_adaptive_p_apply`` / ``_accept`` /
``_init`` in llama.cpp's ``src/llama-sampler.cpp`` (the copy vendored by
llama-cpp-python 0.3.36), in float64, one row at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backends import needs_torch, on_every_backend, torch
from thermoscope.sampling import MinP, Sampler, TopK, goodness_of_fit
from thermoscope.sampling.adaptive_p import AdaptiveP

INF = np.inf


class LlamaAdaptiveP:
    """llama.cpp's adaptive-p state machine for one row, transcribed in float64."""

    def __init__(self, target: float, decay: float):
        self.target, self.decay = target, min(max(decay, 0.0), 0.99)
        self.weighted_sum = target / (1.0 - self.decay)
        self.total_weight = 1.0 / (1.0 - self.decay)
        self.original: np.ndarray | None = None

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """The distribution the token is drawn from (llama_sampler_adaptive_p_apply)."""
        p = np.exp(logits - logits.max())
        p /= p.sum()  # llama_sampler_softmax_impl
        if self.target < 0:
            return p
        self.original = p.copy()
        target = min(max(self.target, 0.0), 1.0)
        adapted = (
            target
            if self.total_weight == 0
            else 2.0 * target - self.weighted_sum / self.total_weight
        )
        adapted = min(max(adapted, 0.0), 1.0)
        new = logits.copy()
        for i in range(logits.size):
            if logits[i] == -INF:
                continue
            dist = abs((p[i] - adapted) * (1.0 / 0.3))
            new[i] = 5.0 - 10.0 * dist * dist / (1.0 + dist)
        q = np.exp(new - new.max())
        return q / q.sum()

    def accept(self, token: int) -> None:
        if self.original is None:
            return
        self.weighted_sum = self.original[token] + self.decay * self.weighted_sum
        self.total_weight = 1.0 + self.decay * self.total_weight
        self.original = None


def run_both(backend, chain_before, targets, decays, steps=25, vocab=40, seed=0):
    """Drive a Sampler and the transcription with the same logits and the same drawn tokens."""
    rng = np.random.default_rng(seed)
    stage = AdaptiveP(np.array(targets), decay=np.array(decays))
    s = Sampler([*chain_before, stage], order="llama.cpp")
    refs = [LlamaAdaptiveP(t, d) for t, d in zip(targets, decays, strict=True)]
    rows = len(targets)
    for step in range(steps):
        z = rng.standard_normal((rows, vocab)) * 2.0
        warped = Sampler(chain_before).logits(z) if chain_before else z
        want = np.stack([ref.apply(warped[r]) for r, ref in enumerate(refs)])
        got = backend.numpy(s.probs(backend.array(z)))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 if backend.is_torch else 1e-12)
        tokens = backend.numpy(s.sample(backend.array(z), seed=np.arange(rows) + 11, step=step))
        for r, ref in enumerate(refs):
            ref.accept(int(tokens[r, 0]))
        ws = backend.numpy(stage.weighted_sum) if backend.is_torch else stage.weighted_sum
        tw = backend.numpy(stage.total_weight) if backend.is_torch else stage.total_weight
        # float32 logits carry float32-rounded probabilities into the state.
        rtol = 1e-5 if backend.dtype_name == "float32" else 1e-12
        np.testing.assert_allclose(ws, [ref.weighted_sum for ref in refs], rtol=rtol)
        np.testing.assert_allclose(tw, [ref.total_weight for ref in refs], rtol=rtol)
    return stage


@on_every_backend
def test_ema_step_by_step_like_llama_cpp(backend):
    stage = run_both(backend, [], targets=[0.3, 0.5, 0.7], decays=[0.9, 0.5, 0.0])
    assert stage.ema is not None


@on_every_backend
def test_after_min_p_the_state_takes_the_truncated_probabilities(backend):
    # llama.cpp's recommended chain: min-p, then adaptive-p on the renormalised candidates.
    run_both(backend, [MinP(0.05)], targets=[0.4, 0.6], decays=[0.9, 0.99], seed=1)


def test_negative_target_is_off_on_its_row():
    z = np.log(np.array([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]]))
    stage = AdaptiveP(np.array([-1.0, 0.35]))
    s = Sampler([stage])
    probs = s.probs(z)
    np.testing.assert_allclose(probs[0], [0.6, 0.3, 0.1], rtol=1e-12)
    assert probs[1].argmax() == 1
    before = stage.weighted_sum.copy()
    s.sample(z, seed=[1, 2])
    assert stage.weighted_sum[0] == before[0]  # the off row keeps its state
    assert stage.weighted_sum[1] != before[1]


def test_initial_state_is_the_target():
    stage = AdaptiveP(0.25, decay=0.75)
    stage(np.zeros((2, 3)))
    np.testing.assert_allclose(stage.weighted_sum, [1.0, 1.0])
    np.testing.assert_allclose(stage.total_weight, [4.0, 4.0])
    np.testing.assert_allclose(stage.ema, [0.25, 0.25])


def test_probs_and_logits_never_change_the_state():
    stage = AdaptiveP(0.5, decay=0.5)
    s = Sampler([TopK(3), stage])
    z = np.log(np.array([[0.5, 0.2, 0.2, 0.1]]))
    s.sample(z, seed=0)
    ws, tw = stage.weighted_sum.copy(), stage.total_weight.copy()
    first = s.probs(z)
    for _ in range(3):
        np.testing.assert_array_equal(s.probs(z), first)
        s.logits(z)
        s.trace(z)
    np.testing.assert_array_equal(stage.weighted_sum, ws)
    np.testing.assert_array_equal(stage.total_weight, tw)


@on_every_backend
def test_draws_at_a_fixed_state_follow_probs(backend):
    rows, z1 = 6000, np.log(np.array([0.45, 0.25, 0.15, 0.1, 0.05]))
    z = backend.array(np.tile(z1, (rows, 1)))
    stage = AdaptiveP(0.4, decay=0.8)
    s = Sampler([stage])
    s.probs(z)
    # Move every row's state away from the start, identically: each "drew" token 0.
    stage.observe(
        backend.array(np.zeros(rows)).to(torch.int64)
        if backend.is_torch
        else np.zeros(rows, dtype=np.int64)
    )
    expected = backend.numpy(s.probs(z))[0]
    assert abs(expected - np.exp(z1)).max() > 0.1  # the transform really reshaped it
    tokens = backend.numpy(s.sample(z, seed=np.arange(rows) + 100)).astype(np.int64)[:, 0]
    fit = goodness_of_fit(np.bincount(tokens, minlength=5), expected)
    assert fit.removed_draws == 0
    assert fit.p_value > 1e-3


@needs_torch
def test_torch_matches_numpy_token_for_token():
    def run(lib):
        stage = AdaptiveP(np.array([0.3, 0.6]), decay=0.9)
        s = Sampler([stage])
        rng = np.random.default_rng(4)
        out = []
        for step in range(15):
            z = rng.standard_normal((2, 30)) * 2
            zz = torch.from_numpy(z) if lib == "torch" else z
            out.append(np.asarray(s.sample(zz, seed=[5, 6], step=step)).tolist())
        ema = stage.ema
        return out, np.asarray(ema.tolist() if lib == "torch" else ema)

    (tok_np, ema_np), (tok_t, ema_t) = run("numpy"), run("torch")
    assert tok_np == tok_t
    np.testing.assert_allclose(ema_t, ema_np, rtol=1e-12)


@on_every_backend
def test_state_lives_with_the_logits(backend):
    stage = AdaptiveP(0.5)
    stage(backend.array(np.zeros((2, 3))))
    if backend.is_torch:
        assert isinstance(stage.weighted_sum, torch.Tensor)
        assert stage.weighted_sum.dtype == torch.float64
    else:
        assert isinstance(stage.weighted_sum, np.ndarray)


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.integers(1, 30)),
        elements=st.integers(-1280, 1280).map(lambda k: k / 64) | st.just(-INF),
    ).filter(lambda x: bool(np.isfinite(x).any(axis=-1).all())),
    st.floats(0.0, 1.0),
    st.integers(-20, 20).map(float),
)
def test_transform_properties(x, target, shift):
    s = Sampler([AdaptiveP(target)])
    probs = s.probs(x)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(probs[~np.isfinite(x)] == 0)  # removed tokens stay removed
    np.testing.assert_array_equal(s.probs(x + shift), probs)  # depends on p only


# -- the chain's rules -----------------------------------------------------------


def test_must_be_last():
    with pytest.raises(ValueError, match="`warpers` must end with AdaptiveP"):
        Sampler([AdaptiveP(0.5), TopK(3)], order="as_given")
    for order in ("transformers", "llama.cpp"):
        assert Sampler([AdaptiveP(0.5), TopK(3)], order=order).warpers[-1].name == "adaptive_p"


def test_sample_n_above_one_is_refused():
    with pytest.raises(ValueError, match="`n` must be 1 with a stateful stage"):
        Sampler([AdaptiveP(0.5)]).sample([0.0, 1.0], n=2, seed=0)


def test_another_batch_size_needs_reset():
    stage = AdaptiveP(0.5)
    s = Sampler([stage])
    s.sample(np.zeros((3, 4)), seed=0)
    with pytest.raises(ValueError, match="`logits` must have 3 rows"):
        s.probs(np.zeros((2, 4)))
    stage.reset()
    assert stage.ema is None
    assert s.sample(np.zeros((2, 4)), seed=0).shape == (2, 1)
    np.testing.assert_allclose(stage.total_weight, [10.0, 10.0])  # 1 + 0.9 * 10


def test_from_options_puts_it_last():
    s = Sampler.from_options(min_p=0.05, adaptive_target=0.4, adaptive_decay=0.8)
    last = s.warpers[-1]
    assert isinstance(last, AdaptiveP)
    assert last.target == 0.4
    assert last.decay == 0.8


def test_per_row_target_of_batch_shape():
    stage = AdaptiveP(np.array([[0.2, 0.4], [0.6, 0.8]]))
    stage(np.zeros((2, 2, 5)))
    np.testing.assert_allclose(stage.ema, [0.2, 0.4, 0.6, 0.8])
    stage.observe(np.array([0, 1, 2, 3]))
    assert stage.ema.shape == (4,)


# -- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"target": float("nan")}, ValueError, "target"),
        ({"target": 1.5}, ValueError, "target"),
        ({"target": float("-inf")}, ValueError, "target"),
        ({"target": "0.5"}, TypeError, "target"),
        ({"target": True}, TypeError, "target"),
        ({"target": 0.5, "decay": -0.1}, ValueError, "decay"),
        ({"target": 0.5, "decay": 0.995}, ValueError, "decay"),
        ({"target": 0.5, "decay": float("nan")}, ValueError, "decay"),
        ({"target": 0.5, "decay": None}, TypeError, "decay"),
    ],
)
def test_bad_parameters(kwargs, error, name):
    with pytest.raises(error, match=f"`{name}` must be"):
        AdaptiveP(**kwargs)


def test_per_row_target_of_the_wrong_shape():
    with pytest.raises(ValueError, match="`target` must be a scalar or have one value per row"):
        AdaptiveP(np.array([0.1, 0.2]))(np.zeros((3, 4)))


def test_observe_without_a_distribution_or_with_bad_tokens():
    stage = AdaptiveP(0.5)
    with pytest.raises(ValueError, match=r"AdaptiveP\.observe needs the distribution"):
        stage.observe(np.array([0]))
    stage(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`tokens` must hold one token id per row"):
        stage.observe(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="`tokens` must be token ids in"):
        stage.observe(np.array([0, 3]))
