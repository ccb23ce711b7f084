"""Smooth ECE (smECE): Blasiok and Nakkiran's kernel-smoothed calibration error.

The residuals ``r_i = f_i - y_i`` (confidence minus correctness) are smoothed
with a Gaussian kernel of bandwidth ``sigma`` reflected at 0 and 1; smECE is
the mean absolute smoothed residual under the smoothed confidence density.
The bandwidth is chosen automatically as the fixed point ``sigma = smECE(sigma)``
(Blasiok & Nakkiran, "Smooth ECE: Principled Reliability Diagrams via Kernel
Smoothing", ICLR 2024).

Equal to ``relplot.smECE`` (relplot 1.0.3, Apple's reference code), step
for step: the same discretisation (each confidence split linearly between
the two nearest of ``M = max(2000, round(20 / sigma)) // 2 + 1`` grid points),
the same unnormalised kernel, reflection, evaluation mesh
(``max(round(10 / sigma), 200)`` points), density floor ``1e-4`` and the same
10-step bisection for the bandwidth. Two things are done differently, with
the same numbers (to about 1e-12): the grid sums use ``np.bincount`` once per
grid size (relplot runs ``np.add.at`` twice per kernel evaluation, 44 passes
over the data for one smECE), and the reflected convolution is done with an
FFT instead of ``np.convolve``'s direct sum.

Intervals (``interval=``) are percentile-bootstrap intervals, vectorised over
cells: the confidences are grouped in ``(1/512-wide interval, correct)``
cells, each represented by its mean confidence; a resample gives the cells
multinomial counts, and every resample's smECE (its own bandwidth search
included) is computed from the counts with batched FFTs. The resamples'
bandwidths are searched from the data's own: each gallops from it on
relplot's grid of ``1/1024`` steps and then bisects, which returns relplot's
bisection answer whenever "too small" (``sigma < smECE(sigma)``) holds below
one threshold and fails above it, in a few evaluations instead of eleven. The quantisation
moves each confidence by at most ``1/512``; the interval is shifted by the
difference between the exact smECE and the smECE of the cell representatives
so that this offset does not bias it.

Examples
--------
>>> import numpy as np
>>> from thermoscope.calibration.smooth import smooth_calibration_error
>>> rng = np.random.default_rng(0)
>>> f = rng.uniform(size=2000)
>>> y = (rng.uniform(size=2000) < f).astype(int)  # calibrated: smECE is small
>>> smooth_calibration_error(f, y) < 0.05
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.sparse

from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray, IntArray
from thermoscope.calibration._inputs import check_from_logits, prepare
from thermoscope.calibration.intervals import (
    MetricInterval,
    check_interval_options,
    percentile_interval,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "MIN_BANDWIDTH",
    "grid_size",
    "sample_grids",
    "smooth_calibration_error",
    "smooth_ece_from",
    "top_label_smooth_error",
]

#: relplot's ``config.smECE_mesh_pts``: the fewest points the error is averaged over.
_MESH_POINTS = 200
#: relplot's floor on the smoothed density (``BaseKernelMixin.smooth``'s ``eps``).
_DENSITY_FLOOR = 1e-4
#: relplot's ``smECE(eps=0.001)``: bandwidths below it always count as "too small".
_SEARCH_FLOOR = 1e-3
#: relplot's ``search_param(refine=10)``.
_SEARCH_STEPS = 10
#: A fixed bandwidth below this would need a grid of more than 10**5 points.
MIN_BANDWIDTH = 1e-4
#: Threads of the batched FFTs (the bootstrap's thousand rows split well over two).
_WORKERS = 2
#: Cells per unit of confidence for the bootstrap (per correctness value).
_CELLS = 512

# A function giving, for a grid size M and some rows, the (rows, M) grid sums
# of the residuals and of the weights.
Grids = Callable[[int, IntArray], tuple[FloatArray, FloatArray]]


def grid_size(sigma: float) -> int:
    """Points of the grid the data are rounded to at bandwidth ``sigma`` (relplot's rule).

    Examples
    --------
    >>> grid_size(1.0), grid_size(0.001)
    (1001, 10001)
    """
    return max(2000, round(20 / sigma)) // 2 + 1


def _split(f: FloatArray, m: int) -> tuple[IntArray, FloatArray]:
    """Grid interval of each confidence and its position inside it (relplot's rounding)."""
    pos = f * (m - 1)
    idx = pos.astype(np.intp).clip(0, m - 2)
    return idx, pos - idx


def _kernel(sigma: float, m: int) -> FloatArray:
    t = np.linspace(0.0, 1.0, m)
    ker = np.exp(-(t - 0.5) * (t - 0.5) / (2 * sigma**2))
    return np.asarray(ker / (np.sqrt(2 * np.pi) * sigma))


def _reflect_smooth(values: FloatArray, sigma: float) -> FloatArray:
    """Rows of grid sums convolved with the kernel, reflected at both ends (relplot's window).

    relplot convolves the reflected sequence ``v[M-1..1], v, v[M-2..0]`` with
    the kernel and keeps ``M`` values from the middle of the 'valid' part.
    Those read only the middle ``2M - 1`` values of the reflected sequence,
    so an FFT of length ``>= 2M - 1`` gives them without wrap-around.
    """
    m = values.shape[-1]
    n = scipy.fft.next_fast_len(2 * m - 1, real=True)
    h = m // 2
    # float32 grid sums (the bootstrap's) are convolved in float32, at half the cost.
    buf = np.empty((*values.shape[:-1], n), dtype=values.dtype)
    # The window starts h values into the reflected sequence: v[M-1-h..1], v, v[M-2..M-1-h].
    buf[..., : m - 1 - h] = values[..., m - 1 - h : 0 : -1]
    buf[..., m - 1 - h : 2 * m - 1 - h] = values
    buf[..., 2 * m - 1 - h : 2 * m - 1] = values[..., m - 2 : m - 2 - h : -1]
    buf[..., 2 * m - 1 :] = 0.0
    spec = scipy.fft.rfft(buf, axis=-1, workers=_WORKERS)
    spec *= scipy.fft.rfft(_kernel(sigma, m).astype(values.dtype), n)
    full = scipy.fft.irfft(spec, n, axis=-1, workers=_WORKERS)
    return np.asarray(full[..., m - 1 : 2 * m - 1])


def _reflected_window(m: int) -> IntArray:
    """Grid index of each of the ``2M - 1`` middle values of relplot's reflected sequence."""
    e = np.arange(m // 2, 2 * m - 1 + m // 2)  # positions in the reflected sequence
    # Position e of v[M-1..1], v, v[M-2..0] holds v[|e - (M-1)|] up to 2M - 2, then mirrors back.
    k = np.abs(e - (m - 1))
    return np.asarray(np.where(k <= m - 1, k, 2 * (m - 1) - k))


def _interp_weights(t: FloatArray, m: int) -> tuple[IntArray, FloatArray]:
    """Left grid index and weight of each point ``t`` on the grid ``k / (M - 1)`` (relplot's)."""
    step = 1 / (m - 1)
    idx = (t * (m - 1)).astype(np.intp).clip(0, m - 2)
    return idx, (t - idx * step) / step


def _interpolate(t: FloatArray, y: FloatArray) -> FloatArray:
    """Linear interpolation of grid values ``y`` (at ``k / (M - 1)``) at points ``t``."""
    idx, w = _interp_weights(t, y.shape[-1])
    return np.asarray(y[..., idx] * (1 - w) + y[..., idx + 1] * w)


def _mesh(sigma: float) -> FloatArray:
    """relplot's evaluation points at bandwidth ``sigma``."""
    return np.linspace(0.0, 1.0, max(round(10 / sigma), _MESH_POINTS))


def _error_at(grids: Grids, rows: IntArray, sigma: float) -> FloatArray:
    """smECE at bandwidth ``sigma`` of each row."""
    m = grid_size(sigma)
    res, ones = grids(m, rows)
    t = _mesh(sigma)
    both = _interpolate(t, _reflect_smooth(np.concatenate([res, ones]), sigma))
    smooth_res = both[: res.shape[0]]
    density = both[res.shape[0] :] + _DENSITY_FLOOR
    mean_res = smooth_res / density
    return np.asarray(np.sum(np.abs(mean_res) * density, axis=-1) / np.sum(density, axis=-1))


def smooth_ece_from(
    grids: Grids, n_rows: int, bandwidth: float | None
) -> tuple[FloatArray, FloatArray]:
    """smECE and bandwidth of ``n_rows`` data sets given by their grid sums.

    With ``bandwidth=None`` each row runs relplot's bisection for the fixed
    point, all rows in lockstep: at each step the rows that try the same
    bandwidth are evaluated together.

    Examples
    --------
    >>> import numpy as np
    >>> f, y = np.array([0.9, 0.8]), np.array([1.0, 0.0])
    >>> grids = sample_grids(f, y)
    >>> value, sigma = smooth_ece_from(grids, 1, 0.1)
    >>> float(sigma[0])
    0.1
    """
    rows = np.arange(n_rows)
    if bandwidth is not None:
        return _error_at(grids, rows, bandwidth), np.full(n_rows, bandwidth)

    def too_small(sel: IntArray, sigma: float) -> Any:
        if sigma < _SEARCH_FLOOR:
            return np.ones(sel.shape[0], dtype=bool)
        return sigma < _error_at(grids, sel, sigma)

    start = np.ones(n_rows)
    end = np.zeros(n_rows)
    searching = ~too_small(rows, 1.0)  # relplot stops at once when 1 is already too small
    for _ in range(_SEARCH_STEPS):
        mid = (start + end) / 2
        for sigma in np.unique(mid[searching]):
            sel = np.flatnonzero(searching & (mid == sigma))
            small = too_small(sel, float(sigma))
            end[sel[small]] = sigma
            start[sel[~small]] = sigma
    sigmas = np.where(searching, start, 1.0)
    values = np.empty(n_rows)
    for sigma in np.unique(sigmas):
        sel = np.flatnonzero(sigmas == sigma)
        values[sel] = _error_at(grids, sel, float(sigma))
    return values, sigmas


def sample_grids(f: FloatArray, y: FloatArray) -> Grids:
    """Grid sums of one data set (confidences ``f``, correctness ``y``), for any grid size.

    relplot splits each confidence between its grid points ``j`` and
    ``j + 1`` with weights ``1 - frac`` and ``frac``, ``frac = f (M - 1) - j``.
    Summed over the samples of interval ``j`` that is ``(j + 1) S0 - (M - 1) S1``
    and ``(M - 1) S1 - j S0`` with ``S0``, ``S1`` the interval's sums of
    ``w`` and ``w f``: four ``np.bincount`` passes per grid size, with weights
    computed once (relplot runs ``np.add.at`` four times per evaluation).

    Examples
    --------
    >>> import numpy as np
    >>> res, ones = sample_grids(np.array([0.5]), np.array([1.0]))(3, np.arange(1))
    >>> res.tolist(), ones.tolist()
    ([[0.0, -0.5, 0.0]], [[0.0, 1.0, 0.0]])
    """
    residual = f - y
    weights = (f, residual, residual * f)
    cache: dict[int, tuple[FloatArray, FloatArray]] = {}

    def grids(m: int, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        if m not in cache:
            idx, _ = _split(f, m)
            s0: FloatArray = np.bincount(idx, minlength=m - 1).astype(np.float64)
            s1, r0, r1 = (np.asarray(np.bincount(idx, w, m - 1), np.float64) for w in weights)
            j = np.arange(m - 1, dtype=np.float64)
            grid = np.zeros((2, m))
            pairs: tuple[tuple[FloatArray, FloatArray], ...] = ((r0, r1), (s0, s1))
            for row, (a, b) in enumerate(pairs):
                grid[row, :-1] += (j + 1) * a - (m - 1) * b
                grid[row, 1:] += (m - 1) * b - j * a
            cache[m] = grid[0][None, :], grid[1][None, :]
        res, ones = cache[m]
        pick = np.zeros(rows.shape[0], dtype=np.intp)
        return res[pick], ones[pick]

    return grids


def _cell_grids(f: FloatArray, y: FloatArray, weights: FloatArray) -> Grids:
    """Grid sums of weighted cells: row ``b`` holds ``weights[b, c]`` copies of cell ``c``."""
    residual = f - y
    cache: dict[int, tuple[Any, Any]] = {}

    def grids(m: int, rows: IntArray) -> tuple[FloatArray, FloatArray]:
        if m not in cache:
            idx, frac = _split(f, m)
            c = f.shape[0]
            cols = np.concatenate([idx, idx + 1])
            spread = np.concatenate([1 - frac, frac])
            cells = np.concatenate([np.arange(c), np.arange(c)])
            ones = scipy.sparse.csr_array((spread, (cells, cols)), shape=(c, m))
            res = scipy.sparse.csr_array((spread * residual[cells], (cells, cols)), shape=(c, m))
            cache[m] = res, ones
        res, ones = cache[m]
        w = weights[rows]
        return np.asarray(w @ res, dtype=np.float32), np.asarray(w @ ones, dtype=np.float32)

    return grids


def _bootstrap(
    f: FloatArray,
    y: FloatArray,
    value: float,
    bandwidth: float | None,
    level: float,
    n_bootstrap: int,
    seed: int,
) -> MetricInterval:
    n = f.shape[0]
    cell = np.minimum((f * _CELLS).astype(np.intp), _CELLS - 1) * 2 + (y > 0.5)
    count = np.bincount(cell, minlength=2 * _CELLS)
    keep = np.flatnonzero(count)
    count = count[keep]
    mean_f = np.bincount(cell, f, 2 * _CELLS)[keep] / count
    cell_y = (keep % 2).astype(np.float64)
    rng = np.random.default_rng(seed)
    weights = np.empty((n_bootstrap + 1, keep.shape[0]))
    weights[0] = count  # row 0: the data themselves, as cells
    weights[1:] = rng.multinomial(n, count / n, size=n_bootstrap)
    grids = _cell_grids(mean_f, cell_y, weights)
    if bandwidth is not None:
        values, _ = smooth_ece_from(grids, n_bootstrap + 1, bandwidth)
    else:
        values = np.empty(n_bootstrap + 1)
        first, sigma = smooth_ece_from(grids, 1, None)
        values[0] = first[0]
        values[1:] = _warm_search(grids, np.arange(1, n_bootstrap + 1), float(sigma[0]))
    shifted = values[1:] + (value - values[0])
    return percentile_interval(value, shifted, level)


def _warm_search(grids: Grids, rows: IntArray, sigma0: float) -> FloatArray:
    """smECE of ``rows`` with their bandwidths found from a start at ``sigma0``.

    relplot's bisection returns the smallest ``j / 1024`` at which the bandwidth is no
    longer "too small" (``sigma < smECE(sigma)``), or 1, whenever "too small" holds
    below one threshold and fails above it -- the case the fixed point assumes.
    Resamples have bandwidths near the data's, so each row gallops from
    ``sigma0`` (steps 1, 2, 4, ... of ``1/1024``) until it brackets its threshold, then
    bisects: a handful of evaluations per row instead of eleven.
    """
    top = 2**_SEARCH_STEPS
    n = rows.shape[0]
    lo = np.zeros(n, dtype=np.int64)  # the largest j known too small (0: none)
    hi = np.full(n, top, dtype=np.int64)  # the answer is at most 1 (j = top)
    moved_lo = np.zeros(n, dtype=bool)
    moved_hi = np.zeros(n, dtype=bool)
    step = np.ones(n, dtype=np.int64)
    probe = np.full(n, min(max(round(sigma0 * top), 1), top - 1), dtype=np.int64)
    while True:
        active = hi - lo > 1
        if not active.any():
            break
        for j in np.unique(probe[active]):
            sel = np.flatnonzero(active & (probe == j))
            sigma = float(j) / top
            if sigma < _SEARCH_FLOOR:
                small = np.ones(sel.shape[0], dtype=bool)
            else:
                small = sigma < _error_at(grids, rows[sel], sigma)
            lo[sel[small]] = j
            moved_lo[sel[small]] = True
            hi[sel[~small]] = j
            moved_hi[sel[~small]] = True
        both = moved_lo & moved_hi
        gallop_down = moved_hi & ~moved_lo
        probe = np.where(both, (lo + hi) // 2, np.where(gallop_down, hi - step, lo + step))
        probe = np.clip(probe, lo + 1, np.maximum(hi - 1, lo + 1))
        step *= 2
    values = np.empty(n)
    for j in np.unique(hi):
        sel = np.flatnonzero(hi == j)
        values[sel] = _error_at(grids, rows[sel], float(j) / top)
    return values


def _check_bandwidth(bandwidth: Any) -> float | None:
    if bandwidth is None:
        return None
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float, np.number)):
        raise TypeError(
            f"`bandwidth` must be a number >= {MIN_BANDWIDTH} or None, got {bandwidth!r}."
        )
    value = float(bandwidth)
    if not (np.isfinite(value) and value >= MIN_BANDWIDTH):
        raise ValueError(f"`bandwidth` must be a number >= {MIN_BANDWIDTH} or None, got {value!r}.")
    return value


@overload
def smooth_calibration_error(
    probs: torch.Tensor,
    labels: Any,
    *,
    from_logits: bool = ...,
    bandwidth: float | None = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> torch.Tensor: ...


@overload
def smooth_calibration_error(
    probs: npt.ArrayLike,
    labels: Any,
    *,
    from_logits: bool = ...,
    bandwidth: float | None = ...,
    interval: None = ...,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> float: ...


@overload
def smooth_calibration_error(
    probs: Any,
    labels: Any,
    *,
    from_logits: bool = ...,
    bandwidth: float | None = ...,
    interval: float,
    n_bootstrap: int = ...,
    seed: int = ...,
) -> MetricInterval: ...


def smooth_calibration_error(
    probs: Any,
    labels: Any,
    *,
    from_logits: bool = False,
    bandwidth: float | None = None,
    interval: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Any:
    """Smooth ECE (smECE) of Blasiok and Nakkiran, with its automatic bandwidth.

    Parameters
    ----------
    probs : array_like or torch.Tensor
        ``(n_samples, n_classes)`` probabilities (top-label: confidence is the
        largest probability, correct when the first arg-max is the label), or
        1-D ``P(y = 1)`` (positive class); logits with ``from_logits=True``.
    labels : array_like of int, shape (n_samples,)
        True class indices.
    from_logits : bool, default False
        Apply a stable softmax (sigmoid for 1-D) first.
    bandwidth : float or None, default None
        None: relplot's automatic bandwidth, the fixed point
        ``sigma = smECE(sigma)`` found by bisection (``relplot.smECE``). A
        number ``>= 1e-4``: smECE at that bandwidth (``relplot.smECE_sigma``).
    interval : float or None, default None
        A confidence level in (0, 1), e.g. 0.95, for a percentile-bootstrap
        interval (module docs); None for the value alone.
    n_bootstrap : int, default 1000
        Bootstrap resamples for ``interval``.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    float, torch.Tensor or MetricInterval
        The smECE in [0, 1]; a torch ``probs`` gives a 0-d tensor of its
        floating dtype on its device (its top-label pass and grid sums run on
        the device, and only the grid sums, a few thousand numbers, are read
        back for the bandwidth search). With ``interval``: a
        :class:`~thermoscope.calibration.intervals.MetricInterval` (numpy
        input only: a tensor with ``interval`` is a TypeError).

    Notes
    -----
    With ``K_sigma`` the Gaussian kernel reflected at 0 and 1,
    ``r(t) = sum_i K(t, f_i) (f_i - y_i) / sum_i K(t, f_i)`` and density
    ``d(t) = sum_i K(t, f_i)``, ``smECE_sigma = int |r(t)| d(t) dt / int d(t) dt``,
    evaluated on relplot's grid (module docs).

    Examples
    --------
    >>> from thermoscope.calibration.smooth import smooth_calibration_error
    >>> round(smooth_calibration_error([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 1, 1]), 4)
    0.1658
    >>> round(smooth_calibration_error([0.3, 0.7], [0, 1], bandwidth=0.1), 4)  # relplot's too
    0.2863
    """
    from_logits = check_from_logits(from_logits)
    sigma = _check_bandwidth(bandwidth)
    level, n_boot, seed = check_interval_options(interval, n_bootstrap, seed, probs)
    if is_torch(probs):
        return _torch_smooth_error(probs, labels, from_logits, sigma)
    conf, hit = prepare(probs, labels, from_logits).top_label()
    return top_label_smooth_error(conf, hit, sigma, level, n_boot, seed)


def top_label_smooth_error(
    conf: FloatArray,
    hit: FloatArray,
    bandwidth: float | None = None,
    level: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> Any:
    """smECE (a float, or a MetricInterval with ``level``) of checked float64 confidences.

    Examples
    --------
    >>> import numpy as np
    >>> round(top_label_smooth_error(np.array([0.3, 0.7]), np.array([0.0, 1.0]), 0.1), 4)
    0.2863
    """
    values, _ = smooth_ece_from(sample_grids(conf, hit), 1, bandwidth)
    value = float(values[0])
    if level is None:
        return value
    return _bootstrap(conf, hit, value, bandwidth, level, n_bootstrap, seed)


def _search(too_small: Callable[[float], bool]) -> float:
    """relplot's ``search_param``: the bisection of :func:`smooth_ece_from` for one data set."""
    if too_small(1.0):
        return 1.0
    start, end = 1.0, 0.0
    for _ in range(_SEARCH_STEPS):
        mid = (start + end) / 2
        if too_small(mid):
            end = mid
        else:
            start = mid
    return start


def _torch_smooth_error(probs: Any, labels: Any, from_logits: bool, sigma: float | None) -> Any:
    """The tensor path: every step on the tensor's device, one number read per bisection step.

    The same operations as the numpy path (relplot's grid split with
    ``index_add``, the FFT convolution with ``torch.fft``, the interpolation),
    in float64 on the device; only host-made constants (grid indices, the
    kernel) travel, towards the device.
    """
    import torch

    from thermoscope.calibration import _torch_metrics as native

    batch = native.prepare(probs, labels, from_logits)
    conf, hit = batch.top_label()
    device = conf.device
    wide = torch.float64
    weights = torch.stack([conf - hit.to(wide), torch.ones_like(conf)])
    cache: dict[int, torch.Tensor] = {}

    def grid(m: int) -> torch.Tensor:
        if m not in cache:
            pos = conf * (m - 1)
            idx = pos.to(torch.int64).clamp(0, m - 2)
            frac = pos - idx.to(wide)
            out = torch.zeros((2, m), dtype=wide, device=device)
            out.index_add_(1, idx, (1 - frac) * weights)
            out.index_add_(1, idx + 1, frac * weights)
            cache[m] = out
        return cache[m]

    def error_at(s: float) -> torch.Tensor:
        m = grid_size(s)
        n = scipy.fft.next_fast_len(2 * m - 1, real=True)
        src = torch.as_tensor(_reflected_window(m), device=device)
        buf = torch.zeros((2, n), dtype=wide, device=device)
        buf[:, : src.shape[0]] = grid(m)[:, src]
        ker = torch.as_tensor(_kernel(s, m), dtype=wide, device=device)
        spec = torch.fft.rfft(buf, dim=-1) * torch.fft.rfft(ker, n)
        full = torch.fft.irfft(spec, n, dim=-1)[:, m - 1 : 2 * m - 1]
        idx_h, w_h = _interp_weights(_mesh(s), m)
        idx = torch.as_tensor(idx_h, device=device)
        w = torch.as_tensor(w_h, dtype=wide, device=device)
        both = full[:, idx] * (1 - w) + full[:, idx + 1] * w
        density = both[1] + _DENSITY_FLOOR
        value: torch.Tensor = (torch.abs(both[0] / density) * density).sum() / density.sum()
        return value

    if sigma is None:
        with torch.no_grad():  # the bandwidth is picked, not differentiated through
            sigma = _search(lambda s: s < _SEARCH_FLOOR or s < float(error_at(s)))
    out: torch.Tensor = batch.back(error_at(sigma))
    return out
