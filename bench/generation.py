"""Benchmark: ``generate`` with thermoscope's processor vs transformers' own warpers.

Run ``python bench/generation.py`` (a few minutes) or ``--quick`` (under a minute).
For each model and sampler setting it prints a markdown table with

- tokens/s of ``model.generate`` sampling through transformers' warpers
  (``do_sample=True, temperature=..., top_k=..., top_p=..., min_p=...``; ``top_k=0``
  where the setting has none, since transformers' default is 50), and through
  :class:`~thermoscope.generation.SamplerLogitsProcessor` with the same
  settings (``generate_kwargs``: every built-in warper off);
- the time of one call of each on that model's logits (median over many calls),
  the processor's time as a share of the measured step time (the goal: < 5 %)
  and the difference to transformers' warpers as a share of the step time.

Models
------
- ``embedded``: thermoscope's embedded model (``thermoscope.generation.load_model()``);
  skipped with a note when it is not installed.
- ``gpt2-small (random)``: ``GPT2Config()`` (124M parameters, 50257 tokens) with
  random weights. Its logits are nearly flat, so top-p keeps most of the
  vocabulary: the hard case for a sampler that avoids sorting.

End-of-sequence is switched off so every run generates exactly the same
number of tokens (48, 16 with ``--quick``); both variants use the same seed.
Timings on a shared CPU are noisy: each measurement alternates the two
variants and takes the median of 3 runs (2 with ``--quick``). torch runs on
one thread by default (``--threads``): on a busy 2-core machine, two torch
threads made ``torch.sort`` / ``torch.topk`` over 50257 logits 10-200 times
slower (40-90 ms instead of 0.2-5 ms) through thread contention, which would
flatter thermoscope (numpy, single-threaded) for the wrong reason.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from thermoscope.generation.config import generate_kwargs
from thermoscope.generation.processor import SamplerLogitsProcessor
from thermoscope.sampling import Sampler

SETTINGS: dict[str, dict[str, Any]] = {
    "temperature 0.7": {"temperature": 0.7},
    "T 0.7 + top-k 50 + top-p 0.9": {"temperature": 0.7, "top_k": 50, "top_p": 0.9},
    "min-p 0.05": {"min_p": 0.05},
}


def load_models(quick: bool) -> list[tuple[str, Any]]:
    """(name, model) pairs: the embedded model if present, a random GPT-2 small."""
    from transformers import GPT2Config, GPT2LMHeadModel

    out: list[tuple[str, Any]] = []
    try:
        from thermoscope.generation.model import load_model

        model, _ = load_model()
        out.append(("embedded", model))
    except (ImportError, ValueError) as exc:
        print(f"(embedded model skipped: {exc})", file=sys.stderr)
    torch.manual_seed(0)
    out.append(("gpt2-small (random)", GPT2LMHeadModel(GPT2Config()).eval()))
    for _, model in out:
        model.generation_config.eos_token_id = None  # every run generates the full length
        model.generation_config.pad_token_id = 0
    return out


def hf_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """transformers' own warpers for ``options`` (and nothing else)."""
    return {
        "do_sample": True,
        "temperature": options.get("temperature", 1.0),
        "top_k": options.get("top_k", 0),
        "top_p": options.get("top_p", 1.0),
        "min_p": options.get("min_p"),
    }


def ours_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    return generate_kwargs(SamplerLogitsProcessor(Sampler.from_options(**options)))


def time_generate(model: Any, kwargs: dict[str, Any], batch: int, new_tokens: int) -> float:
    ids = torch.randint(
        0, model.config.vocab_size, (batch, 8), generator=torch.Generator().manual_seed(1)
    )
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            **kwargs,
        )
    elapsed = time.perf_counter() - start
    assert out.shape[1] == 8 + new_tokens
    return elapsed


def time_call(fn: Callable[[], Any], calls: int) -> float:
    """Median seconds of one call over ``calls`` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_logits(model: Any, batch: int) -> torch.Tensor:
    ids = torch.randint(
        0, model.config.vocab_size, (batch, 16), generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        return model(input_ids=ids).logits[:, -1].float()


def run(quick: bool) -> str:
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    batch = 1
    new_tokens = 16 if quick else 48
    repeats = 2 if quick else 3
    calls = 50 if quick else 200
    lines = [
        f"batch {batch}, {new_tokens} new tokens per run, median of {repeats} runs; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "",
        "| model | setting | transformers tok/s | thermoscope tok/s | step ms | "
        "warpers µs/step | processor µs/step | processor % of step | difference % of step |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, model in load_models(quick):
        time_generate(model, hf_kwargs({}), batch, 4)  # warm-up
        logits = step_logits(model, batch)
        ids = torch.zeros((batch, 1), dtype=torch.long)
        for setting, options in SETTINGS.items():
            hf_times, our_times = [], []
            for _ in range(repeats):
                hf_times.append(time_generate(model, hf_kwargs(options), batch, new_tokens))
                our_times.append(time_generate(model, ours_kwargs(options), batch, new_tokens))
            hf_t, our_t = statistics.median(hf_times), statistics.median(our_times)
            warpers = LogitsProcessorList()
            if options.get("temperature", 1.0) != 1.0:
                warpers.append(TemperatureLogitsWarper(options["temperature"]))
            if options.get("top_k"):
                warpers.append(TopKLogitsWarper(options["top_k"]))
            if options.get("top_p") is not None:
                warpers.append(TopPLogitsWarper(options["top_p"]))
            if options.get("min_p") is not None:
                warpers.append(MinPLogitsWarper(options["min_p"]))
            proc = SamplerLogitsProcessor(Sampler.from_options(**options))
            w_t = time_call(lambda w=warpers, i=ids, z=logits: w(i, z), calls)
            p_t = time_call(lambda p=proc, i=ids, z=logits: p(i, z), calls)
            step = hf_t / new_tokens
            lines.append(
                f"| {name} | {setting} | {batch * new_tokens / hf_t:.1f} | "
                f"{batch * new_tokens / our_t:.1f} | {step * 1e3:.2f} | {w_t * 1e6:.0f} | "
                f"{p_t * 1e6:.0f} | {100 * p_t / step:.2f} | {100 * (p_t - w_t) / step:+.2f} |"
            )
            print(lines[-1], file=sys.stderr)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and repeats")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; see the docstring)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(run(args.quick))


if __name__ == "__main__":
    main()
