"""Benchmark: NT-Xent forward + backward, thermoscope vs the plain torch formulation.

Run ``python bench/training.py`` (about a minute on 2 cores) or ``--quick``.
Batch N = 4,096 pairs (2N = 8,192 anchors), dimension 256, float32 on the CPU,
T = 0.1 (a number) and a learnable T (a 0-d tensor with a gradient):

- **plain**: ``z = cat(normalize(z1), normalize(z2))``, ``sim = z @ z.T / T``,
  ``sim.masked_fill(eye, -inf)`` (the masked copy), ``F.cross_entropy(sim,
  (arange(2N) + N) % 2N)``, then ``backward``.
- **thermoscope**: ``thermoscope.training.nt_xent_loss(z1, z2, temperature=T)``,
  then ``backward``: row blocks, one (2N, 2N) matrix kept (the probabilities).

Time: median wall time of ``repeats`` forward + backward steps after one warm-up,
in a fresh subprocess per variant. Peak memory: the peak resident set
of another fresh subprocess per variant (Linux ``VmHWM`` in ``/proc/self/status``,
which sees torch's allocations where ``tracemalloc`` does not; ``getrusage``'s
``ru_maxrss`` is the same number but cannot be reset, and importing torch peaks
higher than a small step). The peak is reset (``/proc/self/clear_refs``) once
the inputs exist; the reported number is the peak during one forward + backward
step minus the resident set just before it. glibc returns blocks this large to
the system when freed, so the number is the step's own peak. Both variants' losses and gradients
are checked against each other first (at N = 512, float64).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch
import torch.nn.functional as F

from thermoscope.training import nt_xent_loss

OUT = Path(__file__).resolve().parent / "RESULTS-training.md"


def plain_nt_xent(z1: torch.Tensor, z2: torch.Tensor, t: Any) -> torch.Tensor:
    """The textbook formulation (SimCLR PyTorch ports): F.cross_entropy on the masked matrix."""
    n = z1.shape[0]
    z = torch.cat([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])
    sim = z @ z.T / t
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    labels = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
    return F.cross_entropy(sim, labels)


def inputs(n: int, d: int, learnable: bool, dtype: torch.dtype = torch.float32) -> tuple[Any, ...]:
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    z2 = (z1.detach() + 0.5 * torch.randn(n, d, generator=g, dtype=dtype)).requires_grad_()
    t: Any = torch.tensor(0.1, dtype=dtype, requires_grad=True) if learnable else 0.1
    return z1, z2, t


def step(variant: str, z1: torch.Tensor, z2: torch.Tensor, t: Any) -> torch.Tensor:
    for x in (z1, z2, t):
        if isinstance(x, torch.Tensor):
            x.grad = None
    loss = plain_nt_xent(z1, z2, t) if variant == "plain" else nt_xent_loss(z1, z2, temperature=t)
    loss.backward()
    return loss


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: peak resident)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Reset the peak resident set (VmHWM) to the current one (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def child(variant: str, mode: str, n: int, d: int, learnable: bool, repeats: int) -> None:
    """One measurement in this (fresh) process; prints JSON."""
    z1, z2, t = inputs(n, d, learnable)
    if mode == "memory":
        reset_peak()
        before = status_kib("VmRSS")
        step(variant, z1, z2, t)
        print(json.dumps({"peak_mb": (status_kib("VmHWM") - before) / 1024}))
        return
    step(variant, z1, z2, t)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(variant, z1, z2, t)
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_s": statistics.median(times), "times": times}))


def run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def check_agreement() -> float:
    """Largest difference of loss and gradients between the two variants (N = 512, float64)."""
    worst = 0.0
    for learnable in (False, True):
        a = inputs(512, 64, learnable, torch.float64)
        b = inputs(512, 64, learnable, torch.float64)
        la, lb = step("plain", *a), step("thermoscope", *b)
        worst = max(worst, abs(la.tolist() - lb.tolist()))
        for x, y in zip(a, b, strict=True):
            if isinstance(x, torch.Tensor):
                worst = max(worst, float((x.grad - y.grad).abs().max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1,024 and 3 repeats")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, mode, n, d, learnable, repeats = args.child
        child(variant, mode, int(n), int(d), learnable == "1", int(repeats))
        return
    n, d = (1024, 256) if args.quick else (4096, 256)
    repeats = 3 if args.quick else args.repeats
    diff = check_agreement()
    rows = []
    for learnable in (False, True):
        res = {}
        for variant in ("plain", "thermoscope"):
            flag = "1" if learnable else "0"
            mem = run_child(variant, "memory", str(n), str(d), flag, "1")
            tim = run_child(variant, "time", str(n), str(d), flag, str(repeats))
            res[variant] = (tim["median_s"], mem["peak_mb"])
        (tp, mp), (tt, mt) = res["plain"], res["thermoscope"]
        label = "learnable (0-d tensor)" if learnable else "0.1 (number)"
        rows.append(
            f"| {label} | {tp:.3f} | {tt:.3f} | {tt / tp:.2f}x | {mp:.0f} | {mt:.0f} | "
            f"{mt / mp:.2f}x |"
        )
    header = (
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), {platform.machine()}, "
        f"N = {n} pairs (2N = {2 * n} anchors), D = {d}, float32, CPU; median of {repeats} "
        f"forward + backward steps; peak = rise of the resident set (VmHWM) during one step.\n"
        f"Agreement (N = 512, float64): max |difference| of loss and gradients = {diff:.1e}.\n\n"
        "| T | plain torch (s) | thermoscope (s) | time ratio | plain peak (MB) | "
        "thermoscope peak (MB) | memory ratio |\n|---|---:|---:|---:|---:|---:|---:|\n"
    )
    table = header + "\n".join(rows) + "\n"
    print(table)
    if not args.quick:
        stamp = time.strftime("%Y-%m-%d %H:%M")
        text = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        marker = "<!-- runs -->\n"
        if marker not in text:
            text = (
                "# Training benchmark: NT-Xent forward + backward, thermoscope vs plain torch\n\n"
                "Produced by `python bench/training.py` (see its docstring for the method).\n"
                "Target: within 1.3x of plain torch in time, less peak memory.\n\n" + marker
            )
        text = text.replace(marker, marker + f"\n## Run {stamp}\n\n{table}", 1)
        OUT.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
