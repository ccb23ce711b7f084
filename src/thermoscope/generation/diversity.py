"""Diversity of a set of generated samples: distinct-n, self-BLEU, repetition rate.

Pure functions on token sequences (any hashable tokens: model token ids,
words, characters) or on texts (self-BLEU, computed by sacrebleu). Higher
temperature gives higher distinct-n, lower self-BLEU and less repetition.

Examples
--------
>>> seqs = [[1, 2, 3, 1, 2], [1, 2, 4]]
>>> distinct_n(seqs, 1), distinct_n(seqs, 2)
(0.5, 0.6666666666666666)
>>> repetition_rate([[7, 7, 7, 7]], n=1)
0.75
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from thermoscope._validation import check_integer

__all__ = ["Diversity", "distinct_n", "diversity", "ngrams", "repetition_rate", "self_bleu"]


def _order(n: Any) -> int:
    arr = check_integer(n, "n")
    if arr.ndim != 0:
        raise TypeError(f"`n` must be a single integer >= 1, got shape {arr.shape}.")
    return int(arr)


def _sequences(sequences: Any, name: str = "sequences") -> list[tuple[Hashable, ...]]:
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Iterable):
        raise TypeError(
            f"`{name}` must be a sequence of token sequences (lists of ids or words), "
            f"got {type(sequences).__name__}."
        )
    out = []
    for seq in sequences:
        if isinstance(seq, str):
            raise TypeError(
                f"`{name}` must contain token sequences, not strings (split the text into "
                f"tokens first), got {seq!r}."
            )
        out.append(tuple(seq))
    return out


def ngrams(tokens: Sequence[Hashable], n: int) -> list[tuple[Hashable, ...]]:
    """The contiguous n-grams of one sequence, in order (none if it is shorter than n).

    Examples
    --------
    >>> ngrams("abcd", 3)
    [('a', 'b', 'c'), ('b', 'c', 'd')]
    """
    k = _order(n)
    return [tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)]


def distinct_n(sequences: Iterable[Sequence[Hashable]], n: int = 2) -> float:
    """Distinct-n (Li et al., 2016): distinct n-grams over all n-grams of all sequences.

    Parameters
    ----------
    sequences : iterable of sequences of hashable tokens
    n : int, default 2

    Returns
    -------
    float
        In (0, 1]; 1 when no n-gram occurs twice in the whole set. ``nan``
        when there is no n-gram at all (every sequence shorter than ``n``).

    Examples
    --------
    >>> distinct_n([["a", "b"], ["a", "b"]], 2)
    0.5
    """
    k = _order(n)
    grams = [g for seq in _sequences(sequences) for g in ngrams(seq, k)]
    return len(set(grams)) / len(grams) if grams else math.nan


def repetition_rate(sequences: Iterable[Sequence[Hashable]], n: int = 4) -> float:
    """Within-sequence repetition (seq-rep-n, Welleck et al., 2019), averaged over sequences.

    For one sequence: ``1 - distinct n-grams / n-grams``, the share of its
    n-grams that repeat an earlier one of the same sequence. Sequences
    shorter than ``n`` are left out of the mean.

    Returns
    -------
    float
        In [0, 1); 0 when no sequence repeats itself. ``nan`` when no
        sequence has an n-gram.

    Examples
    --------
    >>> repetition_rate([[1, 2, 1, 2, 1, 2], [1, 2, 3, 4, 5, 6]], n=2)
    0.3
    """
    k = _order(n)
    rates = []
    for seq in _sequences(sequences):
        grams = ngrams(seq, k)
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else math.nan


def self_bleu(texts: Sequence[str], tokenize: str = "13a") -> float:
    """Self-BLEU (Zhu et al., 2018): how much the samples resemble one another, in [0, 1].

    Each text is a hypothesis scored against all the other texts as
    references, and the statistics are pooled into one corpus BLEU by
    sacrebleu (up to 4-grams, exponential smoothing, brevity penalty, effective
    order: n-gram orders that no sample is long enough for are left out),
    divided by 100. 1 means every sample is a copy of the others; lower is
    more diverse.

    Parameters
    ----------
    texts : sequence of str
        At least two samples.
    tokenize : str, default "13a"
        sacrebleu's tokenizer ("13a" for text and code, "zh", "char", ...).

    Notes
    -----
    ``sacrebleu.corpus_bleu(texts, streams)`` where reference stream ``j``
    (``j = 1 .. m-1``) gives text ``i`` the reference ``texts[(i + j) % m]``:
    every text is compared with each of the others exactly once. The
    per-text average of sentence BLEUs (Texygen's variant) weighs short
    samples as much as long ones; the pooled score does not.

    Examples
    --------
    >>> round(self_bleu(["a b c d e", "a b c d f"]), 4)  # (4/5 * 3/4 * 2/3 * 1/2) ** (1/4)
    0.6687
    >>> self_bleu(["the cat sat", "the cat sat", "the cat sat"])
    1.0
    """
    from sacrebleu.metrics.bleu import BLEU

    if isinstance(texts, str):
        raise TypeError(f"`texts` must be a sequence of strings, got the string {texts!r}.")
    items = list(texts)
    if not all(isinstance(t, str) for t in items):
        raise TypeError("`texts` must contain only strings.")
    m = len(items)
    if m < 2:
        raise ValueError(f"`texts` must hold at least 2 samples for self-BLEU, got {m}.")
    streams = [[items[(i + j) % m] for i in range(m)] for j in range(1, m)]
    # force=True: the samples are raw model output, not a test set; skip sacrebleu's
    # "looks already tokenized" heuristic and its log message.
    bleu = BLEU(tokenize=tokenize, force=True, effective_order=True)
    # sacrebleu's 100 can come out as 100.00000000000004.
    return min(1.0, float(bleu.corpus_score(items, streams).score) / 100.0)


@dataclass(frozen=True)
class Diversity:
    """Diversity of one set of samples (see :func:`diversity`).

    Attributes
    ----------
    distinct_1, distinct_2, distinct_3 : float
        :func:`distinct_n` for n = 1, 2, 3 (higher: more diverse).
    self_bleu : float
        :func:`self_bleu` (lower: more diverse); ``nan`` for a single sample.
    repetition : float
        :func:`repetition_rate` with n = 4 (lower: less looping).

    Examples
    --------
    >>> Diversity(1.0, 1.0, 1.0, 0.0, 0.0).as_dict()["self_bleu"]
    0.0
    """

    distinct_1: float
    distinct_2: float
    distinct_3: float
    self_bleu: float
    repetition: float

    def as_dict(self) -> dict[str, float]:
        """The metrics by name (JSON-ready).

        Examples
        --------
        >>> Diversity(1.0, 0.9, 0.8, 0.1, 0.0).as_dict()["self_bleu"]
        0.1
        """
        return asdict(self)


def diversity(
    sequences: Iterable[Sequence[Hashable]], texts: Sequence[str], tokenize: str = "13a"
) -> Diversity:
    """Distinct-1/2/3 and repetition of ``sequences``, self-BLEU of ``texts``.

    Parameters
    ----------
    sequences : iterable of token sequences
        The samples as tokens (thermoscope uses the model's token ids, which
        works for any language, with or without spaces).
    texts : sequence of str
        The same samples as text, for self-BLEU.
    tokenize : str, default "13a"
        sacrebleu's tokenizer for self-BLEU.

    Examples
    --------
    >>> d = diversity([[1, 2, 3], [1, 2, 4]], ["a b c", "a b d"])
    >>> d.distinct_1, d.distinct_2, d.repetition
    (0.6666666666666666, 0.75, nan)
    """
    seqs = _sequences(sequences)
    if len(seqs) != len(texts):
        raise ValueError(
            f"`texts` must have one text per sequence ({len(seqs)}), got {len(texts)}."
        )
    return Diversity(
        distinct_n(seqs, 1),
        distinct_n(seqs, 2),
        distinct_n(seqs, 3),
        self_bleu(texts, tokenize) if len(texts) >= 2 else math.nan,
        repetition_rate(seqs, 4),
    )
