"""``thermoscope next``: a language model's next-token distribution at several temperatures."""

from __future__ import annotations

import argparse
from typing import Any

from thermoscope.cli._args import CommandParser, add_subcommand, parse_temperature
from thermoscope.cli._json import dumps
from thermoscope.cli.generate import add_model_argument

EXAMPLES = """\
  thermoscope next --prompt "def parse(" -t 0.5 1 2
  thermoscope next --prompt "The weather today is" --model path/to/gpt2 --top 5 --json
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``next`` subcommand."""
    p = add_subcommand(
        sub,
        "next",
        help="the next-token distribution of a language model at several temperatures",
        description="Run the model once on the prompt and print the most likely next "
        "tokens with their probabilities at each temperature, the mass they cover and the "
        "entropy of the whole distribution.",
        examples=EXAMPLES,
    )
    p.add_argument("--prompt", required=True, help="the text whose next token is shown")
    p.add_argument(
        "-t",
        "--temperature",
        nargs="+",
        type=parse_temperature,
        default=[0.5, 1.0, 2.0],
        help="temperatures (default: 0.5 1 2)",
    )
    p.add_argument("--top", type=int, default=10, help="tokens shown (default 10)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus mass in (0, 1]")
    p.add_argument("--min-p", type=float, default=None, help="keep p >= min_p * max p, [0, 1]")
    add_model_argument(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Compute the next-token table for parsed ``next`` arguments."""
    from thermoscope._validation import check_temperature
    from thermoscope.generation.model import load_model
    from thermoscope.generation.next_token import next_token_table

    if args.prompt == "":
        raise ValueError("`prompt` must not be empty, got ''.")
    check_temperature(args.temperature, "--temperature")  # named as typed, before the model loads
    options: dict[str, Any] = {}
    if args.top_p is not None:
        options["top_p"] = args.top_p
    if args.min_p is not None:
        options["min_p"] = args.min_p
    model, tokenizer = load_model(args.model)
    table = next_token_table(
        model, tokenizer, args.prompt, args.temperature, top=args.top, sampler_options=options
    )
    if args.json:
        return dumps({"model": args.model or "embedded", **table.as_dict()})
    return table.format()
