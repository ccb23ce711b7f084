"""DRY against a direct float64 transcription of llama.cpp's ``llama_sampler_dry_apply``.

The reference below follows ``src/llama-sampling.cpp`` / ``src/llama-sampler.cpp``
(llama.cpp as vendored by llama-cpp-python 0.3.36) line by line: the
breaker scan from the end, the reversed Z-algorithm with its ``rep_limit``
cap, the per-token maximum, the ``max_exponent`` clamp and the single-token
breaker exemption. Slow, one token at a time, and obviously that code.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import on_every_backend, torch
from thermoscope.sampling import Sampler, Temperature, TopK
from thermoscope.sampling.dry import DEFAULT_SEQUENCE_BREAKERS, DRY, token_breakers


def reference_dry(
    logits: np.ndarray,
    history: list[int],
    multiplier: float,
    base: float,
    allowed_length: int,
    last_n: int,
    breakers: list[tuple[int, ...]],
) -> np.ndarray:
    """llama.cpp's DRY apply on one row, float64, transcribed from the C++."""
    z = np.array(logits, dtype=np.float64)
    if multiplier == 0.0 or base < 1.0 or last_n == 0:
        return z
    # The ring buffer holds the last `last_n` accepted tokens (-1 here: all of them).
    tokens = list(history) if last_n < 0 else list(history)[-last_n:]
    last_n_repeat = len(tokens)
    if last_n_repeat <= allowed_length:
        return z

    def rat(i: int) -> int:  # ring_buffer::rat: i-th token from the end
        return tokens[len(tokens) - 1 - i]

    processed: dict[int, list[tuple[int, ...]]] = {}
    for b in breakers:
        processed.setdefault(b[0], []).append(tuple(b[1:]))

    # Step 1: restart sequences limit the repetition length.
    rep_limit = last_n_repeat
    for i in range(last_n_repeat):
        token = rat(i)
        if token not in processed:
            continue
        longest_match = -1
        for tail in processed[token]:
            seq_len = len(tail)
            if seq_len > longest_match and seq_len <= i:
                match = True
                for offset in range(seq_len):
                    if tail[offset] != rat(i - offset - 1):
                        match = False
                        break
                if match:
                    longest_match = seq_len
        if longest_match >= 0:
            rep_limit = i - longest_match
            break
    if rep_limit < allowed_length:
        return z

    # Step 2: reversed Z-algorithm.
    repeat_count = [0] * last_n_repeat
    last = last_n_repeat - 1
    rt = 0
    lt = 0
    for k in range(1, last_n_repeat):
        if k > rt:
            n = 0
            while n + k < last_n_repeat and rat(n) == rat(n + k):
                n += 1
            repeat_count[last - k] = min(n, rep_limit)
            if n > 0:
                lt = k
                rt = k + n - 1
        else:
            p = k - lt
            right_part_len = rt - k + 1
            if repeat_count[last - p] < right_part_len:
                repeat_count[last - k] = min(repeat_count[last - p], rep_limit)
            else:
                i = rt + 1
                while i < last_n_repeat and rat(i) == rat(i - k):
                    i += 1
                repeat_count[last - k] = min(i - k, rep_limit)
                lt = k
                rt = i - 1

    # Step 3: the longest repeat each next token would extend.
    max_token_repeat: dict[int, int] = {}
    for i in range(last_n_repeat - 1):
        repeat_len = repeat_count[i]
        if repeat_len >= allowed_length:
            token = rat(last_n_repeat - 2 - i)
            if token not in max_token_repeat or max_token_repeat[token] < repeat_len:
                max_token_repeat[token] = repeat_len

    # Step 4: penalties (max_exponent as the C++ computes it, in float32).
    max_exponent = 0
    if np.float32(base) > np.float32(1.000001):
        max_exponent = int(np.float32(88.7228391) / np.log(np.float32(base)))
    for token, repeat_len in max_token_repeat.items():
        if token >= len(z):
            continue
        if any(len(tail) == 0 for tail in processed.get(token, [])):
            continue
        repeat_exp = repeat_len - allowed_length
        if max_exponent > 0 and repeat_exp > max_exponent:
            repeat_exp = max_exponent
        z[token] -= multiplier * base**repeat_exp
    return z


