"""Streaming calibration metrics: fixed memory, any number of samples, mergeable.

Every top-label metric reduces to per-bin sums (count, confidence sum, correct
sum) plus the summed NLL, the summed Brier loss and the number correct, so a
:class:`CalibrationAccumulator` holds ``3 * n_bins + 4`` numbers whatever the
size of the data. Chunks can arrive in any order and accumulators built on
different machines merge by adding their sums; the result equals the
in-memory :func:`~thermoscope.calibration.metrics.calibration_summary` up to
float64 summation order (integer counts are exact).

Class-wise calibration error (Kull et al., 2019) streams the same way with
``classwise=True``: each class ``c`` has its own bins of ``p_c`` against
``[y == c]``, so the state grows to ``3 * n_classes * n_bins`` numbers (for a
50,000-token vocabulary and 15 bins, 18 MB), still independent of the number
of samples.

Equal-mass (``"quantile"``) bins are refused, by design: their edges are
percentiles of *all* confidences, and an exact percentile needs every value
(or one selection pass over the data per bit of precision), which is not
fixed memory. A quantile sketch would make the edges, and so the metric,
approximate. For them, compute the confidences in a first pass (``N`` floats,
or ``N * n_classes`` class-wise) and call the in-memory functions, or use
Dask (:mod:`thermoscope.calibration.dask`), which does exactly that.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from thermoscope._arrays import to_numpy
from thermoscope._backend import is_torch
from thermoscope._progress import progress_bar
from thermoscope._typing import Array
from thermoscope.calibration._binning import (
    BinSums,
    classwise_sums,
    error_from_sums,
    uniform_edges,
)
from thermoscope.calibration._chunks import chunk_state
from thermoscope.calibration._inputs import (
    NORMS,
    STRATEGIES,
    check_choice,
    check_from_logits,
    check_n_bins,
    check_scaling_temperature,
    prepare,
)
from thermoscope.calibration._results import CalibrationSummary

__all__ = ["CalibrationAccumulator", "accumulate_npy"]


def _check_temperature(temperature: Any, from_logits: bool) -> float:
    t = check_scaling_temperature(temperature, from_logits, None)
    if not isinstance(t, float):
        raise TypeError(f"`temperature` must be a finite number > 0, got {temperature!r}.")
    return t


def _check_classwise(classwise: Any) -> bool:
    if not isinstance(classwise, (bool, np.bool_)):
        raise TypeError(f"`classwise` must be True or False, got {classwise!r}.")
    return bool(classwise)


def _classwise_chunk(
    probs: Any, labels: Any, n_bins: int, from_logits: bool, temperature: float
) -> BinSums:
    """Per-class per-bin sums ``(n_classes, n_bins)`` of one chunk, as the in-memory metric bins.

    A tensor chunk is binned on its device and only the sums come to the host,
    in one transfer.
    """
    if not is_torch(probs):
        batch = prepare(probs, labels, from_logits, temperature)
        return classwise_sums(batch.class_probs(), batch.labels, n_bins, "uniform")
    import torch

    from thermoscope.calibration import _torch_metrics as native

    sums = native.classwise_sums(
        native.prepare(probs, labels, from_logits, temperature), n_bins, "uniform"
    )
    packed = torch.stack([sums.count.to(native.WIDE), sums.conf, sums.hit])
    host, _ = to_numpy(packed, "sums")
    return BinSums(host[0].astype(np.int64), host[1].copy(), host[2].copy())


class CalibrationAccumulator:
    """Top-label calibration metrics over data that arrives in chunks.

    Parameters
    ----------
    n_bins : int, default 15
        Number of equal-width bins (edges ``k / n_bins``, see
        :mod:`thermoscope.calibration.metrics` for the edge convention).
    n_classes : int or None, default None
        Expected number of classes (columns); ``None`` takes it from the first
        chunk. Every later chunk must match. 1-D (binary ``P(y = 1)``) chunks
        are allowed when it is ``None`` or 2.
    strategy : {"uniform"}, default "uniform"
        Only equal-width bins stream exactly; ``"quantile"`` raises a
        ValueError that says what to do instead.
    from_logits : bool, default False
        Chunks hold logits (log-odds for 1-D) instead of probabilities.
    classwise : bool, default False
        Also keep per-class bin sums, for the class-wise calibration error
        (``calibration_error(classwise=True)``). Off by default: it costs a
        binning pass over every entry of each chunk, not only its maxima.

    Notes
    -----
    Memory is ``O(n_bins)`` whatever the number of samples
    (``O(n_classes * n_bins)`` with ``classwise=True``); each chunk is
    validated exactly like the in-memory functions' input.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.calibration import CalibrationAccumulator
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> labels = np.array([0, 1, 1, 1])
    >>> acc = CalibrationAccumulator(n_bins=5)
    >>> acc.update(probs[:3], labels[:3]).update(probs[3:], labels[3:]).n_samples
    4
    >>> s = acc.compute()
    >>> round(s.ece, 4), s.accuracy
    (0.25, 0.5)
    """

    def __init__(
        self,
        *,
        n_bins: int = 15,
        n_classes: int | None = None,
        strategy: str = "uniform",
        from_logits: bool = False,
        classwise: bool = False,
    ) -> None:
        self.n_bins = check_n_bins(n_bins)
        check_choice(strategy, "strategy", STRATEGIES)
        if strategy != "uniform":
            raise ValueError(
                "`strategy` must be 'uniform' for streaming (equal-mass bin edges are "
                "percentiles of all the data, unknown until the end); compute the "
                f"confidences first and use the in-memory metrics, got {strategy!r}."
            )
        if n_classes is not None and (
            isinstance(n_classes, bool)
            or not isinstance(n_classes, (int, np.integer))
            or n_classes < 2
        ):
            raise ValueError(f"`n_classes` must be None or an integer >= 2, got {n_classes!r}.")
        self.n_classes = None if n_classes is None else int(n_classes)
        self.strategy = strategy
        self.from_logits = check_from_logits(from_logits)
        self.classwise = _check_classwise(classwise)
        self._edges = uniform_edges(self.n_bins)
        self._class_sums: BinSums | None = None  # (n_classes, n_bins), from the first chunk
        self._sums = BinSums(
            np.zeros(self.n_bins, dtype=np.int64), np.zeros(self.n_bins), np.zeros(self.n_bins)
        )
        self._n = 0
        self._correct = 0
        self._nll = 0.0
        self._brier = 0.0
        self._binary: bool | None = None

    @property
    def n_samples(self) -> int:
        """Number of samples seen so far."""
        return self._n

    def __repr__(self) -> str:
        return (
            f"CalibrationAccumulator(n_bins={self.n_bins}, n_classes={self.n_classes}, "
            f"from_logits={self.from_logits}, classwise={self.classwise}, n_samples={self._n})"
        )

    def _check_kind(self, binary: bool, n_classes: int) -> None:
        if self._binary is not None and binary != self._binary:
            had = "1-D (binary)" if self._binary else "2-D"
            got = "1-D (binary)" if binary else "2-D"
            raise ValueError(f"`probs` must be {had} like the earlier chunks, got a {got} chunk.")
        if self.n_classes is not None and n_classes != self.n_classes:
            raise ValueError(
                f"`probs` must have n_classes={self.n_classes} columns, got {n_classes}."
            )

    def update(
        self, probs: Any, labels: Any, *, temperature: float = 1.0
    ) -> CalibrationAccumulator:
        """Add one chunk of probabilities (or logits) and labels; return ``self``.

        Parameters
        ----------
        probs : array_like or torch.Tensor
            ``(n, n_classes)`` probabilities or logits, or 1-D binary input.
            A tensor chunk is validated and reduced to per-bin sums on its
            device; only those ``3 * n_bins + 3`` numbers come to the host,
            where the accumulator keeps its float64 state.
        labels : array_like of int, shape (n,)
        temperature : float, default 1.0
            Divide the logits by this first (only with ``from_logits=True``):
            streams the metrics of a temperature-scaled model.

        Examples
        --------
        >>> from thermoscope.calibration import CalibrationAccumulator
        >>> acc = CalibrationAccumulator(n_bins=2, from_logits=True)
        >>> round(acc.update([[2.0, 0.0]], [0], temperature=2.0).compute().nll, 4)
        0.3133
        """
        t = _check_temperature(temperature, self.from_logits)
        sums, n, correct, nll, brier, binary, k = chunk_state(
            probs, labels, self._edges, self.from_logits, t
        )
        self._check_kind(binary, k)
        class_sums = None
        if self.classwise:
            class_sums = _classwise_chunk(probs, labels, self.n_bins, self.from_logits, t)
        self._add(sums, n, correct, nll, brier, binary, k, class_sums)
        return self

    def _add(
        self,
        sums: BinSums,
        n: int,
        correct: int,
        nll: float,
        brier: float,
        binary: bool,
        k: int,
        class_sums: BinSums | None,
    ) -> None:
        self._sums = self._sums + sums
        if class_sums is not None:
            self._class_sums = (
                class_sums if self._class_sums is None else self._class_sums + class_sums
            )
        self._n += n
        self._correct += correct
        self._nll += nll
        self._brier += brier
        self._binary = binary
        if self.n_classes is None and not binary:
            self.n_classes = k

    def merge(self, other: CalibrationAccumulator) -> CalibrationAccumulator:
        """Add another accumulator's sums to this one (in place); return ``self``.

        Examples
        --------
        >>> from thermoscope.calibration import CalibrationAccumulator
        >>> a = CalibrationAccumulator(n_bins=4).update([[0.9, 0.1]], [0])
        >>> b = CalibrationAccumulator(n_bins=4).update([[0.3, 0.7]], [0])
        >>> round(a.merge(b).compute().ece, 4)
        0.4
        """
        if not isinstance(other, CalibrationAccumulator):
            raise TypeError(
                f"`other` must be a CalibrationAccumulator, got {type(other).__name__}."
            )
        mine = (self.n_bins, self.from_logits, self.classwise)
        theirs = (other.n_bins, other.from_logits, other.classwise)
        if theirs != mine:
            raise ValueError(
                f"`other` must have n_bins={self.n_bins} and from_logits={self.from_logits} "
                f"(and classwise={self.classwise}), got n_bins={other.n_bins} and "
                f"from_logits={other.from_logits} (and classwise={other.classwise})."
            )
        if other._n == 0:
            return self
        assert other._binary is not None
        k = 2 if other._binary else int(other.n_classes or 0)
        self._check_kind(other._binary, k)
        self._add(
            other._sums,
            other._n,
            other._correct,
            other._nll,
            other._brier,
            other._binary,
            k,
            other._class_sums,
        )
        return self

    def compute(self) -> CalibrationSummary:
        """Accuracy, ECE (l1, l2), MCE, NLL, Brier and the reliability curve so far.

        Raises
        ------
        ValueError
            If no sample has been added.

        Examples
        --------
        >>> acc = CalibrationAccumulator(n_bins=2)
        >>> acc = acc.update([[0.9, 0.1], [0.2, 0.8]], [0, 0])
        >>> s = acc.compute()
        >>> s.n_samples, s.accuracy
        (2, 0.5)
        """
        if self._n == 0:
            raise ValueError(
                "`CalibrationAccumulator` must have seen at least one sample before "
                "compute(), got 0; call update() first."
            )
        return CalibrationSummary.from_sums(
            self._sums, self._edges, self._n, self._correct, self._nll, self._brier
        )

    def calibration_error(self, *, norm: str = "l1", classwise: bool = False) -> float:
        """The calibration error so far: top-label, or class-wise (``classwise=True``).

        Equal to :func:`~thermoscope.calibration.metrics.expected_calibration_error`
        on all the chunks at once with the same ``n_bins``, ``norm`` and
        ``classwise``, up to float64 summation order (bin counts are exact).

        Parameters
        ----------
        norm : {"l1", "l2", "max"}, default "l1"
        classwise : bool, default False
            The mean over classes of each class's error (Kull et al., 2019);
            needs an accumulator built with ``classwise=True``.

        Examples
        --------
        >>> import numpy as np
        >>> acc = CalibrationAccumulator(n_bins=2, classwise=True)
        >>> acc = acc.update([[0.9, 0.1]], [0]).update([[0.2, 0.8]], [0])
        >>> round(acc.calibration_error(), 4), round(acc.calibration_error(classwise=True), 4)
        (0.35, 0.45)
        """
        check_choice(norm, "norm", NORMS)
        classwise = _check_classwise(classwise)
        if self._n == 0:
            raise ValueError(
                "`CalibrationAccumulator` must have seen at least one sample before "
                "calibration_error(), got 0; call update() first."
            )
        if not classwise:
            return float(error_from_sums(self._sums, norm))
        if self._class_sums is None:
            raise ValueError(
                "`classwise` must be False for an accumulator built without class-wise "
                "sums, got True; build it with CalibrationAccumulator(classwise=True)."
            )
        return float(np.mean(error_from_sums(self._class_sums, norm)))


def _load_npy(path: Any, name: str) -> Array:
    try:
        arr = np.load(os.fspath(path), mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(
            f"`{name}` must be an existing .npy file, got {os.fspath(path)!r}."
        ) from None
    except (OSError, EOFError) as exc:
        raise ValueError(
            f"`{name}` must be a readable .npy file, got {os.fspath(path)!r}: {exc}"
        ) from None
    except ValueError as exc:
        raise ValueError(
            f"`{name}` must be a .npy file of numbers (loaded with allow_pickle=False), "
            f"got {os.fspath(path)!r}: {exc}"
        ) from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(
            f"`{name}` must be a .npy file holding one array, got {os.fspath(path)!r}."
        )
    if arr.dtype.kind not in "iuf":  # booleans are not numbers (as in memory)
        raise TypeError(f"`{name}` must hold a numeric array, got dtype {arr.dtype}.")
    return arr


def accumulate_npy(
    path_probs: str | os.PathLike[str],
    path_labels: str | os.PathLike[str],
    *,
    n_bins: int = 15,
    n_classes: int | None = None,
    from_logits: bool = False,
    temperature: float = 1.0,
    chunk_size: int = 65_536,
    progress: bool = True,
) -> CalibrationAccumulator:
    """Stream two ``.npy`` files, possibly larger than memory, through an accumulator.

    Both files are memory-mapped (``np.load(mmap_mode="r",
    allow_pickle=False)``) and read ``chunk_size`` rows at a time, so memory
    stays ``O(chunk_size * n_classes)``.

    Parameters
    ----------
    path_probs : path
        ``.npy`` with ``(N, n_classes)`` probabilities or logits, or 1-D
        binary input.
    path_labels : path
        ``.npy`` with ``N`` integer labels.
    n_bins, n_classes, from_logits
        As for :class:`CalibrationAccumulator`.
    temperature : float, default 1.0
        Divide each chunk of logits by this first (``from_logits=True`` only).
    chunk_size : int, default 65536
        Rows per chunk.
    progress : bool, default True
        Show a tqdm progress bar on stderr (only on a terminal, and only when
        tqdm is installed).

    Returns
    -------
    CalibrationAccumulator
        Call ``.compute()`` for the metrics; ``.merge()`` with others.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from thermoscope.calibration import accumulate_npy
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "p.npy"), np.array([[0.9, 0.1], [0.3, 0.7]]))
    >>> np.save(os.path.join(d, "y.npy"), np.array([0, 0]))
    >>> acc = accumulate_npy(os.path.join(d, "p.npy"), os.path.join(d, "y.npy"),
    ...                      n_bins=4, chunk_size=1, progress=False)
    >>> round(acc.compute().ece, 4)
    0.4
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"`chunk_size` must be an integer >= 1, got {chunk_size!r}.")
    if chunk_size < 1:
        raise ValueError(f"`chunk_size` must be an integer >= 1, got {chunk_size}.")
    probs = _load_npy(path_probs, "path_probs")
    labels = _load_npy(path_labels, "path_labels")
    if probs.ndim == 0 or labels.ndim != 1 or labels.shape[0] != probs.shape[0]:
        raise ValueError(
            f"`path_labels` must hold shape ({probs.shape[0] if probs.ndim else '?'},) to match "
            f"`path_probs` of shape {probs.shape}, got shape {labels.shape}."
        )
    if probs.shape[0] == 0:
        raise ValueError(f"`path_probs` must not be empty, got shape {probs.shape}.")
    acc = CalibrationAccumulator(n_bins=n_bins, n_classes=n_classes, from_logits=from_logits)
    _check_temperature(temperature, acc.from_logits)
    n = probs.shape[0]
    bar = progress_bar(n, desc="calibration", unit="sample", enabled=progress)
    try:
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            # np.asarray copies only this chunk out of the memory map.
            acc.update(
                np.asarray(probs[start:stop]),
                np.asarray(labels[start:stop]),
                temperature=temperature,
            )
            bar.update(stop - start)
    finally:
        bar.close()
    return acc
