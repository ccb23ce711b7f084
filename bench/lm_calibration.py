"""Benchmark: the cost of next-token calibration over the forward passes alone.

Run ``python bench/lm_calibration.py`` (about a minute on one core) or
``--quick``. On the embedded model over its held-out standard-library files
(``training.json`` -> ``data.val_file_names``, never trained on) it times

- ``forward``: the same windows, in the same batches, through the model
  (logits gathered at the scored positions, as the calibration pass does);
- ``tokenize + forward``: the same with tokenizing, i.e. a plain perplexity
  run, the baseline the calibration pass adds to;
- ``calibrate``: :func:`~thermoscope.generation.lm_calibration.calibrate_language_model`
  end to end (tokenizing, forward passes, both sides' reductions, the fit,
  smooth ECE), with and without the class-wise sums;

and prints the ratios to both baselines (the goal: under 1.05).
``--gpt2-small`` times a GPT-2 small shape (random weights) on the same
token ids instead: the reductions cost per vocabulary entry, the forward
per parameter, so the ratio falls as models grow. Each
variant alternates with the others and the median of ``--repeats`` runs is
kept. On the CPU the clock is the process's CPU time (``time.process_time``):
on a shared machine wall time mostly measures the neighbours; on a GPU (or
with ``--wall``) it is wall time, after ``torch.cuda.synchronize``. torch runs on ``--threads``
threads (default 1: on a shared 2-core machine two threads mostly measure
contention). ``--device cuda`` runs on a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from thermoscope.generation.lm_calibration import (
    _batches,
    _forward,
    _windows,
    calibrate_language_model,
    read_corpus,
)
from thermoscope.generation.model import load_model
from thermoscope.models import embedded_model_path


def held_out_texts(stdlib: str | None = None) -> list[str]:
    """The embedded model's validation files (not used in training), as text."""
    info = json.loads((embedded_model_path() / "training.json").read_text())
    root = Path(stdlib or sysconfig.get_paths()["stdlib"])
    paths = [root / name for name in info["data"]["val_file_names"]]
    return read_corpus([p for p in paths if p.is_file()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k tokens, 2 repeats")
    parser.add_argument("--max-tokens", type=int, default=60_000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--stdlib", help="the standard library folder to read the held-out files from"
    )
    parser.add_argument(
        "--compare-cpu",
        action="store_true",
        help="also run on the CPU and print the largest metric difference to --device",
    )
    parser.add_argument("--table", action="store_true", help="print the before/after table")
    parser.add_argument(
        "--wall", action="store_true", help="wall-clock time on the CPU too (a quiet machine)"
    )
    parser.add_argument(
        "--gpt2-small",
        action="store_true",
        help="time a GPT-2 small shape (124M parameters, 50257 tokens, random weights) "
        "instead of the embedded model, on the same token ids",
    )
    args = parser.parse_args()
    if args.quick:
        args.max_tokens, args.repeats = 20_000, 2
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model()
    name = "embedded model"
    if args.gpt2_small:
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config()).eval()
        name = "GPT-2 small shape (random weights)"
    model = model.to(args.device)
    texts = held_out_texts(args.stdlib)
    window = 256
    windows = _windows(texts, tokenizer, window, args.max_tokens)
    n_tokens = sum(len(w) - 1 for w in windows)

    def forward() -> None:
        with torch.inference_mode():
            for batch in _batches(windows, args.batch_size):
                _forward(model, batch, 0)
        if args.device != "cpu":
            torch.cuda.synchronize()

    def calibrate(classwise: bool) -> None:
        calibrate_language_model(
            texts,
            model=model,
            tokenizer=tokenizer,
            window=window,
            max_tokens=args.max_tokens,
            batch_size=args.batch_size,
            classwise=classwise,
            progress=False,
        )

    def tokenize_forward() -> None:
        _windows(texts, tokenizer, window, args.max_tokens)
        forward()

    variants = {
        "forward": forward,
        "tokenize + forward": tokenize_forward,
        "calibrate": lambda: calibrate(True),
        "calibrate (no class-wise)": lambda: calibrate(False),
    }
    forward()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    clock = time.process_time if args.device == "cpu" and not args.wall else time.perf_counter
    for _ in range(args.repeats):
        for variant, fn in variants.items():
            t0 = clock()
            fn()
            times[variant].append(clock() - t0)
    base = statistics.median(times["forward"])
    base_tok = statistics.median(times["tokenize + forward"])
    print(
        f"{name}, {len(texts)} held-out files, {n_tokens} tokens, window {window}, "
        f"batch {args.batch_size}, {args.threads} thread(s), {args.device}, "
        f"{'wall' if clock is time.perf_counter else 'CPU'} time, median of {args.repeats}"
    )
    print()
    print("| variant | seconds | tokens/s | ratio to forward | ratio to tokenize + forward |")
    print("|---|---:|---:|---:|---:|")
    for variant, ts in times.items():
        t = statistics.median(ts)
        print(
            f"| {variant} | {t:.3f} | {n_tokens / t:,.0f} | {t / base:.3f} | {t / base_tok:.3f} |"
        )
    if args.table or args.compare_cpu:
        on_device = calibrate_language_model(
            texts,
            model=model,
            tokenizer=tokenizer,
            window=window,
            max_tokens=args.max_tokens,
            progress=False,
        )
        if args.table:
            print()
            print(on_device)
        if args.compare_cpu:
            cpu_model = model.to("cpu")
            on_cpu = calibrate_language_model(
                texts, model=cpu_model, tokenizer=tokenizer, window=window,
                max_tokens=args.max_tokens, progress=False,
            )  # fmt: skip
            diffs = {
                f"{side}.{key}": abs(value - getattr(on_cpu, side).as_dict()[key])
                for side in ("before", "after")
                for key, value in getattr(on_device, side).as_dict().items()
                if value is not None
            }
            worst = max(diffs, key=lambda k: diffs[k])
            print()
            print(
                f"{args.device} vs cpu: temperature {on_device.temperature:.9g} vs "
                f"{on_cpu.temperature:.9g}; largest metric difference {diffs[worst]:.3g} ({worst})"
            )


if __name__ == "__main__":
    main()
