"""Benchmark: smooth ECE, debiased CE and bootstrap intervals vs relplot, uncertainty-calibration.

Run ``python bench/calibration_metrics.py`` (N = 1e6, a few minutes: the
references are slow) or ``--quick`` (N = 1e5). In one run, on the same data
(top-label confidences of a synthetic 10-class model, over-confident by a
temperature of 1.5):

- **smECE**: `smooth_calibration_error` on the probabilities against
  ``relplot.smECE(*relplot.multiclass_logits_to_confidences(probs, labels, True))``
  (relplot 1.0.3: its own top-label reduction), and on a calibrated binary
  model (1-D input, small bandwidth: the search visits several grid sizes).
- **debiased CE**: `debiased_calibration_error` (l2, 15 equal-mass bins,
  top-label) against ``calibration.get_calibration_error(mode="top-label")``
  (uncertainty-calibration 0.1.4).
- **bootstrap, ECE / debiased CE / smECE**: B = 1000 percentile-bootstrap
  intervals against the references' own way of resampling: a loop that draws
  ``N`` indices with replacement and calls the reference metric on them
  (``calibration.bootstrap_uncertainty`` does the same with Python lists and
  is slower still). The reference loops are timed on ``--ref-resamples``
  resamples and scaled to 1000 (marked "extrapolated").

Ratios are reference time / thermoscope time (higher is better for thermoscope),
printed as a markdown table with the values.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from thermoscope.calibration.debiased import debiased_calibration_error
from thermoscope.calibration.metrics import expected_calibration_error
from thermoscope.calibration.smooth import smooth_calibration_error


def make_data(n: int, c: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float64 probabilities softmax(z) with labels drawn from softmax(z / 1.5)."""
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal((n, c))

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p_true = softmax(z / 1.5)
    y = np.minimum((np.cumsum(p_true, axis=1) < rng.random((n, 1))).sum(axis=1), c - 1)
    return softmax(z), y.astype(np.int64)


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Best wall seconds over ``repeats`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _uncertainty_calibration() -> Any:
    """The ``calibration`` module of uncertainty-calibration, not this folder's calibration.py."""
    import importlib

    here = Path(__file__).resolve().parent
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        return importlib.import_module("calibration")
    finally:
        sys.path[:] = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1e5 instead of 1e6")
    parser.add_argument("--n", type=int, help="number of samples (overrides --quick)")
    parser.add_argument("--ref-resamples", type=int, default=3, help="reference resamples timed")
    args = parser.parse_args(argv)

    import relplot

    uc = _uncertainty_calibration()

    n = args.n or (100_000 if args.quick else 1_000_000)
    probs, labels = make_data(n)
    conf = probs.max(axis=1)
    hit = (probs.argmax(axis=1) == labels).astype(np.float64)
    rows: list[tuple[str, float, float, str, str]] = []

    def relplot_top_label() -> float:
        return float(relplot.smECE(*relplot.multiclass_logits_to_confidences(probs, labels, True)))

    t_ours, ours = timed(lambda: smooth_calibration_error(probs, labels), 3)
    t_ref, ref = timed(relplot_top_label, 1)
    rows.append(
        ("smECE, 10 classes", t_ours, t_ref, f"{ours:.6f} / {ref:.6f}", f"{abs(ours - ref):.1e}")
    )
    # A calibrated binary model: smECE near 0, so the bandwidth search goes down to
    # sigma ~ 1e-3 and visits several grid sizes (the hardest case for both).
    rng0 = np.random.default_rng(2)
    f_cal = rng0.uniform(size=n)
    y_cal = (rng0.uniform(size=n) < f_cal).astype(np.int64)
    t_ours, ours = timed(lambda: smooth_calibration_error(f_cal, y_cal), 3)
    t_ref, ref = timed(lambda: relplot.smECE(f_cal, y_cal.astype(np.float64)), 1)
    rows.append(
        (
            "smECE, binary calibrated",
            t_ours,
            t_ref,
            f"{ours:.6f} / {ref:.6f}",
            f"{abs(ours - ref):.1e}",
        )
    )

    t_ours, ours = timed(lambda: debiased_calibration_error(probs, labels), 3)
    t_ref, ref = timed(lambda: uc.get_calibration_error(probs, labels, mode="top-label"), 1)
    rows.append(
        ("debiased CE (l2)", t_ours, t_ref, f"{ours:.6f} / {ref:.6f}", f"{abs(ours - ref):.1e}")
    )

    b = 1000
    k = args.ref_resamples
    rng = np.random.default_rng(1)

    def reference_loop(metric: Callable[[np.ndarray], float]) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            metric(rng.integers(0, n, n))
        return (time.perf_counter() - t0) * b / k

    cases: list[tuple[str, Callable[[], Any], Callable[[np.ndarray], float]]] = [
        (
            "bootstrap B=1000: ECE (15 bins)",
            lambda: expected_calibration_error(probs, labels, interval=0.95, n_bootstrap=b),
            lambda i: uc.get_ece(probs[i], labels[i]),
        ),
        (
            "bootstrap B=1000: debiased CE",
            lambda: debiased_calibration_error(probs, labels, interval=0.95, n_bootstrap=b),
            lambda i: uc.get_calibration_error(probs[i], labels[i], mode="top-label"),
        ),
        (
            "bootstrap B=1000: smECE",
            lambda: smooth_calibration_error(probs, labels, interval=0.95, n_bootstrap=b),
            lambda i: relplot.smECE(conf[i], hit[i]),
        ),
    ]
    for name, ours_fn, ref_metric in cases:
        t_ours, iv = timed(ours_fn, 1)
        t_ref = reference_loop(ref_metric)
        rows.append(
            (
                name,
                t_ours,
                t_ref,
                f"[{iv.low:.5f}, {iv.high:.5f}]",
                f"extrapolated from {k} resamples",
            )
        )

    print(f"N = {n:,} samples, 10 classes (top-label), numpy {np.__version__}\n")
    print("| metric | thermoscope (s) | reference (s) | ratio | values (ours / ref) | note |")
    print("|---|---:|---:|---:|---|---|")
    for name, t_o, t_r, values, note in rows:
        print(f"| {name} | {t_o:.3f} | {t_r:.3f} | {t_r / t_o:.1f}x | {values} | {note} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
