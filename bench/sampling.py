"""Benchmark: thermoscope's Sampler.sample vs transformers' warpers + softmax + multinomial.

Run ``python bench/sampling.py`` (full, a few minutes) or ``--quick`` (seconds).
Prints a markdown table: median milliseconds per call for

- transformers: ``LogitsProcessorList`` of warpers, ``torch.softmax``,
  ``torch.multinomial(probs, 1)`` on a float32 tensor;
- thermoscope with numpy input (numpy path) and with torch input
  (``Sampler.sample(x, seed=0)``): the torch-native path, torch operations on
  the tensor's device, no host copy (``--device cuda`` puts the tensor, and
  transformers' chain, on a GPU);
- one ``torch.softmax`` pass over the same array (the "moonshot" yardstick).

Logits distributions
--------------------
- ``zipf`` (LM-shaped, the headline): each row is a random permutation of
  ``-1.5 * log(rank) + 0.1 * N(0, 1)``. Next-token distributions of language
  models are close to power laws over the rank; exponent 1.5 gives an
  entropy of about 2.5 nats and a top-p 0.9 nucleus of tens of tokens, as
  typical of real LM steps.
- ``normal``: i.i.d. ``2 * N(0, 1)`` logits. Much flatter than a real LM: the
  top-p 0.9 nucleus holds most of the vocabulary, the worst case for a
  sampler that avoids sorting.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from thermoscope.sampling import Sampler

HEADLINE = "top-k 50 + top-p 0.9 + T 0.7"
CONFIGS: dict[str, dict[str, float | int | str]] = {
    "temperature 0.7": {"temperature": 0.7},
    HEADLINE: {"temperature": 0.7, "top_k": 50, "top_p": 0.9},
    "top-p 0.9": {"top_p": 0.9},
    "min-p 0.05": {"min_p": 0.05},
    # Top-k off (issue 13: no slow configuration); "vs headline" compares each with HEADLINE.
    "top-p 0.9 + T 0.7": {"temperature": 0.7, "top_p": 0.9},
    "min-p 0.05 + T 0.7": {"temperature": 0.7, "min_p": 0.05},
    "typical 0.9 + T 0.7": {"temperature": 0.7, "typical_p": 0.9},
    "top-n-sigma 1 + T 0.7 (llama.cpp order)": {
        "temperature": 0.7,
        "top_n_sigma": 1.0,
        "order": "llama.cpp",
    },
}


def make_logits(dist: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Float32 logits of the named distribution (see the module docstring)."""
    rng = np.random.default_rng(seed)
    rows, vocab = shape
    if dist == "normal":
        return (2.0 * rng.standard_normal(shape)).astype(np.float32)
    rank = rng.permuted(np.tile(np.arange(1, vocab + 1, dtype=np.float64), (rows, 1)), axis=1)
    return (-1.5 * np.log(rank) + 0.1 * rng.standard_normal(shape)).astype(np.float32)


def transformers_chain(
    options: dict[str, float | int | str],
) -> Callable[[object], object] | None:
    """transformers' processors for ``options`` (its order), or None where it has none."""
    import torch
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
        TypicalLogitsWarper,
    )

    if "top_n_sigma" in options:
        return None  # transformers has no top-nσ warper
    steps: list[object] = []
    if "temperature" in options:
        steps.append(TemperatureLogitsWarper(float(options["temperature"])))
    if "top_k" in options:
        steps.append(TopKLogitsWarper(int(options["top_k"])))
    if "top_p" in options:
        steps.append(TopPLogitsWarper(float(options["top_p"])))
    if "min_p" in options:
        steps.append(MinPLogitsWarper(float(options["min_p"])))
    if "typical_p" in options:
        steps.append(TypicalLogitsWarper(float(options["typical_p"])))
    chain = LogitsProcessorList(steps)

    def run(scores: object) -> object:
        ids = torch.zeros(
            (scores.shape[0], 1),  # type: ignore[attr-defined]
            dtype=torch.long,
            device=scores.device,  # type: ignore[attr-defined]
        )
        probs = torch.softmax(chain(ids, scores), dim=-1)
        return torch.multinomial(probs, 1)

    return run


def median_ms(
    fn: Callable[[], object], repeats: int, sync: Callable[[], None] = lambda: None
) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--dist", choices=["zipf", "normal", "both"], default="both")
    parser.add_argument(
        "--shape", action="append", metavar="ROWSxVOCAB", help="e.g. 32x128256 (repeatable)"
    )
    parser.add_argument("--device", default="cpu", help="torch device of the tensor input")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    shapes = [(1, 50257), (4, 8192)] if args.quick else [(1, 50257), (32, 50257), (32, 128256)]
    if args.shape:
        shapes = [(int(r), int(v)) for r, v in (s.lower().split("x") for s in args.shape)]
    repeats = args.repeats or (2 if args.quick else 9)
    dists = ["zipf", "normal"] if args.dist == "both" else [args.dist]

    print(
        f"torch {torch.__version__}, numpy {np.__version__}, threads {torch.get_num_threads()}, "
        f"torch input on {device}, median of {repeats} repeats, milliseconds per call\n"
    )
    print(
        "| shape | dist | config | transformers | thermoscope numpy | thermoscope torch "
        "| speedup numpy | speedup torch | torch.softmax | ours / softmax "
        "| vs headline numpy | vs headline torch |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for shape in shapes:
        for dist in dists:
            x = make_logits(dist, shape)
            xt = torch.from_numpy(x.copy()).to(device)
            soft = median_ms(lambda xt=xt: torch.softmax(xt, dim=-1), repeats, sync)
            times: dict[str, tuple[float | None, float, float]] = {}
            for label, options in CONFIGS.items():
                sampler = Sampler.from_options(**options)  # type: ignore[arg-type]
                ref = transformers_chain(options)
                t_ref = None
                if ref is not None:
                    t_ref = median_ms(lambda ref=ref, xt=xt: ref(xt), repeats, sync)
                t_np = median_ms(lambda s=sampler, x=x: s.sample(x, seed=0), repeats)
                t_pt = median_ms(lambda s=sampler, xt=xt: s.sample(xt, seed=0), repeats, sync)
                times[label] = (t_ref, t_np, t_pt)
            # Printed after the run, so each ratio compares with the headline of the same run.
            _, h_np, h_pt = times[HEADLINE]
            for label, (t_ref, t_np, t_pt) in times.items():
                ref_cols = (
                    f"{t_ref:.2f} | {t_np:.2f} | {t_pt:.2f} | {t_ref / t_np:.1f}x "
                    f"| {t_ref / t_pt:.1f}x"
                    if t_ref is not None
                    else f"— | {t_np:.2f} | {t_pt:.2f} | — | —"
                )
                print(
                    f"| {shape} | {dist} | {label} | {ref_cols} | {soft:.2f} "
                    f"| {min(t_np, t_pt) / soft:.1f} | {t_np / h_np:.1f}x | {t_pt / h_pt:.1f}x |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
