"""The fast paths of the history stages: counts in the rows, writes into owned rows, sparse DRY.

Every stage of :mod:`thermoscope.sampling.penalties` and :mod:`thermoscope.sampling.dry`
has ``apply_into(out, ctx)``, which writes into rows the caller owns, so that a
chain copies the logits once for a run of them. These tests check, against
float64 loops written here (transcriptions of llama.cpp / transformers) and
the llama.cpp DRY transcription of ``test_sampling_dry``:

- the in-buffer occurrence counts (numpy ``np.add.at``, torch ``scatter_add_``),
  in one pass and in slices;
- ``apply_into`` == ``apply_in`` and a run of stages written into one copy ==
  the chain, on every backend, with -inf entries, ties, padding (ragged
  histories), empty rows, per-row parameters, one row and many rows;
- torch DRY (dense first lengths, then sparse blocks) on long repeats.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import on_every_backend, on_torch_backends, torch
from test_sampling_dry import expected_rows, repetitive_history
from thermoscope.sampling import Sampler, Temperature, TopK
from thermoscope.sampling import _penalty_kernels as kernels
from thermoscope.sampling._context import Context, as_history
from thermoscope.sampling._input import prepare
from thermoscope.sampling.dry import DRY, match_lengths
from thermoscope.sampling.penalties import (
    FrequencyPenalty,
    LogitBias,
    NoRepeatNGram,
    PresencePenalty,
    RepetitionPenalty,
    SequenceBias,
)

# -- independent references (float64 loops over each row's tokens) -----------------------


def loop_penalties(z: np.ndarray, history: list[int], rep: float, freq: float, pres: float):
    """llama.cpp's penalties sampler on one row: each distinct token once, in float64."""
    out = np.array(z, dtype=np.float64)
    counts: dict[int, int] = {}
    for t in history:
        counts[t] = counts.get(t, 0) + 1
    for t, c in counts.items():
        out[t] = out[t] * rep if out[t] <= 0 else out[t] / rep
        out[t] -= c * freq + pres
    return out


def loop_ngram(z: np.ndarray, history: list[int], n: int) -> np.ndarray:
    """transformers' NoRepeatNGram on one row: ban what follows an earlier copy of the prefix."""
    out = np.array(z, dtype=np.float64)
    if len(history) < n:
        return out
    prefix = tuple(history[len(history) - n + 1 :])
    for s in range(len(history) - n + 1):
        if tuple(history[s : s + n - 1]) == prefix:
            out[history[s + n - 1]] = -np.inf
    return out


def rows_with_ties_and_minus_inf(rng: np.random.Generator, b: int, v: int) -> np.ndarray:
    z = rng.normal(size=(b, v)).round(1)  # rounding: ties
    z[rng.random((b, v)) < 0.15] = -np.inf
    z[:, 0] = np.maximum(z[:, 0], 0.0)  # every row keeps a finite entry
    return z


def ragged_histories(rng: np.random.Generator, b: int, v: int, longest: int) -> list[list[int]]:
    lengths = rng.integers(0, longest + 1, size=b)
    lengths[0] = longest  # one full row; the others padded (some empty)
    return [repetitive_history(rng, int(n), v) for n in lengths]


def context_for(z, histories) -> tuple:
    rows = prepare(z)
    return rows.z, Context(rows.batch_shape, as_history(histories, rows))


def take_rows(result) -> np.ndarray:
    if torch is not None and isinstance(result, torch.Tensor):
        return result.to("cpu", torch.float64).numpy(force=True)
    return np.asarray(result, dtype=np.float64)


