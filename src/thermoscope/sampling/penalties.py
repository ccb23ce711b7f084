"""History-aware penalties and biases: repetition, frequency, presence, n-grams, biases.

Each stage reads the tokens of each row so far (``history=``, see
:mod:`thermoscope.sampling._context`) except :class:`LogitBias`, which needs
none. They all run on the whole vocabulary, before temperature and
truncation, in both named orders (:data:`~thermoscope.sampling.TRANSFORMERS_ORDER`,
:data:`~thermoscope.sampling.LLAMA_CPP_ORDER`): logit bias, sequence bias,
repetition, frequency, presence, no-repeat-n-gram.

Cost: one copy of the logits plus work proportional to the history, with
no Python loop over tokens or rows and nothing else of the vocabulary's size
(see :mod:`thermoscope.sampling._penalty_kernels`). Each stage also has
``apply_into(out, ctx)``, which writes into rows the caller owns: a chain
copies the logits once for a run of these stages. Additive penalties and biases
are computed in float64 and rounded once to the rows' compute dtype (float32
for float16 / bfloat16 input, returned in the input's dtype); the repetition
penalty is computed in the compute dtype, as transformers and llama.cpp do.

Examples
--------
>>> import numpy as np
>>> from thermoscope.sampling import Sampler
>>> z = np.array([2.0, -1.0, 0.5, 3.0])
>>> s = Sampler([RepetitionPenalty(2.0), PresencePenalty(0.5)])
>>> s.logits(z, history=[0, 1, 1])
array([ 0.5, -2.5,  0.5,  3. ])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._typing import Array
from thermoscope._validation import check_integer
from thermoscope.sampling import _penalty_kernels
from thermoscope.sampling._context import Context
from thermoscope.sampling._input import rows_param
from thermoscope.sampling.warpers import HistoryWarper, Warper, _freeze

__all__ = [
    "FrequencyPenalty",
    "LogitBias",
    "NoRepeatNGram",
    "PresencePenalty",
    "RepetitionPenalty",
    "SequenceBias",
]


def _kernels(z: Any) -> Any:
    """The penalty kernels of ``z``'s library (torch's imported on first use)."""
    if is_torch(z):
        from thermoscope.sampling import _penalty_kernels_torch

        return _penalty_kernels_torch
    return _penalty_kernels


def _copy(z: Any) -> Any:
    return z.clone() if is_torch(z) else z.copy()


# -- parameter checks (one wording: "`name` must be <allowed>, got <value>.") ------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _reals(value: Any, name: str, allowed: str) -> Array:
    """``value`` (a number or one per row) as float64; strings, booleans, other kinds refused."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"`{name}` must be {allowed}, got {value!r}.")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be {allowed}, got {value!r}.") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be {allowed}, got {value!r}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    return arr.astype(np.float64)


def _factor(value: Any, name: str) -> Array:
    arr = _reals(value, name, "a finite number > 0")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"`{name}` must be a finite number > 0, got {float(arr[bad].flat[0])}.")
    return arr


def _shift(value: Any, name: str) -> Array:
    arr = _reals(value, name, "a finite number")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"`{name}` must be a finite number, got {float(arr[bad].flat[0])}.")
    return arr


def _last_n(value: Any) -> int | None:
    if value is None:
        return None
    arr = check_integer(value, "last_n", minimum=-1)
    if arr.ndim != 0:
        raise TypeError(f"`last_n` must be None or a single integer >= -1, got shape {arr.shape}.")
    return int(arr)


def _bias_value(value: Any, name: str) -> float:
    """One bias: a number, finite or -inf (a ban); NaN and +inf refused."""
    if not _is_number(value):
        raise TypeError(f"`{name}` values must be numbers (finite, or -inf to ban), got {value!r}.")
    b = float(value)
    if np.isnan(b) or b == np.inf:
        raise ValueError(f"`{name}` values must be finite numbers or -inf, got {b}.")
    return b


def _token_id(value: Any, name: str, what: str) -> int:
    if not _is_id(value):
        raise TypeError(f"`{name}` {what} must be token ids (integers >= 0), got {value!r}.")
    if value < 0:
        raise ValueError(f"`{name}` {what} must be token ids (integers >= 0), got {int(value)}.")
    return int(value)


