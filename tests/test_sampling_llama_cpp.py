"""thermoscope's samplers against llama.cpp: its own test vectors, and llama.cpp live.

Part 1 transcribes the vectors of llama.cpp's ``tests/test-sampling.cpp`` at
ggml-org/llama.cpp@0c1e57098 (the copy vendored by llama-cpp-python 0.3.36,
whose CHANGELOG says "update llama.cpp to ggml-org/llama.cpp@0c1e57098"):
the same inputs (``logit = logf(p)`` in float32), the same parameters and
llama.cpp's expected probabilities, each run through
``Sampler([...], order="as_given")`` with the matching thermoscope stages. The
C++ test compares ``cur_p.data[i].p`` in the array's order (sorted by
llama.cpp); here the expected values are written per token id. These tests
need only numpy.

Part 2 runs llama.cpp itself (``tests/llama_cpp_oracle.py``, ctypes through
llama-cpp-python) on thousands of seeded random cases: random logits (with
ties and -inf), random histories, random chains in llama.cpp's order (logit
bias, penalties, DRY, top-n-sigma, top-k, typical, top-p, min-p, XTC,
temperature or dynatemp, adaptive-p), and compares, after every stage, the
tokens kept and their probabilities (1e-5). Those tests skip when
llama-cpp-python is not installed.

Known, documented differences (each counted, none ignored silently):

- ties: llama.cpp keeps exactly k (top-k), stops the nucleus in the middle of
  a group of equal logits (top-p), keeps the first maximal logit only
  (temperature 0), orders typical's equal scores arbitrarily and XTC keeps one
  of several tokens tied at the bottom of its removed set (and checks
  ``min_keep`` with that one); thermoscope keeps (or removes) every token
  tied at a cut. A case whose sets differ only that way is a "tie" outcome:
  thermoscope's set contains llama.cpp's and every extra token ties a token
  llama.cpp kept, or (XTC) the least probable token above the threshold has
  a tie. Later stages of that case are not
  compared (their inputs differ).
- typical with a zero-probability candidate: llama.cpp's entropy is
  ``-sum p log p`` with ``0 * log 0 = NaN``, every score is NaN and the result
  is whatever ``std::sort`` leaves with a NaN comparison (undefined). Cases
  where a candidate of float32 probability 0 (a -inf logit, or one ~100 below
  the maximum: a -100 logit bias) reaches llama.cpp's typical are counted,
  not compared.
- dynatemp (``temp_ext``) normalises the entropy by ``log(size)``, the number
  of candidates llama.cpp still lists, -inf ones included (top-n-sigma and
  temperature 0 mask without shrinking, and -inf input logits are listed
  until a truncation drops them); thermoscope's ``EntropyTemperature`` uses
  the number of finite logits. With a ``count=`` keyword (see
  ``_entropy_temperature``) the oracle passes llama.cpp's count and expects
  equality; without it the case is a "listed" outcome whose two formulas are
  checked separately.
- dynatemp's denormal temperature: with ``min_t = 0`` and an entropy near 0
  (a token ~95 below the others) llama.cpp's float32 T is a denormal, ``z / T``
  overflows to +inf (its probabilities are NaN) or sends every logit to -inf;
  thermoscope gives the greedy limit. Counted with the NaN outcomes, not compared.
- XTC's ``min_keep``: llama.cpp removes the top tokens when
  ``size - pos_last >= min_keep``, ``size`` counting listed -inf candidates
  too, so it can leave fewer than ``min_keep`` finite tokens (minimal case:
  ``[1.0, 0.9, -inf]``, ``xtc(1, 0.1, min_keep=2)`` keeps token 1 alone);
  thermoscope's ``XTC`` counts finite tokens and leaves that row unchanged.
  Counted as a "listed" outcome, like dynatemp's count below.
- llama.cpp's "off" values map to no stage: ``top_k <= 0``, ``top_p >= 1``,
  ``min_p <= 0``, ``typical >= 1``, ``top_n_sigma <= 0`` (thermoscope's
  ``TopNSigma(0)`` is the greedy limit), ``xtc`` probability 0 or threshold
  > 0.5, penalties with ``last_n <= 0``; ``top_p(0)`` keeps the most likely
  token (``TopP`` of the smallest positive p); ``min_p > 1`` is ``MinP(1)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import llama_cpp_oracle as lo
from llama_cpp_oracle import Candidates, Stage, llama_cpp, run_chain, trace_chain
from thermoscope.sampling import Sampler
from thermoscope.sampling.warpers import (
    EntropyTemperature,
    MinP,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    Warper,
)

needs_llama = pytest.mark.skipif(
    llama_cpp is None, reason="llama-cpp-python is not installed (the live llama.cpp oracle)"
)

TOL = 1e-5  # test-sampling.cpp's own tolerance on probabilities


# ---------------------------------------------------------------------------
# llama.cpp stage -> thermoscope stages


def _entropy_temperature(min_t: float, max_t: float, exponent: float, count: int | None) -> Any:
    """EntropyTemperature, with llama.cpp's candidate count when the keyword exists."""
    if count is not None and _has_count():
        return EntropyTemperature(min_t, max_t, exponent=exponent, count=count)  # type: ignore[call-arg]
    return EntropyTemperature(min_t, max_t, exponent=exponent)


def _has_count() -> bool:
    return "count" in getattr(EntropyTemperature, "__dataclass_fields__", {})


