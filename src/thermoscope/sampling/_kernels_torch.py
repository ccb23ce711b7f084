"""The row kernels of :mod:`thermoscope.sampling._kernels` for torch tensors.

Same names, same arguments, same semantics (thresholds, tie policy ``keep z >=
threshold``, float64 thresholds and sums), computed with torch operations on
the tensor's device: no host copy, no loop over rows, no host read of a
device value. Per-row parameters arrive as host numpy arrays of shape (B,)
(the warpers' frozen parameters) and are moved to the device once per call by
:func:`~thermoscope.sampling._input.on_device`; what only shapes the
computation (the largest ``k``, whether all rows share one ``k``) is read on
the host from those arrays.

The numbers agree with the numpy kernels to float rounding: sums over a row
are associated differently by the two libraries, so a cut that falls exactly
on a rounding tie may differ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from thermoscope._temperature import entropy_of_logits, log_softmax, row_weights
from thermoscope.sampling._input import on_device

__all__ = [
    "apply_mask",
    "apply_threshold",
    "entropy_temperature",
    "epsilon_mask",
    "floor_in",
    "floor_threshold",
    "kth_largest",
    "min_p_threshold",
    "sum64",
    "top_n_sigma_threshold",
    "top_p_scan",
    "top_p_threshold",
    "typical_mask",
]

_NEG_INF = float("-inf")
_COLUMNS = 4096  # columns per slice of a float64 row sum on CPU
_TYPICAL_HEAD = 256  # smallest typical scores ranked before resorting to the full sort
_TYPICAL_SHARE = 4  # then 1 / _TYPICAL_SHARE of the row (a topk is far cheaper than the sort)


def sum64(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Row sums of ``x`` (B, L) in float64, over ``mask``'s entries if given (float64, (B,)).

    On CPU a float64 sum of a float32 tensor first writes a float64 copy of
    it; here slices of ``_COLUMNS`` columns are widened and summed one after
    the other, each in cache. The slices do not depend on the number of
    rows, so neither does a row's sum. Other devices sum in one reduction.
    """
    if x.device.type != "cpu" or x.shape[-1] <= _COLUMNS:
        part = x if mask is None else x * mask.to(x.dtype)
        return part.sum(dim=-1, dtype=torch.float64)
    out = torch.zeros(x.shape[0], dtype=torch.float64)
    for c0 in range(0, x.shape[-1], _COLUMNS):
        part = x[:, c0 : c0 + _COLUMNS]
        if mask is not None:
            part = part * mask[:, c0 : c0 + _COLUMNS].to(x.dtype)
        out += part.sum(dim=-1, dtype=torch.float64)
    return out


