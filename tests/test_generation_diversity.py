"""Diversity metrics: hand-computed examples, sacrebleu's corpus BLEU, invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

sacrebleu = pytest.importorskip("sacrebleu")

from thermoscope.generation.diversity import (  # noqa: E402
    Diversity,
    distinct_n,
    diversity,
    ngrams,
    repetition_rate,
    self_bleu,
)

token_lists = st.lists(st.lists(st.integers(0, 6), max_size=12), min_size=1, max_size=6)


def test_distinct_n_by_hand():
    seqs = [["the", "cat", "sat"], ["the", "cat", "ran"], ["a", "dog"]]
    # unigrams: 8 in all, distinct {the, cat, sat, ran, a, dog} = 6
    assert distinct_n(seqs, 1) == 6 / 8
    # bigrams: (the cat) twice, (cat sat), (cat ran), (a dog): 4 distinct of 5
    assert distinct_n(seqs, 2) == 4 / 5
    # trigrams: (the cat sat), (the cat ran): 2 of 2
    assert distinct_n(seqs, 3) == 1.0
    assert math.isnan(distinct_n(seqs, 4))


def test_repetition_rate_by_hand():
    # "a b a b a b a" has 4-grams abab, baba, abab, baba: 2 distinct of 4 -> rep 0.5
    looping = list("abababa")
    assert repetition_rate([looping], 4) == 0.5
    assert repetition_rate([looping, list("abcdefg")], 4) == 0.25
    assert repetition_rate([list("abc")], 4) != repetition_rate([list("abc")], 4)  # nan
    assert repetition_rate([[1, 1, 1]], 1) == pytest.approx(2 / 3)


def test_self_bleu_two_samples_by_hand():
    # Each against the other: 1-4-gram precisions 4/5, 3/4, 2/3, 1/2; equal lengths.
    expected = (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert self_bleu(["a b c d e", "a b c d f"]) == pytest.approx(expected, rel=1e-12)


def test_self_bleu_brevity_penalty_by_hand():
    # Every n-gram of every hypothesis matches some reference (precisions 1), but the
    # short one is scored against references of length 6: c = 2 + 6 + 6 = 14,
    # r = 6 + 6 + 6 = 18 (closest reference length each), BP = exp(1 - 18/14).
    texts = ["a b", "a b c d e f", "a b c d e f"]
    assert self_bleu(texts) == pytest.approx(math.exp(1 - 18 / 14), rel=1e-12)


def test_self_bleu_is_sacrebleu_corpus_bleu_of_each_sample_against_the_others():
    texts = [
        "def parse(text): return text.split()",
        "def parse(line): return line.strip().split(',')",
        "def parse(s): return int(s)",
        "import json; data = json.loads(s)",
    ]
    hyps, refs = [], []
    for i, hyp in enumerate(texts):
        hyps.append(hyp)
        refs.append([t for j, t in enumerate(texts) if j != i])
    streams = [list(col) for col in zip(*refs, strict=True)]  # one stream per reference slot
    ref = sacrebleu.corpus_bleu(hyps, streams, use_effective_order=True, force=True).score
    assert self_bleu(texts) == pytest.approx(ref / 100, rel=1e-12)


def test_self_bleu_extremes():
    assert self_bleu(["x y z w"] * 4) == 1.0
    assert self_bleu(["a b c d", "e f g h"]) == 0.0


@given(token_lists, st.integers(1, 3))
def test_distinct_n_in_unit_interval_and_order_free(seqs, n):
    value = distinct_n(seqs, n)
    if math.isnan(value):
        assert all(len(s) < n for s in seqs)
    else:
        assert 0 < value <= 1
        assert distinct_n(seqs[::-1], n) == value


@given(token_lists, st.integers(1, 3))
def test_copies_lower_distinct_and_never_change_repetition(seqs, n):
    if any(len(s) >= n for s in seqs):
        assert distinct_n(seqs + seqs, n) == pytest.approx(distinct_n(seqs, n) / 2)
        assert repetition_rate(seqs + seqs, n) == pytest.approx(repetition_rate(seqs, n))


@given(st.lists(st.integers(), min_size=4, max_size=20, unique=True))
def test_no_repeats_means_zero_repetition_and_full_distinct(tokens):
    assert repetition_rate([tokens], 4) == 0.0
    assert distinct_n([tokens], 2) == 1.0


def test_diversity_bundle():
    d = diversity([[1, 2, 3, 4, 1, 2, 3, 4], [5, 6]], ["a b c", "a b d"])
    assert d == Diversity(
        distinct_n([[1, 2, 3, 4, 1, 2, 3, 4], [5, 6]], 1),
        distinct_n([[1, 2, 3, 4, 1, 2, 3, 4], [5, 6]], 2),
        distinct_n([[1, 2, 3, 4, 1, 2, 3, 4], [5, 6]], 3),
        self_bleu(["a b c", "a b d"]),
        repetition_rate([[1, 2, 3, 4, 1, 2, 3, 4]], 4),
    )
    assert math.isnan(diversity([[1, 2]], ["a"]).self_bleu)
    assert ngrams([1, 2, 3], 2) == [(1, 2), (2, 3)]


def test_bad_input():
    with pytest.raises(ValueError, match="`n` must be an integer >= 1"):
        distinct_n([[1, 2]], 0)
    with pytest.raises(TypeError, match="`n` must be an integer"):
        repetition_rate([[1, 2]], 1.5)
    with pytest.raises(TypeError, match="`sequences` must contain token sequences"):
        distinct_n(["the cat sat"], 1)
    with pytest.raises(TypeError, match="`sequences` must be a sequence of token sequences"):
        distinct_n(3, 1)
    with pytest.raises(ValueError, match="`texts` must hold at least 2 samples"):
        self_bleu(["only one"])
    with pytest.raises(TypeError, match="`texts` must be a sequence of strings"):
        self_bleu("a b c")
    with pytest.raises(TypeError, match="`texts` must contain only strings"):
        self_bleu(["a", 3])
    with pytest.raises(ValueError, match="`texts` must have one text per sequence"):
        diversity([[1], [2]], ["a"])
