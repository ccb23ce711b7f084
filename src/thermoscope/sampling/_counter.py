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
  ``((a >> 5) * 2**26 + (b >> 6)) / 2**53``, the 53-bit recipe of MT19937's
  ``genrand_res53`` (Matsumoto and Nishimura), which numpy's ``MT19937`` and
  ``RandomState`` also use, so every value is a multiple of ``2**-53`` in
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

import functools
import sys
from typing import Any

import numpy as np

__all__ = ["uniforms"]

_MASK = 0xFFFFFFFF
# Random123 philox.h: PHILOX_M4x32_0/1 (multipliers), PHILOX_W32_0/1 (key increments).
_M0 = 0xD2511F53
_M1 = 0xCD9E8D57
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_ROUNDS = 10
# Multipliers shifted down by 2**32, so that products with a 32-bit word fit in int64.
_M_LOW = np.array([_M0 - (1 << 32), _M1 - (1 << 32)], dtype=np.int64).reshape(2, 1, 1)
_WEYL = np.array(
    [[(_W0 * r) & _MASK, (_W1 * r) & _MASK] for r in range(_ROUNDS)], dtype=np.int64
).reshape(_ROUNDS, 2, 1, 1)
_SPLIT = np.array([0, 32], dtype=np.int64).reshape(1, 2, 1, 1)  # the seed's low, high word
_CHUNK = 1 << 14  # counter blocks per slice on CPU: the working set stays in cache


def _torch_of(x: Any) -> Any:
    """The torch module if ``x`` is a tensor, else None (never imports torch)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(x, torch.Tensor) else None


@functools.lru_cache(maxsize=8)
def _torch_constants(device: Any) -> tuple[Any, Any, Any]:
    """The multipliers, key increments and seed split as tensors on ``device``."""
    torch = sys.modules["torch"]
    return tuple(torch.from_numpy(c).to(device) for c in (_M_LOW, _WEYL, _SPLIT))


def _philox(ctr: Any, ctr_rev: Any, keys: Any, m_low: Any, torch: Any) -> tuple[Any, Any]:
    """Philox4x32 rounds on words stacked in pairs, shape (2, rows, blocks).

    ``ctr`` holds ``(c0, c2)``, the words that are multiplied; ``ctr_rev`` holds
    ``(c3, c1)``. Keeping the second pair reversed makes the round's lane swap
    (``c0' = hi1 ^ c1 ^ k0``, ``c2' = hi0 ^ c3 ^ k1``, ``c1' = lo1``,
    ``c3' = lo0``) a single flip per round instead of two.
    """
    for key in keys:
        prod = ctr * m_low  # M * c - c * 2**32, |prod| < 2**62
        hi = prod >> 32
        hi += ctr
        hi ^= ctr_rev
        prod &= _MASK
        ctr_rev = prod
        ctr = (hi[::-1] if torch is None else hi.flip(0)) ^ key
    return ctr, ctr_rev


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
    torch = _torch_of(seeds)
    if torch is None:
        seeds = np.asarray(seeds, dtype=np.int64)
        step = np.asarray(step, dtype=np.int64)
    else:
        seeds = seeds.to(torch.int64)
        step = torch.as_tensor(step, dtype=torch.int64, device=seeds.device)
    if seeds.ndim != 1:
        raise ValueError(f"seeds must have shape (B,), got {tuple(seeds.shape)}")
    rows, blocks = seeds.shape[0], (n + 1) // 2
    if step.ndim > 1 or (step.ndim == 1 and step.shape[0] != rows):
        raise ValueError(f"step must have shape ({rows},), got {tuple(step.shape)}")
    if torch is None:
        m_low, weyl, split = _M_LOW, _WEYL, _SPLIT
        step = np.broadcast_to(step, (rows,)).reshape(rows, 1)
        out: Any = np.empty((rows, blocks, 2), dtype=np.float64)
        chunk = _CHUNK
    else:
        dev = seeds.device
        m_low, weyl, split = _torch_constants(dev)
        step = step.expand(rows).reshape(rows, 1)
        out = torch.empty((rows, blocks, 2), dtype=torch.float64, device=dev)
        # An accelerator runs each operation as one launch: slicing only pays on CPU.
        chunk = _CHUNK if dev.type == "cpu" else max(1, rows * blocks)
    seeds = seeds.reshape(1, rows, 1)
    keys = ((seeds >> split) & _MASK) + weyl  # (rounds, 2, B, 1): seed words + r * W
    keys &= _MASK
    step_lo, step_hi = step & _MASK, (step >> 32) & _MASK
    row_step = max(1, chunk // max(blocks, 1))
    col_step = max(1, min(blocks, chunk))
    for r0 in range(0, rows, row_step):
        r1 = min(rows, r0 + row_step)
        round_keys = keys[:, :, r0:r1]
        for b0 in range(0, blocks, col_step):
            b1 = min(blocks, b0 + col_step)
            shape = (2, r1 - r0, b1 - b0)
            if torch is None:
                k = np.arange(b0, b1, dtype=np.int64)
                ctr, ctr_rev = np.empty(shape, np.int64), np.empty(shape, np.int64)
            else:
                k = torch.arange(b0, b1, dtype=torch.int64, device=dev)
                ctr = torch.empty(shape, dtype=torch.int64, device=dev)
                ctr_rev = torch.empty_like(ctr)
            ctr[0], ctr[1] = k & _MASK, step_lo[r0:r1]  # (c0, c2)
            ctr_rev[0], ctr_rev[1] = step_hi[r0:r1], k >> 32  # (c3, c1)
            ctr, ctr_rev = _philox(ctr, ctr_rev, round_keys, m_low, torch)
            # ctr = (x0, x2), flipped ctr_rev = (x1, x3): the pairs of uniforms 2k and 2k + 1.
            tail = ctr_rev[::-1] if torch is None else ctr_rev.flip(0)
            bits53 = (ctr >> 5) * (1 << 26) + (tail >> 6)
            out[r0:r1, b0:b1] = (
                bits53.transpose(1, 2, 0) if torch is None else bits53.permute(1, 2, 0)
            )
    out = out.reshape(rows, 2 * blocks)[:, :n]
    out *= 2.0**-53  # exact: a power of two
    return out.contiguous() if torch is not None else np.ascontiguousarray(out)
