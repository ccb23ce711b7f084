"""History-aware penalties and biases against transformers, llama.cpp's formula and properties.

References: transformers' own processors (RepetitionPenaltyLogitsProcessor,
NoRepeatNGramLogitsProcessor, SequenceBiasLogitsProcessor, run on the same
input), a float64 transcription of llama.cpp's ``llama_sampler_penalties``
(accept ring buffer + apply) and its own expected numbers from
``tests/test-sampling.cpp``, and brute-force Python per-row loops.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from thermoscope.sampling import Sampler, Temperature, TopK, goodness_of_fit
from thermoscope.sampling.penalties import (
    FrequencyPenalty,
    LogitBias,
    NoRepeatNGram,
    PresencePenalty,
    RepetitionPenalty,
    SequenceBias,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import (  # noqa: E402  (after the importorskip above)
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    SequenceBiasLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
)


def logits(rng: np.random.Generator, b: int, v: int, *, masked: bool = True) -> np.ndarray:
    """float32 logits with ties (rounded values), zeros and some -inf entries."""
    z = np.round(rng.normal(scale=2.0, size=(b, v)), 1).astype(np.float32)
    if masked:
        z[rng.random((b, v)) < 0.1] = -np.inf
        z[:, 0] = 1.5  # every row keeps a finite token
    return z


def histories(rng: np.random.Generator, b: int, v: int, length: int) -> np.ndarray:
    """(B, L) ids from a small alphabet, so tokens and n-grams repeat."""
    return rng.integers(0, min(v, 6), size=(b, length)) + rng.integers(0, 2, size=(b, 1)) * 3


def ragged(rng: np.random.Generator, b: int, v: int) -> list[list[int]]:
    return [histories(rng, 1, v, int(n))[0].tolist() for n in rng.integers(0, 25, size=b)]


def hf(processor, ids, z: np.ndarray) -> np.ndarray:
    """transformers' processor on (1 or B, L) ids and float32 scores, back in numpy."""
    ids_t = torch.as_tensor(np.asarray(ids, dtype=np.int64).reshape(len(z), -1))
    return processor(ids_t, torch.tensor(z)).numpy()


def per_row(processor, hist: list[list[int]], z: np.ndarray) -> np.ndarray:
    return np.concatenate([hf(processor, [h], z[r : r + 1]) for r, h in enumerate(hist)])


def same(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-6) -> None:
    """Same kept set (finite entries) and values to ``rtol``."""
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(ref))
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=1e-6)


# -- parity with transformers -------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.3, 7.0])
def test_repetition_matches_transformers(seed, penalty):
    rng = np.random.default_rng(seed)
    z, ids = logits(rng, 5, 40), histories(rng, 5, 40, 30)
    ours = RepetitionPenalty(penalty)(z, history=ids)
    # Computed in float32 with the penalty rounded to float32: bit for bit.
    np.testing.assert_array_equal(ours, hf(RepetitionPenaltyLogitsProcessor(penalty), ids, z))


def test_repetition_per_row_penalty_and_ragged_rows():
    rng = np.random.default_rng(7)
    z, hist = logits(rng, 6, 30), ragged(rng, 6, 30)
    pens = np.array([1.2, 0.7, 1.0, 3.0, 1.5, 2.0])
    ours = RepetitionPenalty(pens)(z, history=hist)
    for r, h in enumerate(hist):
        ref = hf(RepetitionPenaltyLogitsProcessor(float(pens[r])), [h], z[r : r + 1])
        np.testing.assert_array_equal(ours[r : r + 1], ref)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_no_repeat_ngram_matches_transformers(n, seed):
    rng = np.random.default_rng(seed)
    z, ids = logits(rng, 5, 20), histories(rng, 5, 20, 25)
    ours = NoRepeatNGram(n)(z, history=ids)
    np.testing.assert_array_equal(ours, hf(NoRepeatNGramLogitsProcessor(n), ids, z))
    hist = ragged(rng, 5, 20)
    np.testing.assert_array_equal(
        NoRepeatNGram(n)(z, history=hist), per_row(NoRepeatNGramLogitsProcessor(n), hist, z)
    )