def _check_vocab(top: int, vocab: int, name: str) -> None:
    if top >= vocab:
        raise ValueError(f"`{name}` token ids must be in [0, {vocab}), got {top}.")


def _window(stage: HistoryWarper, ctx: Context, last_n: int | None) -> Any:
    """The (B, W) ids the stage looks at, or None when the window holds no column."""
    ids = ctx.require_history(type(stage).__name__).last(last_n)
    return ids if ids.shape[1] else None


# -- repetition, frequency, presence -----------------------------------------------------


class _WindowPenalty(HistoryWarper):
    """The three penalties over a window of the history: one parameter, one kernel each.

    Subclasses name their ``_kernel`` (a function of ``_penalty_kernels``)
    and whether ``penalty`` is a factor (> 0) or a shift (any finite number).
    """

    penalty: float | Array
    last_n: int | None
    _kernel: ClassVar[str]
    _multiplies: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check = _factor if self._multiplies else _shift
        object.__setattr__(self, "penalty", _freeze(check(self.penalty, "penalty")))
        object.__setattr__(self, "last_n", _last_n(self.last_n))

    def apply_in(self, z: Any, ctx: Context) -> Any:
        return self.apply_into(_copy(z), ctx)

    def apply_into(self, out: Any, ctx: Context) -> Any:
        """:meth:`apply_in` written into rows ``out`` (B, V) that the caller owns; returns them.

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.sampling._context import Context, as_history
        >>> out = np.array([[2.0, -1.0, 0.5]])
        >>> ctx = Context((1,), as_history([[0, 1, 1]], None, batch=1, vocab=3))
        >>> FrequencyPenalty(0.5).apply_into(out, ctx) is out
        True
        >>> out
        array([[ 1.5, -2. ,  0.5]])
        """
        ids = _window(self, ctx, self.last_n)
        if ids is None:
            return out
        penalty = rows_param(self.penalty, ctx.batch_shape, "penalty")
        return getattr(_kernels(out), self._kernel)(out, ids, penalty)


@dataclass(frozen=True, eq=False)
class RepetitionPenalty(_WindowPenalty):
    """Penalise every token already in the row's history, once (CTRL's repetition penalty).

    For each distinct token of the history (or of its last ``last_n``
    tokens), a positive logit is divided by ``penalty`` and a negative one
    multiplied by it, however often the token occurs: ``z / penalty`` if
    ``z > 0``, else ``z * penalty``.

    Parameters
    ----------
    penalty : float or array_like
        A finite number > 0, one value or one per row. 1 is the no-op; about
        1.1-1.3 discourages repetition (Keskar et al. 2019 suggest 1.2);
        values in (0, 1) encourage it.
    last_n : int or None, keyword-only
        Look at the last ``last_n`` tokens only (llama.cpp's ``penalty_last_n``,
        default 64 there). ``None`` or ``-1``: the whole history (transformers'
        behaviour; llama.cpp's server reads -1 as the context size); ``0``: the
        stage does nothing.

    Notes
    -----
    Matches transformers' ``RepetitionPenaltyLogitsProcessor`` (5.x, without
    ``prompt_ignore_length``) and the repeat part of llama.cpp's
    ``llama_sampler_penalties_apply``, which also applies it once per
    distinct token (it tests ``z <= 0`` where transformers tests ``z < 0``:
    the same for ``z = 0``). Placed first among the penalties in both orders,
    before :class:`FrequencyPenalty` and :class:`PresencePenalty`, as
    llama.cpp's ``penalties`` sampler applies the three.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([2.0, -1.0, 0.5, 3.0])
    >>> RepetitionPenalty(2.0)(z, history=[0, 1, 1])
    array([ 1. , -2. ,  0.5,  3. ])
    >>> RepetitionPenalty(2.0, last_n=1)(z, history=[0, 1, 1])
    array([ 2. , -2. ,  0.5,  3. ])
    """

    penalty: float | Array
    last_n: int | None = field(default=None, kw_only=True)
    name: ClassVar[str] = "repetition_penalty"
    _kernel: ClassVar[str] = "repetition"
    _multiplies: ClassVar[bool] = True


