"""DRY, "Don't Repeat Yourself": penalise the token that would extend a repeat.

If the last tokens of the history also appear earlier, followed by token
``x``, then emitting ``x`` now would extend that repeat. DRY subtracts
``multiplier * base ** (L - allowed_length)`` from ``x``'s logit, ``L`` being
the length of the longest such repeat (``L >= allowed_length``). Sequence
breakers (newline, ``:``, quotes, ...) end a repeat: a match never reaches
back across the last breaker of the history.

Computed without a loop over tokens: one vectorised pass over the history per
repeat length, stopped when no position matches any longer (see
:func:`match_lengths`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._typing import Array
from thermoscope._validation import check_finite, check_integer, check_temperature
from thermoscope.sampling._context import Context
from thermoscope.sampling._input import rows_param
from thermoscope.sampling.warpers import HistoryWarper, _freeze

__all__ = ["DEFAULT_SEQUENCE_BREAKERS", "DRY", "match_lengths", "repeat_caps"]

#: llama.cpp's default breakers (``common_params_sampling.dry_sequence_breakers``).
DEFAULT_SEQUENCE_BREAKERS: tuple[str, ...] = ("\n", ":", '"', "*")

# llama.cpp's limits on string breakers (llama_sampler_init_dry): characters
# kept of each string, and tokens kept of a multi-token breaker's tail.
_MAX_BREAKER_CHARS = 40
_MAX_TAIL_TOKENS = 20
# llama.cpp caps the exponent so that base ** exponent stays a finite float32:
# FLOAT_MAX_LOG / log(base), in float32, for base > 1.000001.
_FLOAT_MAX_LOG = np.float32(88.7228391)
_CAPPED_ABOVE = np.float32(1.000001)
# match_lengths compares whole windows while more than 1 / _SPARSE_BELOW of the
# positions still match, then only the matching ones (measured crossover).
_SPARSE_BELOW = 8
_BLOCK = 16  # lengths compared per pass once few positions still match


@dataclass(frozen=True, eq=False)
class DRY(HistoryWarper):
    """The DRY repetition penalty (llama.cpp's ``dry`` sampler), vectorised over rows.

    For each earlier position of the window whose tokens, read backwards,
    match the end of the history for ``L >= allowed_length`` tokens, the token
    that followed that position gets ``multiplier * base ** (L - allowed_length)``
    subtracted from its logit (the largest ``L`` over its occurrences).

    Parameters
    ----------
    multiplier : float or array_like
        Penalty scale, finite and >= 0, one value or one per row; ``0`` is off
        (the stage returns the logits unchanged). Typical value 0.8.
    base : float or array_like, default 1.75
        Growth per extra repeated token, finite and >= 1, or one per row.
        ``1`` gives the constant penalty ``multiplier`` to every repeat of
        ``allowed_length`` tokens or more.
    allowed_length : int or array_like of int, default 2
        Repeats shorter than this are free; >= 0, or one per row.
    last_n : int, default -1
        The window: the last ``last_n`` tokens of each row's history; ``-1``
        is the whole history, ``0`` turns DRY off.
    sequence_breakers : sequence of str or of token-id sequences
        Defaults to llama.cpp's ``("\\n", ":", '"', "*")``. Each breaker is a
        tuple of token ids (``(13,)``, ``(25, 7)``), or a string, which needs
        ``tokenizer``. ``()`` means no breakers; an empty breaker is an error.
    tokenizer : transformers tokenizer, optional
        Turns string breakers into token ids, as llama.cpp does (below).

    Notes
    -----
    Matches llama.cpp's ``llama_sampler_dry_apply`` (``src/llama-sampler.cpp``,
    as vendored by llama-cpp-python 0.3.36; ported there from koboldcpp) token
    for token:

    - Step 1: the breaker occurrence nearest the end of the window (scanning
      heads from the end; at a head, its longest matching tail) limits every
      repeat to the tokens after it (``rep_limit``). A row whose limit is below
      ``allowed_length``, or whose window has ``<= allowed_length`` tokens, is
      left alone.
    - Step 2: match lengths, which llama.cpp finds with a reversed Z-algorithm;
      here one vectorised comparison per length (:func:`match_lengths`), each
      length capped at ``rep_limit``, matches confined to the window.
    - Step 3: the token after each earlier position with ``L >= allowed_length``
      takes the largest such ``L``.
    - Step 4: ``multiplier * base ** min(L - allowed_length, max_exponent)``,
      ``max_exponent = int(88.7228391 / log(base))`` in float32 for
      ``base > 1.000001`` (llama.cpp's guard against float32 overflow), is
      subtracted, except from single-token breakers, which are never penalised.
      Lengths beyond ``allowed_length + max_exponent`` give the same penalty, so
      the matching stops there: the cost is bounded however long the repeats.

    String breakers with a ``tokenizer`` follow llama.cpp's
    ``get_overlapping_token_sequences``: each string (its first 40 characters)
    makes every token whose text contains it a single-token breaker, and every
    token whose text *ends* with a proper prefix of it the head of a
    multi-token breaker whose tail is the rest of the string, encoded without
    special tokens (at most 20 tokens). Token texts come from
    ``tokenizer.decode([id])``. Token-id breakers are used as given: the first
    id is the head, the rest the tail (llama.cpp's ``llama_sampler_init_dry_testing``).

    Departures, each deliberate: ``base < 1`` and a negative ``last_n`` other
    than ``-1`` are errors (llama.cpp silently disables DRY); ``last_n = -1``
    is the whole history (llama.cpp's server default is 64, its library
    clamps -1 to 0 = off); penalties are computed in float64; string breakers
    without a ``tokenizer`` are a ValueError naming ``tokenizer`` (pass
    token-id breakers, or ``sequence_breakers=()``, to use DRY without one).
    The history is the call's ``history=`` (a stateless stage), not tokens
    accepted one by one. In both of thermoscope's orders DRY runs with the
    other history stages, before temperature and truncation, as in llama.cpp.

    Examples
    --------
    >>> import numpy as np
    >>> dry = DRY(1.0, base=2.0, allowed_length=2, sequence_breakers=())
    >>> # "0 1 2 0 1": emitting 2 would repeat "0 1 2" (L = 2 tokens so far)
    >>> dry(np.zeros(4), history=[0, 1, 2, 0, 1])
    array([ 0.,  0., -1.,  0.])
    >>> dry(np.zeros(4), history=[0, 1, 2, 0, 1, 2, 0, 1])  # L = 5: 2 ** 3
    array([ 0.,  0., -8.,  0.])
    >>> DRY(1.0, sequence_breakers=[(1,)])(np.zeros(4), history=[0, 1, 2, 0, 1])
    array([0., 0., 0., 0.])
    """

    multiplier: float | Array
    base: float | Array = field(default=1.75, kw_only=True)
    allowed_length: int | Array = field(default=2, kw_only=True)
    last_n: int = field(default=-1, kw_only=True)
    sequence_breakers: Any = field(default=DEFAULT_SEQUENCE_BREAKERS, kw_only=True)
    tokenizer: Any = field(default=None, kw_only=True, repr=False)
    name: ClassVar[str] = "dry"

    def __post_init__(self) -> None:
        mult = check_temperature(self.multiplier, "multiplier")
        check_finite(mult, "multiplier")
        base = check_temperature(self.base, "base")
        check_finite(base, "base")
        if np.any(base < 1):
            raise ValueError(f"`base` must be a number >= 1, got {base[base < 1].flat[0]!r}.")
        allowed = check_integer(self.allowed_length, "allowed_length", minimum=0)
        last_n = check_integer(self.last_n, "last_n", minimum=-1)
        if last_n.ndim != 0:
            raise TypeError(f"`last_n` must be a single integer >= -1, got shape {last_n.shape}.")
        object.__setattr__(self, "multiplier", _freeze(mult))
        object.__setattr__(self, "base", _freeze(base))
        object.__setattr__(self, "allowed_length", _freeze(allowed))
        object.__setattr__(self, "last_n", int(last_n))
        breakers = token_breakers(self.sequence_breakers, self.tokenizer)
        object.__setattr__(self, "sequence_breakers", breakers)

    def apply_in(self, z: Any, ctx: Context) -> Any:
        """Subtract the DRY penalties from rows ``z`` (B, V) given ``ctx.history``.

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.sampling._context import as_history
        >>> h = as_history([[3, 0, 3]], None, batch=1, vocab=4)
        >>> dry = DRY(0.5, allowed_length=1, sequence_breakers=())
        >>> dry.apply_in(np.zeros((1, 4)), Context((1,), h))
        array([[-0.5,  0. ,  0. ,  0. ]])
        """
        return self.apply_into(z.clone() if is_torch(z) else z.copy(), ctx)

    def apply_into(self, out: Any, ctx: Context) -> Any:
        """:meth:`apply_in` written into rows ``out`` (B, V) that the caller owns; returns them.

        Only the entries of the tokens that follow a repeat are written.

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.sampling._context import as_history
        >>> h = as_history([[3, 0, 3]], None, batch=1, vocab=4)
        >>> out = np.zeros((1, 4))
        >>> DRY(0.5, allowed_length=1, sequence_breakers=()).apply_into(out, Context((1,), h))
        array([[-0.5,  0. ,  0. ,  0. ]])
        >>> out
        array([[-0.5,  0. ,  0. ,  0. ]])
        """
        history = ctx.require_history(type(self).__name__)
        mult = rows_param(self.multiplier, ctx.batch_shape, "multiplier")
        base = rows_param(self.base, ctx.batch_shape, "base")
        allowed = rows_param(self.allowed_length, ctx.batch_shape, "allowed_length")
        window = history.last(self.last_n)
        if self.last_n == 0 or window.shape[1] == 0 or not np.any(mult > 0):
            return out
        vocab = int(out.shape[1])
        single = [b[0] for b in self.sequence_breakers if len(b) == 1 and b[0] < vocab]
        multi = [b for b in self.sequence_breakers if len(b) > 1]
        n = int(window.shape[1])
        allowed = np.minimum(allowed, n)  # a longer allowance penalises nothing either way
        cap = allowed + np.minimum(repeat_caps(base), n)
        if is_torch(out):
            from thermoscope.sampling import _dry_torch

            return _dry_torch.penalise(out, window, mult, base, allowed, cap, single, multi)
        return _penalise(out, window, mult, base, allowed, cap, single, multi)


def repeat_caps(base: Array) -> Array:
    """Per row, how many tokens past ``allowed_length`` still raise the penalty (int64).

    ``max_exponent`` for ``base > 1.000001`` (at least 1), 0 for ``base = 1``
    (a constant penalty), and a huge value in between (llama.cpp does not cap).

    Examples
    --------
    >>> repeat_caps(np.array([1.75, 2.0, 1.0]))
    array([158, 128,   0])
    """
    b32 = np.minimum(base, np.finfo(np.float32).max).astype(np.float32)
    capped = b32 > _CAPPED_ABOVE
    safe = np.where(capped, b32, np.float32(2.0))
    # float32 as llama.cpp (FLOAT_MAX_LOG / std::log(float)), truncated toward 0.
    max_exp = (_FLOAT_MAX_LOG / np.log(safe)).astype(np.int64)
    out = np.where(capped, np.maximum(max_exp, 1), 1 << 62)
    out = np.where(base == 1.0, 0, out)
    result: Array = out.astype(np.int64)
    return result


def token_breakers(breakers: Any, tokenizer: Any = None) -> tuple[tuple[int, ...], ...]:
    """Sequence breakers as token-id tuples ``(head, *tail)``, checked.

    Examples
    --------
    >>> token_breakers([(13,), [25, 7]])
    ((13,), (25, 7))
    """
    name = "sequence_breakers"
    if isinstance(breakers, (str, bytes)) or not isinstance(breakers, Iterable):
        raise TypeError(
            f"`{name}` must be a sequence of breakers (strings or token-id tuples), "
            f"got {breakers!r}."
        )
    out: list[tuple[int, ...]] = []
    strings: list[str] = []
    for item in breakers:
        if isinstance(item, str):
            if not item:
                raise ValueError(f"`{name}` must not contain an empty breaker, got {item!r}.")
            strings.append(item[:_MAX_BREAKER_CHARS])
            continue
        if isinstance(item, bytes) or not isinstance(item, (Sequence, np.ndarray)):
            raise TypeError(
                f"`{name}` entries must be strings or sequences of token ids, got {item!r}."
            )
        if len(item) == 0:
            raise ValueError(f"`{name}` must not contain an empty breaker, got {item!r}.")
        out.append(tuple(check_integer(np.asarray(item), name, minimum=0).reshape(-1).tolist()))
    if strings:
        out.extend(_from_strings(strings, tokenizer))
    return tuple(dict.fromkeys(out))  # without repeats, in order


def _from_strings(strings: list[str], tokenizer: Any) -> list[tuple[int, ...]]:
    """llama.cpp's ``get_overlapping_token_sequences`` for each string, one decode of the vocab."""
    if tokenizer is None:
        raise ValueError(
            f"`tokenizer` is needed to turn the string sequence breakers {tuple(strings)!r} "
            "into token ids: pass tokenizer=, or sequence_breakers as token-id tuples "
            "(() for none), got tokenizer=None."
        )
    if not (callable(getattr(tokenizer, "encode", None)) and hasattr(tokenizer, "__len__")):
        raise TypeError(
            "`tokenizer` must be a transformers tokenizer (with encode, decode and len), "
            f"got {type(tokenizer).__name__}."
        )
    ids = [[i] for i in range(len(tokenizer))]
    kw = {"skip_special_tokens": False, "clean_up_tokenization_spaces": False}
    if callable(getattr(tokenizer, "batch_decode", None)):
        words = list(tokenizer.batch_decode(ids, **kw))
    else:
        words = [tokenizer.decode(i, **kw) for i in ids]
    out: list[tuple[int, ...]] = []
    for text in strings:
        for token, word in enumerate(words):
            if text in word:
                out.append((token,))
                continue
            pos = word.find(text[0])
            while pos >= 0:
                # The word ends with a proper prefix of the text: the rest of the
                # text, tokenised, is the breaker's tail.
                if text.startswith(word[pos:]):
                    rest = text[len(word) - pos :]
                    tail = tokenizer.encode(rest, add_special_tokens=False)
                    out.append((token, *[int(t) for t in tail[:_MAX_TAIL_TOKENS]]))
                pos = word.find(text[0], pos + 1)
    return out


def _padded(window: Array) -> Array:
    """The window with each padding column a distinct negative value, so pads match nothing."""
    col = np.arange(window.shape[1], dtype=np.int64)
    out: Array = np.where(window >= 0, window, -2 - col)
    return out


def _rep_limits(w: Array, single: list[int], multi: list[tuple[int, ...]], vocab: int) -> Array:
    """Step 1: per row, the tokens after the last breaker (-1: no breaker in the window)."""
    n = w.shape[1]
    if not single and not multi:
        return np.full(w.shape[0], -1, dtype=np.int64)
    lut = np.zeros(vocab + 1, dtype=bool)  # the last entry stands for every padding value
    lut[single] = True
    hit = lut[np.where(w >= 0, w, vocab)]
    longest = max((len(b) for b in multi), default=1)
    # The breaker whose head is nearest the end wins, then its longest tail:
    # rank each occurrence by head * longest + tail length.
    last = n - 1 - np.argmax(hit[:, ::-1], axis=1)
    best = np.where(hit.any(axis=1), last * longest, -1)
    if multi:
        r, q, m = _multi_hits(w, multi)
        np.maximum.at(best, r, q * longest + m)
    head, tail = np.divmod(best, longest)
    out: Array = np.where(best >= 0, n - 1 - head - tail, -1)
    return out


def _multi_hits(w: Array, multi: list[tuple[int, ...]]) -> tuple[Array, Array, Array]:
    """Rows, head positions and tail lengths of the multi-token breakers found in ``w``.

    Only positions holding a head are examined: each is paired with every
    breaker of that head, and the tails are compared for all pairs at once.
    """
    n = w.shape[1]
    heads = np.array([b[0] for b in multi], dtype=np.int64)
    order = np.argsort(heads, kind="stable")
    sorted_heads = heads[order]
    width = max(len(b) for b in multi) - 1
    tails = np.full((len(multi), width), -1, dtype=np.int64)
    for i, b in enumerate(multi):
        tails[i, : len(b) - 1] = b[1:]
    tail_len = np.array([len(b) - 1 for b in multi], dtype=np.int64)
    r, q = np.nonzero(np.isin(w, heads))
    lo = np.searchsorted(sorted_heads, w[r, q], side="left")
    count = np.searchsorted(sorted_heads, w[r, q], side="right") - lo
    pair = np.repeat(np.arange(r.size), count)
    rank = np.arange(pair.size) - np.repeat(np.cumsum(count) - count, count)
    entry = order[lo[pair] + rank]
    rr, qq, m = r[pair], q[pair], tail_len[entry]
    ok = qq + m <= n - 1
    for j in range(width):
        at = w[rr, np.minimum(qq + 1 + j, n - 1)]
        ok &= (j >= m) | (at == tails[entry, j])
    return rr[ok], qq[ok], m[ok]


def match_lengths(w: Array, limit: Array) -> Array:
    """How far each earlier position matches the end of the window, read backwards.

    ``out[r, p]`` (``p < n - 1``) is the largest ``L <= limit[r]`` with
    ``w[r, p - s] == w[r, n - 1 - s]`` for ``s < L``: the length of the repeat
    that token ``w[r, p + 1]`` would extend. One vectorised comparison per
    length, over the whole window while many positions still match, then over
    the matching positions only; it stops when no position of any row matches
    further.

    Examples
    --------
    >>> match_lengths(np.array([[0, 1, 2, 0, 1]]), np.array([9]))
    array([[0, 2, 0, 0]], dtype=int32)
    """
    rows, n = w.shape
    out = np.zeros((rows, max(n - 1, 0)), dtype=np.int32)
    if n < 2:
        return out
    # alive: the positions whose repeat is at least t tokens long.
    alive = (w[:, :-1] == w[:, -1:]) & (limit > 0)[:, None]
    t = 1
    count = np.count_nonzero(alive)
    while count * _SPARSE_BELOW > alive.size:
        out += alive
        alive[:, t:] &= w[:, : n - 1 - t] == w[:, n - 1 - t, None]
        alive[:, :t] = False
        if np.any(limit == t):
            alive[limit <= t] = False
        t += 1
        count = np.count_nonzero(alive)
    # Sparse: flat indices into w of the matching positions and of their rows'
    # ends; _BLOCK lengths per pass, a run of matches counted at once.
    r, p = np.nonzero(alive)
    out[r, p] += 1  # these repeats are t tokens long at least
    at, end, cut = r * n + p, r * n + (n - 1), limit[r]
    flat_w = w.reshape(-1)
    steps = np.arange(_BLOCK)
    while at.size:
        s = t + steps
        # Clipped gathers: an offset past the row start is masked just below.
        eq = flat_w[np.maximum(at[:, None] - s, 0)] == flat_w[np.maximum(end[:, None] - s, 0)]
        eq &= (p[:, None] >= s) & (cut[:, None] > s)
        run = np.where(eq.all(axis=1), _BLOCK, eq.argmin(axis=1))  # matches before the first miss
        out[r, p] += run.astype(np.int32)
        go = run == _BLOCK
        at, end, cut, r, p = at[go], end[go], cut[go], r[go], p[go]
        t += _BLOCK
    return out


def _penalise(
    out: Array,
    window: Array,
    mult: Array,
    base: Array,
    allowed: Array,
    cap: Array,
    single: list[int],
    multi: list[tuple[int, ...]],
) -> Array:
    """Steps 1-4 on numpy rows: the DRY penalties subtracted from ``out``, which is returned."""
    vocab = out.shape[1]
    w = _padded(window)
    n = w.shape[1]
    length = (window >= 0).sum(axis=1)
    rep_limit = _rep_limits(w, single, multi, vocab)
    rep_limit = np.where(rep_limit < 0, length, rep_limit)
    # llama.cpp leaves a row alone when its window is too short or the last
    # breaker leaves fewer than allowed_length tokens to repeat.
    live = (length > allowed) & (rep_limit >= allowed) & (mult > 0)
    lengths = match_lengths(w, np.where(live, np.minimum(rep_limit, cap), 0))
    real = np.arange(n - 1) >= (n - length)[:, None]
    hits = (lengths >= allowed[:, None]) & real & live[:, None]
    nxt = w[:, 1:]
    if single:
        never = np.zeros(vocab + 1, dtype=bool)  # single-token breakers are never penalised
        never[single] = True
        hits &= ~never[np.where(nxt >= 0, nxt, vocab)]
    r, p = np.nonzero(hits)
    if r.size == 0:
        return out
    # The longest repeat per (row, token): sort by token then length, keep each run's last.
    width = int(lengths.max()) + 1
    key = (r * vocab + nxt[r, p]) * width + lengths[r, p]
    key.sort()
    flat, longest = np.divmod(key, width)
    last = np.append(flat[1:] != flat[:-1], True)
    flat, longest = flat[last], longest[last]
    row, token = np.divmod(flat, vocab)
    exponent = longest - allowed[row]  # <= max_exponent: the lengths stop at cap
    with np.errstate(over="ignore"):  # a huge multiplier: the penalty is inf, the logit -inf
        penalty = mult[row] * base[row] ** exponent
    # Works on any layout of ``out``; each (row, token) is written once.
    out[row, token] -= penalty.astype(out.dtype)
    return out