def sequence_biases(rng: np.random.Generator, ids: np.ndarray) -> dict[tuple[int, ...], float]:
    """Sequences that do and do not match the rows' ends, some sharing a last token."""
    out: dict[tuple[int, ...], float] = {(1,): 1.5, (4,): -2.0, (2, 3): 0.25}
    for r in range(len(ids)):
        k = int(rng.integers(1, 4))
        out[(*ids[r, -k:].tolist(), int(rng.integers(0, 8)))] = float(rng.normal())
    out[(*ids[0, -2:].tolist(), 1)] = -0.75  # ends in 1, as the single (1,) does
    out[tuple(rng.integers(0, 6, size=40).tolist())] = 3.0  # longer than every history
    return out


@pytest.mark.parametrize("seed", range(4))
def test_sequence_bias_matches_transformers(seed):
    rng = np.random.default_rng(seed)
    z, ids = logits(rng, 4, 50), histories(rng, 4, 50, 12)
    bias = sequence_biases(rng, ids)
    same(SequenceBias(bias)(z, history=ids), hf(SequenceBiasLogitsProcessor(bias), ids, z))
    hist = [ids[0].tolist(), [], ids[2, -2:].tolist(), ids[3, -1:].tolist()]
    same(SequenceBias(bias)(z, history=hist), per_row(SequenceBiasLogitsProcessor(bias), hist, z))


def test_sequence_bias_list_form_and_minus_inf_ban():
    z = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    listed = [[[3], -np.inf], [[1, 2], 0.5]]
    ours = SequenceBias(listed)(z, history=[[1]])
    ref = hf(SequenceBiasLogitsProcessor([[[3], -float("inf")], [[1, 2], 0.5]]), [[1]], z)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(ours, [[1.0, 2.0, 3.5, -np.inf]])


@pytest.mark.parametrize("seed", range(3))
def test_float16_matches_transformers_in_float32(seed):
    """float16 logits compute in float32: transformers on the widened input, rounded back."""
    rng = np.random.default_rng(seed)
    z32, ids = logits(rng, 4, 30), histories(rng, 4, 30, 20)
    z16 = z32.astype(np.float16)
    wide = z16.astype(np.float32)
    bias = sequence_biases(rng, ids)
    cases = [
        (RepetitionPenalty(1.3), RepetitionPenaltyLogitsProcessor(1.3)),
        (NoRepeatNGram(2), NoRepeatNGramLogitsProcessor(2)),
        (SequenceBias(bias), SequenceBiasLogitsProcessor(bias)),
    ]
    for ours, ref in cases:
        got = ours(z16, history=ids)
        assert got.dtype == np.float16
        want = hf(ref, ids, wide).astype(np.float16)
        same(got.astype(np.float32), want.astype(np.float32), rtol=1e-3)
        got_t = ours(torch.tensor(z16), history=torch.tensor(ids))
        assert got_t.dtype == torch.float16
        np.testing.assert_array_equal(got_t.float().numpy(), got.astype(np.float32))


@pytest.mark.parametrize("seed", range(3))
def test_sampler_chain_matches_transformers_processor_list(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(4, 64)).astype(np.float32)  # no ties: top-k cuts agree
    ids = histories(rng, 4, 64, 30)
    bias = sequence_biases(rng, ids)
    chain = Sampler(
        [TopK(8), Temperature(0.7), NoRepeatNGram(2), RepetitionPenalty(1.3), SequenceBias(bias)]
    )
    ref = LogitsProcessorList(
        [
            SequenceBiasLogitsProcessor(bias),
            RepetitionPenaltyLogitsProcessor(1.3),
            NoRepeatNGramLogitsProcessor(2),
            TemperatureLogitsWarper(0.7),
            TopKLogitsWarper(8),
        ]
    )
    same(chain.logits(z, history=ids), hf(ref, ids, z))
    got_t = chain.logits(torch.tensor(z), history=torch.tensor(ids))
    same(got_t.numpy(), hf(ref, ids, z))


# -- llama.cpp's penalties sampler ------------------------------------------------------


def llama_penalties(z: np.ndarray, tokens: list[int], last_n: int, rep, freq, pres) -> np.ndarray:
    """float64 transcription of llama_sampler_penalties_accept / _apply (llama-sampler.cpp).

    ``last_n`` < 0 here means "no ring limit" (llama.cpp's server maps -1 to
    the context size, which holds the whole history).
    """
    if last_n == 0 or (rep == 1.0 and freq == 0.0 and pres == 0.0):
        return z.astype(np.float64)
    ring: list[int] = []
    count: dict[int, int] = {}
    for t in tokens:  # llama_sampler_penalties_accept
        count[t] = count.get(t, 0) + 1
        if last_n > 0 and len(ring) >= last_n:
            old = ring.pop(0)
            count[old] -= 1
            if count[old] == 0:
                del count[old]
        ring.append(t)
    out = z.astype(np.float64)
    for t, c in count.items():  # llama_sampler_penalties_apply
        out[t] = out[t] * rep if out[t] <= 0 else out[t] / rep
        out[t] -= c * freq + float(c > 0) * pres
    return out


