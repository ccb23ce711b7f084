"""Counter-based uniforms: one row's numbers depend only on its seed and step.

A stateful generator hands out numbers in call order, so a row's draw depends
on which rows were drawn before it (batch order and size) and on the library
that owns the state. A counter-based generator instead computes every number
as a keyed hash of its coordinates, here ``(seed, step, j)``: row ``r`` at
decoding step ``step[r]`` gets the same ``j``-th uniform whatever else is in
the batch, and numpy and torch (CPU or CUDA) give bit-identical values because
the hash is exact integer arithmetic.

Construction
------------
Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as
easy as 1, 2, 3", SC 2011; the reference implementation is Random123's
``philox.h``, whose multipliers ``0xD2511F53``, ``0xCD9E8D57`` and Weyl key
increments ``0x9E3779B9``, ``0xBB67AE85`` are used unchanged, and whose
known-answer vectors ``kat_vectors`` the tests check). Per uniform pair:

* key     ``(seed mod 2**32, seed >> 32)``, the 64-bit seed split in two words;
* counter ``(k mod 2**32, k >> 32, step mod 2**32, step >> 32)`` with
  ``k = j // 2``;
* the 10 rounds yield four 32-bit words ``x0..x3``; uniform ``2k`` is built
  from ``(x0, x1)`` and uniform ``2k + 1`` from ``(x2, x3)``, each as
  ``((a >> 5) * 2**26 + (b >> 6)) / 2**53``, the 53-bit recipe numpy's
  ``Generator.random`` uses, so every value is a multiple of ``2**-53`` in
  [0, 1).

Philox is a bijection of the counter for a fixed key, so distinct ``(step, j)``
under one seed never share a block. Negative seeds or steps are read as their
64-bit two's-complement pattern (``seed mod 2**64``).

Exactness in int64
------------------
Every word is held in an int64 array within [0, 2**32). The one wide product,
``M * c`` for a 32-bit multiplier ``M`` and word ``c``, can reach 2**64 and
would overflow int64 (undefined in C, where torch's kernels live). It is
computed as ``n = c * (M - 2**32)`` instead: ``|M - 2**32| < 2**30`` keeps
``|n| < 2**62``, and since ``M * c = n + c * 2**32`` the low word is
``n & 0xFFFFFFFF`` (two's complement) and the high word is ``(n >> 32) + c``
(``>>`` on int64 is an arithmetic shift, i.e. floor division, in both numpy
and torch). No operation overflows, so both libraries compute the same
integers on every device.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["uniforms"]

_MASK = 0xFFFFFFFF
# Random123 philox.h: PHILOX_M4x32_0/1 and PHILOX_W32_0/1.
_M0 = 0xD2511F53
_M1 = 0xCD9E8D57
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_ROUNDS = 10
# Multipliers shifted down by 2**32: products with a 32-bit word fit in int64.
_M0_LOW = _M0 - (1 << 32)
_M1_LOW = _M1 - (1 << 32)
_KEYS0 = [(_W0 * i) & _MASK for i in range(_ROUNDS)]
_KEYS1 = [(_W1 * i) & _MASK for i in range(_ROUNDS)]


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _philox4x32(c0: Any, c1: Any, c2: Any, c3: Any, k0: Any, k1: Any) -> tuple[Any, Any, Any, Any]:
    """Philox4x32-10 on broadcastable int64 words in [0, 2**32)."""
    for r in range(_ROUNDS):
        # Key schedule: round r uses key + r * W (mod 2**32), as in Random123.
        key0 = (k0 + _KEYS0[r]) & _MASK if r else k0
        key1 = (k1 + _KEYS1[r]) & _MASK if r else k1
        n0 = c0 * _M0_LOW
        n1 = c2 * _M1_LOW
        hi0 = (n0 >> 32) + c0
        hi1 = (n1 >> 32) + c2
        c0, c1, c2, c3 = hi1 ^ c1 ^ key0, n1 & _MASK, hi0 ^ c3 ^ key1, n0 & _MASK
    return c0, c1, c2, c3


def uniforms(seeds: Any, step: Any, n: int) -> Any:
    """Uniform numbers in [0, 1), ``out[r, j]`` a function of ``(seeds[r], step[r], j)``.

    Parameters
    ----------
    seeds : ndarray or torch.Tensor of int64, shape (B,)
        One 64-bit seed per row (negative values are read modulo 2**64).
    step : ndarray or torch.Tensor of int64, shape (B,), or int
        Decoding step per row, same kind (and device) as ``seeds``.
    n : int
        Uniforms per row.

    Returns
    -------
    ndarray or torch.Tensor of float64, shape (B, n)
        Multiples of ``2**-53`` in [0, 1); a torch result lives on the seeds'
        device and is computed there. numpy and torch give identical bits.

    Examples
    --------
    >>> import numpy as np
    >>> u = uniforms(np.array([7, 8]), np.array([0, 0]), 3)
    >>> u.shape, u.dtype
    ((2, 3), dtype('float64'))
    >>> bool(np.array_equal(uniforms(np.array([8]), np.array([0]), 3)[0], u[1]))
    True
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if _is_torch(seeds):
        torch = sys.modules["torch"]
        seeds = seeds.to(torch.int64)
        step = torch.as_tensor(step, dtype=torch.int64, device=seeds.device)
        k = torch.arange((n + 1) // 2, dtype=torch.int64, device=seeds.device)
    else:
        seeds = np.asarray(seeds, dtype=np.int64)
        step = np.asarray(step, dtype=np.int64)
        k = np.arange((n + 1) // 2, dtype=np.int64)
    if seeds.ndim != 1:
        raise ValueError(f"seeds must have shape (B,), got {tuple(seeds.shape)}")
    if step.ndim > 1 or (step.ndim == 1 and step.shape[0] != seeds.shape[0]):
        raise ValueError(f"step must have shape ({seeds.shape[0]},), got {tuple(step.shape)}")
    rows = seeds.shape[0]
    seeds = seeds.reshape(rows, 1)
    step = step.reshape(-1, 1)
    x0, x1, x2, x3 = _philox4x32(
        k & _MASK, (k >> 32) & _MASK, step & _MASK, (step >> 32) & _MASK,
        seeds & _MASK, (seeds >> 32) & _MASK,
    )  # fmt: skip
    if _is_torch(x0):
        a = torch.stack(((x0 >> 5) * (1 << 26) + (x1 >> 6), (x2 >> 5) * (1 << 26) + (x3 >> 6)), -1)
        out = a.reshape(rows, -1)[:, :n].to(torch.float64)
    else:
        a = np.stack(((x0 >> 5) * (1 << 26) + (x1 >> 6), (x2 >> 5) * (1 << 26) + (x3 >> 6)), -1)
        out = a.reshape(rows, -1)[:, :n].astype(np.float64)
    return out * 2.0**-53
