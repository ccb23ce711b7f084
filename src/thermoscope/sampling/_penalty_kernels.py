"""Row kernels of the history-aware stages (:mod:`thermoscope.sampling.penalties`), numpy.

Every kernel takes rows ``out`` (B, V) in the compute dtype that the caller
owns, token ids ``ids`` (B, W) int64, right-aligned and padded on the left
with -1 (a :class:`~thermoscope.sampling._context.History` or a window of
it, ``W >= 1``) and per-row parameters (B,) float64. It writes the stage's
result into ``out`` and returns it (a C-contiguous copy of ``out`` instead
when ``out`` is not C-contiguous), so that a run of stages shares one copy of
the logits. The torch versions, same names and semantics, are in
:mod:`thermoscope.sampling._penalty_kernels_torch`.

How a whole window is applied without a loop over tokens
--------------------------------------------------------
Each id of the window is gathered from ``out``, its new value computed in
float64 and the values scattered back: O(B * W) work, nothing of size
B * V besides the rows themselves. A token seen several times is written
several times with the *same* value, so duplicates need no de-duplication.
Padding (-1) is pointed at the row's last token (a real token whenever the
row has one: the ids are right-aligned) and computes that token's value too;
a row with no token at all points at its token 0 and writes it back
unchanged.

Occurrence counts (:func:`frequency`) are counted in ``out`` itself: once
the window's values are gathered, its columns are zeroed, one is added per
occurrence (``np.add.at``) and the counts are gathered back, before the new
values overwrite those columns. Counts are exact integers in the rows' dtype
up to ``2 ** (mantissa bits + 1)`` (16,777,216 for float32): a longer window
is counted in slices of that many columns.
"""

from __future__ import annotations

import numpy as np

from thermoscope._typing import Array

__all__ = [
    "add_columns",
    "counts",
    "exact_count_limit",
    "frequency",
    "group_sums",
    "ngram_ban",
    "presence",
    "repetition",
    "sequence_bias",
    "suffix_matches",
]


def _rows(out: Array) -> Array:
    """``out`` when it is C-contiguous (its flat view writes through), else a contiguous copy."""
    return out if out.flags.c_contiguous else np.ascontiguousarray(out)


def _redirect(ids: Array, vocab: int) -> tuple[Array, Array | None]:
    """Flat indices ``row * V + id`` of the window, padding pointed at the row's last token.

    Also returns whether each row has a token (a row without one points at
    its token 0 and must write it back unchanged), or None when every row
    has one.
    """
    offsets = (np.arange(ids.shape[0]) * vocab)[:, None]
    last = ids[:, -1]
    # Flat indices: np.take / setitem on a raveled array cost a fraction of
    # take_along_axis / put_along_axis, which build broadcast index tuples.
    if ids[:, 0].min() >= 0:  # no padding (right-aligned: column 0 is the first to pad)
        return ids + offsets, None
    has = last >= 0
    idx = np.where(ids >= 0, ids, np.where(has, last, 0)[:, None])
    flat: Array = idx + offsets
    return flat, None if has.all() else has


def _keep_empty(new: Array, old: Array, has: Array | None) -> Array:
    """``new``, with rows that have no token (``has`` false) given back their ``old`` values."""
    return new if has is None else np.where(has[:, None], new, old)


def exact_count_limit(dtype: np.dtype[np.floating]) -> int:
    """The largest count below which every integer is exact in ``dtype`` (``2 ** (nmant + 1)``).

    Examples
    --------
    >>> exact_count_limit(np.dtype(np.float32))
    16777216
    """
    limit: int = 2 ** (int(np.finfo(dtype).nmant) + 1)
    return limit


def counts(view: Array, flat: Array, real: Array | None, chunk: int | None = None) -> Array:
    """(B, W) float64: how often each entry's index occurs among the ``real`` entries of ``flat``.

    ``real`` None: every entry is real.

    ``view`` is the flat rows, used as scratch: its entries at ``flat`` are
    overwritten (the caller gathers them first and writes them last). Counted
    ``chunk`` columns of ``flat`` at a time (default: the dtype's exact count
    limit, so one pass for any realistic window), each count exact.

    Examples
    --------
    >>> view = np.zeros(4, dtype=np.float32)
    >>> counts(view, np.array([[1, 3, 1, 1]]), np.array([[False, True, True, True]]))
    array([[2., 1., 2., 2.]])
    """
    step = chunk or exact_count_limit(view.dtype)
    total: Array | None = None
    for start in range(0, flat.shape[1], step):
        view[flat] = 0
        pick = flat[:, start : start + step]
        pick = pick.reshape(-1) if real is None else pick[real[:, start : start + step]]
        # add.at with an array of ones takes numpy's fast indexed-add loop
        # (a scalar operand takes the slow generic one, ~70x slower).
        np.add.at(view, pick, np.ones(pick.size, dtype=view.dtype))
        part = np.take(view, flat).astype(np.float64)
        total = part if total is None else total + part
    assert total is not None  # W >= 1
    return total


