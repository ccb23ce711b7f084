"""Confidence intervals for the calibration metrics: the result type, the checks, the resampling.

Two kinds of interval, named in :attr:`MetricInterval.method`:

``"normal"``
    For a metric that is the mean of independent per-sample terms (the Brier
    score, the negative log-likelihood): ``mean +- z * sd / sqrt(n)``, with
    ``sd`` the sample standard deviation (``ddof=1``) and ``z`` the standard
    normal quantile of ``(1 + level) / 2``. No resampling, no seed.
``"bootstrap"``
    The percentile bootstrap: the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles (numpy's default linear rule) of the metric over
    ``n_bootstrap`` resamples of the data, drawn with ``seed``.

The bootstrap is vectorised through *cells*. A binned metric depends on the
data only through per-bin counts, confidence sums and correct sums. Each
sample falls in one cell ``(bin, correct)``; a bootstrap resample of the
``n`` samples gives the cells multinomial counts, ``Multinomial(n, n_c / n)``
(exact, all replicates drawn at once), and the correct sum of a bin is then
the count of its "correct" cell (exact). The confidence sum of ``m`` draws
from a cell is drawn from its normal law with the exact conditional mean and
variance, ``m * mean_c`` and ``m * var_c``: within a bin of width ``1/15``
that variance is below ``1/900`` of a label's, so this second-order term is
all the approximation there is. The bins themselves are those of the full
data (for equal-mass bins too: the interval is conditional on the edges).
The smooth ECE uses finer cells, see
:mod:`thermoscope.calibration.smooth`.

Examples
--------
>>> import numpy as np
>>> from thermoscope.calibration.intervals import normal_interval
>>> iv = normal_interval(np.array([0.0, 1.0, 0.0, 1.0]), 0.95)
>>> iv.method, round(iv.low, 3), round(iv.high, 3)
('normal', -0.066, 1.066)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import ndtri

from thermoscope._backend import is_torch
from thermoscope._typing import FloatArray, IntArray
from thermoscope._validation import check_fraction, check_integer, check_seed
from thermoscope.calibration._binning import BinSums, bin_index, error_from_sums

__all__ = [
    "MAX_BOOTSTRAP",
    "IntervalMethod",
    "MetricInterval",
    "binned_interval",
    "bootstrap_bin_sums",
    "cell_stats",
    "check_interval_options",
    "normal_interval",
    "percentile_interval",
]

IntervalMethod = Literal["normal", "bootstrap"]

#: More resamples than this add nothing a percentile can show and cost memory (B x cells).
MAX_BOOTSTRAP = 100_000


@dataclass(frozen=True)
class MetricInterval:
    """A metric's value with a confidence interval.

    Attributes
    ----------
    value : float
        The metric on the data (the same number as without ``interval``).
    low, high : float
        The interval's bounds.
    level : float
        Its confidence level, e.g. 0.95.
    method : {"normal", "bootstrap"}
        ``"normal"``: mean of iid terms with the normal quantile;
        ``"bootstrap"``: percentile bootstrap (module docs).

    ``float(interval)`` is the value.

    Examples
    --------
    >>> iv = MetricInterval(0.1, 0.05, 0.2, 0.95, "bootstrap")
    >>> float(iv), iv.low <= iv.value <= iv.high
    (0.1, True)
    """

    value: float
    low: float
    high: float
    level: float
    method: IntervalMethod

    def __float__(self) -> float:
        return float(self.value)


def check_interval_options(
    interval: Any, n_bootstrap: Any, seed: Any, probs: Any
) -> tuple[float | None, int, int]:
    """Validate ``interval`` (a level in (0, 1) or None), ``n_bootstrap`` and ``seed``.

    Intervals are computed on the host from numpy input; a torch ``probs``
    with an interval is refused here, naming ``interval``.

    Examples
    --------
    >>> check_interval_options(0.9, 200, 3, [0.5])
    (0.9, 200, 3)
    >>> check_interval_options(None, 1000, 0, [0.5])
    (None, 1000, 0)
    """
    n_boot = int(check_integer(n_bootstrap, "n_bootstrap", minimum=1, maximum=MAX_BOOTSTRAP))
    seed = check_seed(seed)
    if interval is None:
        return None, n_boot, seed
    if isinstance(interval, bool) or np.ndim(interval) != 0:
        raise TypeError(f"`interval` must be a number in (0, 1) or None, got {interval!r}.")
    level = float(check_fraction(interval, "interval", high_open=True))
    if is_torch(probs):
        raise TypeError(
            "`interval` must be None for torch tensors: intervals are computed on the host "
            "from numpy arrays (pass the arrays as numpy, or leave `interval` unset)."
        )
    return level, n_boot, seed


def normal_interval(terms: FloatArray, level: float) -> MetricInterval:
    """The normal interval of the mean of iid per-sample ``terms``.

    Non-finite terms (an infinite log-loss) give bounds equal to the value;
    a single sample gives NaN bounds (there is no spread to estimate).

    Examples
    --------
    >>> import numpy as np
    >>> normal_interval(np.array([0.5, 0.5, 0.5]), 0.9).high
    0.5
    """
    n = terms.shape[0]
    value = float(np.mean(terms))
    if not np.isfinite(value):
        return MetricInterval(value, value, value, level, "normal")
    if n < 2:
        return MetricInterval(value, float("nan"), float("nan"), level, "normal")
    half = float(ndtri(0.5 + level / 2)) * float(np.std(terms, ddof=1)) / float(np.sqrt(n))
    return MetricInterval(value, value - half, value + half, level, "normal")


def percentile_interval(value: float, replicates: FloatArray, level: float) -> MetricInterval:
    """The percentile-bootstrap interval of ``value`` from its bootstrap ``replicates``.

    Examples
    --------
    >>> import numpy as np
    >>> iv = percentile_interval(0.5, np.linspace(0.0, 1.0, 101), 0.9)
    >>> round(iv.low, 6), round(iv.high, 6)
    (0.05, 0.95)
    """
    low, high = np.quantile(replicates, [0.5 - level / 2, 0.5 + level / 2])
    return MetricInterval(float(value), float(low), float(high), level, "bootstrap")


@dataclass(frozen=True, eq=False)
class CellStats:
    """Per-cell count, confidence mean and variance, and each cell's bin and correctness."""

    count: IntArray
    mean: FloatArray
    var: FloatArray
    bin: IntArray
    hit: FloatArray