def floor_in(thr: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Per-row ``t`` in ``dtype`` with ``z >= t`` exactly when ``z >= thr`` (float64).

    Comparing float32 logits with a float64 threshold would widen the whole
    array; rounding the threshold up to the next float32 gives the same answer.
    """
    if thr.dtype == dtype:
        return thr
    t = thr.to(dtype)
    return torch.where(t.to(thr.dtype) < thr, torch.nextafter(t, torch.full_like(t, np.inf)), t)


def apply_threshold(z: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """Keep ``z >= thr`` per row, set the rest to -inf (a new tensor)."""
    return torch.where(z >= floor_in(thr, z.dtype)[:, None], z, _NEG_INF)


def apply_mask(z: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Keep the entries where ``keep`` is true, set the rest to -inf (a new tensor)."""
    return torch.where(keep, z, _NEG_INF)


def kth_largest(z: torch.Tensor, k: Any) -> torch.Tensor:
    """The k-th largest value of each row, float64 (``k``: host int or (B,) array, >= 1).

    ``k`` is capped at the row length. One ``topk`` of the largest ``k``.
    """
    n = z.shape[-1]
    ks = np.minimum(np.asarray(k, dtype=np.int64), n)
    top = int(ks.max())
    vals = torch.topk(z, top, dim=-1).values  # sorted, largest first
    if ks.ndim == 0 or bool(np.all(ks == ks.flat[0])):
        kth = vals[:, int(ks.flat[0]) - 1]
    else:
        kth = vals.gather(1, on_device(ks - 1, z)[:, None])[:, 0]
    return kth.to(torch.float64)


def floor_threshold(z: torch.Tensor, thr: torch.Tensor, min_keep: int) -> torch.Tensor:
    """Lower ``thr`` so that at least ``min_keep`` tokens (and all their ties) survive."""
    top = z.amax(dim=-1).to(torch.float64) if min_keep == 1 else kth_largest(z, min_keep)
    return torch.minimum(thr, top)


def top_p_threshold(z: torch.Tensor, p: Any, total: Any = None) -> torch.Tensor:
    """Nucleus cut, as :func:`thermoscope.sampling._kernels.top_p_threshold`."""
    return top_p_scan(z, p, total)[0]


def top_p_scan(z: torch.Tensor, p: Any, total: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-p threshold and, per row, whether ``z`` holds mass ``>= p * total``.

    Sorts each row (largest first) and runs the float64 running sum of the
    weights ``exp(z - max)`` in the compute dtype, the numpy kernel's numbers.
    """
    pp = on_device(p, z)
    m = z.amax(dim=-1, keepdim=True)
    if total is None:
        total = sum64(torch.exp(z - m))
    desc = torch.sort(z, dim=-1, descending=True).values
    mass_through = torch.cumsum(torch.exp(desc - m), dim=-1, dtype=torch.float64)
    target = pp * total
    n_keep = 1 + (mass_through[:, :-1] < target[:, None]).sum(dim=-1)
    thr = desc.gather(1, (n_keep - 1)[:, None])[:, 0].to(torch.float64)
    return torch.where(pp >= 1.0, _NEG_INF, thr), mass_through[:, -1] >= target


def min_p_threshold(z: torch.Tensor, p: Any, top: Any = None) -> torch.Tensor:
    """Keep tokens whose probability is at least ``p`` times the top probability.

    ``log(p)`` is taken on the host, as the numpy kernel does (``log(0) = -inf``
    keeps every finite token), so both libraries cut at the same value.
    """
    if top is None:
        top = z.amax(dim=-1)
    with np.errstate(divide="ignore"):
        log_p = np.log(np.asarray(p, dtype=np.float64))
    thr: torch.Tensor = top.to(torch.float64) + on_device(log_p, z)
    return thr


def epsilon_mask(z: torch.Tensor, eps: Any) -> torch.Tensor:
    """Tokens whose probability is at least ``eps``."""
    w, _ = row_weights(z)
    probs = w.to(torch.float64) / w.sum(dim=-1, dtype=torch.float64, keepdim=True)
    keep: torch.Tensor = probs >= on_device(eps, z)[:, None]
    return keep


def typical_mask(z: torch.Tensor, mass: Any, min_keep: int) -> torch.Tensor:
    """Locally typical set, as :func:`thermoscope.sampling._kernels.typical_mask`.

    On CPU, rows whose kept set lies among their ``_TYPICAL_HEAD`` smallest
    scores (peaked, LM-shaped rows: a handful of tokens), or else among the
    ``1 / _TYPICAL_SHARE`` of the row with the smallest scores, skip the full sort:
    the head comes from one ``topk``, put in the stable sort's order (by
    score, ties by token id), and its running sum is a prefix of the full
    sort's (CPU ``cumsum`` runs left to right) up to the first score tied
    with one outside the head, so a crossing before it is the same cut. Other
    rows take the full sort.
    """
    logp = log_softmax(z.to(torch.float64))
    probs = torch.exp(logp)
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    # A removed token has probs 0 and logp -inf: its term is 0 * 0 (not nan)
    # and its score |inf - H| = inf, with no further mask.
    ent = -(probs * torch.where(logp > float("-inf"), logp, zero)).sum(dim=-1, keepdim=True)
    score = logp.neg().sub_(ent).abs_()
    pm = on_device(mass, z)
    n = z.shape[-1]
    floor_at = min(min_keep, n) - 1
    cut = None
    rows = torch.arange(z.shape[0], device=z.device)
    for head in (_TYPICAL_HEAD, n // _TYPICAL_SHARE):
        if z.device.type != "cpu" or 2 * head > n or floor_at >= head:
            continue
        sel = slice(None) if rows.shape[0] == z.shape[0] else rows  # all rows: no copy
        part, ok = _typical_head_cut(score[sel], probs[sel], pm[sel], floor_at, head)
        cut = part if cut is None else cut.index_put((rows,), part)
        if bool(ok.all()):
            done: torch.Tensor = score <= cut[:, None]
            return done
        rows = rows[~ok]
    sel = slice(None) if rows.shape[0] == z.shape[0] else rows
    part = _typical_cut(score[sel], probs[sel], pm[sel], floor_at)
    cut = part if cut is None else cut.index_put((rows,), part)
    keep: torch.Tensor = score <= cut[:, None]
    return keep


def _typical_head_cut(score: Any, probs: Any, pm: Any, floor_at: int, head: int) -> tuple[Any, Any]:
    """The cut from the ``head`` smallest scores of each row, and where it is the full sort's."""
    vals, idx = torch.topk(score, head + 1, dim=-1, largest=False)  # ascending
    ranked, ids = vals[:, :head], idx[:, :head]
    head_p = probs.gather(1, ids)
    cum = torch.cumsum(head_p, dim=-1)
    # topk orders equal scores arbitrarily, the full sort (stable) by token id:
    # that matters only within a group of equal scores but unequal probabilities.
    same = ranked[:, 1:] == ranked[:, :-1]
    tied = (same & (head_p[:, 1:] != head_p[:, :-1])).any(dim=-1)
    if bool(tied.any()):
        t = torch.nonzero(tied)[:, 0]
        by_id = torch.argsort(ids[t], dim=-1)
        t_ids = ids[t].gather(1, by_id)
        t_ranked, order = torch.sort(ranked[t].gather(1, by_id), dim=-1, stable=True)
        t_cum = torch.cumsum(probs[t].gather(1, t_ids.gather(1, order)), dim=-1)
        ranked, cum = ranked.index_put((t,), t_ranked), cum.index_put((t,), t_cum)
    last = (cum < pm[:, None]).sum(dim=-1)
    # The head is the sort's prefix up to the scores tied with the next one.
    ok = last < (ranked < vals[:, head:]).sum(dim=-1)
    cut = ranked.gather(1, last.clamp(max=head - 1)[:, None])[:, 0]
    return torch.maximum(cut, ranked[:, floor_at]), ok


def _typical_cut(score: Any, probs: Any, pm: Any, floor_at: int) -> Any:
    """The largest kept score per row, from the full stable sort (the plain kernel's)."""
    sorted_score, order = torch.sort(score, dim=-1, stable=True)
    cum = torch.cumsum(probs.gather(-1, order), dim=-1)
    n = score.shape[-1]
    last = torch.clamp((cum < pm[:, None]).sum(dim=-1), max=n - 1)
    cut = sorted_score.gather(1, last[:, None])[:, 0]
    return torch.maximum(cut, sorted_score[:, floor_at])


def top_n_sigma_threshold(z: torch.Tensor, n: Any) -> torch.Tensor:
    """``max - n * std`` over the finite logits of each row (population std), float64.

    Mean, then variance about it: float64 row sums over the finite entries.
    On CPU a slice of ``_COLUMNS`` columns is widened to float64 and summed
    at a time, in cache (no (B, V) float64 copy); as in :func:`sum64` the
    slices do not depend on the number of rows. Other devices work the whole
    row at once.
    """
    cols = z.shape[-1] if z.device.type != "cpu" else _COLUMNS
    zero = torch.zeros((), dtype=torch.float64, device=z.device)
    # One read tells whether any entry is masked; if none, no slice needs a mask.
    masked = z.device.type == "cpu" and bool(torch.isneginf(z).any())
    count: Any = torch.isfinite(z).sum(dim=-1) if masked or cols == z.shape[-1] else z.shape[-1]
    total = torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
    for c0 in range(0, z.shape[-1], cols):
        x = z[:, c0 : c0 + cols].to(torch.float64)
        if masked or cols == z.shape[-1]:
            x = torch.where(torch.isfinite(x), x, zero)
        total += x.sum(dim=-1)
    mean = (total / count)[:, None]
    sq = torch.zeros_like(total)
    for c0 in range(0, z.shape[-1], cols):
        part = z[:, c0 : c0 + cols]
        x = part.to(torch.float64) - mean  # a new tensor (`to` may return `part` itself)
        if masked or cols == z.shape[-1]:
            x = torch.where(torch.isfinite(part), x, zero)
        sq += x.square_().sum(dim=-1)
    spread = on_device(n, z) * torch.sqrt(sq / count)
    # n = inf with std = 0 would give inf * 0 = nan; every finite token stays.
    spread = torch.where(torch.isnan(spread), float("inf"), spread)
    return z.amax(dim=-1).to(torch.float64) - spread


def entropy_temperature(
    z: torch.Tensor, min_t: Any, max_t: Any, exponent: Any, count: Any = None
) -> torch.Tensor:
    """Per-row temperature from the normalised entropy, as llama.cpp's dynatemp (float64).

    ``count`` (B,): the ``n`` of ``log(n)``; None: the number of finite tokens.
    """
    ent = entropy_of_logits(z.to(torch.float64))
    count = torch.isfinite(z).sum(dim=-1) if count is None else on_device(count, z)
    # Rows with one finite token divide 0 by log(1) = 0; they are replaced below.
    norm = torch.clamp(ent / torch.log(count.to(torch.float64)), 0.0, 1.0)
    lo, hi = on_device(min_t, z), on_device(max_t, z)
    t = lo + (hi - lo) * norm ** on_device(exponent, z)
    return torch.where(count <= 1, 1.0, t)