def to_thermoscope(stage: Stage, *, count: int | None = None) -> list[Warper]:
    """The thermoscope stages doing what llama.cpp's ``stage`` does (``[]`` for its off values).

    ``count``: for ``temp_ext``, the number of candidates llama.cpp lists when
    the stage runs (used only when ``EntropyTemperature`` accepts ``count=``).
    """
    a = stage.args
    kind = stage.kind
    if kind == "top_k":
        return [TopK(a[0])] if a[0] > 0 else []
    if kind == "top_p":
        p, keep = a
        if p >= 1.0:
            return []
        return [TopP(max(p, np.finfo(np.float64).tiny), min_tokens_to_keep=max(keep, 1))]
    if kind == "min_p":
        p, keep = a
        return [MinP(min(p, 1.0), min_tokens_to_keep=max(keep, 1))] if p > 0 else []
    if kind == "typical":
        p, keep = a
        return [Typical(p, min_tokens_to_keep=max(keep, 1))] if p < 1.0 else []
    if kind == "temp":
        return [Temperature(max(a[0], 0.0))]
    if kind == "temp_ext":
        t, delta, exponent = a
        if delta > 0:
            return [_entropy_temperature(max(0.0, t - delta), t + delta, exponent, count)]
        return [Temperature(max(t, 0.0))]
    if kind == "top_n_sigma":
        return [TopNSigma(a[0])] if a[0] > 0 else []
    if kind == "xtc":
        from thermoscope.sampling.xtc import XTC

        probability, threshold, keep, _seed = a
        if probability <= 0 or threshold > 0.5:
            return []
        return [XTC(probability, threshold, min_keep=max(keep, 1))]
    if kind == "penalties":
        from thermoscope.sampling.penalties import (
            FrequencyPenalty,
            PresencePenalty,
            RepetitionPenalty,
        )

        last_n, repeat, freq, present = a
        if last_n <= 0:
            return []
        out: list[Warper] = []
        if repeat != 1.0:
            out.append(RepetitionPenalty(repeat, last_n=last_n))
        if freq != 0.0:
            out.append(FrequencyPenalty(freq, last_n=last_n))
        if present != 0.0:
            out.append(PresencePenalty(present, last_n=last_n))
        return out
    if kind == "dry":
        from thermoscope.sampling.dry import DRY

        multiplier, base, allowed, last_n = a
        if multiplier == 0 or base < 1.0 or last_n <= 0:
            return []
        return [
            DRY(multiplier, base=base, allowed_length=allowed, last_n=last_n, sequence_breakers=())
        ]
    if kind == "logit_bias":
        from thermoscope.sampling.penalties import LogitBias

        return [LogitBias(dict(a))] if a else []
    if kind == "adaptive_p":
        from thermoscope.sampling.adaptive_p import AdaptiveP

        target, decay, _seed = a
        return [AdaptiveP(target, decay=decay)] if target >= 0 else []
    raise ValueError(f"no thermoscope counterpart for {stage}")


def ours(warpers: list[Warper], logits: Any, history: list[int]) -> np.ndarray:
    """thermoscope's probabilities (V,) after ``warpers`` (as given) on one row, float64."""
    z = np.asarray(logits, dtype=np.float32)[None, :]
    if not warpers:
        w = np.exp(z[0].astype(np.float64) - z.max())
        return np.asarray(w / w.sum())
    probs = Sampler(warpers, order="as_given").probs(z, history=[history], seed=0)
    return np.asarray(probs[0], dtype=np.float64)


def ours_kept(warpers: list[Warper], logits: Any, history: list[int]) -> tuple[Any, Any]:
    """thermoscope's probabilities (V,) and kept set (its finite logits) after ``warpers``.

    The kept set is read from the logits: a kept token's float32 probability
    may underflow to 0 (temperatures near 0).
    """
    if not warpers:
        return ours(warpers, logits, history), np.isfinite(logits)
    s = Sampler(warpers, order="as_given")
    z = np.asarray(logits, dtype=np.float32)[None, :]
    kept = np.isfinite(s.logits(z, history=[history], seed=0)[0])
    return np.asarray(s.probs(z, history=[history], seed=0)[0], dtype=np.float64), kept


