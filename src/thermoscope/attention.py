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
from typing import Any

import numpy as np

from thermoscope._backend import is_torch as is_torch_tensor
from thermoscope._validation import as_float_array, check_temperature
from thermoscope.core import _check_base, entropy, softmax

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


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"`{name}` must be finite, got {float(arr[where])!r} at index {where}.")


def _check_temperature(temperature: Any, d: int, rows: tuple[int, ...]) -> np.ndarray:
    """The temperature broadcast to one value per query row, shape ``(..., Lq)``."""
    t = np.asarray(math.sqrt(d)) if temperature is None else check_temperature(temperature)
    try:
        return np.broadcast_to(t, rows)
    except ValueError:
        raise ValueError(
            f"`temperature` must be a scalar or broadcast to one value per query, "
            f"shape {rows}, got shape {t.shape}."
        ) from None


def _check_mask(mask: Any, scores_shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask.detach().cpu().numpy() if is_torch_tensor(mask) else mask)
    if m.dtype != np.bool_:
        raise TypeError(
            f"`mask` must be boolean, True where a query may attend to a key, got dtype {m.dtype}."
        )
    try:
        full = np.broadcast_shapes(m.shape, scores_shape)
    except ValueError:
        full = None
    if full != scores_shape:
        raise ValueError(
            f"`mask` must broadcast to the scores' shape (..., Lq, Lk) = {scores_shape}, "
            f"got shape {m.shape}."
        )
    dead = ~np.broadcast_to(m, scores_shape).any(axis=-1)
    if dead.any():
        where = tuple(int(i) for i in np.argwhere(dead)[0])
        raise ValueError(
            f"`mask` must let every query attend to at least one key, got a query with "
            f"none at index {where}."
        )
    return m


# --------------------------------------------------------------------- public
def attention_weights(q: Any, k: Any, temperature: Any = None, mask: Any = None) -> Any:
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
    numpy input a numpy array (computed by ``thermoscope.softmax``); for torch
    input (``q`` or ``k`` a tensor) a tensor computed with torch ops, so
    gradients flow to ``q``, ``k`` and a tensor ``temperature``.

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
    ``w_ij = exp(q_i . k_j / T) / sum_l exp(q_i . k_l / T)``. Adding the same
    vector to every key adds the same number to every score of a query, so it
    never changes the weights; scaling ``q`` (or ``k``) by ``c > 0`` is the
    same as dividing ``T`` by ``c`` (``thermoscope.effective_temperature``).

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
    if is_torch_tensor(q) or is_torch_tensor(k):
        return _attention_torch(q, k, temperature, mask)
    qa, _ = as_float_array(q, "q")
    ka, _ = as_float_array(k, "k")
    scores_shape = _check_qk_shapes(qa.shape, ka.shape)
    _check_finite(qa, "q")
    _check_finite(ka, "k")
    t = _check_temperature(temperature, qa.shape[-1], scores_shape[:-1])
    m = _check_mask(mask, scores_shape)
    dtype = np.result_type(qa, ka)
    scores = np.matmul(qa.astype(dtype), np.swapaxes(ka.astype(dtype), -1, -2))
    if m is not None:
        scores = np.where(m, scores, -np.inf)
    return softmax(scores, np.ascontiguousarray(t))


def _attention_torch(q: Any, k: Any, temperature: Any, mask: Any) -> Any:
    import torch

    ref = q if is_torch_tensor(q) else k
    dtype = ref.dtype if ref.dtype in (torch.float32, torch.float64) else torch.float32
    qt = _as_tensor(q, "q", dtype, ref.device)
    kt = _as_tensor(k, "k", dtype, ref.device)
    scores_shape = _check_qk_shapes(tuple(qt.shape), tuple(kt.shape))
    _check_finite(qt.detach().cpu().numpy(), "q")
    _check_finite(kt.detach().cpu().numpy(), "k")
    d = int(qt.shape[-1])
    if is_torch_tensor(temperature):
        _check_temperature(temperature.detach().cpu().numpy(), d, scores_shape[:-1])
        t = temperature.to(dtype=dtype, device=ref.device)
    else:
        t_np = _check_temperature(temperature, d, scores_shape[:-1])
        t = torch.as_tensor(np.array(t_np), dtype=dtype, device=ref.device)
    t = t.unsqueeze(-1) if t.ndim > 0 else t
    m = _check_mask(mask, scores_shape)
    scores = qt @ kt.transpose(-1, -2)
    greedy, uniform = t == 0, torch.isinf(t)
    # The two limits replace the logits outright; a safe divisor keeps the
    # unselected branch (and its gradient) free of 0/0 and inf/inf. Masking
    # after dividing keeps -inf out of d(score / T)/dT.
    safe = torch.where(greedy | uniform, torch.ones_like(t), t)
    z = scores / safe
    if m is not None:
        keep = torch.from_numpy(np.array(m)).to(ref.device)
        z = z.masked_fill(~keep, -math.inf)
        scores = scores.masked_fill(~keep, -math.inf)
    if bool(greedy.any()):
        top = scores.amax(dim=-1, keepdim=True)
        hard = torch.where(scores == top, 0.0, -math.inf).to(dtype)
        z = torch.where(greedy, hard, z)
    if bool(uniform.any()):
        flat = torch.where(torch.isfinite(scores), 0.0, -math.inf).to(dtype)
        z = torch.where(uniform, flat, z)
    return torch.softmax(z, dim=-1)


def _as_tensor(x: Any, name: str, dtype: Any, device: Any) -> Any:
    import torch

    if is_torch_tensor(x):
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"`{name}` must be a real numeric tensor, got dtype {x.dtype}.")
        return x.to(dtype=dtype, device=device)
    arr, _ = as_float_array(x, name)
    return torch.as_tensor(arr, dtype=dtype, device=device)


def attention_entropy(
    q: Any, k: Any, temperature: Any = None, mask: Any = None, base: float | None = None
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
    numpy array for numpy input (via ``thermoscope.entropy``); a
    differentiable tensor for torch input.

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
    w = attention_weights(q, k, temperature, mask)
    if not is_torch_tensor(w):
        return entropy(w, base=base)
    import torch

    h = -torch.special.xlogy(w, w).sum(dim=-1)
    return h if base is None else h / math.log(_check_base(base))