@pytest.mark.parametrize("last_n", [None, -1, 0, 1, 5, 64])
@pytest.mark.parametrize(
    "params", [(1.1, 0.0, 0.0), (1.0, 0.4, 0.0), (1.3, 0.2, 0.6), (0.8, -0.5, -1.0)]
)
def test_penalties_chain_matches_llama_cpp(last_n, params):
    rep, freq, pres = params
    rng = np.random.default_rng(11)
    z = logits(rng, 5, 30)
    hist = ragged(rng, 5, 30)
    chain = Sampler(
        [
            PresencePenalty(pres, last_n=last_n),
            RepetitionPenalty(rep, last_n=last_n),
            FrequencyPenalty(freq, last_n=last_n),
        ],
        order="llama.cpp",
    )
    assert [w.name for w in chain.warpers] == [
        "repetition_penalty",
        "frequency_penalty",
        "presence_penalty",
    ]
    ring = -1 if last_n is None else last_n
    want = np.stack([llama_penalties(z[r], h, ring, rep, freq, pres) for r, h in enumerate(hist)])
    same(chain.logits(z, history=hist), want)
    same(chain.logits(torch.tensor(z), history=hist).numpy(), want)
    opts = Sampler.from_options(
        repetition_penalty=rep,
        frequency_penalty=freq,
        presence_penalty=pres,
        penalty_last_n=last_n,
    )
    same(opts.logits(z, history=hist), want)


@pytest.mark.parametrize(
    ("last", "expected", "rep", "freq", "pres"),
    [  # llama.cpp tests/test-sampling.cpp, test_penalties: probabilities after penalties + dist
        ([0], [0, 0.25, 0.25, 0.25, 0.25], 50.0, 0.0, 0.0),
        ([0, 1, 2], [0, 0, 0, 0.5, 0.5], 50.0, 0.0, 0.0),
        ([0, 1, 2, 0, 0], [0, 0, 0, 0.5, 0.5], 50.0, 0.0, 0.0),
        ([0], [0.000011, 0.249997, 0.249997, 0.249997, 0.249997], 1.0, 5.0, 5.0),
        ([0, 1, 2], [0.000023, 0.000023, 0.000023, 0.499966, 0.499966], 1.0, 5.0, 5.0),
        ([0, 1, 2, 0, 0], [0.000000, 0.000023, 0.000023, 0.499977, 0.499977], 1.0, 5.0, 5.0),
    ],
)
def test_llama_cpp_own_expected_probabilities(last, expected, rep, freq, pres):
    stages = [RepetitionPenalty(rep), FrequencyPenalty(freq), PresencePenalty(pres)]
    probs = Sampler(stages, order="llama.cpp").probs(np.log(np.full(5, 0.2)), history=last)
    # test-sampling.cpp compares with an absolute tolerance of 1e-5.
    np.testing.assert_allclose(probs, expected, atol=1e-5)


# -- frequency, presence, logit bias against direct loops ---------------------------------


@pytest.mark.parametrize("last_n", [None, 3, 10])
def test_frequency_and_presence_against_loops(last_n):
    rng = np.random.default_rng(3)
    z, hist = logits(rng, 6, 25), ragged(rng, 6, 25)
    pen = np.array([0.5, -0.25, 0.0, 2.0, 1.0, 0.1])
    freq = FrequencyPenalty(pen, last_n=last_n)(z, history=hist)
    pres = PresencePenalty(pen, last_n=last_n)(z, history=hist)
    for r, h in enumerate(hist):
        window = h if last_n is None else h[-last_n:]
        want_f, want_p = z[r].astype(np.float64), z[r].astype(np.float64)
        for t in set(window):
            want_f[t] -= pen[r] * window.count(t)
            want_p[t] -= pen[r]
        same(freq[r], want_f)
        same(pres[r], want_p)


