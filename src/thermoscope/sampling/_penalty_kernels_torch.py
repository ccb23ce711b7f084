"""The kernels of :mod:`thermoscope.sampling._penalty_kernels` for torch tensors.

Same names, arguments and semantics, computed on the tensor's device with no
host read: per-row parameters arrive as host numpy arrays and are moved once
per call (:func:`~thermoscope.sampling._input.on_device`); gathered values
are computed in float64, as numpy does, so both libraries give the same
numbers. Writes of duplicate ids carry equal values, so ``scatter`` is
deterministic on every device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from thermoscope.sampling._input import on_device

__all__ = [
    "add_columns",
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


def _put(z: torch.Tensor, idx: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return z.scatter(1, idx, values.to(z.dtype))


def _gather64(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return z.gather(1, idx).to(torch.float64)


def repetition(z: torch.Tensor, ids: torch.Tensor, penalty: np.ndarray) -> torch.Tensor:
    idx, has = _redirect(ids)
    v = z.gather(1, idx)
    p = on_device(penalty, z).to(z.dtype)[:, None]
    new = torch.where(v < 0, v * p, v / p)
    return _put(z, idx, torch.where(has[:, None], new, v))


def presence(z: torch.Tensor, ids: torch.Tensor, penalty: np.ndarray) -> torch.Tensor:
    idx, has = _redirect(ids)
    v = _gather64(z, idx)
    p = on_device(penalty, z)[:, None]
    return _put(z, idx, torch.where(has[:, None], v - p, v))


def frequency(z: torch.Tensor, ids: torch.Tensor, penalty: np.ndarray) -> torch.Tensor:
    idx, _ = _redirect(ids)
    real = (ids >= 0).to(torch.int32)
    counts = torch.zeros(z.shape, dtype=torch.int32, device=z.device).scatter_add_(1, idx, real)
    v = _gather64(z, idx)
    p = on_device(penalty, z)[:, None]
    return _put(z, idx, v - p * counts.gather(1, idx))


def ngram_ban(z: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    m = ids.shape[1] - n + 1
    if m <= 0:
        return z.clone()
    match = ids[:, :m] >= 0
    for k in range(n - 1):
        match &= ids[:, k : k + m] == ids[:, m + k, None]
    vocab = z.shape[1]
    # Non-matching windows mark a spare column past the vocabulary.
    banned = torch.zeros((z.shape[0], vocab + 1), dtype=torch.bool, device=z.device)
    target = torch.where(match, ids[:, n - 1 :], vocab)
    banned.scatter_(1, target, True)
    return z.masked_fill(banned[:, :vocab], float("-inf"))


def suffix_matches(ids: torch.Tensor, prefixes: np.ndarray) -> torch.Tensor:
    k = prefixes.shape[1]
    if k > ids.shape[1]:
        return torch.zeros((ids.shape[0], prefixes.shape[0]), dtype=torch.bool, device=ids.device)
    tail = ids[:, None, ids.shape[1] - k :]
    pre: torch.Tensor = on_device(prefixes, ids)
    return (tail == pre[None]).all(dim=-1)


def add_columns(z: torch.Tensor, cols: np.ndarray, delta: Any) -> torch.Tensor:
    at = on_device(cols, z)
    shift = delta if isinstance(delta, torch.Tensor) else on_device(delta, z)
    values = (z.index_select(1, at).to(torch.float64) + shift).to(z.dtype)
    return z.index_copy(1, at, values)


def group_sums(values: torch.Tensor, starts: np.ndarray, groups: np.ndarray) -> torch.Tensor:
    out = torch.zeros((values.shape[0], len(starts)), dtype=values.dtype, device=values.device)
    return out.index_add_(1, on_device(groups, values), values)


def sequence_bias(
    z: torch.Tensor,
    ids: torch.Tensor,
    singles: np.ndarray,
    groups: tuple[tuple[np.ndarray, np.ndarray], ...],
    layout: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> torch.Tensor:
    order, cols, starts, groups_of = layout
    zero = torch.zeros((), dtype=torch.float64, device=z.device)
    parts = [on_device(singles, z).expand(z.shape[0], singles.size)]
    parts += [
        torch.where(suffix_matches(ids, pre), on_device(bias, z), zero) for pre, bias in groups
    ]
    per_seq = torch.cat(parts, dim=1)[:, on_device(order, z)]
    return add_columns(z, cols, group_sums(per_seq, starts, groups_of))