# -- counts in the rows ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 6), min_size=1, max_size=30), min_size=1, max_size=4),
    st.sampled_from([None, 1, 2, 3, 7]),
)
def test_counts_match_a_loop_in_one_pass_and_in_slices(histories, chunk):
    vocab = 7
    h = as_history(histories, None, batch=len(histories), vocab=vocab)
    real = h.ids >= 0
    flat = np.where(real, h.ids, 0) + (np.arange(len(histories)) * vocab)[:, None]
    view = np.full(len(histories) * vocab, 5.0, dtype=np.float32)
    got = kernels.counts(view, flat, real, chunk)
    for r, row in enumerate(histories):
        for c in range(h.width):
            token = flat[r, c] - r * vocab
            assert got[r, c] == row.count(token)
    if torch is not None:
        from thermoscope.sampling import _penalty_kernels_torch as kt

        out = torch.full((len(histories), vocab), 5.0, dtype=torch.float32)
        idx = torch.as_tensor(flat - (np.arange(len(histories)) * vocab)[:, None])
        got_t = kt.counts(out, idx, torch.as_tensor(real), chunk)
        np.testing.assert_array_equal(take_rows(got_t), got)


def test_exact_count_limits_are_the_mantissa_bounds():
    assert kernels.exact_count_limit(np.dtype(np.float32)) == 2**24
    assert kernels.exact_count_limit(np.dtype(np.float64)) == 2**53
    assert kernels.exact_count_limit(np.dtype(np.float16)) == 2**11
    # The bound is tight: the next integer is not representable.
    assert np.float32(2**24 + 1) == np.float32(2**24)
    if torch is not None:
        from thermoscope.sampling import _penalty_kernels_torch as kt

        assert kt.exact_count_limit(torch.float32) == 2**24
        assert kt.exact_count_limit(torch.bfloat16) == 2**8


