"""``thermoscope generate``: the same prompt at several temperatures, with diversity."""

from __future__ import annotations

import argparse
from typing import Any

from thermoscope.cli._args import (
    MAX_SEED,
    CommandParser,
    add_subcommand,
    integer_in,
    parse_temperature,
)
from thermoscope.cli._json import dumps
from thermoscope.cli._sampler_args import add_sampler_arguments, sampler_options

EXAMPLES = """\
  thermoscope generate --prompt "def parse(" -t 0.2 0.7 1.2 -n 3 --max-new-tokens 60
  thermoscope generate --prompt "def parse(" --preset code --seed 1 --json
  thermoscope generate --prompt "Once upon a time" --model path/to/gpt2 -t 0.5 1.5 --min-p 0.05
  thermoscope generate --prompt "def parse(" --compare-dynamic
"""

#: Temperatures compared when neither ``-t`` nor ``--preset`` gives them.
DEFAULT_TEMPERATURES = (0.2, 0.7, 1.2)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model PATH``, shared by the commands that run a language model."""
    parser.add_argument(
        "--model",
        default=None,
        metavar="PATH",
        help="a local transformers causal-LM folder, e.g. a downloaded GPT-2 "
        "(default: thermoscope's embedded model)",
    )


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``generate`` subcommand."""
    p = add_subcommand(
        sub,
        "generate",
        help="sample a language model at several temperatures and measure diversity",
        description="Generate n continuations of a prompt at each temperature through "
        "thermoscope's sampler (transformers' own warpers switched off) and print them "
        "with distinct-1/2/3, self-BLEU, repetition and mean log-probability per "
        "temperature. --compare-dynamic compares fixed temperatures with entropy-based "
        "temperature, Mirostat 2.0 and min-p instead.",
        examples=EXAMPLES,
    )
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument(
        "-t",
        "--temperature",
        nargs="+",
        type=parse_temperature,
        default=None,
        help="temperatures (default: the preset's low, default and high, else 0.2 0.7 1.2)",
    )
    p.add_argument("-n", type=int, default=3, help="samples per temperature (default 3)")
    p.add_argument(
        "--max-new-tokens", type=int, default=60, help="tokens per sample (default 60, max 2048)"
    )
    p.add_argument(
        "--preset",
        default=None,
        help="a task preset (code, translation, ...) or an engine's default chain "
        "(transformers, llama.cpp, vllm, openai); see `thermoscope presets`",
    )
    p.add_argument(
        "--seed",
        type=integer_in("--seed", 0, MAX_SEED),
        default=0,
        help="random seed >= 0 (default 0)",
    )
    add_model_argument(p)
    add_sampler_arguments(p, one_call=False)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument(
        "--compare-dynamic",
        action="store_true",
        help="compare fixed T with entropy-based T, Mirostat and min-p (one table)",
    )
    p.set_defaults(run=run)


def settings(args: argparse.Namespace) -> tuple[list[float], dict[str, Any]]:
    """Temperatures and sampler options from ``-t``, ``--preset`` and the sampler flags.

    ``--preset`` names a task preset (its temperature range and truncation)
    or an engine's default chain (its settings, order and temperature).
    """
    from thermoscope.generation.task_presets import get_preset
    from thermoscope.sampling.engines import ENGINE_PRESETS

    temps = None if args.temperature is None else list(args.temperature)
    options = sampler_options(args)
    options.pop("temperature", None)  # -t: the temperatures of the sweep, not one option
    if args.preset in ENGINE_PRESETS:
        if temps is None:
            temps = [ENGINE_PRESETS[args.preset].options.get("temperature", 1.0)]
    elif args.preset is not None:
        preset = get_preset(args.preset)
        base = {k: v for k, v in preset.sampler_options().items() if k != "temperature"}
        options = {**base, **options}
        if temps is None:
            temps = list(preset.temperatures())
    return (list(DEFAULT_TEMPERATURES) if temps is None else temps), options


def run(args: argparse.Namespace) -> str:
    """Generate (or compare strategies) for parsed ``generate`` arguments."""
    from thermoscope._validation import check_temperature
    from thermoscope.generation._inputs import check_max_new_tokens
    from thermoscope.generation.model import load_model
    from thermoscope.generation.sweep import generate_at_temperatures

    temps, options = settings(args)
    check_temperature(temps, "--temperature")  # named as typed, before the model loads
    if args.compare_dynamic:
        return _compare(args, temps)
    check_max_new_tokens(args.max_new_tokens)
    if args.prompt == "":
        raise ValueError("`prompt` must not be empty, got ''.")
    model, tokenizer = load_model(args.model)
    result = generate_at_temperatures(
        model,
        tokenizer,
        args.prompt,
        temps,
        n=args.n,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        sampler_options=options,
    )
    if args.json:
        return dumps({"model": args.model or "embedded", **result.as_dict()})
    return result.format()


def _compare(args: argparse.Namespace, temps: list[float]) -> str:
    from thermoscope.generation._inputs import check_max_new_tokens
    from thermoscope.generation.compare import (
        compare_dynamic,
        dynamic_strategies,
        format_strategies,
    )
    from thermoscope.generation.model import load_model

    check_max_new_tokens(args.max_new_tokens)
    if args.prompt == "":
        raise ValueError("`prompt` must not be empty, got ''.")
    strategies = dynamic_strategies(temps)
    model, tokenizer = load_model(args.model)
    results = compare_dynamic(
        model,
        tokenizer,
        args.prompt,
        strategies=strategies,
        n=args.n,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    if args.json:
        return dumps(
            {"model": args.model or "embedded", "prompt": args.prompt,
             "strategies": [r.as_dict() for r in results]}
        )  # fmt: skip
    return (
        f"prompt {args.prompt!r}: {args.n} samples of {args.max_new_tokens} tokens per strategy\n"
        f"{format_strategies(results)}\n"
        "distinct-2 over token ids (higher: more diverse); self-BLEU (lower: more diverse); "
        "mean log p under the model at T = 1 (higher: more likely text)."
    )
