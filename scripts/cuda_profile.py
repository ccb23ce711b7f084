"""Where a Sampler call's time goes on a device: kernels, launches and host waits.

Run on a machine with a GPU (``PYTHONPATH=src python scripts/cuda_profile.py``;
``DEVICE=cpu`` dry-runs it). For each configuration of ``bench/sampling.py``
at 32 x 128256 it prints the wall time per call, the summed kernel time, the
number of kernels launched, and every host synchronisation with the line of
thermoscope that caused it; transformers' warper chain is shown beside it.
"""

from __future__ import annotations

import collections
import functools
import os
import statistics
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from sampling import CONFIGS, make_logits, transformers_chain
from thermoscope.sampling import Sampler, _fused

DEVICE = torch.device(os.environ.get("DEVICE", "cuda"))
CUDA = DEVICE.type == "cuda"


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def wall_ms(fn, repeats: int = 30) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def kernels(fn) -> tuple[int, float, list[tuple[str, float]]]:
    """Kernels launched by one call, their summed time (ms) and the costliest five.

    The five host-side calls with the most self time (launches, copies, waits)
    follow the kernels in the list.
    """
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if CUDA else [])
    with profile(activities=acts) as prof:
        fn()
        sync()
    host = collections.Counter()
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CPU and e.name.startswith("cuda"):
            host["host " + e.name] += e.self_cpu_time_total / 1e3
    if not CUDA:
        ops = [e for e in prof.events() if e.name.startswith("aten::")]
        return len(ops), 0.0, []
    kern = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    by = collections.Counter()
    for e in kern:
        by[e.name[:60]] += e.device_time_total / 1e3
    return len(kern), sum(by.values()), by.most_common(5) + host.most_common(5)


def syncs(fn) -> list[str]:
    """Every host synchronisation of one call, with the thermoscope line behind it."""
    if not CUDA:
        return []
    seen: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None):
        if "called a synchronizing CUDA operation" not in str(message):
            return
        ours = [f for f in traceback.extract_stack()[:-1] if "thermoscope" in f.filename]
        seen.append(f"{ours[-1].filename.split('src/')[-1]}:{ours[-1].lineno}" if ours else "?")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return seen


def main() -> int:
    rows, vocab = (int(n) for n in os.environ.get("SHAPE", "32x128256").split("x"))
    x = torch.from_numpy(make_logits("zipf", (rows, vocab))).to(DEVICE)
    print(f"torch {torch.__version__} on {DEVICE}; {rows} x {vocab} zipf float32")
    for name, options in CONFIGS.items():
        sampler = Sampler.from_options(**options)
        ours = functools.partial(sampler.sample, x, seed=0)
        ms = wall_ms(ours)
        count, ktime, top = kernels(ours)
        where = collections.Counter(syncs(ours))
        line = f"{name}: ours {ms:.2f} ms, {count} kernels, {ktime:.2f} ms in kernels"
        chain = transformers_chain(options)
        if chain is not None:
            theirs = functools.partial(chain, x)
            tcount, tk, _ = kernels(theirs)
            line += f" | transformers {wall_ms(theirs):.2f} ms, {tcount} kernels, {tk:.2f} ms"
        print(line)
        print(f"    syncs: {dict(where)}; top: {[(k, round(v, 3)) for k, v in top]}")
        # The same chain without the fused path (the plain chain: identical results).
        fused_plan, _fused.plan = _fused.plan, lambda warpers, rows: None
        try:
            plain = Sampler.from_options(**options)
            run_plain = functools.partial(plain.sample, x, seed=0)
            plain_ms = wall_ms(run_plain)
            pcount, pk, _ = kernels(run_plain)
            pwhere = dict(collections.Counter(syncs(run_plain)))
        finally:
            _fused.plan = fused_plan
        print(f"    plain chain: {plain_ms:.2f} ms, {pcount} kernels, {pk:.2f} ms, syncs {pwhere}")
        seeds = torch.zeros(x.shape[0], dtype=torch.int64, device=DEVICE)
        dev_ms = wall_ms(functools.partial(sampler.sample, x, seed=seeds))
        print(f"    device seeds: {dev_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