def logf(probs: list[float]) -> np.ndarray:
    """test-sampling.cpp's input: ``logit = logf(p)`` in float32 (log(0) = -inf)."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(probs, dtype=np.float32))


# ---------------------------------------------------------------------------
# Part 1: the vectors of test-sampling.cpp


@dataclass(frozen=True)
class Vector:
    """One call of test-sampling.cpp: input probs, llama.cpp stages, history, expected (V,)."""

    label: str
    probs: tuple[float, ...]
    stages: tuple[Stage, ...]
    expected: tuple[float, ...]  # per token id; 0 = removed (or probability 0)
    history: tuple[int, ...] = ()
    normalised: bool = True  # False: the C++ test reads p before any renormalisation
    ours: tuple[Warper, ...] | None = None  # explicit thermoscope stages (DRY with breakers)

    def __str__(self) -> str:
        return self.label


P4 = (0.1, 0.2, 0.3, 0.4)
U5 = (0.2,) * 5

VECTORS = [
    # test_temp / test_temp_ext
    Vector("temp 1", P4, (lo.temp(1.0),), P4),
    Vector("temp 0", P4, (lo.temp(0.0),), (0, 0, 0, 1)),
    Vector("temp_ext 1 0 1", P4, (lo.temp_ext(1.0, 0.0, 1.0),), P4),
    Vector("temp_ext 0 0 1", P4, (lo.temp_ext(0.0, 0.0, 1.0),), (0, 0, 0, 1)),
    # test_top_k
    Vector("top_k 1", P4, (lo.top_k(1),), (0, 0, 0, 1)),
    Vector("top_k 3", P4, (lo.top_k(3),), (0, 0.22222, 0.33333, 0.44444)),
    Vector("top_k 4", P4, (lo.top_k(4),), P4),
    Vector("top_k 0", P4, (lo.top_k(0),), P4),
    # test_top_p (min_keep 0)
    Vector("top_p 0", P4, (lo.top_p(0.0, 0),), (0, 0, 0, 1)),
    Vector("top_p 0.7", P4, (lo.top_p(0.7, 0),), (0, 0, 0.428571, 0.571429)),
    Vector("top_p 0.8", P4, (lo.top_p(0.8, 0),), (0, 0.22222, 0.33333, 0.44444)),
    Vector("top_p 1", P4, (lo.top_p(1.0, 0),), P4),
    # test_min_p (min_keep 0)
    Vector("min_p 0.00", P4, (lo.min_p(0.00, 0),), P4),
    Vector("min_p 0.24", P4, (lo.min_p(0.24, 0),), P4),
    Vector("min_p 0.26", P4, (lo.min_p(0.26, 0),), (0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9)),
    Vector("min_p 0.49", P4, (lo.min_p(0.49, 0),), (0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9)),
    Vector("min_p 0.51", P4, (lo.min_p(0.51, 0),), (0, 0, 0.3 / 0.7, 0.4 / 0.7)),
    Vector("min_p 0.74", P4, (lo.min_p(0.74, 0),), (0, 0, 0.3 / 0.7, 0.4 / 0.7)),
    Vector("min_p 0.76", P4, (lo.min_p(0.76, 0),), (0, 0, 0, 1)),
    Vector("min_p 1.00", P4, (lo.min_p(1.00, 0),), (0, 0, 0, 1)),
    Vector("min_p 1.05", P4, (lo.min_p(1.05, 0),), (0, 0, 0, 1)),
    # test_xtc: no dist after XTC in the C++ test, so p is the softmax before the cut.
    # Probability 0.99 there: llama.cpp's own mt19937 (seed 0) coin falls below it;
    # here XTC(1.0, ...) always applies (thermoscope's coin is its own).
    Vector("xtc 0.09", (0.4, 0.3, 0.2, 0.1), (lo.xtc(1.0, 0.09, 0, 0),), (0, 0, 0, 0.1), (), False),
    Vector(
        "xtc 0.19", (0.4, 0.3, 0.2, 0.1), (lo.xtc(1.0, 0.19, 0, 0),), (0, 0, 0.2, 0.1), (), False
    ),
    Vector(
        "xtc 0.29", (0.4, 0.3, 0.2, 0.1), (lo.xtc(1.0, 0.29, 0, 0),), (0, 0.3, 0.2, 0.1), (), False
    ),
    Vector(
        "xtc 0.39",
        (0.4, 0.3, 0.2, 0.1),
        (lo.xtc(1.0, 0.39, 0, 0),),
        (0.4, 0.3, 0.2, 0.1),
        (),
        False,
    ),
    # test_typical (min_keep 0, no dist: p before renormalisation)
    Vector(
        "typical 0.97", (0.97, 0.01, 0.01, 0.01), (lo.typical(0.5, 0),), (0.97, 0, 0, 0), (), False
    ),
    Vector(
        "typical 0.4", (0.4, 0.2, 0.2, 0.2), (lo.typical(0.5, 0),), (0, 0.2, 0.2, 0.2), (), False
    ),
    # test_penalties: n_vocab = 5, penalty_last_n = len(history)
    Vector("rep 50 [0]", U5, (lo.penalties(1, 50.0, 0, 0),), (0, 0.25, 0.25, 0.25, 0.25), (0,)),
    Vector("rep 50 [0 1 2]", U5, (lo.penalties(3, 50.0, 0, 0),), (0, 0, 0, 0.5, 0.5), (0, 1, 2)),
    Vector(
        "rep 50 [0 1 2 0 0]",
        U5,
        (lo.penalties(5, 50.0, 0, 0),),
        (0, 0, 0, 0.5, 0.5),
        (0, 1, 2, 0, 0),
    ),
    Vector(
        "freq 5 pres 5 [0]",
        U5,
        (lo.penalties(1, 1.0, 5.0, 5.0),),
        (0.000011, 0.249997, 0.249997, 0.249997, 0.249997),
        (0,),
    ),
    Vector(
        "freq 5 pres 5 [0 1 2]",
        U5,
        (lo.penalties(3, 1.0, 5.0, 5.0),),
        (0.000023, 0.000023, 0.000023, 0.499966, 0.499966),
        (0, 1, 2),
    ),
    Vector(
        "freq 5 pres 5 [0 1 2 0 0]",
        U5,
        (lo.penalties(5, 1.0, 5.0, 5.0),),
        (0.000000, 0.000023, 0.000023, 0.499977, 0.499977),
        (0, 1, 2, 0, 0),
    ),
    # test_dry (llama_sampler_init_dry_testing: token-id breakers)
    Vector("dry [0 1]", (0.25,) * 4, (lo.dry(1.0, 1.1, 2, 4),), (0.25,) * 4, (0, 1)),
    Vector(
        "dry [0 1 2 0 1]",
        (0.25,) * 4,
        (lo.dry(1.0, 1.1, 2, 5),),
        (0.296923, 0.296923, 0.109232, 0.296923),
        (0, 1, 2, 0, 1),
    ),
    Vector(
        "dry breaker 3",
        U5,
        (lo.dry(1.0, 1.1, 2, 6),),
        U5,
        (0, 1, 3, 4, 0, 1),
        ours=None,  # built in the test: needs the breaker {{3}}
    ),
    Vector(
        "dry mult 2",
        U5,
        (lo.dry(2.0, 1.1, 2, 5),),
        (0.241818, 0.241818, 0.032727, 0.241818, 0.241818),
        (0, 1, 2, 0, 1),
    ),
    Vector("dry allowed 4", U5, (lo.dry(1.0, 1.1, 4, 7),), U5, (0, 1, 2, 3, 4, 0, 1)),
    # test_top_n_sigma (n = 0 is a no-op since llama.cpp PR #13345)
    Vector("top_n_sigma 1", P4, (lo.top_n_sigma(1.0),), (0, 0, 0.428571, 0.571429)),
    Vector("top_n_sigma 0", P4, (lo.top_n_sigma(0.0),), P4),
    Vector("top_n_sigma 3", P4, (lo.top_n_sigma(3.0),), P4),
]

#: test-sampling.cpp's DRY case with the sequence breaker {{3}}: token 3 starts a
#: restart sequence, so the repeat "0 1" after it is too short to penalise.
DRY_BREAKER = "dry breaker 3"


def _vector_stages(v: Vector) -> list[Warper]:
    if v.label == DRY_BREAKER:
        from thermoscope.sampling.dry import DRY

        return [DRY(1.0, base=1.1, allowed_length=2, last_n=6, sequence_breakers=((3,),))]
    return [w for s in v.stages for w in to_thermoscope(s)]


@pytest.mark.parametrize("v", VECTORS, ids=str)
def test_test_sampling_cpp_vector(v: Vector) -> None:
    """thermoscope gives llama.cpp's expected probabilities on each test-sampling.cpp input."""
    got = ours(_vector_stages(v), logf(list(v.probs)), list(v.history))
    want = np.asarray(v.expected, dtype=np.float64)
    if not v.normalised:  # the C++ test read p before renormalising over the kept set
        want = want / want.sum()
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    if all(s.kind in TRUNCATIONS for s in v.stages):  # removed means probability exactly 0
        assert np.array_equal(got > 0, want > 0)