@dataclass(frozen=True, eq=False)
class FrequencyPenalty(_WindowPenalty):
    """Subtract ``penalty`` times the number of times each token occurs in the window.

    ``z[t] -= penalty * count[t]``, ``count`` over the row's last ``last_n``
    tokens (OpenAI's ``frequency_penalty``, llama.cpp's ``penalty_freq``).

    Parameters
    ----------
    penalty : float or array_like
        A finite number, one value or one per row. 0 is the no-op; OpenAI
        allows -2 to 2 and suggests 0.1-1 to reduce repetition; negative
        values encourage repetition.
    last_n : int or None, keyword-only
        The window, as for :class:`RepetitionPenalty` (None or -1: all; 0: no-op).

    Notes
    -----
    Together with :class:`RepetitionPenalty` and :class:`PresencePenalty` of
    the same ``last_n`` (in that order, as both named orders place them) it
    is llama.cpp's ``penalties`` sampler (``llama_sampler_penalties_apply``).

    Examples
    --------
    >>> import numpy as np
    >>> FrequencyPenalty(0.5)(np.array([2.0, -1.0, 0.5, 3.0]), history=[0, 1, 1])
    array([ 1.5, -2. ,  0.5,  3. ])
    """

    penalty: float | Array
    last_n: int | None = field(default=None, kw_only=True)
    name: ClassVar[str] = "frequency_penalty"
    _kernel: ClassVar[str] = "frequency"


@dataclass(frozen=True, eq=False)
class PresencePenalty(_WindowPenalty):
    """Subtract ``penalty`` once from every token present in the window.

    ``z[t] -= penalty * (count[t] > 0)`` over the row's last ``last_n``
    tokens (OpenAI's ``presence_penalty``, llama.cpp's ``penalty_present``).

    Parameters
    ----------
    penalty : float or array_like
        A finite number, one value or one per row. 0 is the no-op; OpenAI
        allows -2 to 2 (0.1-1 to encourage new topics); negative values
        encourage repetition.
    last_n : int or None, keyword-only
        The window, as for :class:`RepetitionPenalty` (None or -1: all; 0: no-op).

    Examples
    --------
    >>> import numpy as np
    >>> PresencePenalty(0.5)(np.array([2.0, -1.0, 0.5, 3.0]), history=[0, 1, 1])
    array([ 1.5, -1.5,  0.5,  3. ])
    """

    penalty: float | Array
    last_n: int | None = field(default=None, kw_only=True)
    name: ClassVar[str] = "presence_penalty"
    _kernel: ClassVar[str] = "presence"


# -- n-grams ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NoRepeatNGram(HistoryWarper):
    """Ban every token that would complete an ``n``-gram already in the row's history.

    When the row's last ``n - 1`` tokens occurred before, followed by ``t``,
    then ``t`` is removed (``-inf``). ``n = 1`` bans every token seen.

    Parameters
    ----------
    n : int
        The n-gram size, >= 1 (transformers' ``no_repeat_ngram_size``);
        typical values 2-4. The whole history is searched.

    Notes
    -----
    Matches transformers' ``NoRepeatNGramLogitsProcessor`` (5.x): a row
    shorter than ``n`` bans nothing, and the row's own last ``n - 1`` tokens
    (the prefix) never count as an occurrence. Placed last among the
    history stages, before temperature and truncation. transformers treats
    pad tokens in ``input_ids`` as tokens; here a ragged history (a list of
    sequences) has no padding to match.

    Examples
    --------
    >>> import numpy as np
    >>> NoRepeatNGram(2)(np.array([2.0, -1.0, 0.5, 3.0]), history=[3, 0, 3])
    array([-inf, -1. ,  0.5,  3. ])
    """

    n: int
    name: ClassVar[str] = "no_repeat_ngram"

    def __post_init__(self) -> None:
        arr = check_integer(self.n, "n", minimum=1)
        if arr.ndim != 0:
            raise TypeError(f"`n` must be a single integer >= 1, got shape {arr.shape}.")
        object.__setattr__(self, "n", int(arr))

    def apply_in(self, z: Any, ctx: Context) -> Any:
        return self.apply_into(_copy(z), ctx)

    def apply_into(self, out: Any, ctx: Context) -> Any:
        """:meth:`apply_in` written into rows ``out`` (B, V) that the caller owns; returns them.

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.sampling._context import Context, as_history
        >>> ctx = Context((1,), as_history([[3, 0, 3]], None, batch=1, vocab=4))
        >>> NoRepeatNGram(2).apply_into(np.zeros((1, 4)), ctx)
        array([[-inf,   0.,   0.,   0.]])
        """
        ids = ctx.require_history(type(self).__name__).ids
        return _kernels(out).ngram_ban(out, ids, self.n)


