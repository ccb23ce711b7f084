"""``thermoscope entropy-target``: the temperature that reaches a given entropy."""

from __future__ import annotations

import argparse

from thermoscope.cli._args import CommandParser, add_logits_arguments, add_subcommand, parse_logits
from thermoscope.cli._json import dumps

EXAMPLES = """\
  thermoscope entropy-target --logits 5,2.2,2,4.5,3,2.7 --entropy 1.0
  thermoscope entropy-target --logits 2,1,0.5 --entropy 1 --bits
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``entropy-target`` subcommand."""
    p = add_subcommand(
        sub,
        "entropy-target",
        help="the temperature at which the distribution reaches a given entropy",
        description="Solve entropy(softmax(logits / T)) = target for T (unique: entropy "
        "rises with T).",
        examples=EXAMPLES,
    )
    add_logits_arguments(p)
    p.add_argument("--entropy", type=float, required=True, help="target entropy (nats)")
    p.add_argument("--bits", action="store_true", help="the target is in bits, not nats")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Solve for T and report the entropy it reaches."""
    from thermoscope.core import entropy, softmax, temperature_for_entropy

    z = parse_logits(args.logits)
    base = 2.0 if args.bits else None
    t = temperature_for_entropy(z, args.entropy, base=base)
    reached = float(entropy(softmax(z, t), base=base))
    unit = "bits" if args.bits else "nats"
    if args.json:
        return dumps({"target": args.entropy, "unit": unit, "temperature": t, "entropy": reached})
    return (
        f"temperature {t:.6g} gives entropy {reached:.6f} {unit} (target {args.entropy:g} {unit})"
    )
