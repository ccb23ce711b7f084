"""Attention temperature: scaled dot-product attention weights with an explicit ``T``.

Attention is a softmax over keys, so it has a temperature like any other:
``weights = softmax(q k^T / T)`` along the key axis. The Transformer's
``1 / sqrt(d)`` is the *scale* (an inverse temperature, the ``scale`` argument
of ``torch.nn.functional.scaled_dot_product_attention``); the temperature it
corresponds to is ``T = sqrt(d)``, which is this module's default. With query
and key entries of unit variance a dot product has variance ``d``, so
``T = sqrt(d)`` gives the scores unit variance whatever the head size: the
attention entropy at the default temperature does not drift with ``d``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from thermoscope import _temperature as kernel
from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray
from thermoscope._validation import (
    _first_index,
    as_float,
    check_finite,
    check_log_base,
    check_temperature,
)

if TYPE_CHECKING:
    import torch

__all__ = ["attention_entropy", "attention_weights"]


# ------------------------------------------------------------------ validation
def _check_qk_shapes(q_shape: tuple[int, ...], k_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Validate ``(..., Lq, d)`` and ``(..., Lk, d)``; return the scores' shape."""
    for name, shape, rows in (("q", q_shape, "Lq"), ("k", k_shape, "Lk")):
        if len(shape) < 2:
            raise ValueError(f"`{name}` must have shape (..., {rows}, d), got shape {shape}.")
        if math.prod(shape) == 0:
            raise ValueError(f"`{name}` must not be empty, got shape {shape}.")
    if k_shape[-1] != q_shape[-1]:
        raise ValueError(
            f"`k` must have the feature size of `q` (last axis, d = {q_shape[-1]}), "
            f"got d = {k_shape[-1]} (shape {k_shape})."
        )
    try:
        batch = np.broadcast_shapes(q_shape[:-2], k_shape[:-2])
    except ValueError:
        raise ValueError(
            f"`k` must have batch dimensions that broadcast with those of `q`, "
            f"{q_shape[:-2]}, got {k_shape[:-2]}."
        ) from None
    return (*batch, q_shape[-2], k_shape[-2])