def repetitive_history(rng: np.random.Generator, length: int, vocab: int) -> list[int]:
    """Random tokens with copies of earlier stretches pasted in (many repeats)."""
    out: list[int] = []
    while len(out) < length:
        if out and rng.random() < 0.6:
            start = int(rng.integers(0, len(out)))
            out.extend(out[start : start + int(rng.integers(1, 12))])
        else:
            out.append(int(rng.integers(0, vocab)))
    return out[:length]


def random_breakers(rng: np.random.Generator, vocab: int) -> list[tuple[int, ...]]:
    count = int(rng.integers(0, 4))
    return [
        tuple(int(t) for t in rng.integers(0, vocab, size=int(rng.integers(1, 4))))
        for _ in range(count)
    ]


def expected_rows(z, histories, multiplier, base, allowed, last_n, breakers):
    rows = len(histories)
    pick = lambda v, r: v if np.ndim(v) == 0 else v[r]  # noqa: E731
    return np.stack(
        [
            reference_dry(
                z[r],
                histories[r],
                pick(multiplier, r),
                pick(base, r),
                pick(allowed, r),
                last_n,
                breakers,
            )
            for r in range(rows)
        ]
    )


# -- against the transcription -------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_matches_llama_cpp_transcription_on_random_histories(seed):
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(3, 12))
    rows = int(rng.integers(1, 5))
    histories = [repetitive_history(rng, int(rng.integers(0, 60)), vocab) for _ in range(rows)]
    breakers = random_breakers(rng, vocab + 2)
    base = float(rng.choice([1.0, 1.1, 1.75, 3.0]))
    allowed = int(rng.integers(0, 5))
    last_n = int(rng.choice([-1, 1, 5, 17, 100]))
    multiplier = rng.uniform(0.1, 2.0, size=rows)
    z = rng.normal(size=(rows, vocab))
    got = DRY(
        multiplier, base=base, allowed_length=allowed, last_n=last_n, sequence_breakers=breakers
    )(z, history=histories)
    want = expected_rows(z, histories, multiplier, base, allowed, last_n, breakers)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(
    histories=st.lists(
        st.lists(st.integers(0, 3), min_size=0, max_size=40), min_size=1, max_size=3
    ),
    breakers=st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple), max_size=3),
    base=st.sampled_from([1.0, 1.05, 1.75, 2.5]),
    allowed=st.integers(0, 4),
    last_n=st.sampled_from([-1, 1, 2, 3, 8, 30]),
)
def test_matches_transcription_hypothesis(histories, breakers, base, allowed, last_n):
    z = np.linspace(-1.0, 1.0, 5)[None, :].repeat(len(histories), axis=0)
    got = DRY(0.7, base=base, allowed_length=allowed, last_n=last_n, sequence_breakers=breakers)(
        z, history=histories
    )
    want = expected_rows(z, histories, 0.7, base, allowed, last_n, breakers)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_long_degenerate_repeat_hits_the_exponent_cap():
    # 300 copies of one token: lengths far beyond allowed_length + max_exponent (158).
    history = [3] * 300
    z = np.zeros(5)
    got = DRY(0.01, allowed_length=2, sequence_breakers=())(z, history=history)
    want = reference_dry(z, history, 0.01, 1.75, 2, -1, [])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[3] == pytest.approx(-0.01 * 1.75**158)


def test_per_row_parameters_match_rows_alone():
    rng = np.random.default_rng(5)
    histories = [repetitive_history(rng, 50, 6) for _ in range(3)]
    z = rng.normal(size=(3, 6))
    dry = DRY(
        np.array([0.5, 1.0, 0.0]),
        base=np.array([1.5, 2.0, 1.75]),
        allowed_length=[1, 2, 3],
        sequence_breakers=[(5,)],
    )
    got = dry(z, history=histories)
    for r in range(3):
        alone = DRY(
            [0.5, 1.0, 0.0][r],
            base=[1.5, 2.0, 1.75][r],
            allowed_length=[1, 2, 3][r],
            sequence_breakers=[(5,)],
        )(z[r], history=histories[r])
        np.testing.assert_array_equal(got[r], alone)
    np.testing.assert_array_equal(got[2], z[2])  # multiplier 0 on that row


