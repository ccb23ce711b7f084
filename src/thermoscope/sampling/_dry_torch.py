"""DRY's steps 1-4 (:mod:`thermoscope.sampling.dry`) with torch operations on the rows' device.

The same algorithm as the numpy branch, step for step: no host copy of the
logits or the history. Host reads: one per few match lengths (does any
position still match?) and, with multi-token breakers, one for the number of
head positions found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from thermoscope.sampling._input import on_device

__all__ = ["match_lengths", "penalise"]

_CHECK_EVERY = 4  # lengths between two host reads of "does anything still match?"


def _padded(window: torch.Tensor) -> torch.Tensor:
    col = torch.arange(window.shape[1], device=window.device, dtype=torch.int64)
    return torch.where(window >= 0, window, -2 - col)


def _lut(ids: list[int], vocab: int, device: torch.device) -> torch.Tensor:
    lut = torch.zeros(vocab + 1, dtype=torch.bool, device=device)
    if ids:
        lut[torch.as_tensor(ids, dtype=torch.int64, device=device)] = True
    return lut


def _rep_limits(
    w: torch.Tensor, single: list[int], multi: list[tuple[int, ...]], vocab: int
) -> torch.Tensor:
    n = w.shape[1]
    hit = _lut(single, vocab, w.device)[torch.where(w >= 0, w, vocab)]
    longest = max((len(b) for b in multi), default=1)
    last = n - 1 - torch.argmax(hit.flip(1).to(torch.uint8), dim=1)
    best = torch.where(hit.any(dim=1), last * longest, -1)
    if multi:
        r, q, m = _multi_hits(w, multi)
        best = best.scatter_reduce(0, r, q * longest + m, reduce="amax")
    head = torch.div(best, longest, rounding_mode="floor")
    tail = best - head * longest
    return torch.where(best >= 0, n - 1 - head - tail, -1)


def _multi_hits(
    w: torch.Tensor, multi: list[tuple[int, ...]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = w.shape[1]
    dev = w.device
    heads = torch.as_tensor([b[0] for b in multi], dtype=torch.int64, device=dev)
    sorted_heads, order = torch.sort(heads, stable=True)
    width = max(len(b) for b in multi) - 1
    tails_np = np.full((len(multi), width), -1, dtype=np.int64)
    for i, b in enumerate(multi):
        tails_np[i, : len(b) - 1] = b[1:]
    tails = torch.as_tensor(tails_np, device=dev)
    tail_len = torch.as_tensor([len(b) - 1 for b in multi], dtype=torch.int64, device=dev)
    r, q = torch.nonzero(torch.isin(w, heads), as_tuple=True)
    at_head = w[r, q]
    lo = torch.searchsorted(sorted_heads, at_head, right=False)
    count = torch.searchsorted(sorted_heads, at_head, right=True) - lo
    pair = torch.repeat_interleave(torch.arange(r.numel(), device=dev), count)
    start = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
    entry = order[lo[pair] + torch.arange(pair.numel(), device=dev) - start]
    rr, qq, m = r[pair], q[pair], tail_len[entry]
    ok = qq + m <= n - 1
    for j in range(width):
        at = w[rr, torch.clamp(qq + 1 + j, max=n - 1)]
        ok &= (m <= j) | (at == tails[entry, j])
    return rr[ok], qq[ok], m[ok]


def match_lengths(w: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
    """:func:`thermoscope.sampling.dry.match_lengths` on ``w``'s device."""
    rows, n = w.shape
    out = torch.zeros((rows, max(n - 1, 0)), dtype=torch.int64, device=w.device)
    if n < 2:
        return out
    alive = (w[:, :-1] == w[:, -1:]) & (limit > 0)[:, None]
    for t in range(1, n):
        if t % _CHECK_EVERY == 1 and not bool(alive.any()):
            break
        out += alive
        alive[:, t:] &= w[:, : n - 1 - t] == w[:, n - 1 - t, None]
        alive[:, :t] = False
        alive &= (limit > t)[:, None]
    else:
        out += alive
    return out


def penalise(
    z: torch.Tensor,
    window: torch.Tensor,
    mult: Any,
    base: Any,
    allowed: Any,
    cap: Any,
    single: list[int],
    multi: list[tuple[int, ...]],
) -> torch.Tensor:
    """``z`` minus the DRY penalties, on ``z``'s device (a new tensor)."""
    rows, vocab = z.shape
    mult_t, base_t = on_device(mult, z), on_device(base, z)
    allowed_t, cap_t = on_device(allowed, z), on_device(cap, z)
    w = _padded(window)
    n = w.shape[1]
    length = (window >= 0).sum(dim=1)
    rep_limit = _rep_limits(w, single, multi, vocab)
    rep_limit = torch.where(rep_limit < 0, length, rep_limit)
    live = (length > allowed_t) & (rep_limit >= allowed_t) & (mult_t > 0)
    limit = torch.where(live, torch.minimum(rep_limit, cap_t), 0)
    lengths = match_lengths(w, limit)
    col = torch.arange(n - 1, device=z.device)
    real = col >= (n - length)[:, None]
    nxt = w[:, 1:]
    token = torch.where(nxt >= 0, nxt, vocab)
    hits = (lengths >= allowed_t[:, None]) & real & live[:, None]
    hits &= ~_lut(single, vocab, z.device)[token]
    exponent = torch.clamp(lengths - allowed_t[:, None], min=0).to(torch.float64)
    penalty = torch.where(hits, mult_t[:, None] * base_t[:, None] ** exponent, 0.0).to(z.dtype)
    # Penalties grow with the length: the largest per token is its longest repeat's.
    largest = torch.zeros((rows, vocab + 1), dtype=z.dtype, device=z.device)
    largest = largest.scatter_reduce(1, token, penalty, reduce="amax")
    return z - largest[:, :vocab]