def test_logit_bias_adds_and_bans():
    rng = np.random.default_rng(5)
    z = logits(rng, 3, 12)
    bias = {0: 1.5, 3: -2.0, np.int64(7): -np.inf, 11: 100}
    want = z.astype(np.float64)
    for t, b in bias.items():
        want[:, int(t)] += b
    same(LogitBias(bias)(z), want)
    same(LogitBias(bias)(torch.tensor(z)).numpy(), want)
    np.testing.assert_array_equal(LogitBias({})(z), z)


def test_biased_chain_draws_follow_their_probabilities():
    """Chi-square of seeded draws against softmax of independently biased logits."""
    z = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    chain = Sampler([LogitBias({0: 1.0, 3: -0.5}), RepetitionPenalty(1.5)])
    hist = [2, 2, 3]
    want = z + np.array([1.0, 0.0, 0.0, -0.5])
    for t in (2, 3):
        want[t] = want[t] * 1.5 if want[t] < 0 else want[t] / 1.5
    p = np.exp(want - want.max())
    p /= p.sum()
    draws = chain.sample(z, n=20_000, seed=1, history=hist)
    fit = goodness_of_fit(np.bincount(draws, minlength=4), p)
    assert fit.p_value is not None
    assert fit.p_value > 1e-3


# -- properties -------------------------------------------------------------------------

small = st.integers(min_value=0, max_value=7)


@given(
    st.lists(st.lists(small, max_size=20), min_size=1, max_size=4),
    st.sampled_from([None, 0, 1, 4]),
    st.floats(0.1, 5.0),
    st.integers(0, 2**32 - 1),
)
def test_only_tokens_in_the_window_change(hist, last_n, pen, seed):
    z = logits(np.random.default_rng(seed), len(hist), 8)
    for stage in (
        RepetitionPenalty(pen, last_n=last_n),
        FrequencyPenalty(pen, last_n=last_n),
        PresencePenalty(pen, last_n=last_n),
    ):
        out = stage(z, history=hist)
        for r, h in enumerate(hist):
            window = set(h if last_n is None else h[max(0, len(h) - last_n) :] if last_n else [])
            unseen = np.setdiff1d(np.arange(8), list(window))
            np.testing.assert_array_equal(out[r, unseen], z[r, unseen])  # never seen: unchanged
            assert np.all(np.isneginf(out[r]) == np.isneginf(z[r]))


@given(st.lists(st.lists(small, max_size=20), min_size=1, max_size=4), st.integers(0, 2**32 - 1))
def test_neutral_penalties_are_the_identity(hist, seed):
    z = logits(np.random.default_rng(seed), len(hist), 8)
    for stage in (RepetitionPenalty(1.0), FrequencyPenalty(0.0), PresencePenalty(0.0)):
        np.testing.assert_array_equal(stage(z, history=hist), z)
    np.testing.assert_array_equal(RepetitionPenalty(5.0, last_n=0)(z, history=hist), z)


def banned_by_loop(h: list[int], n: int) -> set[int]:
    """The tokens that complete an n-gram of ``h``, by a dictionary of n-grams."""
    if len(h) < n:
        return set()
    seen: dict[tuple[int, ...], set[int]] = {}
    for i in range(len(h) - n + 1):
        seen.setdefault(tuple(h[i : i + n - 1]), set()).add(h[i + n - 1])
    return seen.get(tuple(h[len(h) - n + 1 :]), set())


@given(
    st.lists(st.lists(st.integers(0, 3), max_size=25), min_size=1, max_size=4),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
)
def test_no_repeat_ngram_bans_exactly_the_repeats(hist, n, seed):
    z = logits(np.random.default_rng(seed), len(hist), 6)
    for out in (
        NoRepeatNGram(n)(z, history=hist),
        NoRepeatNGram(n)(torch.tensor(z), history=hist).numpy(),
    ):
        for r, h in enumerate(hist):
            banned = sorted(banned_by_loop(h, n))
            assert np.all(np.isneginf(out[r, banned]))  # no banned continuation survives
            rest = np.setdiff1d(np.arange(6), banned)
            np.testing.assert_array_equal(out[r, rest], z[r, rest])


# -- torch ------------------------------------------------------------------------------