def repetition(out: Array, ids: Array, penalty: Array) -> Array:
    """Divide the positive logits of the tokens in ``ids`` by ``penalty``, multiply the others.

    Computed in ``out``'s dtype with the penalty rounded to it, as
    transformers and llama.cpp do (bit for bit the same float32 results).
    """
    out = _rows(out)
    view = out.reshape(-1)
    flat, has = _redirect(ids, out.shape[1])
    v = np.take(view, flat)
    p = penalty.astype(out.dtype)[:, None]
    view[flat] = _keep_empty(np.where(v < 0, v * p, v / p), v, has)
    return out


def presence(out: Array, ids: Array, penalty: Array) -> Array:
    """Subtract ``penalty`` once from the logit of every token in ``ids``."""
    out = _rows(out)
    view = out.reshape(-1)
    flat, has = _redirect(ids, out.shape[1])
    v = np.take(view, flat).astype(np.float64)
    view[flat] = _keep_empty(v - penalty[:, None], v, has).astype(out.dtype)
    return out


def frequency(out: Array, ids: Array, penalty: Array) -> Array:
    """Subtract ``penalty * count[t]`` from each token t's logit (its occurrences in ``ids``)."""
    out = _rows(out)
    view = out.reshape(-1)
    flat, _ = _redirect(ids, out.shape[1])
    v = np.take(view, flat).astype(np.float64)
    # Padding (pointed at a real token) is not counted.
    n = counts(view, flat, ids >= 0 if ids[:, 0].min() < 0 else None)
    view[flat] = (v - penalty[:, None] * n).astype(out.dtype)
    return out


def ngram_ban(out: Array, ids: Array, n: int) -> Array:
    """Set to -inf every token that would complete an ``n``-gram already in ``ids``.

    Window ``s`` (tokens ``s .. s + n - 1``) bans its last token when its
    first ``n - 1`` tokens equal the row's last ``n - 1``: the prefix is
    compared with shifted columns, one comparison of (B, L - n + 1) per
    prefix position. A window must lie inside the row (its first id is not
    padding).
    """
    m = ids.shape[1] - n + 1  # number of windows
    if m <= 0:
        return out
    match = ids[:, :m] >= 0
    for k in range(n - 1):
        match &= ids[:, k : k + m] == ids[:, m + k, None]
    rows, cols = np.nonzero(match)
    out[rows, ids[rows, cols + n - 1]] = -np.inf
    return out


def suffix_matches(ids: Array, prefixes: Array) -> Array:
    """(B, G): whether each row's ids end with each of the ``prefixes`` (G, k)."""
    k = prefixes.shape[1]
    if k > ids.shape[1]:
        return np.zeros((ids.shape[0], prefixes.shape[0]), dtype=bool)
    tail = ids[:, None, ids.shape[1] - k :]
    found: Array = (tail == prefixes[None]).all(axis=-1)
    return found


def add_columns(out: Array, cols: Array, delta: Array) -> Array:
    """``delta`` (M,) or (B, M) added to columns ``cols`` (M,) of ``out``, distinct; in float64."""
    out[:, cols] = (out[:, cols].astype(np.float64) + delta).astype(out.dtype)
    return out


def group_sums(values: Array, starts: Array, groups: Array) -> Array:
    """(B, M) sums of the columns of ``values`` (B, S) per group.

    The columns are sorted by group: group ``g`` is columns ``starts[g]`` up
    to the next start; ``groups`` (S,) gives each column's group (the torch
    version uses it).
    """
    del groups
    sums: Array = np.add.reduceat(values, starts, axis=1)
    return sums


def sequence_bias(
    out: Array,
    ids: Array,
    singles: Array,
    groups: tuple[tuple[Array, Array], ...],
    layout: tuple[Array, Array, Array, Array],
) -> Array:
    """Add each sequence's bias to its last token where the row ends with its prefix.

    ``singles`` (n1,): the biases of the one-token sequences, always added;
    ``groups``: ``(prefixes (G, k), biases (G,))`` per prefix length ``k``.
    ``layout`` = ``(order, cols, starts, groups_of)`` sums the per-sequence
    biases (singles first, then the groups in turn) onto their distinct last
    tokens ``cols``: ``order`` sorts the sequences by last token.
    """
    order, cols, starts, groups_of = layout
    parts = [np.broadcast_to(singles, (out.shape[0], singles.size))]
    parts += [np.where(suffix_matches(ids, pre), bias, 0.0) for pre, bias in groups]
    per_seq = np.concatenate(parts, axis=1)[:, order]
    return add_columns(out, cols, group_sums(per_seq, starts, groups_of))