#: llama.cpp samplers that remove tokens (a penalty only makes one unlikely).
TRUNCATIONS = {"temp", "temp_ext", "top_k", "top_p", "min_p", "xtc", "typical", "top_n_sigma"}


@needs_llama
@pytest.mark.parametrize("v", [v for v in VECTORS if v.label != DRY_BREAKER], ids=str)
def test_test_sampling_cpp_vector_live(v: Vector) -> None:
    """The transcription is right: llama.cpp itself gives the expected values on each input."""
    cand = run_chain(v.stages, logf(list(v.probs)), v.history)
    want = np.asarray(v.expected, dtype=np.float64)
    if not v.normalised:
        want = want / want.sum()
    np.testing.assert_allclose(cand.probs(), want, atol=TOL, rtol=0)


# test_sampler_queue: n_vocab 10000, logit = logf(token id) (token 0 is -inf), stages
# top-k / top-p / min-p with min_keep 1, the expected sizes from the C++ formulas.
QUEUES = [
    ("k", 10000, 1.0, 1.0),
    ("k", 1, 1.0, 1.0),
    ("p", 10000, 1.0, 1.0),
    ("p", 10000, 0.0, 1.0),
    ("m", 10000, 1.0, 1.0),
    ("m", 10000, 1.0, 1e-12),
    ("k", 100, 1.0, 1.0),
    ("p", 10000, 0.0003, 1.0),
    ("p", 10000, 0.8, 1.0),
    ("m", 10000, 1.0, 9997.9 / 9999.0),
    ("m", 10000, 1.0, 0.1),
    ("kp", 100, 0.8, 0.1),
    ("km", 100, 0.8, 0.1),
    ("pk", 100, 0.8, 0.1),
    ("pm", 100, 0.8, 0.1),
    ("mk", 100, 0.8, 0.1),
    ("mp", 100, 0.8, 9997.9 / 9999.0),
    ("mp", 100, 0.8, 0.1),
    ("kpm", 100, 0.8, 0.1),
    ("kmp", 100, 0.8, 0.1),
    ("pkm", 100, 0.8, 0.1),
    ("pmk", 100, 0.8, 0.1),
    ("mkp", 100, 0.8, 0.1),
    ("mpk", 100, 0.8, 0.1),
]


def _f32(x: float) -> float:
    return float(np.float32(x))


def queue_expectation(
    seq: str, n_vocab: int, k: int, p: float, m: float, sizes: list[int]
) -> list[tuple[int, int]]:
    """test_sampler_queue's expected (size, smallest listed id) after each stage.

    A transcription of the C++ (float arithmetic in float32 as there).
    ``sizes[i]`` is the candidate count after stage ``i`` (the C++ reads
    ``cur_p.size`` and bounds its expectation with it for top-k and min-p);
    the C++ asserts ``size == expected``.
    """
    out = []
    min_token_id = 0
    for s, size in zip(seq, sizes, strict=True):
        if s == "k":
            expected = min(size, k)
            min_token_id = max(min_token_id, n_vocab - k)
        elif s == "p":
            divisor = n_vocab * (n_vocab - 1) // 2 - min_token_id * (min_token_id - 1) // 2
            target = math.ceil(_f32(_f32(p) * divisor))
            min_token_id = n_vocab
            expected = 0
            cumsum = 0
            while True:  # the C++ do-while: at least one token
                min_token_id -= 1
                expected += 1
                cumsum += min_token_id
                if not cumsum < target:
                    break
            if min_token_id == 1:  # token 0 (p = 0) stays listed when the nucleus reaches it
                min_token_id -= 1
                expected += 1
        else:
            expected = math.ceil(_f32(_f32(1.0 - _f32(m)) * n_vocab))
            expected = min(max(expected, 1), size)
            min_token_id = max(math.floor(_f32(_f32(m) * n_vocab)), 1)
            min_token_id = max(min_token_id, n_vocab - size)
            min_token_id = min(min_token_id, n_vocab - 1)
        out.append((expected, min_token_id))
    return out


def _queue_stages(seq: str, k: int, p: float, m: float) -> list[Stage]:
    make: dict[str, Callable[[], Stage]] = {
        "k": lambda: lo.top_k(k),
        "p": lambda: lo.top_p(p, 1),
        "m": lambda: lo.min_p(m, 1),
    }
    return [make[s]() for s in seq]