STAGES = [
    RepetitionPenalty(np.array([1.2, 0.8, 2.0, 1.0]), last_n=7),
    FrequencyPenalty(np.array([0.5, -0.3, 0.0, 1.0])),
    PresencePenalty(0.7, last_n=3),
    NoRepeatNGram(2),
    LogitBias({1: 0.5, 4: -np.inf}),
    SequenceBias({(2,): 1.0, (0, 1): -1.5, (3, 3, 2): 0.5}),
]


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_torch_equals_numpy_and_keeps_dtype(stage, dtype):
    rng = np.random.default_rng(2)
    z = logits(rng, 4, 16)
    hist = ragged(rng, 4, 6)
    zt = torch.tensor(z, dtype=getattr(torch, dtype))
    got = stage(zt, history=hist)
    assert got.dtype == zt.dtype
    assert got.device == zt.device
    assert got.shape == zt.shape
    # numpy on the same values, in the same compute dtype (float32 for half precision)
    wide = zt.double() if dtype == "float64" else zt.float()
    want = torch.tensor(stage(wide.numpy(), history=hist)).to(zt.dtype)
    np.testing.assert_array_equal(got.double().numpy(), want.double().numpy())
    assert torch.equal(zt, torch.tensor(z, dtype=zt.dtype))  # input untouched


def test_input_is_not_modified_and_batch_shapes_work():
    rng = np.random.default_rng(4)
    z = logits(rng, 4, 10).reshape(2, 2, 10)
    keep = z.copy()
    hist = histories(rng, 4, 10, 8).reshape(2, 2, 8)
    shaped = [  # per-row parameters take the batch shape
        RepetitionPenalty(STAGES[0].penalty.reshape(2, 2), last_n=7),
        FrequencyPenalty(STAGES[1].penalty.reshape(2, 2)),
        *STAGES[2:],
    ]
    for stage, same_on_rows in zip(shaped, STAGES, strict=True):
        out = stage(z, history=hist)
        assert out.shape == z.shape
        np.testing.assert_array_equal(z, keep)
        flat = same_on_rows(z.reshape(4, 10), history=hist.reshape(4, 8))
        np.testing.assert_array_equal(out.reshape(4, 10), flat)


def test_integer_logits_and_empty_histories():
    z = np.array([[3, -1, 0, 2]])
    np.testing.assert_array_equal(RepetitionPenalty(2.0)(z, history=[[0, 1]]), [[1.5, -2, 0, 2]])
    for stage in STAGES[:4]:  # a row without tokens is left as it is
        np.testing.assert_array_equal(stage(np.zeros((4, 5)), history=[[]] * 4), np.zeros((4, 5)))
    seq = SequenceBias({(2,): 1.0, (0, 1): -1.5})  # an empty row matches no prefix
    want = [[0, 0, 1], [0, -1.5, 1]]
    np.testing.assert_array_equal(seq(np.zeros((2, 3)), history=[[], [0]]), want)


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1.0, np.nan, np.inf, [1.2, 0.0]])
def test_repetition_penalty_must_be_positive_and_finite(value):
    with pytest.raises(ValueError, match=r"^`penalty` must be a finite number > 0, got "):
        RepetitionPenalty(value)


@pytest.mark.parametrize("cls", [FrequencyPenalty, PresencePenalty])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_additive_penalties_must_be_finite(cls, value):
    with pytest.raises(ValueError, match=r"^`penalty` must be a finite number, got "):
        cls(value)


@pytest.mark.parametrize("cls", [RepetitionPenalty, FrequencyPenalty, PresencePenalty])
def test_penalty_kinds_and_last_n(cls):
    with pytest.raises(TypeError, match=r"^`penalty` must be a finite number"):
        cls("1.2")
    with pytest.raises(TypeError, match=r"^`penalty` must be a finite number"):
        cls(True)
    with pytest.raises(ValueError, match=r"^`last_n` must be an integer >= -1, got -2\.$"):
        cls(1.0, last_n=-2)
    with pytest.raises(TypeError, match=r"^`last_n` must be"):
        cls(1.0, last_n=2.5)
    with pytest.raises(TypeError, match=r"^`last_n` must be None or a single integer"):
        cls(1.0, last_n=[1, 2])
    with pytest.raises(ValueError, match=r"^`penalty` must be a scalar or have one value per row"):
        cls(np.array([1.0, 1.0, 1.0]))(np.zeros((2, 4)), history=[[0], [1]])


@pytest.mark.parametrize("n", [0, -3])
def test_ngram_size_at_least_one(n):
    with pytest.raises(ValueError, match=rf"^`n` must be an integer >= 1, got {n}\.$"):
        NoRepeatNGram(n)
    with pytest.raises(TypeError, match=r"^`n` must be"):
        NoRepeatNGram(2.5)