def cell_stats(idx: IntArray, conf: FloatArray, hit: Any, n_bins: int) -> CellStats:
    """The non-empty cells ``(bin, correct)`` of binned samples.

    Examples
    --------
    >>> import numpy as np
    >>> s = cell_stats(np.array([0, 0, 1]), np.array([0.2, 0.4, 0.8]), np.array([1, 0, 1]), 2)
    >>> s.count.tolist(), s.bin.tolist(), s.hit.tolist()
    ([1, 1, 1], [0, 0, 1], [0.0, 1.0, 1.0])
    """
    key = idx * 2 + np.asarray(hit, dtype=np.intp)
    size = 2 * n_bins
    count = np.bincount(key, minlength=size)
    total = np.bincount(key, weights=conf, minlength=size)
    keep = np.flatnonzero(count)
    count = count[keep]
    mean = total[keep] / count
    # Two passes (mean first) keep the variance accurate for nearly equal confidences.
    dev = conf - (total / np.maximum(np.bincount(key, minlength=size), 1))[key]
    var = np.bincount(key, weights=dev * dev, minlength=size)[keep] / count
    return CellStats(count, mean, var, keep // 2, (keep % 2).astype(np.float64))


def bootstrap_bin_sums(
    cells: CellStats, n_bins: int, n_bootstrap: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-bin (count, confidence sum, correct sum) of ``n_bootstrap`` resamples, ``(B, n_bins)``.

    Examples
    --------
    >>> import numpy as np
    >>> s = cell_stats(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]), np.array([0, 1, 1]), 2)
    >>> count, conf, hit = bootstrap_bin_sums(s, 2, 5, np.random.default_rng(0))
    >>> count.shape, bool((count.sum(axis=1) == 3).all()), bool((hit <= count).all())
    ((5, 2), True, True)
    """
    n = int(cells.count.sum())
    m = rng.multinomial(n, cells.count / n, size=n_bootstrap).astype(np.float64)
    noise = rng.standard_normal(m.shape)
    conf_sums = m * cells.mean + np.sqrt(m * cells.var) * noise
    to_bin = np.zeros((cells.count.shape[0], n_bins))
    to_bin[np.arange(cells.count.shape[0]), cells.bin] = 1.0
    return m @ to_bin, conf_sums @ to_bin, (m * cells.hit) @ to_bin


def binned_interval(
    conf: Any,
    hit: Any,
    edges: FloatArray,
    norm: str,
    value: float,
    level: float,
    n_bootstrap: int,
    seed: int,
) -> MetricInterval:
    """Percentile-bootstrap interval of a top-label binned error (``norm`` l1, l2 or max).

    ``edges`` are the data's own; resamples keep them (module docs).

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.calibration._binning import uniform_edges
    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(0.5, 1.0, 500)
    >>> hit = rng.uniform(size=500) < conf
    >>> iv = binned_interval(conf, hit, uniform_edges(10), "l1", 0.05, 0.9, 200, 0)
    >>> iv.method, iv.low < iv.high
    ('bootstrap', True)
    """
    conf64 = np.asarray(conf, dtype=np.float64)
    n_bins = edges.shape[0] - 1
    cells = cell_stats(bin_index(conf64, edges), conf64, hit, n_bins)
    count, conf_sum, hit_sum = bootstrap_bin_sums(
        cells, n_bins, n_bootstrap, np.random.default_rng(seed)
    )
    replicates = error_from_sums(BinSums(count, conf_sum, hit_sum), norm)
    return percentile_interval(value, replicates, level)