# -- behaviour, closed forms ---------------------------------------------------


def test_worked_examples_of_llama_cpp_tests():
    # tests/test-sampling.cpp, test_dry: uniform probabilities in, probabilities out.
    cases = [
        ([0, 1], [0.25] * 4, 1.0, 1.1, 2, 4, [], [0.25] * 4),
        ([0, 1, 2, 0, 1], [0.25] * 4, 1.0, 1.1, 2, 5, [], [0.296923, 0.296923, 0.109232, 0.296923]),
        ([0, 1, 3, 4, 0, 1], [0.2] * 5, 1.0, 1.1, 2, 6, [(3,)], [0.2] * 5),
        (
            [0, 1, 2, 0, 1],
            [0.2] * 5,
            2.0,
            1.1,
            2,
            5,
            [],
            [0.241818, 0.241818, 0.032727, 0.241818, 0.241818],
        ),
        ([0, 1, 2, 3, 4, 0, 1], [0.2] * 5, 1.0, 1.1, 4, 7, [], [0.2] * 5),
    ]
    for history, probs, mult, base, allowed, last_n, breakers, want in cases:
        z = DRY(mult, base=base, allowed_length=allowed, last_n=last_n, sequence_breakers=breakers)(
            np.log(probs), history=history
        )
        p = np.exp(z - z.max())
        np.testing.assert_allclose(p / p.sum(), want, atol=1e-5)


def test_penalty_is_multiplier_times_base_power():
    # "0 1 2 | 0 1 2 | 0 1": emitting 2 extends a repeat of L = 5 tokens.
    z = DRY(0.5, base=3.0, allowed_length=2, sequence_breakers=())(
        np.zeros(4), history=[0, 1, 2, 0, 1, 2, 0, 1]
    )
    np.testing.assert_array_equal(z, [0.0, 0.0, -0.5 * 3.0**3, 0.0])


def test_allowed_length_makes_short_repeats_free():
    history = [0, 1, 2, 0, 1]  # the repeat "0 1" has L = 2
    dry = lambda a: DRY(1.0, allowed_length=a, sequence_breakers=())  # noqa: E731
    assert dry(2)(np.zeros(3), history=history)[2] == -1.0
    np.testing.assert_array_equal(dry(3)(np.zeros(3), history=history), np.zeros(3))


def test_the_largest_repeat_sets_the_penalty():
    # Token 2 follows "0 1" (L = 2) and "9 0 1" ... : the longest occurrence counts.
    history = [5, 0, 1, 2, 7, 5, 0, 1, 3, 6, 5, 0, 1]
    z = DRY(1.0, base=2.0, allowed_length=1, sequence_breakers=())(np.zeros(10), history=history)
    assert z[2] == -(2.0 ** (3 - 1))  # "5 0 1" then 2: L = 3
    assert z[3] == -(2.0 ** (3 - 1))
    assert z[0] == 0.0
    assert z[9] == 0.0


def test_a_breaker_stops_matches_and_is_never_penalised():
    history = [0, 1, 2, 0, 1]
    free = DRY(1.0, sequence_breakers=())(np.zeros(4), history=history)
    assert free[2] == -1.0
    # A breaker inside the repeated stretch ("1") cuts the repeat to the tokens after it.
    cut = DRY(1.0, sequence_breakers=[(1,)])(np.zeros(4), history=history)
    np.testing.assert_array_equal(cut, np.zeros(4))
    # A single-token breaker is never penalised, even when it would extend a repeat.
    z = DRY(1.0, sequence_breakers=[(2,)])(np.zeros(4), history=[0, 1, 2, 0, 1])
    assert z[2] == 0.0


