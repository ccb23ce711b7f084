"""The negative log-likelihood of ``softmax(beta * z)`` and its derivatives in ``beta = 1 / T``.

One implementation serves every caller: :func:`nll_derivatives` on an array,
the temperature fit's :class:`Derivatives` (in memory, or streamed from a
memory-mapped file chunk by chunk) and the Dask map-reduce, which calls
:func:`nll_derivatives` on each block.

With ``s = z - max_j z`` (each row shifted to a maximum of 0) and
``w = exp(beta * s)``, every row needs three sums ``S_k = sum_j w_j s_j^k``:

    NLL_i   = log S_0 + beta * (max_j z_ij - z_{i, y_i})
    NLL_i'  = S_1 / S_0 + (max_j z_ij - z_{i, y_i})       = E_p[z_i] - z_{i, y_i}
    NLL_i'' = S_2 / S_0 - (S_1 / S_0)^2                   = Var_p(z_i) >= 0

so the NLL is convex in ``beta``. The shift is independent of ``beta`` (the
row maximum of ``beta z`` is ``beta max z`` for ``beta > 0``): the solver
computes it once and each Newton step is one pass of ``exp`` and three BLAS
matrix-vector products, 2-3x faster than a full ``log_softmax`` per step.
``Var = E[s^2] - E[s]^2`` is safe here: the largest weight, 1, sits at
``s = 0``, so ``E[s]^2`` never dwarfs ``E[s^2]`` by more than the number of
classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from thermoscope import _temperature as kernel
from thermoscope._progress import progress_iter
from thermoscope._typing import Array, FloatArray, IntArray
from thermoscope._validation import check_logits
from thermoscope.calibration._inputs import scores_and_labels, two_column_logits

#: Rows per chunk: a (4096, C) float64 buffer stays in cache for typical C.
CHUNK_ROWS = 4096
# Masked (-inf) logits are stored as this finite value in the shifted copy, so
# exp(beta * s) is exactly 0 there and the products 0 * s stay 0 (0 * -inf is NaN).
_MASKED = -1e300
# Below this beta, exp(beta * _MASKED) no longer underflows to 0.
_MASK_UNDERFLOWS = 800.0 / -_MASKED


class NLLDerivatives(NamedTuple):
    """Sums over samples of the NLL of ``softmax(beta * z)`` and its beta-derivatives."""

    nll_sum: float
    grad_sum: float
    hess_sum: float
    n: int


def check_beta(beta: Any) -> float:
    """``beta`` as a finite float >= 0.

    Examples
    --------
    >>> check_beta(2)
    2.0
    """
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f"`beta` must be a finite number >= 0, got {beta!r}.") from None
    if not np.isfinite(b) or b < 0:
        raise ValueError(f"`beta` must be a finite number >= 0, got {b!r}.")
    return b


def nll_derivatives(logits: Any, labels: Any, beta: float) -> NLLDerivatives:
    """Summed NLL of ``softmax(beta * logits)`` and its first two derivatives in ``beta``.

    One call is everything a Newton step on ``beta = 1 / T`` needs; the sums
    add over chunks and over Dask blocks
    (:func:`thermoscope.calibration.dask.nll_derivatives_dask`).

    Parameters
    ----------
    logits : array_like or torch.Tensor
        ``(n_samples, n_classes)`` logits (``-inf`` = masked, never at a
        row's label), or 1-D log-odds (treated as the two logits ``(0, z)``).
    labels : array_like of int, shape (n_samples,)
    beta : float
        Inverse temperature, finite and >= 0.

    Returns
    -------
    NLLDerivatives
        ``(nll_sum, grad_sum, hess_sum, n)``.

    Notes
    -----
    ``NLL_i = logsumexp(beta z_i) - beta z_{i, y_i}``,
    ``dNLL_i / dbeta = E_p[z_i] - z_{i, y_i}``,
    ``d2NLL_i / dbeta2 = Var_p(z_i) >= 0`` (module docstring). The sums
    feed a host-side Newton solver, so a torch tensor is read to the host
    once, through ``thermoscope._arrays.to_numpy``. For a differentiable NLL
    on the device use ``negative_log_likelihood(..., temperature=T)``.

    Examples
    --------
    >>> d = nll_derivatives([[2.0, 0.0], [0.0, 1.0]], [0, 0], beta=1.0)
    >>> round(d.nll_sum, 4), round(d.grad_sum, 4), round(d.hess_sum, 4), d.n
    (1.4402, 0.4927, 0.6166, 2)
    """
    b = check_beta(beta)
    z, y = scores_and_labels(logits, labels, "logits", "binary log-odds")
    return Derivatives(two_column_logits(z, "logits"), y).sums(b)


class Derivatives:
    """NLL and its beta-derivatives on one data set, one pass over the data per call.

    In memory, the shifted logits are computed once; a memory-mapped input is
    validated, shifted and reduced chunk by chunk on every pass, so memory
    stays independent of N.

    Examples
    --------
    >>> import numpy as np
    >>> d = Derivatives(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))
    >>> [round(v, 4) for v in d(1.0)]  # means: NLL, NLL', NLL''
    [0.8133, 0.2311, 0.1966]
    """

    def __init__(self, z: Array, y: IntArray, *, progress: bool = False) -> None:
        self.n = int(z.shape[0])
        self.y = y
        self.z = z
        self.progress = progress
        self.streaming = isinstance(z, np.memmap)
        gap = 0.0
        self.shifted: list[FloatArray] = []
        for lo, hi in self._ranges():
            s, gap_sum = self._shift(lo, hi, validate=self.streaming)
            gap += gap_sum
            if not self.streaming:
                self.shifted.append(s)
        #: sum_i (max_j z_ij - z_{i, y_i}) >= 0, the beta-independent part of NLL'.
        self.gap = gap

    def _ranges(self) -> Iterator[tuple[int, int]]:
        starts: Any = range(0, self.n, CHUNK_ROWS)
        if self.streaming:
            starts = progress_iter(
                starts,
                desc="pass over logits",
                unit="chunk",
                total=len(starts),
                enabled=self.progress,
            )
        for lo in starts:
            yield lo, min(lo + CHUNK_ROWS, self.n)

    def _shift(self, lo: int, hi: int, *, validate: bool) -> tuple[FloatArray, float]:
        """Rows ``lo:hi`` shifted to a row maximum of 0, and their summed label gaps."""
        z = np.asarray(self.z[lo:hi], dtype=np.float64)
        if validate:  # a memmap is checked once, on the first pass
            try:
                check_logits(z, "logits")
            except ValueError as exc:
                raise ValueError(f"{exc} (rows {lo}..{hi - 1})") from None
        s = z - z.max(axis=1, keepdims=True)
        masked = np.isneginf(s)
        if masked.any():
            s[masked] = _MASKED
        true = s[np.arange(hi - lo), self.y[lo:hi]]
        if np.any(true <= _MASKED):
            i = lo + int(np.argmax(true <= _MASKED))
            raise ValueError(
                f"`logits` must be finite at each row's label (a -inf there makes the NLL "
                f"infinite at every temperature), got -inf at row {i}, label {int(self.y[i])}."
            )
        return s, float(-true.sum())

    def chunks(self) -> Iterator[FloatArray]:
        """The shifted logits, chunk by chunk."""
        if self.streaming:
            for lo, hi in self._ranges():
                yield self._shift(lo, hi, validate=False)[0]
        else:
            yield from self.shifted

    def sums(self, beta: float) -> NLLDerivatives:
        """``(NLL, NLL', NLL'')`` summed over the rows at ``beta``."""
        log_s0 = mean_s = var_s = 0.0
        for s in self.chunks():
            buf = kernel.tempered_weights(s, beta)
            if beta < _MASK_UNDERFLOWS:
                # beta = 0 is T = inf, uniform over the unmasked entries: a
                # masked entry keeps weight 0 however small beta is.
                np.copyto(buf, 0.0, where=s <= _MASKED)
            ones = np.ones(s.shape[1])
            s0 = buf @ ones
            buf *= s
            s1 = buf @ ones
            buf *= s
            s2 = buf @ ones
            m1 = s1 / s0
            log_s0 += float(np.log(s0).sum())
            mean_s += float(m1.sum())
            var_s += float(np.maximum(s2 / s0 - m1 * m1, 0.0).sum())
        return NLLDerivatives(log_s0 + beta * self.gap, mean_s + self.gap, var_s, self.n)

    def __call__(self, beta: float) -> tuple[float, float, float]:
        """``(NLL, NLL', NLL'')`` at ``beta``, all means over the rows."""
        total = self.sums(beta)
        return total.nll_sum / self.n, total.grad_sum / self.n, total.hess_sum / self.n

    def separable(self) -> bool:
        """True when every label is its row's unique maximum (NLL -> 0 as T -> 0)."""
        for lo, s in zip(range(0, self.n, CHUNK_ROWS), self.chunks(), strict=False):
            rows = np.arange(s.shape[0])
            y = self.y[lo : lo + s.shape[0]]
            if np.any(s[rows, y] != 0) or np.any(np.count_nonzero(s == 0, axis=1) != 1):
                return False
        return True
