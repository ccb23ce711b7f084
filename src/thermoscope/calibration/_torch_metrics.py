"""Calibration metrics on torch tensors: the sums of :mod:`.metrics`, on the tensor's device.

:mod:`thermoscope.calibration.metrics` sends a torch ``probs`` here. Every
step is a torch operation on the tensor's device: validation (one boolean
per check comes back to the host, never the data), the kernel's
``log_softmax`` for logits, the top-label confidence and correctness, the bin
of each confidence and the per-bin sums. Results are tensors on that device.

The numbers are the numpy ones: logits are worked in float64 and every sum
accumulates in float64 (the same widening as numpy, done with ``Tensor.to``
on the device), and the bin edges are numpy's own float64 edges
(``k / n_bins``, or numpy's percentile formula for equal-mass bins) compared
with ``searchsorted(..., right=True)``, the ``[e_k, e_{k+1})`` rule of the
module docs. Scalar metrics come back as 0-d tensors in the input's floating
dtype (float64 for integer input), reliability curves in float64 like numpy's.

Autograd: the log-likelihood and the Brier score are differentiable in the
logits (or probabilities) and in a tensor temperature; the binned metrics
carry the graph of the confidences they sum (the bin assignment itself is
piecewise constant).

This module imports torch; :mod:`.metrics` loads it only for tensor input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from thermoscope import _temperature as kernel
from thermoscope._arrays import to_numpy
from thermoscope._backend import input_eps, is_torch
from thermoscope._typing import Array
from thermoscope._validation import as_float, check_labels, check_logits, check_probabilities
from thermoscope.calibration._binning import BinSums, quantile_positions, uniform_edges
from thermoscope.calibration._inputs import check_from_logits, check_temperature_rows
from thermoscope.calibration._results import CalibrationSummary, ReliabilityCurve

__all__ = [
    "Batch",
    "brier_score",
    "calibration_error",
    "calibration_summary",
    "chunk_sums",
    "negative_log_likelihood",
    "prepare",
    "reliability_curve",
]

#: Sums, logits and bin comparisons are worked in float64, as in numpy.
WIDE = torch.float64


# ----------------------------------------------------------------------------
# Clean inputs
# ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Batch:
    """Validated tensors on one device: the torch twin of ``_inputs.Batch``.

    ``probs`` is ``(n, n_classes)`` or ``(n,)`` (``P(y = 1)``) in its compute
    dtype (float32 probabilities stay float32 and are widened per use);
    probabilities computed from logits are float64. ``labels`` are int64 on
    the same device; ``log_p_true`` is ``log p(y_i)`` from the logits (None
    for probability input); ``back`` casts a result to the input's dtype.
    """

    probs: torch.Tensor
    labels: torch.Tensor
    back: Callable[[Any], torch.Tensor]
    log_p_true: torch.Tensor | None = None

    @property
    def binary(self) -> bool:
        return self.probs.ndim == 1

    @property
    def n_classes(self) -> int:
        return 2 if self.binary else int(self.probs.shape[1])

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])

    def log_true(self) -> torch.Tensor:
        """``log p(y_i)`` in float64; ``-inf`` where a probability of 0 was given."""
        if self.log_p_true is not None:
            return self.log_p_true
        if self.binary:
            p = self.probs.to(WIDE)
            p_true = torch.where(self.labels == 1, p, 1.0 - p)
        else:
            p_true = self.probs.gather(1, self.labels[:, None])[:, 0].to(WIDE)
        return torch.log(p_true)

    def top_label(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(confidence in float64, correct as bool): top-label for 2-D, positive-class for 1-D."""
        if self.binary:
            return self.probs.to(WIDE), self.labels == 1
        # One pass for both; the index is the first maximum on ties, like numpy's argmax.
        top, where = torch.max(self.probs, dim=1)
        return top.to(WIDE), where == self.labels

    def n_correct(self) -> torch.Tensor:
        """Number of samples whose predicted class is right (0-d int64)."""
        if self.binary:
            return ((self.probs > 0.5).to(torch.int64) == self.labels).sum()
        return self.top_label()[1].sum()

    def brier_terms(self) -> torch.Tensor:
        """Per-sample Brier loss in float64, as ``_inputs.Batch.brier_terms``."""
        p = self.probs.to(WIDE)
        if self.binary:
            return (p - self.labels) ** 2
        minus_one = torch.full((p.shape[0], 1), -1.0, dtype=WIDE, device=p.device)
        diff = p.scatter_add(1, self.labels[:, None], minus_one)
        return (diff * diff).sum(dim=1)