def test_logit_bias_bad_input():
    with pytest.raises(TypeError, match=r"^`bias` must be a mapping"):
        LogitBias([(1, 2.0)])
    with pytest.raises(
        TypeError, match=r"^`bias` keys must be token ids \(integers >= 0\), got '5'\.$"
    ):
        LogitBias({"5": 1.0})
    with pytest.raises(TypeError, match=r"^`bias` keys must be token ids"):
        LogitBias({True: 1.0})
    with pytest.raises(
        ValueError, match=r"^`bias` keys must be token ids \(integers >= 0\), got -1\.$"
    ):
        LogitBias({-1: 1.0})
    with pytest.raises(
        ValueError, match=r"^`bias` values must be finite numbers or -inf, got nan\.$"
    ):
        LogitBias({1: float("nan")})
    with pytest.raises(
        ValueError, match=r"^`bias` values must be finite numbers or -inf, got inf\.$"
    ):
        LogitBias({1: float("inf")})
    with pytest.raises(TypeError, match=r"^`bias` values must be numbers"):
        LogitBias({1: "2"})
    with pytest.raises(ValueError, match=r"^`bias` token ids must be in \[0, 4\), got 4\.$"):
        LogitBias({4: 1.0})(np.zeros(4))
    with pytest.raises(ValueError, match=r"^`bias` token ids must be in \[0, 4\), got 9\.$"):
        LogitBias({9: 1.0})(torch.zeros(4))


def test_sequence_bias_bad_input():
    with pytest.raises(ValueError, match=r"^`sequence_bias` must be a non-empty mapping"):
        SequenceBias({})
    with pytest.raises(TypeError, match=r"^`sequence_bias` must be a mapping"):
        SequenceBias(3)
    with pytest.raises(
        ValueError,
        match=r"^`sequence_bias` keys must be non-empty tuples of token ids, got \(\)\.$",
    ):
        SequenceBias({(): 1.0})
    with pytest.raises(TypeError, match=r"^`sequence_bias` keys must be non-empty tuples"):
        SequenceBias({5: 1.0})
    with pytest.raises(TypeError, match=r"^`sequence_bias` keys must be token ids"):
        SequenceBias({(1, 2.0): 1.0})
    with pytest.raises(
        ValueError, match=r"^`sequence_bias` keys must be token ids \(integers >= 0\), got -2\.$"
    ):
        SequenceBias({(1, -2): 1.0})
    with pytest.raises(ValueError, match=r"^`sequence_bias` values must be finite numbers or -inf"):
        SequenceBias({(1,): float("nan")})
    with pytest.raises(ValueError, match=r"^`sequence_bias` must give each sequence once"):
        SequenceBias([[[1, 2], 1.0], [[1, 2], 2.0]])
    with pytest.raises(
        TypeError, match=r"^`sequence_bias` entries must be \[token ids, bias\] pairs"
    ):
        SequenceBias([[1, 2]])
    with pytest.raises(
        ValueError, match=r"^`sequence_bias` token ids must be in \[0, 3\), got 7\.$"
    ):
        SequenceBias({(7, 1): 1.0})(np.zeros(3), history=[1])


HISTORY_STAGES = [s for s in STAGES if s.needs_history]


@pytest.mark.parametrize("stage", HISTORY_STAGES, ids=lambda s: type(s).__name__)
def test_history_required_checked_and_sized(stage):
    z = np.zeros((2, 5))
    with pytest.raises(ValueError, match=rf"^`history` is required by {type(stage).__name__}"):
        stage(z)
    with pytest.raises(ValueError, match=r"^`history` is required by"):
        Sampler([stage]).logits(z)
    with pytest.raises(ValueError, match=r"^`history` must have one row of token ids per row"):
        stage(z, history=np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^`history` must have one sequence per row of logits"):
        Sampler([stage]).logits(z, history=[[1]])
    with pytest.raises(ValueError, match=r"^`history` ids must be in \[0, 5\), got 5\.$"):
        stage(z, history=[[1], [5]])
    with pytest.raises(ValueError, match=r"^`history` ids must be in \[0, 5\), got -3\.$"):
        stage(torch.zeros(2, 5), history=torch.tensor([[1], [-3]]))
    with pytest.raises(TypeError, match=r"^`history` must hold integer token ids"):
        stage(z, history=np.zeros((2, 3)))
