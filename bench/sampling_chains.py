"""Benchmark: no slow configuration. Every chain against the fast path and transformers.

Run ``python bench/sampling_chains.py`` (32 x 128256, a few minutes) or
``--quick`` (seconds). For each chain it prints the median milliseconds of
``Sampler.sample(logits, seed=0, history=...)`` with numpy and with torch (CPU)
input, its ratio to the headline chain (top-k 50 + top-p 0.9 + T 0.7) measured
in the same run, and, where transformers has the same processors, the median
time of transformers' ``LogitsProcessorList`` + ``softmax`` + ``multinomial``
and the speed-up over it. The history is 4,096 tokens per row, drawn from the
rows' own Zipf-shaped distributions (so tokens repeat as in real text), and
the logits are the LM-shaped ``zipf`` rows of ``bench/sampling.py``.

The issue's targets: every chain within 3x of the headline chain, and at least
10x faster than transformers' equivalent processors where they exist.
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

from thermoscope.sampling import Sampler

HEADLINE = {"temperature": 0.7, "top_k": 50, "top_p": 0.9}

#: name -> (Sampler.from_options keywords, order)
CHAINS: dict[str, tuple[dict[str, Any], str]] = {
    "top-k 50 + top-p 0.9 + T 0.7 (headline)": (HEADLINE, "transformers"),
    "top-k off: top-p 0.9 + T 0.7": ({"temperature": 0.7, "top_p": 0.9}, "transformers"),
    "top-k off: min-p 0.05 + T 0.7": ({"temperature": 0.7, "min_p": 0.05}, "transformers"),
    "llama.cpp defaults (top-k 40, top-p .95, min-p .05, T .8)": (
        {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "temperature": 0.8},
        "llama.cpp",
    ),
    "repetition 1.1 + headline": ({**HEADLINE, "repetition_penalty": 1.1}, "transformers"),
    "rep 1.1 + freq 0.2 + presence 0.2 + headline": (
        {**HEADLINE, "repetition_penalty": 1.1, "frequency_penalty": 0.2, "presence_penalty": 0.2},
        "transformers",
    ),
    "no-repeat-3-gram + headline": ({**HEADLINE, "no_repeat_ngram_size": 3}, "transformers"),
    "DRY 0.8 + headline": ({**HEADLINE, "dry_multiplier": 0.8}, "transformers"),
    "headline + XTC (p 0.5, threshold 0.1)": (
        {**HEADLINE, "xtc_probability": 0.5, "xtc_threshold": 0.1},
        "transformers",
    ),
    "typical 0.9 + T 0.7": ({"temperature": 0.7, "typical_p": 0.9}, "transformers"),
    "eta 0.0009 + T 0.7": ({"temperature": 0.7, "eta": 0.0009}, "transformers"),
    "top-n-sigma 1 + T 0.7": ({"temperature": 0.7, "top_n_sigma": 1.0}, "llama.cpp"),
}


def make_logits(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """LM-shaped float32 logits: a random permutation of ``-1.5 log(rank) + 0.1 N(0, 1)``."""
    rng = np.random.default_rng(seed)
    rows, vocab = shape
    rank = rng.permuted(np.tile(np.arange(1, vocab + 1, dtype=np.float64), (rows, 1)), axis=1)
    return (-1.5 * np.log(rank) + 0.1 * rng.standard_normal(shape)).astype(np.float32)


def make_history(z: np.ndarray, length: int, seed: int = 1) -> np.ndarray:
    """(B, length) token ids drawn from each row's softmax: repeats like real text."""
    rng = np.random.default_rng(seed)
    p = np.exp(z - z.max(axis=1, keepdims=True)).astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    return np.stack([rng.choice(z.shape[1], size=length, p=row) for row in p]).astype(np.int64)


def transformers_chain(options: dict[str, Any]) -> Callable[[Any, Any], Any] | None:
    """transformers' processors for ``options`` + softmax + multinomial; None if it lacks one."""
    import torch
    from transformers.generation import logits_process as lp

    if {"frequency_penalty", "presence_penalty", "dry_multiplier", "xtc_probability"} & set(
        options
    ):
        return None
    steps: list[Any] = []
    if "repetition_penalty" in options:
        steps.append(lp.RepetitionPenaltyLogitsProcessor(options["repetition_penalty"]))
    if "no_repeat_ngram_size" in options:
        steps.append(lp.NoRepeatNGramLogitsProcessor(options["no_repeat_ngram_size"]))
    if "temperature" in options:
        steps.append(lp.TemperatureLogitsWarper(options["temperature"]))
    if "top_n_sigma" in options:
        return None
    if "top_k" in options:
        steps.append(lp.TopKLogitsWarper(options["top_k"]))
    if "top_p" in options:
        steps.append(lp.TopPLogitsWarper(options["top_p"]))
    if "min_p" in options:
        steps.append(lp.MinPLogitsWarper(options["min_p"]))
    if "typical_p" in options:
        steps.append(lp.TypicalLogitsWarper(options["typical_p"]))
    if "eta" in options:
        steps.append(lp.EtaLogitsWarper(options["eta"]))
    chain = lp.LogitsProcessorList(steps)

    def run(ids: Any, scores: Any) -> Any:
        warped = chain(ids, scores)
        return torch.multinomial(torch.softmax(warped, dim=-1), 1)

    return run


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: imports, caches, first-call allocations
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small shape, few repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--history", type=int, default=4096, help="tokens of history per row")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    shape = (4, 8192) if args.quick else (32, 128256)
    repeats = args.repeats or (3 if args.quick else 7)
    length = 256 if args.quick else args.history
    z = make_logits(shape)
    hist = make_history(z, length)
    zt, ht = torch.from_numpy(z), torch.from_numpy(hist)
    rows = []
    base: dict[str, float] = {}
    for name, (options, order) in CHAINS.items():
        s = Sampler.from_options(**options, order=order)
        np_ms = median_ms(lambda s=s: s.sample(z, seed=0, history=hist), repeats)
        pt_ms = median_ms(lambda s=s: s.sample(zt, seed=0, history=ht), repeats)
        if not base:
            base = {"numpy": np_ms, "torch": pt_ms}
        ref = transformers_chain(options)
        hf_ms = None if ref is None else median_ms(lambda ref=ref: ref(ht, zt.clone()), repeats)
        rows.append(
            [
                name,
                f"{np_ms:.2f}",
                f"{np_ms / base['numpy']:.2f}x",
                f"{pt_ms:.2f}",
                f"{pt_ms / base['torch']:.2f}x",
                "-" if hf_ms is None else f"{hf_ms:.1f}",
                "-" if hf_ms is None else f"{hf_ms / min(np_ms, pt_ms):.1f}x",
            ]
        )
        print(rows[-1], file=sys.stderr, flush=True)
    head = [
        "chain",
        "numpy ms",
        "vs headline",
        "torch ms",
        "vs headline",
        "transformers ms",
        "speed-up",
    ]
    lines = [
        f"logits {shape[0]} x {shape[1]} float32 (zipf), history {length} tokens per row, "
        f"median of {repeats}, torch {torch.__version__} CPU, {torch.get_num_threads()} threads",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
