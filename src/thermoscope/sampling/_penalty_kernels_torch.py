"""The kernels of :mod:`thermoscope.sampling._penalty_kernels` for torch tensors.

Same names, arguments and semantics (each writes into the rows ``out`` the
caller owns and returns them), computed on the tensor's device with no host
read: per-row parameters arrive as host numpy arrays and are moved once per
call (:func:`~thermoscope.sampling._input.on_device`); gathered values are
computed in float64, as numpy does, so both libraries give the same numbers.
Writes of duplicate ids carry equal values, and the other reductions over
duplicates (adding ones, taking a minimum) are exact in any order, so every
result is deterministic on every device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from thermoscope.sampling._input import on_device

__all__ = [
    "add_columns",
    "counts",
    "exact_count_limit",
    "frequency",
    "group_sums",
    "ngram_ban",
    "presence",
    "repetition",
    "sequence_bias",
    "suffix_matches",
]


def _redirect(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    last = ids[:, -1]
    has = last >= 0
    fill = torch.where(has, last, torch.zeros_like(last))
    return torch.where(ids >= 0, ids, fill[:, None]), has


def exact_count_limit(dtype: torch.dtype) -> int:
    """The largest count below which every integer is exact in ``dtype`` (``2 / eps``)."""
    return round(2.0 / torch.finfo(dtype).eps)


def counts(
    out: torch.Tensor, idx: torch.Tensor, real: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """(B, W) float64 occurrences of each entry's column among the ``real`` entries of ``idx``.

    ``out`` (B, V) is scratch: its entries at ``idx`` are overwritten.
    """
    step = chunk or exact_count_limit(out.dtype)
    ones = real.to(out.dtype)  # padding adds 0
    total: torch.Tensor | None = None
    for start in range(0, idx.shape[1], step):
        out.scatter_(1, idx, 0.0)
        out.scatter_add_(1, idx[:, start : start + step], ones[:, start : start + step])
        part = out.gather(1, idx).to(torch.float64)
        total = part if total is None else total + part
    assert total is not None  # W >= 1
    return total


def repetition(out: torch.Tensor, ids: torch.Tensor, penalty: np.ndarray) -> torch.Tensor:
    idx, has = _redirect(ids)
    v = out.gather(1, idx)
    p = on_device(penalty, out).to(out.dtype)[:, None]
    new = torch.where(v < 0, v * p, v / p)
    return out.scatter_(1, idx, torch.where(has[:, None], new, v))


def presence(out: torch.Tensor, ids: torch.Tensor, penalty: np.ndarray) -> torch.Tensor:
    idx, has = _redirect(ids)
    v = out.gather(1, idx).to(torch.float64)
    p = on_device(penalty, out)[:, None]
    return out.scatter_(1, idx, torch.where(has[:, None], v - p, v).to(out.dtype))


def frequency(out: torch.Tensor, ids: torch.Tensor, penalty: np.ndarray) -> torch.Tensor:
    idx, _ = _redirect(ids)
    v = out.gather(1, idx).to(torch.float64)
    n = counts(out, idx, ids >= 0)
    p = on_device(penalty, out)[:, None]
    return out.scatter_(1, idx, (v - p * n).to(out.dtype))


def ngram_ban(out: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    m = ids.shape[1] - n + 1
    if m <= 0:
        return out
    match = ids[:, :m] >= 0
    for k in range(n - 1):
        match &= ids[:, k : k + m] == ids[:, m + k, None]
    # Every window writes min(current, fill): -inf bans its token, +inf leaves
    # it as is; a minimum does not depend on the order of duplicate writes.
    target = torch.where(match, ids[:, n - 1 :], 0)
    inf = torch.tensor(float("inf"), dtype=out.dtype, device=out.device)
    fill = torch.where(match, -inf, inf)
    return out.scatter_reduce_(1, target, fill, reduce="amin")


def suffix_matches(ids: torch.Tensor, prefixes: np.ndarray) -> torch.Tensor:
    k = prefixes.shape[1]
    if k > ids.shape[1]:
        return torch.zeros((ids.shape[0], prefixes.shape[0]), dtype=torch.bool, device=ids.device)
    tail = ids[:, None, ids.shape[1] - k :]
    pre: torch.Tensor = on_device(prefixes, ids)
    return (tail == pre[None]).all(dim=-1)


def add_columns(out: torch.Tensor, cols: np.ndarray, delta: Any) -> torch.Tensor:
    at = on_device(cols, out)
    shift = delta if isinstance(delta, torch.Tensor) else on_device(delta, out)
    values = (out.index_select(1, at).to(torch.float64) + shift).to(out.dtype)
    return out.index_copy_(1, at, values)


def group_sums(values: torch.Tensor, starts: np.ndarray, groups: np.ndarray) -> torch.Tensor:
    out = torch.zeros((values.shape[0], len(starts)), dtype=values.dtype, device=values.device)
    return out.index_add_(1, on_device(groups, values), values)


def sequence_bias(
    out: torch.Tensor,
    ids: torch.Tensor,
    singles: np.ndarray,
    groups: tuple[tuple[np.ndarray, np.ndarray], ...],
    layout: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> torch.Tensor:
    order, cols, starts, groups_of = layout
    zero = torch.zeros((), dtype=torch.float64, device=out.device)
    parts = [on_device(singles, out).expand(out.shape[0], singles.size)]
    parts += [
        torch.where(suffix_matches(ids, pre), on_device(bias, out), zero) for pre, bias in groups
    ]
    per_seq = torch.cat(parts, dim=1)[:, on_device(order, out)]
    return add_columns(out, cols, group_sums(per_seq, starts, groups_of))