def _fits(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``target``."""
    try:
        return tuple(np.broadcast_shapes(shape, target)) == tuple(target)
    except ValueError:
        return False


def _check_temperature(temperature: Any, d: int, rows: tuple[int, ...]) -> Any:
    """The temperature broadcast to one value per query row, shape ``(..., Lq)``.

    A number or array gives a float64 numpy array; a torch tensor stays a
    tensor on its device (checked there), so gradients reach it.
    """
    t: Any = np.asarray(math.sqrt(d)) if temperature is None else check_temperature(temperature)
    if not _fits(tuple(t.shape), rows):
        raise ValueError(
            f"`temperature` must be a scalar or broadcast to one value per query, "
            f"shape {rows}, got shape {tuple(t.shape)}."
        )
    return t.expand(rows) if is_torch(t) else np.broadcast_to(t, rows)


def _check_mask(mask: Any, scores_shape: tuple[int, ...]) -> Any:
    """A boolean mask of its own library (a tensor stays on its device) that leaves every
    query at least one key."""
    if mask is None:
        return None
    if is_torch(mask):
        import torch

        m, boolean = mask, mask.dtype == torch.bool
    else:
        m = np.asarray(mask)
        boolean = m.dtype == np.bool_
    if not boolean:
        raise TypeError(
            f"`mask` must be boolean, True where a query may attend to a key, got dtype {m.dtype}."
        )
    if not _fits(tuple(m.shape), scores_shape):
        raise ValueError(
            f"`mask` must broadcast to the scores' shape (..., Lq, Lk) = {scores_shape}, "
            f"got shape {tuple(m.shape)}."
        )
    full = m.expand(scores_shape) if is_torch(m) else np.broadcast_to(m, scores_shape)
    dead = ~full.any(-1)
    if bool(dead.any()):
        raise ValueError(
            f"`mask` must let every query attend to at least one key, got a query with "
            f"none at index {_first_index(dead)}."
        )
    return m


# --------------------------------------------------------------------- kernel
def _out_dtype(arr: np.ndarray, back: Callable[[Any], Any]) -> np.dtype[Any]:
    """The dtype a numpy input's results are returned in (``back`` applied to an empty probe)."""
    dtype: np.dtype[Any] = np.dtype(back(np.empty(0, dtype=arr.dtype)).dtype)
    return dtype


def _tempered_scores(
    q: Any, k: Any, temperature: Any, mask: Any
) -> tuple[Any, Any, Callable[[Any], Any]]:
    """Checked scores ``q k^T`` (masked keys ``-inf``), the per-query temperature, and the
    function that casts a result to the output dtype.

    numpy computes in ``result_type`` of the two compute dtypes and returns
    in ``result_type`` of the inputs' own floating dtypes (float16 computed in
    float32 and returned in float16, integers in float64). torch (any
    argument a tensor) computes on the first tensor's device, in the compute
    dtype of the first tensor among ``q`` and ``k`` (the other operand is
    cast to it), and returns in that tensor's own dtype.
    """
    qa, back_q = as_float(q, "q")
    ka, back_k = as_float(k, "k")
    scores_shape = _check_qk_shapes(tuple(qa.shape), tuple(ka.shape))
    check_finite(qa, "q")
    check_finite(ka, "k")
    t = _check_temperature(temperature, int(qa.shape[-1]), scores_shape[:-1])
    m = _check_mask(mask, scores_shape)
    if not any(is_torch(x) for x in (q, k, temperature, mask)):
        dtype = np.result_type(qa, ka)
        out = np.result_type(_out_dtype(qa, back_q), _out_dtype(ka, back_k))
        scores = np.matmul(qa.astype(dtype), np.swapaxes(ka.astype(dtype), -1, -2))
        if m is not None:
            scores = np.where(m, scores, -np.inf)
        return scores, t, lambda r: r.astype(out, copy=False)
    import torch

    device = next(x for x in (q, k, temperature, mask) if is_torch(x)).device
    work: Any
    if is_torch(q) or is_torch(k):
        work, back = (qa.dtype, back_q) if is_torch(q) else (ka.dtype, back_k)
    else:  # numpy data with a tensor temperature or mask: numpy's dtypes, on that device
        work = torch.from_numpy(np.empty(0, dtype=np.result_type(qa, ka))).dtype
        out_dtype = np.result_type(_out_dtype(qa, back_q), _out_dtype(ka, back_k))
        target = torch.from_numpy(np.empty(0, dtype=out_dtype)).dtype

        def back(r: Any) -> Any:
            return r.to(target)

    qt, kt = (_tensor(x, work, device) for x in (qa, ka))
    scores = qt @ kt.transpose(-1, -2)
    if m is not None:
        scores = scores.masked_fill(~_tensor(m, None, device), -math.inf)
    return scores, _tensor(t, work, device), back


def _tensor(x: Any, dtype: Any, device: Any) -> Any:
    """A tensor as is (moved or cast only if it must be, on the graph); numpy copied over once."""
    import torch

    if is_torch(x):
        return x.to(device=device, dtype=dtype)
    return torch.as_tensor(np.array(x), dtype=dtype, device=device)


# --------------------------------------------------------------------- public
@overload
def attention_weights(
    q: torch.Tensor, k: Any, temperature: Any = ..., *, mask: Any = ...
) -> torch.Tensor: ...
@overload
def attention_weights(
    q: Any, k: torch.Tensor, temperature: Any = ..., *, mask: Any = ...
) -> torch.Tensor: ...
@overload
def attention_weights(
    q: npt.ArrayLike,
    k: npt.ArrayLike,
    temperature: npt.ArrayLike | None = ...,
    *,
    mask: npt.ArrayLike | None = ...,
) -> FloatArray: ...
def attention_weights(q: Any, k: Any, temperature: Any = None, *, mask: Any = None) -> Any:
    """Attention weights ``softmax(q k^T / T)`` over the key axis.

    Parameters
    ----------
    q : array_like or torch.Tensor
        Queries, shape ``(..., Lq, d)``.
    k : array_like or torch.Tensor
        Keys, shape ``(..., Lk, d)``; the batch dimensions ``...`` broadcast
        with those of ``q`` (e.g. ``(B, H, L, d)`` against ``(B, 1, L, d)``).
    temperature : float, array_like or torch.Tensor, optional
        ``T >= 0``, the number the dot products are divided by. Default
        ``sqrt(d)``: the standard scaled dot-product attention, whose scale
        ``1 / sqrt(d)`` is the inverse temperature (pass ``scale=1 / T`` to
        torch's ``scaled_dot_product_attention`` for the same weights). A
        scalar, or any shape that broadcasts to one value per query
        ``(..., Lq)``, e.g. ``(H, 1)`` for one temperature per head.
        ``T = 0`` is hard attention (a one-hot on the best key, shared equally
        among tied keys); ``T = inf`` is uniform over the keys the mask allows.
        A torch tensor temperature stays on the autograd graph (a learnable
        temperature).
    mask : array_like of bool or torch.Tensor, optional
        Broadcasts to ``(..., Lq, Lk)``; True where a query may attend to a key
        (torch's boolean ``attn_mask`` convention). Every query must keep at
        least one key: torch returns a row of zeros there, which is not a
        distribution, so a fully masked query is an error here.

    Returns
    -------
    Weights of shape ``(..., Lq, Lk)``, each row a distribution over keys. For
    numpy input a numpy array. For torch input (any of ``q``, ``k``,
    ``temperature``, ``mask`` a tensor) a tensor computed with torch
    operations on the device of the first tensor argument, so gradients
    flow to ``q``, ``k`` and a tensor ``temperature``; the checks run there
    too (no copy to the host). The dtype is the input's (float16/bfloat16
    computed in float32 and returned in their own dtype; integers give
    float64); with torch input, that of the first tensor among ``q`` and ``k``.

    Raises
    ------
    ValueError
        ``q``/``k`` not at least 2-D, empty, non-finite, with different ``d``
        or batch dimensions that do not broadcast; a negative or NaN
        ``temperature`` or one of the wrong shape; a mask of the wrong shape
        or one that leaves a query no key.
    TypeError
        Non-numeric input or a non-boolean mask.

    Notes
    -----
    ``w_ij = exp(q_i . k_j / T) / sum_l exp(q_i . k_l / T)``, computed by the
    one temperature kernel (``thermoscope.softmax``'s): the scores are shifted
    by their row maximum before dividing, so no temperature overflows. Adding
    the same vector to every key adds the same number to every score of a
    query, so it never changes the weights; scaling ``q`` (or ``k``) by
    ``c > 0`` is the same as dividing ``T`` by ``c``
    (``thermoscope.effective_temperature``).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.attention import attention_weights
    >>> q = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> k = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> w = attention_weights(q, k)  # T = sqrt(2)
    >>> np.round(w, 4)
    array([[0.4011, 0.1978, 0.4011],
           [0.1084, 0.4458, 0.4458]])
    >>> np.allclose(w.sum(axis=-1), 1.0)
    True
    >>> attention_weights(q, k, temperature=0)  # hard attention, ties shared
    array([[0.5, 0. , 0.5],
           [0. , 0.5, 0.5]])
    """
    scores, t, back = _tempered_scores(q, k, temperature, mask)
    return back(kernel.softmax(scores, t, -1))


@overload
def attention_entropy(
    q: torch.Tensor,
    k: Any,
    temperature: Any = ...,
    *,
    mask: Any = ...,
    base: float | None = ...,
) -> torch.Tensor: ...
@overload
def attention_entropy(
    q: Any,
    k: torch.Tensor,
    temperature: Any = ...,
    *,
    mask: Any = ...,
    base: float | None = ...,
) -> torch.Tensor: ...
@overload
def attention_entropy(
    q: npt.ArrayLike,
    k: npt.ArrayLike,
    temperature: npt.ArrayLike | None = ...,
    *,
    mask: npt.ArrayLike | None = ...,
    base: float | None = ...,
) -> FloatArray: ...
def attention_entropy(
    q: Any, k: Any, temperature: Any = None, *, mask: Any = None, base: float | None = None
) -> Any:
    """Entropy of each query's attention distribution, shape ``(..., Lq)``.

    ``0`` means a query looks at one key; ``ln Lk`` (or ``ln`` of the number of
    unmasked keys) means it spreads evenly. Entropy rises with ``temperature``.

    Parameters
    ----------
    q, k, temperature, mask
        As in :func:`attention_weights`.
    base : float, optional
        Logarithm base; ``None`` gives nats, ``2`` bits.

    Returns
    -------
    The input's kind, dtype and device, as in :func:`attention_weights`; a
    differentiable tensor for torch input (masked keys contribute
    ``0 log 0 = 0`` with a zero gradient).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.attention import attention_entropy
    >>> q = np.array([[1.0, 0.0]])
    >>> k = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> float(attention_entropy(q, k, temperature=np.inf, base=2)[0])  # 1 bit: two keys
    1.0
    >>> float(attention_entropy(q, k, temperature=0)[0])
    0.0
    """
    scores, t, back = _tempered_scores(q, k, temperature, mask)
    h = kernel.entropy(kernel.softmax(scores, t, -1), -1)
    if base is not None:
        h = h / float(np.log(check_log_base(base)))
    return back(h if is_torch(h) else np.asarray(h))
