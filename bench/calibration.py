"""Benchmark: thermoscope's exact temperature fit and ECE vs the PyTorch recipe and torchmetrics.

Run ``python bench/calibration.py`` (full, about a minute) or ``--quick`` (seconds);
``--ece-only`` skips the temperature fits and times only the ECE (seconds).
For each (N, C) it measures, in one run and on the same data:

- **fit**: `thermoscope.calibration.fit_temperature` (safeguarded Newton on the
  convex NLL in beta = 1/T, to machine precision) against the classic recipe
  of Guo et al. (2017): ``T = nn.Parameter(1.5)``, ``torch.optim.LBFGS([T],
  lr=0.01, max_iter=50)``, one ``step`` on the cross-entropy of
  ``logits / T``. Wall time, final T and final NLL (both evaluated in float64
  by the same function), and the NLL gradient at each answer (0 at the
  optimum; computed by `thermoscope.calibration._nll.nll_derivatives`).
- **ECE**: `thermoscope.calibration.expected_calibration_error` (15 bins, l1,
  float64 accumulation) against torchmetrics'
  ``multiclass_calibration_error`` (float32) on the same float32
  probabilities: time and value.

Synthetic data with a known answer: logits ``z = 3 * N(0, 1)`` in float32 and
labels drawn from ``softmax(z / 2)``, so the NLL-optimal temperature is close
to 2 (exactly 2 in the limit of infinite data).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from thermoscope.calibration import expected_calibration_error, fit_temperature
from thermoscope.calibration._nll import nll_derivatives

SIZES = ((10_000, 10), (100_000, 100), (1_000_000, 10))
QUICK_SIZES = ((10_000, 10), (20_000, 100))


def make_data(n: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 logits and int64 labels drawn from softmax(z / 2)."""
    rng = np.random.default_rng(seed)
    z = (3.0 * rng.standard_normal((n, c))).astype(np.float32)
    zz = z.astype(np.float64) / 2.0
    p = np.exp(zz - zz.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random((n, 1))
    y = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), c - 1).astype(np.int64)
    return z, y


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall seconds over ``repeats`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def lbfgs_recipe(z: Any, y: Any) -> float:
    """The classic recipe: nn.Parameter T = 1.5, LBFGS(lr=0.01, max_iter=50), one step."""
    import torch
    from torch import nn

    temperature = nn.Parameter(torch.ones(1) * 1.5)
    optimizer = torch.optim.LBFGS([temperature], lr=0.01, max_iter=50)
    criterion = nn.CrossEntropyLoss()

    def closure() -> Any:
        optimizer.zero_grad()
        loss = criterion(z / temperature, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(temperature.detach())


def nll_and_grad(z: np.ndarray, y: np.ndarray, t: float) -> tuple[float, float]:
    """Mean NLL at T and its derivative in beta = 1/T, float64 (an independent kernel)."""
    d = nll_derivatives(z, y, beta=1.0 / t)
    return d.nll_sum / d.n, d.grad_sum / d.n


def run(
    sizes: tuple[tuple[int, int], ...], repeats: int, ece_only: bool = False
) -> list[dict[str, Any]]:
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    # Warm up torch and torchmetrics (first-call dispatch and allocator setup)
    # so that no timed call pays one-off costs.
    z0, y0 = make_data(1000, 10)
    if not ece_only:
        lbfgs_recipe(torch.from_numpy(z0), torch.from_numpy(y0))
    multiclass_calibration_error(
        torch.softmax(torch.from_numpy(z0), dim=1), torch.from_numpy(y0), num_classes=10
    )
    fit_temperature(z0, y0)
    expected_calibration_error(np.exp(z0) / np.exp(z0).sum(axis=1, keepdims=True), y0)
    rows = []
    for n, c in sizes:
        z, y = make_data(n, c)
        zt, yt = torch.from_numpy(z), torch.from_numpy(y)
        row: dict[str, Any] = {"shape": (n, c)}
        if not ece_only:
            t_fit, fit = timed(lambda z=z, y=y: fit_temperature(z, y), repeats)
            t_lbfgs, t_torch = timed(
                lambda zt=zt, yt=yt: lbfgs_recipe(zt, yt), 1 if n >= 10**6 else repeats
            )
            nll_ours, grad_ours = nll_and_grad(z, y, fit.temperature)
            nll_lbfgs, grad_lbfgs = nll_and_grad(z, y, t_torch)
            row |= {
                "fit_s": t_fit,
                "lbfgs_s": t_lbfgs,
                "t_ours": fit.temperature,
                "t_lbfgs": t_torch,
                "n_iter": fit.n_iter,
                "nll_ours": nll_ours,
                "nll_lbfgs": nll_lbfgs,
                "grad_ours": grad_ours,
                "grad_lbfgs": grad_lbfgs,
            }

        probs = torch.softmax(zt, dim=1)  # float32, as a model would hand them over
        probs_np = probs.numpy()
        t_ece, ece = timed(
            lambda p=probs_np, y=y: expected_calibration_error(p, y, n_bins=15), repeats
        )
        t_tm, ece_tm = timed(
            lambda p=probs, yt=yt, c=c: multiclass_calibration_error(
                p, yt, num_classes=c, n_bins=15, norm="l1"
            ),
            repeats,
        )
        row |= {"ece_s": t_ece, "tm_s": t_tm, "ece": float(ece), "ece_tm": float(ece_tm)}
        rows.append(row)
        print(f"done {n} x {c}", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    fit = [
        "| (N, C) | thermoscope fit (s) | LBFGS recipe (s) | speedup | T thermoscope | T LBFGS "
        "| NLL thermoscope | NLL LBFGS | dNLL/dbeta thermoscope | dNLL/dbeta LBFGS | passes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ece = [
        "| (N, C) | thermoscope ECE (ms) | torchmetrics ECE (ms) | speedup | ECE thermoscope "
        "| ECE torchmetrics | difference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        n, c = r["shape"]
        if "fit_s" in r:
            fit.append(
                f"| ({n:_}, {c}) | {r['fit_s']:.3f} | {r['lbfgs_s']:.2f} | "
                f"{r['lbfgs_s'] / r['fit_s']:.0f}x | {r['t_ours']:.6f} | {r['t_lbfgs']:.6f} | "
                f"{r['nll_ours']:.9f} | {r['nll_lbfgs']:.9f} | {r['grad_ours']:.1e} | "
                f"{r['grad_lbfgs']:.1e} | {r['n_iter']} |"
            )
        ece.append(
            f"| ({n:_}, {c}) | {1e3 * r['ece_s']:.1f} | {1e3 * r['tm_s']:.1f} | "
            f"{r['tm_s'] / r['ece_s']:.1f}x | {r['ece']:.8f} | {r['ece_tm']:.8f} | "
            f"{abs(r['ece'] - r['ece_tm']):.1e} |"
        )
    tables = [fit, ece] if len(fit) > 2 else [ece]
    return "\n\n".join("\n".join(t) for t in tables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument(
        "--ece-only", action="store_true", help="time only the ECE (no temperature fits)"
    )
    args = parser.parse_args(argv)
    import torch

    sizes = QUICK_SIZES if args.quick else SIZES
    rows = run(sizes, 1 if args.quick else args.repeats, ece_only=args.ece_only)
    print(
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        "median wall time"
    )
    print()
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
