"""Benchmark: fit time of the calibrators beside temperature scaling, N = 1e4..1e5, K = 10..100.

Run ``python bench/calibrators.py`` (full grid) or ``--quick`` (seconds). For each
(N, K) and each calibrator it reports the wall and CPU time (all threads) of
one ``fit``, the Newton
iterations, the final gradient norm (certificate of the optimum, where the
calibrator has one) and the NLL on held-out data before and after calibration.

Synthetic data with a known miscalibration: logits ``z = 3 * N(0, 1)`` (float64)
and labels drawn from ``softmax(z / 2 + bias)`` with a class bias from -0.5 to
0.5, so temperature scaling fixes the scale and the affine calibrators the bias.
The held-out set is drawn the same way (other seed). Machine load shows in the
numbers: report the machine with them.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from thermoscope.calibration.dirichlet import DirichletCalibrator
from thermoscope.calibration.ensemble import EnsembleTemperatureScaler
from thermoscope.calibration.linear_scalers import MatrixScaler, VectorScaler
from thermoscope.calibration.scaler import TemperatureScaler

SIZES = ((10_000, 10), (100_000, 10), (10_000, 100), (100_000, 100))
QUICK_SIZES = ((10_000, 10), (10_000, 30))


def make_data(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 logits and int64 labels from softmax(z / 2 + bias)."""
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal((n, k))
    a = z / 2.0 + np.linspace(-0.5, 0.5, k)
    p = np.exp(a - a.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.minimum((np.cumsum(p, axis=1) < rng.random((n, 1))).sum(axis=1), k - 1)
    return z, y.astype(np.int64)


def nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(p[np.arange(y.size), y], 1e-300))))


def calibrators() -> list[tuple[str, Any]]:
    return [
        ("temperature", TemperatureScaler()),
        ("ets (mse)", EnsembleTemperatureScaler()),
        ("ets (nll)", EnsembleTemperatureScaler(loss="nll")),
        ("vector", VectorScaler()),
        ("matrix odir 1e-2", MatrixScaler(reg_lambda=1e-2, reg_mu=1e-2)),
        ("dirichlet odir 1e-2", DirichletCalibrator(reg_lambda=1e-2, reg_mu=1e-2)),
    ]


def run(sizes: tuple[tuple[int, int], ...], skip_matrix_above: int) -> None:
    print(
        f"{'N':>8} {'K':>4}  {'calibrator':<20} {'fit s':>8} {'cpu s':>8} {'iter':>5} "
        f"{'|grad|':>9} {'NLL before':>10} {'NLL after':>10}"
    )
    for n, k in sizes:
        z, y = make_data(n, k, 0)
        zt, yt = make_data(n, k, 1)
        e = np.exp(zt - zt.max(axis=1, keepdims=True))
        before = nll(e / e.sum(axis=1, keepdims=True), yt)
        for name, est in calibrators():
            if k * (k + 1) > skip_matrix_above and name.startswith(("matrix", "dirichlet")):
                print(f"{n:>8} {k:>4}  {name:<20} {'skipped (--max-params)':>30}")
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0, c0 = time.perf_counter(), time.process_time()
                est.fit(z, y)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            grad = getattr(est, "gradient_norm_", float("nan"))
            n_iter = getattr(est, "n_iter_", 0)
            after = nll(est.predict_proba(zt), yt)
            note = f"  warned: {type(caught[0].message).__name__}" if caught else ""
            print(
                f"{n:>8} {k:>4}  {name:<20} {seconds:>8.3f} {cpu:>8.3f} {n_iter:>5} "
                f"{grad:>9.1e} {before:>10.4f} {after:>10.4f}{note}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two small sizes (seconds)")
    parser.add_argument(
        "--max-params",
        type=int,
        default=20_000,
        help="skip matrix and Dirichlet fits with more than this many parameters K (K + 1)",
    )
    parser.add_argument(
        "--sizes", nargs="+", metavar="N,K", help="sizes to run instead, e.g. 100000,10"
    )
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else SIZES
    if args.sizes:
        sizes = tuple((int(a), int(b)) for a, b in (item.split(",") for item in args.sizes))
    run(sizes, args.max_params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