@pytest.mark.parametrize(("seq", "k", "p", "m"), QUEUES)
def test_test_sampling_cpp_queue(seq: str, k: int, p: float, m: float) -> None:
    """Each prefix of the queue keeps the tokens [min_token_id, n_vocab) llama.cpp expects.

    Token 0 has probability 0 (logit -inf): thermoscope never keeps it, while
    llama.cpp lists it until a stage drops it (top-k with k below the count
    listed, a top-p that ends before it, any min-p); the size the C++ checks
    counts it then.
    """
    n_vocab = 10000
    logits = logf(list(range(n_vocab)))
    stages = _queue_stages(seq, k, p, m)
    sizes, kept_sets = [], []
    listed0 = True
    for i, s in enumerate(seq):
        warpers = [w for st in stages[: i + 1] for w in to_thermoscope(st)]
        kept = np.flatnonzero(ours(warpers, logits, []) > 0)
        listed0 = listed0 and {"k": k >= kept.size + 1, "p": p >= 1.0, "m": False}[s]
        sizes.append(kept.size + listed0)
        kept_sets.append(kept.tolist())
    for kept_ids, size, (expected, low) in zip(
        kept_sets, sizes, queue_expectation(seq, n_vocab, k, p, m, sizes), strict=True
    ):
        assert size == expected
        assert kept_ids == list(range(max(low, 1), n_vocab))


@needs_llama
@pytest.mark.parametrize(("seq", "k", "p", "m"), QUEUES)
def test_test_sampling_cpp_queue_live(seq: str, k: int, p: float, m: float) -> None:
    """The transcribed queue expectations are llama.cpp's: sizes and kept ids, stage by stage."""
    n_vocab = 10000
    steps = trace_chain(_queue_stages(seq, k, p, m), logf(list(range(n_vocab))))
    sizes = [c.size for c in steps]
    for cand, (expected, low) in zip(
        steps, queue_expectation(seq, n_vocab, k, p, m, sizes), strict=True
    ):
        assert cand.size == expected
        assert np.flatnonzero(cand.kept).tolist() == list(range(max(low, 1), n_vocab))


# ---------------------------------------------------------------------------
# Part 2: llama.cpp live


def dynatemp_probs(z: np.ndarray, min_t: float, max_t: float, exponent: float, n: int) -> Any:
    """float64 dynatemp on the finite logits of ``z``, entropy normalised by ``log(n)``."""
    live = z[np.isfinite(z)].astype(np.float64)
    p = np.exp(live - live.max())
    p /= p.sum()
    h = -np.sum(p[p > 0] * np.log(p[p > 0]))
    t = min_t + (max_t - min_t) * (h / math.log(n)) ** exponent
    # t = 0: the greedy limit, as temperature 0 in llama.cpp (no ties in these rows).
    greedy = (live == live.max()).astype(np.float64)
    w = greedy if t == 0 else np.exp((live - live.max()) / t)
    out = np.zeros(z.shape)
    out[np.isfinite(z)] = w / w.sum()
    return out


@needs_llama
def test_dynatemp_counts_masked_candidates() -> None:
    """llama.cpp's dynatemp counts the candidates top-n-sigma masked: [0.6349, 0.3651].

    TopNSigma(0.5) keeps tokens 0 and 2 of [5.4, 1.1, 4.9]; the entropy of
    (0.6225, 0.3775) over log 2 gives T = 1.2546 (thermoscope: [0.5982, 0.4018])
    and over log 3 (llama.cpp: token 1 is still listed, at -inf) T = 0.9141.
    """
    z = np.array([5.4, 1.1, 4.9], dtype=np.float32)
    llama = run_chain([lo.top_n_sigma(0.5), lo.temp_ext(0.8, 0.5, 1.0)], z)
    assert llama.size == 3
    np.testing.assert_allclose(llama.probs(), [0.6349, 0, 0.3651], atol=5e-5)
    masked = np.array([5.4, -np.inf, 4.9], dtype=np.float32)
    np.testing.assert_allclose(llama.probs(), dynatemp_probs(masked, 0.3, 1.3, 1.0, 3), atol=TOL)
    finite = ours([TopNSigma(0.5), EntropyTemperature(0.3, 1.3, exponent=1.0)], z, [])
    np.testing.assert_allclose(finite, [0.5982, 0, 0.4018], atol=5e-5)
    np.testing.assert_allclose(finite, dynatemp_probs(masked, 0.3, 1.3, 1.0, 2), atol=TOL)
    if _has_count():
        same = ours([TopNSigma(0.5), _entropy_temperature(0.3, 1.3, 1.0, 3)], z, [])
        np.testing.assert_allclose(same, llama.probs(), atol=TOL)


@needs_llama
def test_dynatemp_denormal_temperature_overflows_in_llama_cpp() -> None:
    """llama.cpp's dynatemp divides by a denormal temperature: +inf or all -inf logits.

    On ``[1, -95]`` with ``temp_ext(0.1, 0.2, 1)`` (T in [0, 0.3]) the entropy
    is ~5e-40, so T ~ 2e-40, a float32 denormal; ``1 / T`` overflows to +inf
    and the probabilities llama.cpp computes next are ``exp(inf - inf)`` = NaN.
    On ``[-1, -95]`` both logits become -inf: no candidate is left.
    thermoscope's ``EntropyTemperature`` (float64) gives the greedy limit.
    """
    for z, want in (([1.0, -95.0], [np.inf, -np.inf]), ([-1.0, -95.0], [-np.inf, -np.inf])):
        row = np.array(z, dtype=np.float32)
        assert run_chain([lo.temp_ext(0.1, 0.2, 1.0)], row).logits.tolist() == want
        np.testing.assert_array_equal(ours([EntropyTemperature(0.0, 0.3)], row, []), [1.0, 0.0])


