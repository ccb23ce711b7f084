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
    """Locally typical set, as :func:`thermoscope.sampling._kernels.typical_mask`."""
    logp = log_softmax(z.to(torch.float64))
    probs = torch.exp(logp)
    finite = torch.isfinite(logp)
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    ent = -torch.where(finite, probs * torch.where(finite, logp, zero), zero).sum(
        dim=-1, keepdim=True
    )
    score = torch.where(finite, torch.abs(-logp - ent), float("inf"))
    sorted_score, order = torch.sort(score, dim=-1, stable=True)
    cum = torch.cumsum(probs.gather(-1, order), dim=-1)
    n = z.shape[-1]
    last = torch.clamp((cum < on_device(mass, z)[:, None]).sum(dim=-1), max=n - 1)
    cut = sorted_score.gather(1, last[:, None])[:, 0]
    floor = sorted_score[:, min(min_keep, n) - 1]
    return score <= torch.maximum(cut, floor)[:, None]


def top_n_sigma_threshold(z: torch.Tensor, n: Any) -> torch.Tensor:
    """``max - n * std`` over the finite logits of each row (population std), float64."""
    finite = torch.isfinite(z)
    zero = torch.zeros((), dtype=torch.float64, device=z.device)
    z64 = torch.where(finite, z.to(torch.float64), zero)
    count = finite.sum(dim=-1)
    mean = z64.sum(dim=-1) / count
    var = torch.where(finite, (z64 - mean[:, None]) ** 2, zero).sum(dim=-1) / count
    spread = on_device(n, z) * torch.sqrt(var)
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