def device_labels(labels: Any, n_classes: int, n_samples: int, device: Any) -> torch.Tensor:
    """Labels as checked int64 on ``device``: a tensor is checked where it lies, with torch
    reductions; anything else (lists, numpy) is checked on the host and moved there.
    """
    if not is_torch(labels):
        labels, _ = to_numpy(labels, "labels")  # the "numeric" check of every other path
    out: torch.Tensor = torch.as_tensor(
        check_labels(labels, n_classes, (n_samples,)), device=device
    )
    return out


def two_column_logits(x: torch.Tensor, name: str) -> torch.Tensor:
    """float64 ``(n, C)`` logits; 1-D log-odds become the two logits ``(0, z)``."""
    z = x.to(WIDE)
    if z.ndim == 1:
        if not bool(torch.isfinite(z).all()):
            raise ValueError(f"`{name}` must be finite log-odds, got NaN or inf.")
        return torch.stack([torch.zeros_like(z), z], dim=1)
    check_logits(z, name)
    return z


def prepare(probs: Any, labels: Any, from_logits: bool, temperature: Any = 1.0) -> Batch:
    """Validate a tensor ``probs`` (or logits) and ``labels`` on the tensor's device."""
    check_from_logits(from_logits)
    x, back = as_float(probs, "probs")
    if x.ndim not in (1, 2):
        raise ValueError(
            "`probs` must be 1-D (binary: P(y = 1)) or 2-D (n_samples, n_classes), "
            f"got shape {tuple(x.shape)}."
        )
    if x.ndim == 2 and x.shape[1] < 2:
        raise ValueError(
            f"`probs` must have at least 2 classes (columns), got shape {tuple(x.shape)}."
        )
    n_classes = 2 if x.ndim == 1 else int(x.shape[1])
    y = device_labels(labels, n_classes, int(x.shape[0]), x.device)
    binary = x.ndim == 1
    if from_logits:
        check_temperature_rows(temperature, int(x.shape[0]))
        z = two_column_logits(x, "probs")
        logp = kernel.log_softmax(z, temperature, 1)
        log_p_true = logp.gather(1, y[:, None])[:, 0]
        p = torch.exp(logp)
        return Batch(p[:, 1] if binary else p, y, back, log_p_true)
    if binary:
        if not bool(torch.isfinite(x).all()):
            raise ValueError("`probs` must be finite probabilities, got NaN or inf.")
        outside = (x < 0) | (x > 1)
        if bool(outside.any()):
            raise ValueError(f"`probs` must lie in [0, 1], got {x[outside][0].tolist()!r}.")
        return Batch(x, y, back)
    check_probabilities(x, "probs", axis=1, eps=input_eps(probs))
    return Batch(x, y, back)


# ----------------------------------------------------------------------------
# Binning
# ----------------------------------------------------------------------------


def _on(values: Array, device: torch.device, dtype: torch.dtype = WIDE) -> torch.Tensor:
    """A small host-made constant (edges, positions) on ``device``."""
    return torch.as_tensor(values, dtype=dtype, device=device)