def test_multi_token_breaker_needs_its_whole_tail():
    history = [0, 1, 2, 3, 0, 1, 2]
    none = DRY(1.0, sequence_breakers=())(np.zeros(5), history=history)
    assert none[3] == -(1.75 ** (3 - 2))
    # (1, 9) never occurs: no effect. (1, 2) occurs at the end: the repeat is cut.
    np.testing.assert_array_equal(
        DRY(1.0, sequence_breakers=[(1, 9)])(np.zeros(5), history=history), none
    )
    np.testing.assert_array_equal(
        DRY(1.0, sequence_breakers=[(1, 2)])(np.zeros(5), history=history), np.zeros(5)
    )
    # Only a single-token breaker is exempt from penalties, not a multi-token one's head.
    z = DRY(1.0, allowed_length=1, sequence_breakers=[(3, 4)])(np.zeros(5), history=history)
    assert z[3] < 0


def test_last_n_window():
    history = [0, 1, 2, 5, 5, 5, 5, 0, 1]
    whole = DRY(1.0, sequence_breakers=())(np.zeros(6), history=history)
    assert whole[2] == -1.0
    # The window [5, 5, 0, 1] no longer holds "0 1 2".
    windowed = DRY(1.0, last_n=4, sequence_breakers=())(np.zeros(6), history=history)
    assert windowed[2] == 0.0
    off = DRY(1.0, last_n=0, sequence_breakers=())(np.zeros(6), history=history)
    np.testing.assert_array_equal(off, np.zeros(6))


def test_multiplier_zero_is_a_no_op_that_still_returns_a_new_array():
    z = np.array([1.0, 2.0, 3.0])
    out = DRY(0.0, sequence_breakers=())(z, history=[0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(out, z)
    assert out is not z


def test_ragged_histories_and_empty_rows():
    histories = [[0, 1, 2, 0, 1], [], [3, 3, 3]]
    z = np.zeros((3, 4))
    got = DRY(1.0, allowed_length=1, sequence_breakers=())(z, history=histories)
    want = expected_rows(z, histories, 1.0, 1.75, 1, -1, [])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[1], np.zeros(4))


def test_dtypes_are_kept():
    history = [0, 1, 2, 0, 1]
    for dtype in (np.float16, np.float32):
        out = DRY(1.0, sequence_breakers=())(np.zeros(4, dtype=dtype), history=history)
        assert out.dtype == dtype
        assert out[2] == -1.0
    ints = DRY(1.0, sequence_breakers=())(np.array([1, 1, 1, 1]), history=history)
    np.testing.assert_array_equal(ints, [1.0, 1.0, 0.0, 1.0])


# -- torch == numpy ------------------------------------------------------------


@on_every_backend
@pytest.mark.parametrize("seed", range(6))
def test_backends_agree_with_numpy(backend, seed):
    rng = np.random.default_rng(100 + seed)
    vocab, rows = 9, 4
    histories = [repetitive_history(rng, int(rng.integers(0, 80)), vocab) for _ in range(rows)]
    breakers = [*random_breakers(rng, vocab), (int(rng.integers(0, vocab)), 1, 2)]
    z = rng.normal(size=(rows, vocab))
    dry = DRY(
        rng.uniform(0.2, 1.5, size=rows),
        base=1.6,
        allowed_length=int(rng.integers(0, 4)),
        last_n=int(rng.choice([-1, 20])),
        sequence_breakers=breakers,
    )
    want = dry(z, history=histories)
    hist = histories
    if backend.is_torch and seed % 2 == 0:
        width = max(len(h) for h in histories)
        padded = [[0] * (width - len(h)) + h for h in histories]  # equal lengths: a tensor
        hist = torch.tensor(padded, device=backend.device)
        histories = padded
        want = dry(z, history=histories)
    got = dry(backend.array(z), history=hist)
    backend.check(got)
    np.testing.assert_allclose(backend.numpy(got), want, rtol=backend.rtol, atol=1e-6)


def test_in_a_sampler_before_the_fused_path():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(2, 10))
    histories = [[1, 2, 3, 1, 2], [4, 5, 4, 5, 4]]
    dry = DRY(0.8, allowed_length=1, sequence_breakers=())
    s = Sampler([TopK(4), Temperature(0.7), dry])
    assert [w.name for w in s.warpers] == ["dry", "temperature", "top_k"]
    plain = Sampler([TopK(4), Temperature(0.7), dry], order="as_given")
    want = Sampler([Temperature(0.7), TopK(4)], order="as_given").probs(dry(z, history=histories))
    np.testing.assert_allclose(s.probs(z, history=histories), want, rtol=1e-12)
    assert plain.warpers[-1] is dry


