"""Row kernels of the history-aware stages (:mod:`thermoscope.sampling.penalties`), numpy.

Every kernel takes clean rows ``z`` (B, V) in the compute dtype, token ids
``ids`` (B, W) int64, right-aligned and padded on the left with -1 (a
:class:`~thermoscope.sampling._context.History` or a window of it, ``W >= 1``)
and per-row parameters (B,) float64; it returns a new array, never writing
into ``z``. The torch versions, same names and semantics, are in
:mod:`thermoscope.sampling._penalty_kernels_torch`.

How a whole window is applied without a loop over tokens
--------------------------------------------------------
Each id of the window is gathered from ``z``, its new value computed in
float64 and the values scattered back into a copy of ``z``: one copy of the
logits plus O(B * W) work. A token seen several times is written several
times with the *same* value, so duplicates need no de-duplication. Padding
(-1) is pointed at the row's last token (a real token whenever the row has
one: the ids are right-aligned) and computes that token's value too; a row
with no token at all points at token 0 and writes it back unchanged.
Occurrence counts come from one ``bincount`` of ``row * V + id`` over the
batch (torch: one ``scatter_add``), read back at the window's ids.
"""

from __future__ import annotations

import numpy as np

from thermoscope._typing import Array

__all__ = [
    "add_columns",
    "frequency",
    "group_sums",
    "ngram_ban",
    "presence",
    "repetition",
    "sequence_bias",
    "suffix_matches",
]


def _redirect(ids: Array, vocab: int) -> tuple[Array, Array]:
    """Flat indices ``row * V + id`` of the window, padding pointed at the row's last token.

    Also returns whether each row has a token (a row without one points at
    its token 0 and must write it back unchanged).
    """
    last = ids[:, -1]
    has = last >= 0
    idx = np.where(ids >= 0, ids, np.where(has, last, 0)[:, None])
    # Flat indices: np.take / setitem on a raveled array cost a fraction of
    # take_along_axis / put_along_axis, which build broadcast index tuples.
    flat: Array = idx + (np.arange(ids.shape[0]) * vocab)[:, None]
    return flat, has


def _put(z: Array, flat: Array, values: Array) -> Array:
    out = z.copy()
    out.reshape(-1)[flat] = values.astype(z.dtype)
    return out


def _gather64(z: Array, flat: Array) -> Array:
    return np.take(z.reshape(-1), flat).astype(np.float64)


def repetition(z: Array, ids: Array, penalty: Array) -> Array:
    """Divide the positive logits of the tokens in ``ids`` by ``penalty``, multiply the others.

    Computed in ``z``'s dtype with the penalty rounded to it, as transformers
    and llama.cpp do (bit for bit the same float32 results).
    """
    flat, has = _redirect(ids, z.shape[1])
    v = np.take(z.reshape(-1), flat)
    p = penalty.astype(z.dtype)[:, None]
    new = np.where(v < 0, v * p, v / p)
    return _put(z, flat, np.where(has[:, None], new, v))


def presence(z: Array, ids: Array, penalty: Array) -> Array:
    """Subtract ``penalty`` once from the logit of every token in ``ids``."""
    flat, has = _redirect(ids, z.shape[1])
    v = _gather64(z, flat)
    return _put(z, flat, np.where(has[:, None], v - penalty[:, None], v))


def frequency(z: Array, ids: Array, penalty: Array) -> Array:
    """Subtract ``penalty * count[t]`` from each token t's logit (its occurrences in ``ids``)."""
    flat, _ = _redirect(ids, z.shape[1])
    # One bincount over the whole batch: padding (pointed at a real token) is not counted.
    counts = np.bincount(flat[ids >= 0], minlength=z.size)
    v = _gather64(z, flat)
    return _put(z, flat, v - penalty[:, None] * counts[flat])


def ngram_ban(z: Array, ids: Array, n: int) -> Array:
    """Set to -inf every token that would complete an ``n``-gram already in ``ids``.

    Window ``s`` (tokens ``s .. s + n - 1``) bans its last token when its
    first ``n - 1`` tokens equal the row's last ``n - 1``: the prefix is
    compared with shifted columns, one comparison of (B, L - n + 1) per
    prefix position. A window must lie inside the row (its first id is not
    padding).
    """
    m = ids.shape[1] - n + 1  # number of windows
    out = z.copy()
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


def add_columns(z: Array, cols: Array, delta: Array) -> Array:
    """``z`` with ``delta`` (M,) or (B, M) added to columns ``cols`` (M,), distinct; in float64."""
    out = z.copy()
    out[:, cols] = (z[:, cols].astype(np.float64) + delta).astype(z.dtype)
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
    z: Array,
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
    parts = [np.broadcast_to(singles, (z.shape[0], singles.size))]
    parts += [np.where(suffix_matches(ids, pre), bias, 0.0) for pre, bias in groups]
    per_seq = np.concatenate(parts, axis=1)[:, order]
    return add_columns(z, cols, group_sums(per_seq, starts, groups_of))