def quantile_edges(values: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-mass edges of float64 ``values``: numpy's percentiles, computed on the device.

    The positions and weights depend only on the number of values and are
    numpy's own (``_binning.quantile_positions``); the values are sorted and
    interpolated on the device with numpy's two-sided ``lerp``, operation for
    operation, so the edges are bit-identical to ``_binning.quantile_edges``.
    """
    lower, upper, weight = quantile_positions(int(values.shape[0]), n_bins)
    ordered = torch.sort(values).values
    a = ordered[_on(lower, values.device, torch.int64)]
    b = ordered[_on(upper, values.device, torch.int64)]
    t = _on(weight, values.device)
    diff = b - a
    return torch.where(t >= 0.5, b - diff * _on(1 - weight, values.device), a + diff * t)


def bin_index(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Bin of each float64 value: ``[e_k, e_{k+1})``, the last bin closed."""
    inner = edges[1:-1].contiguous()
    if inner.numel() == 0:
        return torch.zeros(values.shape, dtype=torch.int64, device=values.device)
    return torch.searchsorted(inner, values.contiguous(), right=True)


def _sums(idx: torch.Tensor, conf: torch.Tensor, hit: torch.Tensor, size: int) -> BinSums:
    """Per-bin count (int64), confidence sum and correct sum (float64)."""
    zeros = torch.zeros(size, dtype=WIDE, device=conf.device)
    return BinSums(
        torch.bincount(idx, minlength=size),
        zeros.index_add(0, idx, conf),
        zeros.index_add(0, idx, hit.to(WIDE)),
    )


def top_label_sums(batch: Batch, n_bins: int, strategy: str) -> tuple[BinSums, torch.Tensor]:
    """Top-label (positive-class for 1-D) per-bin sums and their float64 edges, on the device."""
    conf, hit = batch.top_label()
    if strategy == "uniform":
        edges = _on(uniform_edges(n_bins), conf.device)
    else:
        edges = quantile_edges(conf, n_bins)
    return _sums(bin_index(conf, edges), conf, hit, n_bins), edges


def classwise_sums(batch: Batch, n_bins: int, strategy: str) -> BinSums:
    """Per-class per-bin sums, shape ``(n_classes, n_bins)``, as ``_binning.classwise_sums``."""
    p = batch.probs.to(WIDE)
    probs = torch.stack([1.0 - p, p], dim=1) if batch.binary else p
    k = probs.shape[1]
    classes = torch.arange(k, device=probs.device)
    hits = batch.labels[:, None] == classes
    if strategy == "uniform":
        idx = bin_index(probs, _on(uniform_edges(n_bins), probs.device))
    else:
        # Each class has its own quantile edges.
        idx = torch.stack(
            [bin_index(probs[:, c], quantile_edges(probs[:, c], n_bins)) for c in range(k)],
            dim=1,
        )
    flat = (idx + classes * n_bins).reshape(-1)
    sums = _sums(flat, probs.reshape(-1), hits.reshape(-1), k * n_bins)
    return BinSums(
        sums.count.reshape(k, n_bins), sums.conf.reshape(k, n_bins), sums.hit.reshape(k, n_bins)
    )


def error_from_sums(sums: BinSums, norm: str) -> torch.Tensor:
    """Calibration error along the last axis of tensor sums, as ``_binning.error_from_sums``."""
    count: torch.Tensor = sums.count.to(WIDE)
    n = count.sum(dim=-1)
    gap_sum = torch.abs(sums.hit - sums.conf)  # = count * |accuracy - confidence|
    if norm == "l1":
        return gap_sum.sum(dim=-1) / n
    nonempty = count > 0
    gap = torch.where(nonempty, gap_sum / torch.where(nonempty, count, 1.0), 0.0)
    if norm == "max":
        return gap.amax(dim=-1)
    return torch.sqrt((count * gap**2).sum(dim=-1) / n)


def curve_from_sums(sums: BinSums, edges: torch.Tensor) -> ReliabilityCurve:
    """A reliability curve of float64 tensors (int64 counts) on the sums' device."""
    count = sums.count
    nonempty = count > 0
    safe = torch.where(nonempty, count, 1).to(WIDE)
    nan = torch.full((), float("nan"), dtype=WIDE, device=count.device)
    return ReliabilityCurve(
        edges,
        torch.where(nonempty, sums.conf / safe, nan),
        torch.where(nonempty, sums.hit / safe, nan),
        count,
    )


# ----------------------------------------------------------------------------
# The public metrics, for tensor input
# ----------------------------------------------------------------------------


def calibration_error(
    probs: Any,
    labels: Any,
    n_bins: int,
    strategy: str,
    norm: str,
    classwise: bool,
    from_logits: bool,
) -> torch.Tensor:
    """ECE (any norm, top-label or class-wise) as a 0-d tensor in the input's dtype."""
    batch = prepare(probs, labels, from_logits)
    if classwise:
        return batch.back(error_from_sums(classwise_sums(batch, n_bins, strategy), norm).mean())
    return batch.back(error_from_sums(top_label_sums(batch, n_bins, strategy)[0], norm))


def brier_score(probs: Any, labels: Any, from_logits: bool) -> torch.Tensor:
    """Mean Brier score as a 0-d tensor in the input's dtype (differentiable)."""
    batch = prepare(probs, labels, from_logits)
    return batch.back(batch.brier_terms().mean())


def negative_log_likelihood(
    probs: Any, labels: Any, from_logits: bool, temperature: Any = 1.0
) -> torch.Tensor:
    """Mean NLL as a 0-d tensor in the input's dtype (differentiable, also in ``temperature``)."""
    batch = prepare(probs, labels, from_logits, temperature)
    return batch.back(-batch.log_true().mean())


def reliability_curve(
    probs: Any, labels: Any, n_bins: int, strategy: str, from_logits: bool
) -> ReliabilityCurve:
    """The reliability curve as tensors on the input's device."""
    sums, edges = top_label_sums(prepare(probs, labels, from_logits), n_bins, strategy)
    return curve_from_sums(sums, edges)


def calibration_summary(
    probs: Any, labels: Any, n_bins: int, strategy: str, from_logits: bool
) -> CalibrationSummary:
    """Every metric at once: 0-d tensors in the input's dtype and a tensor curve."""
    batch = prepare(probs, labels, from_logits)
    sums, edges = top_label_sums(batch, n_bins, strategy)
    n = batch.n_samples
    back = batch.back
    return CalibrationSummary(
        n_samples=n,
        accuracy=back(batch.n_correct().to(WIDE) / n),
        ece=back(error_from_sums(sums, "l1")),
        ece_l2=back(error_from_sums(sums, "l2")),
        mce=back(error_from_sums(sums, "max")),
        nll=back(-batch.log_true().sum() / n),
        brier=back(batch.brier_terms().sum() / n),
        curve=curve_from_sums(sums, edges),
    )


def chunk_sums(
    probs: Any, labels: Any, edges: Array, from_logits: bool, temperature: float = 1.0
) -> tuple[BinSums, int, int, float, float, bool, int]:
    """One chunk's sums for the streaming accumulator, reduced on the device.

    The accumulator keeps float64 sums on the host (it merges across chunks
    and machines), so the ``3 * n_bins + 3`` sums, not the chunk, come back
    through the explicit host conversion ``to_numpy``, in one transfer.
    """
    batch = prepare(probs, labels, from_logits, temperature)
    n_bins = edges.shape[0] - 1
    conf, hit = batch.top_label()
    sums = _sums(bin_index(conf, _on(edges, conf.device)), conf, hit, n_bins)
    totals = torch.stack(
        [batch.n_correct().to(WIDE), -batch.log_true().sum(), batch.brier_terms().sum()]
    )
    packed = torch.cat([sums.count.to(WIDE), sums.conf, sums.hit, totals])
    host, _ = to_numpy(packed, "sums")
    parts = [host[i * n_bins : (i + 1) * n_bins] for i in range(3)]
    correct, nll, brier = host[3 * n_bins :]
    return (
        BinSums(parts[0].astype(np.int64), parts[1].copy(), parts[2].copy()),
        batch.n_samples,
        int(correct),
        float(nll),
        float(brier),
        batch.binary,
        batch.n_classes,
    )