def test_without_history_names_history():
    with pytest.raises(ValueError, match="`history`"):
        DRY(1.0, sequence_breakers=())(np.zeros(3))
    with pytest.raises(ValueError, match="`history`"):
        Sampler([DRY(1.0, sequence_breakers=())]).probs(np.zeros(3))


# -- string breakers through a tokenizer ---------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    transformers = pytest.importorskip("transformers")
    from thermoscope.models import embedded_model_path

    return transformers.AutoTokenizer.from_pretrained(embedded_model_path())


def test_string_breakers_follow_llama_cpp_overlaps(tokenizer):
    words = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    got = set(token_breakers([":\n"], tokenizer))
    want: set[tuple[int, ...]] = set()
    for i, word in enumerate(words):
        if ":\n" in word:
            want.add((i,))
        elif word.endswith(":"):  # a proper prefix of ":\n" ends the token
            want.add((i, *tokenizer.encode("\n", add_special_tokens=False)))
    assert got == want
    assert any(len(b) > 1 for b in got)


def test_default_breakers_with_a_tokenizer_are_every_token_containing_them(tokenizer):
    words = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    got = DRY(1.0, tokenizer=tokenizer).sequence_breakers
    want = {(i,) for i, w in enumerate(words) if any(s in w for s in DEFAULT_SEQUENCE_BREAKERS)}
    assert set(got) == want
    newline = tokenizer.encode("\n", add_special_tokens=False)
    assert tuple(newline) in got


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"multiplier": -0.5}, ValueError, "multiplier"),
        ({"multiplier": np.nan}, ValueError, "multiplier"),
        ({"multiplier": np.inf}, ValueError, "multiplier"),
        ({"multiplier": "0.8"}, TypeError, "multiplier"),
        ({"base": 0.9}, ValueError, "base"),
        ({"base": np.inf}, ValueError, "base"),
        ({"base": "2"}, TypeError, "base"),
        ({"allowed_length": -1}, ValueError, "allowed_length"),
        ({"allowed_length": 1.5}, TypeError, "allowed_length"),
        ({"last_n": -2}, ValueError, "last_n"),
        ({"last_n": [1, 2]}, TypeError, "last_n"),
        ({"last_n": 2.5}, TypeError, "last_n"),
        ({"sequence_breakers": [()]}, ValueError, "sequence_breakers"),
        ({"sequence_breakers": [""]}, ValueError, "sequence_breakers"),
        ({"sequence_breakers": [(-1,)]}, ValueError, "sequence_breakers"),
        ({"sequence_breakers": [(1.5,)]}, TypeError, "sequence_breakers"),
        ({"sequence_breakers": "\n"}, TypeError, "sequence_breakers"),
        ({"sequence_breakers": [3]}, TypeError, "sequence_breakers"),
        ({"sequence_breakers": None}, TypeError, "sequence_breakers"),
        ({"sequence_breakers": ["\n"]}, ValueError, "tokenizer"),
        ({}, ValueError, "tokenizer"),  # the default breakers are strings
        ({"sequence_breakers": ["\n"], "tokenizer": object()}, TypeError, "tokenizer"),
    ],
)
def test_bad_input_names_the_argument(kwargs, exc, name):
    kwargs = {"multiplier": 1.0, **kwargs}
    if "sequence_breakers" not in kwargs and name != "tokenizer":
        kwargs["sequence_breakers"] = ()
    with pytest.raises(exc, match=f"`{name}`"):
        DRY(**kwargs)


def test_per_row_parameter_of_the_wrong_shape_names_it():
    dry = DRY([1.0, 2.0], sequence_breakers=())
    with pytest.raises(ValueError, match="`multiplier`"):
        dry(np.zeros((3, 4)), history=[[0], [1], [2]])


def test_is_frozen():
    dry = DRY(1.0, sequence_breakers=[(1, 2)])
    assert dry.sequence_breakers == ((1, 2),)
    with pytest.raises(AttributeError):
        dry.multiplier = 2.0  # type: ignore[misc]
