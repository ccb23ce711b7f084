"""What a stage of the chain may see besides the logits: token histories and seeded coins.

Most stages are a function of the logits alone. History-aware ones
(repetition, frequency and presence penalties, no-repeat-n-gram, sequence
bias, DRY) read each row's tokens so far; random ones (XTC) toss one seeded
coin per row. The :class:`~thermoscope.sampling.Sampler` builds one
:class:`Context` per call and hands it to every stage's ``apply_in``.

History layout
--------------
A :class:`History` holds ``ids``, shape (B, L) int64, **right-aligned**: row
``r``'s last token is ``ids[r, -1]`` and its ``lengths[r]`` tokens fill the
last columns; the columns before them hold ``-1``. Right alignment makes "the
last N tokens" one slice for every row and lets n-gram and DRY matching
compare suffixes column by column. numpy rows get numpy histories; torch rows
get int64 tensors on the logits' device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from thermoscope._backend import is_torch
from thermoscope.sampling._input import Rows

__all__ = ["PAD", "Context", "History", "as_history"]

#: The value of ``History.ids`` before a row's first token.
PAD = -1


class History:
    """Per-row token histories, right-aligned and padded with ``PAD`` (-1).

    Attributes
    ----------
    ids : ndarray or torch.Tensor of int64, shape (B, L)
        Row ``r``'s tokens occupy ``ids[r, L - lengths[r]:]``; the rest is -1.
    lengths : ndarray or torch.Tensor of int64, shape (B,)
        Number of tokens of each row (0 for an empty history).
    vocab : int
        The vocabulary size the ids were checked against (every id < vocab).

    Examples
    --------
    >>> h = as_history([[5, 6, 7], [1]], rows=None, batch=2, vocab=10)
    >>> h.ids
    array([[ 5,  6,  7],
           [-1, -1,  1]])
    >>> h.lengths
    array([3, 1])
    >>> h.last(2)
    array([[ 6,  7],
           [-1,  1]])
    """

    __slots__ = ("ids", "lengths", "vocab")

    def __init__(self, ids: Any, lengths: Any, vocab: int):
        self.ids = ids
        self.lengths = lengths
        self.vocab = vocab

    @property
    def width(self) -> int:
        """``L``, the padded length (the longest row's length)."""
        return int(self.ids.shape[1])

    def last(self, n: int | None) -> Any:
        """The last ``n`` columns, shape (B, min(n, L)); all columns when ``n`` is None or < 0.

        llama.cpp's ``last_n = -1`` means "the whole context"; ``0`` gives (B, 0).
        """
        if n is None or n < 0 or n >= self.width:
            return self.ids
        return self.ids[:, self.width - n :]


def _from_sequences(rows: Sequence[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Ragged per-row sequences as a right-aligned padded (B, L) array and lengths."""
    seqs = []
    for i, seq in enumerate(rows):
        arr = np.asarray(seq)
        if arr.ndim != 1:
            raise ValueError(
                f"`{name}` must be a (batch, length) array or a list of 1-D token sequences, "
                f"got row {i} of shape {arr.shape}."
            )
        seqs.append(arr)
    width = max((len(s) for s in seqs), default=0)
    ids = np.full((len(seqs), width), PAD, dtype=np.int64)
    lengths = np.zeros(len(seqs), dtype=np.int64)
    for i, arr in enumerate(seqs):
        _check_integer_kind(arr, name)
        if len(arr):
            ids[i, width - len(arr) :] = arr
        lengths[i] = len(arr)
    return ids, lengths


def _check_integer_kind(arr: Any, name: str) -> None:
    kind = arr.dtype.kind if isinstance(arr, np.ndarray) else None
    if kind is not None and kind not in "iu" and arr.size:
        raise TypeError(f"`{name}` must hold integer token ids, got dtype {arr.dtype}.")


def as_history(
    value: Any,
    rows: Rows | None,
    *,
    batch: int | None = None,
    vocab: int | None = None,
    name: str = "history",
) -> History:
    """Check ``value`` and return it as a right-aligned :class:`History` for ``rows``.

    Parameters
    ----------
    value : array_like, torch.Tensor or sequence of sequences
        A (batch, length) integer array (every row ``length`` tokens), or a
        list with one 1-D token sequence per row, of any lengths. With (V,)
        logits (one row) a 1-D sequence is that row's history. For logits of
        batch shape (B1, B2) an array of shape (B1, B2, L) is accepted too.
    rows : Rows or None
        The logits the history belongs to: gives the batch size, the
        vocabulary and the array library (a torch result lives on the logits'
        device). ``None`` with explicit ``batch`` and ``vocab`` gives numpy.
    name : str
        The argument's name in error messages.

    Raises
    ------
    TypeError
        Non-integer ids.
    ValueError
        A batch size other than the logits', or an id outside ``[0, V)``.

    Examples
    --------
    >>> as_history(np.array([[1, 2], [3, 4]]), None, batch=2, vocab=5).lengths
    array([2, 2])
    """
    if rows is not None:
        batch = int(rows.z.shape[0])
        vocab = int(rows.z.shape[1])
        batch_shape = rows.batch_shape
    else:
        batch_shape = (int(batch or 0),)
    if batch is None or vocab is None:
        raise TypeError("as_history needs `rows`, or both `batch` and `vocab`.")
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(
            f"`{name}` must be a (batch, length) array of token ids or a list of per-row "
            f"sequences, got {type(value).__name__}."
        )
    if is_torch(value):
        if value.dtype.is_floating_point or value.is_complex() or str(value.dtype) == "torch.bool":
            raise TypeError(f"`{name}` must hold integer token ids, got {value.dtype}.")
        ids_t = value.reshape(-1, value.shape[-1]) if value.ndim >= 2 else value.reshape(1, -1)
        if ids_t.shape[0] != batch:
            raise _batch_error(name, batch_shape, tuple(value.shape))
        if ids_t.numel() and bool(((ids_t < 0) | (ids_t >= vocab)).any()):
            bad = int(ids_t[(ids_t < 0) | (ids_t >= vocab)][0])
            raise ValueError(f"`{name}` ids must be in [0, {vocab}), got {bad}.")
        import torch

        device = rows.z.device if rows is not None and rows.torch else ids_t.device
        ids_t = ids_t.to(device=device, dtype=torch.int64)
        lengths_t = torch.full((batch,), ids_t.shape[1], dtype=torch.int64, device=device)
        return History(ids_t, lengths_t, vocab)
    ids, lengths = _host_history(value, batch, batch_shape, name)
    if ids.size:
        bad = (ids != PAD) & ((ids < 0) | (ids >= vocab))
        # A -1 inside a row would read as padding: only ids in [0, V) are tokens.
        bad |= _inner_pad(ids, lengths)
        if bad.any():
            raise ValueError(f"`{name}` ids must be in [0, {vocab}), got {int(ids[bad][0])}.")
    if rows is not None and rows.torch:
        import torch

        dev = rows.z.device
        return History(
            torch.as_tensor(ids, device=dev), torch.as_tensor(lengths, device=dev), vocab
        )
    return History(ids, lengths, vocab)


def _host_history(
    value: Any, batch: int, batch_shape: tuple[int, ...], name: str
) -> tuple[np.ndarray, np.ndarray]:
    """A numpy (B, L) right-aligned array and lengths from an array or ragged rows."""
    if isinstance(value, np.ndarray) or (
        isinstance(value, Sequence) and value and all(np.ndim(r) == 0 for r in value)
    ):
        arr = np.asarray(value)
        _check_integer_kind(arr, name)
        if arr.dtype.kind not in "iu":
            arr = arr.astype(np.int64)  # an empty list
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        fits = arr.ndim >= 2 and (
            tuple(arr.shape[:-1]) == batch_shape or (arr.ndim == 2 and arr.shape[0] == batch)
        )
        if not fits:
            raise _batch_error(name, batch_shape, arr.shape)
        flat = arr.reshape(-1, arr.shape[-1])
        if flat.dtype == np.uint64 and flat.size and flat.max() > np.iinfo(np.int64).max:
            raise ValueError(f"`{name}` ids must be in [0, V), got {int(flat.max())}.")
        ids = flat.astype(np.int64)
        return ids, np.full(batch, ids.shape[1], dtype=np.int64)
    if not isinstance(value, Sequence):
        raise TypeError(
            f"`{name}` must be a (batch, length) array of token ids or a list of per-row "
            f"sequences, got {type(value).__name__}."
        )
    if len(value) != batch:
        raise ValueError(
            f"`{name}` must have one sequence per row of logits ({batch} rows), "
            f"got {len(value)} sequences."
        )
    return _from_sequences(value, name)


def _inner_pad(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """True where a -1 sits inside a row's tokens (not in its left padding)."""
    col = np.arange(ids.shape[1])
    inside = col[None, :] >= (ids.shape[1] - lengths)[:, None]
    out: np.ndarray = np.logical_and(inside, ids == PAD)
    return out


def _batch_error(name: str, batch_shape: tuple[int, ...], got: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"`{name}` must have one row of token ids per row of logits, batch shape "
        f"{batch_shape}, got shape {tuple(got)}."
    )


class Context:
    """Per-call inputs of the chain besides the logits (built by the Sampler).

    Attributes
    ----------
    batch_shape : tuple of int
        The logits' shape without the vocabulary axis (sizes per-row parameters).
    history : History or None
        Each row's tokens so far, when the call was given ``history=``.

    Examples
    --------
    >>> ctx = Context((2,))
    >>> ctx.history is None
    True
    """

    __slots__ = ("_randomness", "batch_shape", "history")

    def __init__(
        self,
        batch_shape: tuple[int, ...],
        history: History | None = None,
        randomness: Any = None,
    ):
        self.batch_shape = batch_shape
        self.history = history
        self._randomness = randomness

    def require_history(self, stage: str) -> History:
        """This call's history; a ValueError naming ``history`` and the stage when absent.

        Examples
        --------
        >>> Context((1,)).require_history("RepetitionPenalty")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: `history` is required by RepetitionPenalty: pass history=, ...
        """
        if self.history is None:
            raise ValueError(
                f"`history` is required by {stage}: pass history=, the token ids of each "
                "row so far."
            )
        return self.history

    def coins(self, stage: str, salt: int) -> Any:
        """One uniform in [0, 1) per row for a random stage, of the rows' kind.

        Seeded calls (``seed=``) give counter-based coins: a function of the
        row's seed, step and ``salt`` only (batch-independent, the same in
        numpy and torch), independent of the draws. ``rng=`` calls take the
        coins from that Generator. Without either, a ValueError.
        """
        if self._randomness is None:
            raise ValueError(
                f"{stage} tosses a seeded coin per row: pass `seed=` (or `rng=`) to this call."
            )
        return self._randomness.coins(salt)