# -- biases ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LogitBias(Warper):
    """Add a fixed bias to the logits of chosen tokens: ``z[t] += bias[t]``.

    Parameters
    ----------
    bias : mapping of int to float
        ``{token id: bias}``, the same for every row (OpenAI's and llama.cpp's
        ``logit_bias``). A bias is a finite number, or ``-inf`` to ban the
        token; ids are checked against the vocabulary at call time. An empty
        mapping is the no-op.

    Notes
    -----
    Biases are added as given, like llama.cpp (OpenAI clamps them to
    [-100, 100], where -100 in practice bans and 100 forces a token).
    ``+inf`` is refused rather than read as "force this token": a logit of
    ``+inf`` is not a distribution, and a large finite bias (100) forces the
    token while keeping the row valid. Needs no history; placed first in
    both orders, as llama.cpp's chain starts with it.

    Examples
    --------
    >>> import numpy as np
    >>> LogitBias({1: 2.0, 3: -np.inf})(np.array([2.0, -1.0, 0.5, 3.0]))
    array([ 2. ,  1. ,  0.5, -inf])
    """

    bias: Mapping[int, float]
    name: ClassVar[str] = "logit_bias"
    _cols: Array = field(init=False, repr=False)
    _values: Array = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.bias, Mapping):
            raise TypeError(
                f"`bias` must be a mapping {{token id: bias}}, got {type(self.bias).__name__}."
            )
        items = {_token_id(k, "bias", "keys"): _bias_value(v, "bias") for k, v in self.bias.items()}
        object.__setattr__(self, "bias", MappingProxyType(items))
        object.__setattr__(self, "_cols", _frozen(np.array(list(items), dtype=np.int64)))
        object.__setattr__(self, "_values", _frozen(np.array(list(items.values()), np.float64)))

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        return self.apply_into(_copy(z), Context(batch_shape))

    def apply_into(self, out: Any, ctx: Context) -> Any:
        """:meth:`apply` written into rows ``out`` (B, V) that the caller owns; returns them.

        Examples
        --------
        >>> import numpy as np
        >>> LogitBias({0: 1.0}).apply_into(np.zeros((1, 2)), Context((1,)))
        array([[1., 0.]])
        """
        if not self._cols.size:
            return out
        _check_vocab(int(self._cols.max()), int(out.shape[1]), "bias")
        return _kernels(out).add_columns(out, self._cols, self._values)


def _frozen(arr: Array) -> Array:
    arr.flags.writeable = False
    return arr


def _sequence_items(value: Any) -> dict[tuple[int, ...], float]:
    """``{ids tuple: bias}`` from a mapping or transformers' ``[[ids, bias], ...]`` list."""
    name = "sequence_bias"
    if isinstance(value, Mapping):
        pairs = list(value.items())
        for key, _ in pairs:
            if not isinstance(key, tuple):
                raise TypeError(
                    f"`{name}` keys must be non-empty tuples of token ids, got {key!r}."
                )
    elif isinstance(value, (list, tuple)):
        pairs = []
        for item in value:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise TypeError(f"`{name}` entries must be [token ids, bias] pairs, got {item!r}.")
            ids, bias = item
            if not isinstance(ids, (list, tuple)):
                raise TypeError(f"`{name}` entries must be [token ids, bias] pairs, got {item!r}.")
            pairs.append((tuple(ids), bias))
    else:
        raise TypeError(
            f"`{name}` must be a mapping {{token id tuple: bias}}, got {type(value).__name__}."
        )
    if not pairs:
        raise ValueError(
            f"`{name}` must be a non-empty mapping {{token id tuple: bias}}, got {value!r}."
        )
    items: dict[tuple[int, ...], float] = {}
    for key, bias in pairs:
        if not key:
            raise ValueError(f"`{name}` keys must be non-empty tuples of token ids, got ().")
        seq = tuple(_token_id(t, name, "keys") for t in key)
        if seq in items:
            raise ValueError(f"`{name}` must give each sequence once, got {seq} twice.")
        items[seq] = _bias_value(bias, name)
    return items


