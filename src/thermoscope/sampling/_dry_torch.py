"""DRY's steps 1-4 (:mod:`thermoscope.sampling.dry`) with torch operations on the rows' device.

The same algorithm as the numpy branch, step for step: no host copy of the
logits or the history, and nothing of the vocabulary's size but the rows
themselves (the penalties are written into the rows the caller owns). Host
reads (sizes of the positions still matching): one per ``_BLOCK`` match
lengths past the first ``_DENSE_STEPS``, and, with multi-token breakers, one
for the number of head positions found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from thermoscope.sampling._input import on_device

__all__ = ["match_lengths", "penalise"]

# match_lengths compares the first lengths over the whole window, then only
# the positions still matching, this many lengths per pass (as dry.py).
_DENSE_STEPS = 2
_BLOCK = 16


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
    if not single and not multi:
        return torch.full((w.shape[0],), -1, dtype=torch.int64, device=w.device)
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
    """:func:`thermoscope.sampling.dry.match_lengths` on ``w``'s device.

    The first ``_DENSE_STEPS`` lengths are compared over the whole window
    (most positions stop there, with no host read); then only the positions
    still matching, ``_BLOCK`` lengths per pass, one host read per pass.
    """
    rows, n = w.shape
    out = torch.zeros((rows, max(n - 1, 0)), dtype=torch.int32, device=w.device)
    if n < 2:
        return out
    # Dense lengths ignore the limits (one minimum afterwards): a position's
    # count is min(its repeat, t), and min(that, limit) is the limited count.
    alive = w[:, :-1] == w[:, -1:]
    t = 1
    for t in range(1, min(_DENSE_STEPS, n - 1) + 1):
        out += alive
        alive[:, t:] &= w[:, : n - 1 - t] == w[:, n - 1 - t, None]
        alive[:, :t] = False
    out = torch.minimum(out, limit.to(torch.int32)[:, None])
    alive &= (limit > t)[:, None]
    t += 1
    # Sparse: flat indices into w of the positions still matching and of their
    # rows' ends; a run of matches is counted at once.
    r, p = torch.nonzero(alive, as_tuple=True)
    out[r, p] += 1  # these repeats are t tokens long at least
    at, end, cut = r * n + p, r * n + (n - 1), limit[r]
    flat_w = w.reshape(-1)
    steps = torch.arange(_BLOCK, device=w.device)
    while at.numel():
        s = t + steps
        # Clamped gathers: an offset past the row start is masked just below.
        eq = flat_w[(at[:, None] - s).clamp(min=0)] == flat_w[(end[:, None] - s).clamp(min=0)]
        eq &= (p[:, None] >= s) & (cut[:, None] > s)
        full = eq.all(dim=1)
        run = torch.where(full, _BLOCK, eq.to(torch.uint8).argmin(dim=1))  # first miss
        out[r, p] += run.to(torch.int32)
        at, end, cut, r, p = at[full], end[full], cut[full], r[full], p[full]
        t += _BLOCK
    return out


def penalise(
    out: torch.Tensor,
    window: torch.Tensor,
    mult: Any,
    base: Any,
    allowed: Any,
    cap: Any,
    single: list[int],
    multi: list[tuple[int, ...]],
) -> torch.Tensor:
    """The DRY penalties subtracted from ``out`` (B, V), in place on its device; returns it."""
    vocab = out.shape[1]
    mult_t, base_t = on_device(mult, out), on_device(base, out)
    allowed_t, cap_t = on_device(allowed, out), on_device(cap, out)
    w = _padded(window)
    n = w.shape[1]
    length = (window >= 0).sum(dim=1)
    rep_limit = _rep_limits(w, single, multi, vocab)
    rep_limit = torch.where(rep_limit < 0, length, rep_limit)
    live = (length > allowed_t) & (rep_limit >= allowed_t) & (mult_t > 0)
    limit = torch.where(live, torch.minimum(rep_limit, cap_t), 0)
    lengths = match_lengths(w, limit)
    nxt = w[:, 1:]
    hits = lengths >= allowed_t[:, None]
    if allowed.min() == 0:
        # Else a hit has a repeat of >= 1 token: a real position of a live row.
        col = torch.arange(n - 1, device=out.device)
        hits &= (col >= (n - length)[:, None]) & live[:, None]
    if single:
        hits &= ~_lut(single, vocab, out.device)[torch.where(nxt >= 0, nxt, vocab)]
    # The hits only (one host read for their number), then as numpy: the
    # longest repeat per (row, token) wins, each (row, token) is written once.
    r, p = torch.nonzero(hits, as_tuple=True)
    key = (r * vocab + nxt[r, p]) * n + lengths[r, p].to(torch.int64)  # lengths < n
    key, _ = torch.sort(key)
    flat = torch.div(key, n, rounding_mode="floor")
    last = torch.ones_like(flat, dtype=torch.bool)
    last[:-1] = flat[1:] != flat[:-1]
    flat, longest = flat[last], (key - flat * n)[last]
    row = torch.div(flat, vocab, rounding_mode="floor")
    token = flat - row * vocab
    exponent = (longest - allowed_t[row]).to(torch.float64)  # <= max_exponent
    penalty = (mult_t[row] * base_t[row] ** exponent).to(out.dtype)
    return out.index_put_((row, token), out[row, token] - penalty)