@pytest.mark.parametrize("seed", range(4))
def test_frequent_tokens_with_long_histories_match_llama_cpp_loop(seed):
    rng = np.random.default_rng(seed)
    b, v = 3, 40
    z = rows_with_ties_and_minus_inf(rng, b, v)
    # Few distinct tokens, thousands of occurrences each.
    histories = [list(rng.integers(0, 5, size=int(rng.integers(1, 3000)))) for _ in range(b)]
    stages = [RepetitionPenalty(1.3), FrequencyPenalty(0.01), PresencePenalty(-0.4)]
    got = Sampler(stages).logits(z, history=histories)
    want = np.stack([loop_penalties(z[r], histories[r], 1.3, 0.01, -0.4) for r in range(b)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


# -- apply_into == apply_in; one copy for a run of stages ---------------------------------

STAGES = [
    RepetitionPenalty(np.array([1.5, 0.7, 1.0, 2.0, 1.2])),
    RepetitionPenalty(1.3, last_n=3),
    FrequencyPenalty(np.array([0.3, -0.2, 0.0, 1.0, 0.5])),
    FrequencyPenalty(0.5, last_n=7),
    PresencePenalty(np.array([0.5, 1.0, -1.0, 0.0, 0.25])),
    PresencePenalty(0.4, last_n=1),
    NoRepeatNGram(1),
    NoRepeatNGram(2),
    NoRepeatNGram(3),
    LogitBias({0: 1.5, 3: -np.inf, 7: -0.25}),
    SequenceBias({(2,): 0.5, (1, 4): -2.0, (3, 3, 5): 1.0}),
    DRY(np.array([0.8, 0.0, 1.5, 0.3, 1.0]), allowed_length=1, sequence_breakers=[(6,)]),
    DRY(0.8, base=1.3, allowed_length=0, sequence_breakers=()),
]


@on_every_backend
@pytest.mark.parametrize("stage", STAGES, ids=lambda s: f"{type(s).__name__}")
@pytest.mark.parametrize("seed", range(3))
def test_apply_into_writes_what_apply_in_returns(backend, stage, seed):
    rng = np.random.default_rng(seed)
    b, v = 5, 9
    z = rows_with_ties_and_minus_inf(rng, b, v)
    histories = ragged_histories(rng, b, v, 25)
    x = backend.array(z)
    rows, ctx = context_for(x, histories)
    before = take_rows(rows)
    want = stage.apply_in(rows, ctx)
    np.testing.assert_array_equal(take_rows(rows), before)  # apply_in leaves its input
    out = rows.clone() if backend.is_torch else rows.copy()
    got = stage.apply_into(out, ctx)
    assert got is out  # written in place (contiguous rows)
    backend.check(got)
    np.testing.assert_array_equal(take_rows(got), take_rows(want))


@on_every_backend
@pytest.mark.parametrize("b", [1, 64])
def test_a_run_written_into_one_copy_equals_the_chain_and_the_loops(backend, b):
    rng = np.random.default_rng(b)
    v = 50
    z = rows_with_ties_and_minus_inf(rng, b, v)
    histories = ragged_histories(rng, b, v, 200)
    rep = rng.uniform(0.5, 2.0, size=b)
    stages = [RepetitionPenalty(rep), FrequencyPenalty(0.1), PresencePenalty(0.3), NoRepeatNGram(2)]
    x = backend.array(z)
    chain = Sampler(stages, order="as_given").logits(x, history=histories)
    rows, ctx = context_for(x, histories)
    out = rows.clone() if backend.is_torch else rows.copy()
    for stage in stages:
        out = stage.apply_into(out, ctx)
    backend.check(out)
    np.testing.assert_array_equal(take_rows(out), take_rows(chain))
    want = np.stack(
        [
            loop_ngram(loop_penalties(z[r], histories[r], rep[r], 0.1, 0.3), histories[r], 2)
            for r in range(b)
        ]
    )
    tol = 1e-5 if backend.dtype_name == "float32" else 1e-12
    np.testing.assert_allclose(take_rows(out), want, rtol=tol, atol=tol)


def test_numpy_rows_that_are_not_contiguous_are_handled():
    rng = np.random.default_rng(3)
    z = rows_with_ties_and_minus_inf(rng, 4, 12)
    histories = ragged_histories(rng, 4, 12, 30)
    rows, ctx = context_for(z, histories)
    dry = DRY(0.5, allowed_length=1, sequence_breakers=())
    for stage in (RepetitionPenalty(1.4), FrequencyPenalty(0.2), PresencePenalty(0.1), dry):
        want = stage.apply_in(rows, ctx)
        fortran = np.asfortranarray(rows)
        got = stage.apply_into(fortran, ctx)
        np.testing.assert_array_equal(got, want)
        strided = np.zeros((4, 24))[:, ::2]
        strided[...] = rows
        np.testing.assert_array_equal(stage.apply_into(strided, ctx), want)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32_and_returned_in_its_dtype(dtype):
    if dtype == "bfloat16" and torch is None:
        pytest.skip("needs torch")
    rng = np.random.default_rng(8)
    z = rng.normal(size=(3, 20))
    histories = ragged_histories(rng, 3, 20, 40)
    stage = FrequencyPenalty(0.25)
    if dtype == "float16":
        x = z.astype(np.float16)
        got = stage(x, history=histories)
        assert got.dtype == np.float16
        want = stage(x.astype(np.float32), history=histories).astype(np.float16)
        np.testing.assert_array_equal(got, want)
    else:
        x = torch.tensor(z, dtype=torch.bfloat16)
        got = stage(x, history=histories)
        assert got.dtype == torch.bfloat16
        want = stage(x.to(torch.float32), history=histories).to(torch.bfloat16)
        assert torch.equal(got, want)


# -- torch kernels: order-free duplicates ----------------------------------------------------


@on_torch_backends
def test_torch_ngram_ban_with_a_token_both_banned_and_not(backend):
    # Token 1 follows the prefix (0,) once (banned) and follows (2,) too (not banned):
    # duplicates in the scatter must not undo the ban, whatever their order.
    history = [0, 1, 2, 1, 3, 1, 2, 1, 0]
    z = np.linspace(-1.0, 1.0, 5)
    got = NoRepeatNGram(2)(backend.array(z), history=history)
    want = loop_ngram(z, history, 2)
    backend.check(got)
    np.testing.assert_array_equal(take_rows(got), want)
    assert take_rows(got)[1] == -np.inf


# -- torch DRY: dense first lengths, then sparse blocks --------------------------------------


def periodic_history(rng: np.random.Generator, length: int, vocab: int) -> list[int]:
    """A random stretch repeated: repeats far longer than the sparse block (16 lengths)."""
    period = int(rng.integers(2, 9))
    unit = list(rng.integers(0, vocab, size=period))
    noise = [int(t) for t in rng.integers(0, vocab, size=int(rng.integers(0, 5)))]
    return noise + (unit * (length // period + 1))[: length - len(noise)]


@on_torch_backends
@pytest.mark.parametrize("seed", range(8))
def test_torch_dry_matches_llama_cpp_on_long_repeats(backend, seed):
    rng = np.random.default_rng(seed)
    rows, vocab = 4, 10
    histories = [periodic_history(rng, int(rng.integers(30, 120)), vocab) for _ in range(rows)]
    histories[-1] = []  # an empty row
    breakers = [(int(rng.integers(0, vocab)),)] if seed % 2 else []
    mult = rng.uniform(0.1, 1.0, size=rows)
    base = float(rng.choice([1.0, 1.05, 1.2]))
    allowed = np.array([0, 1, 2, 3])[rng.permutation(4)]
    last_n = int(rng.choice([-1, 50]))
    z = rng.normal(size=(rows, vocab))
    dry = DRY(mult, base=base, allowed_length=allowed, last_n=last_n, sequence_breakers=breakers)
    got = dry(backend.array(z), history=histories)
    backend.check(got)
    want = expected_rows(z, histories, mult, base, allowed, last_n, breakers)
    np.testing.assert_allclose(take_rows(got), want, rtol=backend.rtol, atol=1e-6)


@on_torch_backends
def test_torch_dry_one_row_many_rows_and_exponent_cap(backend):
    history = [4] * 200 + [1, 2, 3] * 30
    z = np.zeros((1, 6))
    want = expected_rows(z, [history], 0.01, 1.75, 2, -1, [])
    got = DRY(0.01, sequence_breakers=())(backend.array(z), history=[history])
    np.testing.assert_allclose(take_rows(got), want, rtol=backend.rtol)
    rng = np.random.default_rng(1)
    many = [repetitive_history(rng, 60, 7) for _ in range(70)]
    z = rng.normal(size=(70, 7))
    want = expected_rows(z, many, 0.5, 1.75, 2, -1, [])
    got = DRY(0.5, sequence_breakers=())(backend.array(z), history=many)
    np.testing.assert_allclose(take_rows(got), want, rtol=backend.rtol, atol=1e-6)


@pytest.mark.skipif(torch is None, reason="needs torch")
@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 2), min_size=0, max_size=60), min_size=1, max_size=3),
    st.lists(st.integers(0, 70), min_size=3, max_size=3),
)
def test_torch_match_lengths_equals_numpy(histories, limits):
    from thermoscope.sampling import _dry_torch
    from thermoscope.sampling.dry import _padded

    h = as_history(histories, None, batch=len(histories), vocab=3)
    w = _padded(h.ids)
    limit = np.array(limits[: len(histories)], dtype=np.int64)
    want = match_lengths(w, limit)
    got = _dry_torch.match_lengths(torch.as_tensor(w), torch.as_tensor(limit))
    np.testing.assert_array_equal(take_rows(got), want)


def test_dry_in_a_sampler_draws_like_the_plain_chain():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(6, 30))
    histories = [periodic_history(rng, 80, 30) for _ in range(6)]
    stages = [DRY(0.8, sequence_breakers=()), RepetitionPenalty(1.1), Temperature(0.7), TopK(5)]
    s = Sampler(stages, order="as_given")
    probs = s.probs(z, history=histories)
    dense = Sampler(stages[:2], order="as_given").logits(z, history=histories) / 0.7
    top = np.sort(dense, axis=1)[:, -5][:, None]
    dense = np.where(dense >= top, dense, -np.inf)
    want = np.exp(dense - dense.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, want, rtol=1e-10, atol=1e-12)