@needs_llama
def test_xtc_min_keep_counts_listed_candidates_in_llama_cpp() -> None:
    """llama.cpp's XTC counts a listed -inf candidate towards ``min_keep``; thermoscope does not.

    On ``[1.0, 0.9, -inf]`` with threshold 0.1 and ``min_keep = 2`` both finite
    tokens are above the threshold: llama.cpp drops token 0 because 3 - 1 >= 2
    (token 2 is still listed), leaving one finite token; thermoscope would
    leave one token < 2 and keeps the row. Without the -inf entry both agree.
    """
    from thermoscope.sampling.xtc import XTC

    z = np.array([1.0, 0.9, -np.inf], dtype=np.float32)
    assert np.flatnonzero(run_chain([lo.xtc(1.0, 0.1, 2)], z).kept).tolist() == [1]
    assert np.flatnonzero(run_chain([lo.xtc(1.0, 0.1, 2)], z[:2]).kept).tolist() == [0, 1]
    got = ours([XTC(1.0, 0.1, min_keep=2)], z, [])
    np.testing.assert_allclose(got, [0.5249792, 0.4750208, 0], atol=1e-6)


@needs_llama
def test_typical_zero_probability_candidate_is_nan_in_llama_cpp() -> None:
    """A -inf logit reaching llama.cpp's typical turns its entropy into NaN (0 * log 0).

    On p = (0.4, 0.2, 0.2, 0.2) typical(0.5) keeps the three tokens of
    probability 0.2 (the test-sampling.cpp vector). Adding one token at -inf
    (probability 0) changes nothing for thermoscope, but in llama.cpp every
    score becomes NaN, ``std::sort`` leaves the array in its by-logit order,
    and the cut keeps the 0.4 token and one 0.2 token: a llama.cpp bug (the
    oracle does not compare typical once a -inf logit reaches it).
    """
    base = [*np.log([0.4, 0.2, 0.2, 0.2])]
    clean = np.array(base, dtype=np.float32)
    masked = np.array([*base, -np.inf], dtype=np.float32)
    assert np.flatnonzero(run_chain([lo.typical(0.5)], clean).kept).tolist() == [1, 2, 3]
    assert np.flatnonzero(run_chain([lo.typical(0.5)], masked).kept).tolist() == [0, 3]
    for z in (clean, masked):
        got = ours([Typical(0.5)], z, [])
        np.testing.assert_allclose(got[:4], [0, 1 / 3, 1 / 3, 1 / 3], atol=1e-6)


needs_count = pytest.mark.skipif(
    not _has_count(),
    reason="EntropyTemperature(count=) is proposed in /tmp/h2/D-entropy.diff, not applied yet",
)


@needs_count
@pytest.mark.parametrize(
    ("count", "error", "shown"),
    [("all", ValueError, "'all'"), (0, ValueError, "0"), (1.5, TypeError, "1.5")],
)
def test_entropy_temperature_count_rejects(count: Any, error: type, shown: str) -> None:
    """``count`` is 'finite', 'row' or an integer >= 1; the message names it."""
    with pytest.raises(error, match=rf"^`count` must be .*, got {shown}\.$"):
        _entropy_temperature(0.3, 1.3, 1.0, count)


@needs_count
def test_entropy_temperature_count_modes() -> None:
    """'row' is the row's width; an integer (or one per row) is used as given."""
    z = np.array([[5.4, -np.inf, 4.9, 1.0], [0.3, 0.2, -np.inf, -np.inf]], dtype=np.float32)
    row = EntropyTemperature(0.3, 1.3, count="row")(z)  # type: ignore[call-arg]
    four = EntropyTemperature(0.3, 1.3, count=4)(z)  # type: ignore[call-arg]
    np.testing.assert_array_equal(row, four)
    per_row = EntropyTemperature(0.3, 1.3, count=[3, 2])(z)  # type: ignore[call-arg]
    finite = EntropyTemperature(0.3, 1.3)(z)
    np.testing.assert_array_equal(per_row, finite)
    got = Sampler([EntropyTemperature(0.3, 1.3, count="row")]).probs(z)  # type: ignore[call-arg]
    for r in range(2):
        np.testing.assert_allclose(got[r], dynatemp_probs(z[r], 0.3, 1.3, 1.0, 4), atol=1e-6)


@needs_count
def test_entropy_temperature_count_torch_matches_numpy() -> None:
    """The count modes give the same temperatures on torch tensors, on their device."""
    torch = pytest.importorskip("torch")
    z = np.array([[5.4, -np.inf, 4.9, 1.0], [0.3, 0.2, -np.inf, -np.inf]], dtype=np.float32)
    for count in ("row", 4, [3, 2]):
        w = EntropyTemperature(0.3, 1.3, count=count)  # type: ignore[call-arg]
        got = w(torch.from_numpy(z))
        assert isinstance(got, torch.Tensor)
        assert got.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), w(z), rtol=1e-6)


@needs_llama
def test_adaptive_p_follows_llama_cpp_step_by_step() -> None:
    """AdaptiveP's distributions match llama.cpp's adaptive-p over 40 steps of accepted draws.

    llama.cpp selects the token; both sides then accept it (llama.cpp updates
    its EMA with the token's pre-transform probability), so each step's
    transform uses the same adapted target.
    """
    from thermoscope.sampling.adaptive_p import AdaptiveP

    rng = np.random.default_rng(5)
    for target, decay in [(0.3, 0.9), (0.6, 0.5), (0.05, 0.0), (0.9, 0.99)]:
        w = AdaptiveP(target, decay=decay)
        s = Sampler([w])
        with lo.Session(lo.adaptive_p(target, decay, seed=3), 12) as llama:
            for _ in range(40):
                z = rng.normal(0, 2, size=12).astype(np.float32)
                z[rng.random(12) < 0.2] = -np.inf
                z[0] = abs(z[0]) if np.isfinite(z[0]) else 1.0
                cand = llama.apply(z)
                np.testing.assert_allclose(s.probs(z[None])[0], cand.probs(), atol=TOL)
                token = int(cand.ids[cand.selected])
                w.observe(np.array([token]))
                llama.accept(token)