@dataclass(frozen=True, eq=False)
class SequenceBias(HistoryWarper):
    """Bias the token that would complete a given sequence of tokens.

    A one-token sequence ``(t,)`` biases ``t`` always; a longer one biases
    its last token in the rows whose history ends with the rest of it (its
    prefix). Biases of several sequences ending in the same token add up.

    Parameters
    ----------
    sequence_bias : mapping of tuple of int to float
        ``{(id, ..., id): bias}``, or transformers' list form
        ``[[[id, ...], bias], ...]``: non-empty, each sequence non-empty and
        given once. A bias is a finite number, or ``-inf`` to ban (as
        transformers' ``NoBadWordsLogitsProcessor`` does). Every id of every
        sequence is checked against the vocabulary at call time.

    Notes
    -----
    Matches transformers' ``SequenceBiasLogitsProcessor`` (5.x): a prefix
    longer than a row's history never matches, so that row gets no bias from
    it; ids beyond the vocabulary are a ValueError. Departures: biases may
    be integers (transformers wants floats), ``NaN`` and ``+inf`` are refused
    (transformers adds them), and a repeated sequence in the list form is an
    error (transformers keeps the last). Placed with the biases, before the
    penalties.

    Examples
    --------
    >>> import numpy as np
    >>> SequenceBias({(2,): 1.0, (3, 0): -1.0})(np.array([2.0, -1.0, 0.5, 3.0]), history=[1, 3])
    array([ 1. , -1. ,  1.5,  3. ])
    """

    sequence_bias: Mapping[tuple[int, ...], float]
    name: ClassVar[str] = "sequence_bias"
    _singles: Array = field(init=False, repr=False)
    _groups: tuple[tuple[Array, Array], ...] = field(init=False, repr=False)
    _layout: tuple[Array, Array, Array, Array] = field(init=False, repr=False)
    _top: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        items = _sequence_items(self.sequence_bias)
        object.__setattr__(self, "sequence_bias", MappingProxyType(items))
        singles = [(seq[0], b) for seq, b in items.items() if len(seq) == 1]
        by_length: dict[int, list[tuple[tuple[int, ...], float]]] = {}
        for seq, b in items.items():
            if len(seq) > 1:
                by_length.setdefault(len(seq) - 1, []).append((seq, b))
        groups = tuple(
            (
                _frozen(np.array([s[:-1] for s, _ in group], dtype=np.int64)),
                _frozen(np.array([b for _, b in group], dtype=np.float64)),
            )
            for group in by_length.values()
        )
        # Each sequence's last token, in the order the kernel lays them out.
        targets = np.array(
            [t for t, _ in singles] + [s[-1] for g in by_length.values() for s, _ in g],
            dtype=np.int64,
        )
        order = np.argsort(targets, kind="stable")
        cols, starts, groups_of = np.unique(targets[order], return_index=True, return_inverse=True)
        layout = tuple(_frozen(a.astype(np.int64)) for a in (order, cols, starts, groups_of))
        object.__setattr__(self, "_singles", _frozen(np.array([b for _, b in singles], float)))
        object.__setattr__(self, "_groups", groups)
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_top", max(max(seq) for seq in items))

    def apply_in(self, z: Any, ctx: Context) -> Any:
        return self.apply_into(_copy(z), ctx)

    def apply_into(self, out: Any, ctx: Context) -> Any:
        """:meth:`apply_in` written into rows ``out`` (B, V) that the caller owns; returns them.

        Examples
        --------
        >>> import numpy as np
        >>> from thermoscope.sampling._context import Context, as_history
        >>> ctx = Context((1,), as_history([[1, 3]], None, batch=1, vocab=4))
        >>> SequenceBias({(3, 0): -1.0}).apply_into(np.zeros((1, 4)), ctx)
        array([[-1.,  0.,  0.,  0.]])
        """
        _check_vocab(self._top, int(out.shape[1]), "sequence_bias")
        ids = ctx.require_history(type(self).__name__).ids
        return _kernels(out).sequence_bias(out, ids, self._singles, self._groups, self._layout)