# ---------------------------------------------------------------------------
# The random oracle


@dataclass
class Tally:
    """Per llama.cpp sampler: stage comparisons that agreed, and the documented outcomes."""

    agree: Counter[str] = field(default_factory=Counter)
    tie: Counter[str] = field(default_factory=Counter)
    nan: Counter[str] = field(default_factory=Counter)
    listed: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    cases: int = 0


def random_logits(rng: np.random.Generator) -> np.ndarray:
    """A row of float32 logits: ties (rounded values, repeated values) and -inf entries."""
    v = int(rng.choice([2, 3, 5, 8, 16, 32, 64])) if rng.random() < 0.97 else 1500
    z = rng.normal(0.0, rng.choice([0.5, 1.0, 2.0, 4.0]), size=v)
    if rng.random() < 0.3:
        z = np.round(z, 1)  # many ties
    if rng.random() < 0.2 and v > 2:
        z[rng.integers(0, v, size=2)] = z[rng.integers(0, v)]  # a few exact ties
    if rng.random() < 0.2 and v > 2:
        z[rng.choice(v, size=int(rng.integers(1, max(2, v // 3))), replace=False)] = -np.inf
        if np.isfinite(z).sum() < 2:
            z[:2] = rng.normal(size=2)
    return z.astype(np.float32)


def random_history(rng: np.random.Generator, v: int) -> list[int]:
    """A history with repeats: tokens from a small alphabet, sometimes a repeated phrase."""
    n = int(rng.integers(0, 24))
    alphabet = rng.choice(v, size=min(v, int(rng.integers(1, 6))), replace=False)
    hist = rng.choice(alphabet, size=n).tolist()
    if rng.random() < 0.5 and n > 3:
        phrase = hist[: int(rng.integers(2, 4))]
        hist = hist + phrase + hist[: int(rng.integers(0, 3))] + phrase
    return [int(t) for t in hist]


def random_chain(rng: np.random.Generator, v: int, *, with_new: bool = True) -> list[Stage]:
    """A random subset of llama.cpp's default order with random parameters."""
    chain: list[Stage] = []

    def on(prob: float = 0.45) -> bool:
        return bool(rng.random() < prob)

    if with_new and on(0.25):
        ids = rng.choice(v, size=min(v, int(rng.integers(1, 4))), replace=False)
        bias = {int(t): float(rng.choice([-100.0, -2.5, 1.5, 3.0])) for t in ids}
        chain.append(lo.logit_bias(bias))
    if with_new and on():
        last_n = int(rng.integers(1, 40))
        rep = float(rng.choice([1.0, rng.uniform(0.5, 2.0)]))
        freq = float(rng.choice([0.0, rng.uniform(-1.0, 2.0)]))
        pres = float(rng.choice([0.0, rng.uniform(-1.0, 2.0)]))
        chain.append(lo.penalties(last_n, rep, freq, pres))
    if with_new and on():
        chain.append(
            lo.dry(
                float(rng.uniform(0.2, 3.0)),
                float(rng.uniform(1.05, 3.0)),
                int(rng.integers(1, 4)),
                int(rng.integers(1, 40)),
            )
        )
    if on(0.35):
        chain.append(lo.top_n_sigma(float(rng.uniform(0.05, 3.0))))
    if on():
        chain.append(lo.top_k(int(rng.integers(1, v + 3))))
    if on(0.35):
        chain.append(lo.typical(float(rng.uniform(0.05, 0.99)), int(rng.integers(0, 3))))
    if on():
        chain.append(lo.top_p(float(rng.uniform(0.05, 0.99)), int(rng.integers(0, 3))))
    if on():
        chain.append(lo.min_p(float(rng.uniform(0.0, 0.6)), int(rng.integers(0, 3))))
    if with_new and on(0.35):
        chain.append(lo.xtc(1.0, float(rng.uniform(0.01, 0.5)), int(rng.integers(0, 3))))
    if on(0.6):
        if on(0.5):
            t = float(rng.uniform(0.1, 1.5))
            chain.append(lo.temp_ext(t, float(rng.uniform(0.05, 1.0)), float(rng.uniform(0.3, 2))))
        else:
            chain.append(lo.temp(float(rng.choice([0.0, rng.uniform(0.1, 2.0)]))))
    if with_new and on(0.2):
        chain.append(lo.adaptive_p(float(rng.uniform(0.05, 0.95)), float(rng.uniform(0, 0.99))))
    return chain


def _ties_only(stage_in: Candidates, theirs: np.ndarray, mine: np.ndarray) -> bool:
    """``mine`` is ``theirs`` plus tokens tied (same input logit) with tokens llama.cpp kept."""
    if np.any(theirs & ~mine):
        return False
    z = stage_in.dense_logits()
    extra = z[mine & ~theirs]
    return bool(np.all(np.isin(extra, z[theirs])))


def _typical_nan(stage_in: Candidates) -> bool:
    """A candidate of probability 0 reaches llama.cpp's typical (its entropy is NaN).

    llama.cpp's float32 softmax: ``expf(z - max)``, then divided by the sum; a
    -inf logit, or one ~100 below the maximum (a -100 logit bias), gives 0.
    """
    z = stage_in.logits.astype(np.float32)
    with np.errstate(under="ignore"):
        w = np.exp(z - z.max())
        p = w / w.sum(dtype=np.float32)
    return bool(np.any(p == 0))


def _xtc_tie(stage: Stage, stage_in: Candidates) -> bool:
    """The least probable token at or above XTC's threshold ties another token.

    llama.cpp removes all but the last of its sorted list above the
    threshold, so of tied tokens there it keeps one, in sort order, and
    checks ``min_keep`` with that count; thermoscope keeps the tied group.
    """
    z = stage_in.dense_logits()
    live = z[np.isfinite(z)].astype(np.float64)
    p = np.exp(live - live.max())
    p /= p.sum()
    above = live[p >= stage.args[1]]
    return above.size > 1 and int(np.count_nonzero(live == above.min())) > 1


def compare_case(tally: Tally, logits: np.ndarray, history: list[int], chain: list[Stage]) -> None:
    """Compare llama.cpp and thermoscope after every stage of ``chain`` on one row."""
    tally.cases += 1
    steps = trace_chain(chain, logits, history)
    before = Candidates(np.arange(logits.size), logits.astype(np.float32), logits.size, False, -1)
    warpers: list[Warper] = []
    for stage, after in zip(chain, steps, strict=True):
        if stage.kind == "typical" and stage.args[0] < 1.0 and _typical_nan(before):
            tally.nan[stage.kind] += 1
            return
        count = before.size
        masked = count != int(before.kept.sum())
        if stage.kind == "temp_ext" and stage.args[1] > 0 and masked and not _has_count():
            _check_count_difference(tally, stage, before, after)
            return
        if stage.kind == "temp_ext" and (np.any(after.logits == np.inf) or not after.kept.any()):
            tally.nan[stage.kind] += 1  # llama.cpp's denormal temperature: see the test below
            return
        warpers = warpers + to_thermoscope(stage, count=count)
        mine, kept_mine = ours_kept(warpers, logits, history)
        theirs, kept_theirs = after.probs(), after.kept
        if np.array_equal(kept_mine, kept_theirs):
            if np.max(np.abs(mine - theirs)) <= TOL:
                tally.agree[stage.kind] += 1
                before = after
                continue
        elif _ties_only(before, kept_theirs, kept_mine) or (
            stage.kind == "xtc" and _xtc_tie(stage, before)
        ):
            tally.tie[stage.kind] += 1
            return
        elif stage.kind == "xtc" and masked and _xtc_counts_listed(stage, before, after, kept_mine):
            tally.listed[stage.kind] += 1
            return
        tally.failures.append(
            f"{stage} after {[str(s) for s in chain[: chain.index(stage)]]} "
            f"logits={logits.tolist()} history={history}\n  llama.cpp: {theirs.tolist()}"
            f"\n  thermoscope: {mine.tolist()}"
        )
        return


def _xtc_counts_listed(stage: Stage, before: Candidates, after: Candidates, mine: Any) -> bool:
    """llama.cpp's XTC ``min_keep`` counted -inf candidates it still lists; thermoscope's did not.

    llama.cpp removes the top tokens when ``size - pos_last >= min_keep``,
    ``size`` including listed -inf candidates: it may leave fewer than
    ``min_keep`` finite tokens, where thermoscope leaves the row unchanged.
    """
    keep = max(stage.args[2], 1)
    unchanged = np.array_equal(mine, before.kept)
    return unchanged and int(after.kept.sum()) < keep <= after.size


def _check_count_difference(
    tally: Tally, stage: Stage, before: Candidates, after: Candidates
) -> None:
    """Without ``count=``: llama.cpp is dynatemp over ``log(size)``, as documented."""
    t, delta, exponent = stage.args
    z = before.dense_logits()
    want = dynatemp_probs(z, max(0.0, t - delta), t + delta, exponent, before.size)
    if np.max(np.abs(after.probs() - want)) <= TOL:
        tally.listed[stage.kind] += 1
    else:
        tally.failures.append(f"{stage}: llama.cpp is not dynatemp over log(size) on {z.tolist()}")


def run_oracle(n_cases: int, seed: int, *, with_new: bool = True) -> Tally:
    """``n_cases`` random cases from ``seed``; the tally of every stage comparison."""
    rng = np.random.default_rng(seed)
    tally = Tally()
    for _ in range(n_cases):
        logits = random_logits(rng)
        history = random_history(rng, logits.size)
        chain = random_chain(rng, logits.size, with_new=with_new)
        if chain:
            compare_case(tally, logits, history, chain)
    return tally


def _assert_tally(tally: Tally, minimum: int) -> None:
    assert not tally.failures, f"{len(tally.failures)} disagreements:\n" + "\n".join(
        tally.failures[:5]
    )
    for kind in ("top_n_sigma", "top_k", "typical", "top_p", "min_p", "temp", "temp_ext"):
        assert tally.agree[kind] >= minimum, (kind, dict(tally.agree))


@needs_llama
def test_oracle_existing_samplers() -> None:
    """top-n-sigma, top-k, typical, top-p, min-p, temperature, dynatemp: 1,000 random chains."""
    _assert_tally(run_oracle(1000, seed=20240613, with_new=False), minimum=100)


@needs_llama
def test_oracle_full_chains() -> None:
    """Chains with logit bias, penalties, DRY, XTC and adaptive-p too: 600 random cases."""
    tally = run_oracle(600, seed=7, with_new=True)
    _assert_tally(tally, minimum=30)
    for kind in ("logit_bias", "penalties", "dry", "xtc", "adaptive_p"):
        assert tally.agree[kind] >= 20, (kind, dict(tally.agree))


@needs_llama
@pytest.mark.slow
def test_oracle_many() -> None:
    """20,000 random cases over every sampler."""
    _assert_tally(run_oracle(20000, seed=11, with_new=True), minimum=1000)
