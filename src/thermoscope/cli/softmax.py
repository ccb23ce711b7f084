"""``thermoscope softmax``: probabilities, entropy and max probability per temperature."""

from __future__ import annotations

import argparse

import numpy as np

from thermoscope.cli._args import (
    CommandParser,
    add_logits_arguments,
    add_subcommand,
    labels_for,
    parse_logits,
    parse_temperature,
)
from thermoscope.cli._json import dumps

EXAMPLES = """\
  thermoscope softmax --logits 5,2.2,2,4.5,3,2.7 -t 0.1 0.5 1 2 5
  thermoscope softmax --logits 2,1,0.5 --labels cat,dog,fish -t 0 1 inf --json
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``softmax`` subcommand."""
    p = add_subcommand(
        sub,
        "softmax",
        help="probabilities, entropy and max probability at several temperatures",
        description="Print softmax(logits / T) for each temperature T, with entropy "
        "(nats) and max probability. T = 0 is the greedy limit, T = inf uniform.",
        examples=EXAMPLES,
    )
    add_logits_arguments(p)
    p.add_argument(
        "-t",
        "--temperature",
        nargs="+",
        type=parse_temperature,
        default=[0.1, 0.5, 1.0, 2.0, 5.0],
        help="temperatures (default: 0.1 0.5 1 2 5)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Compute the table (or JSON) for parsed ``softmax`` arguments."""
    from thermoscope._tables import format_table, format_temperature
    from thermoscope.core import entropy, max_probability, softmax

    z = parse_logits(args.logits)
    labels = labels_for(args, z.size)
    temps = list(args.temperature)
    probs = softmax(np.broadcast_to(z, (len(temps), z.size)), np.array(temps))
    rows = list(zip(temps, probs, entropy(probs), max_probability(probs), strict=True))
    if args.json:
        return dumps(
            {
                "labels": labels,
                "logits": [float(v) for v in z],
                "rows": [
                    {
                        "temperature": t,
                        "probs": [float(v) for v in p],
                        "entropy": float(h),
                        "max_probability": float(m),
                    }
                    for t, p, h, m in rows
                ],
            }
        )
    table = format_table(
        ["T", *labels, "entropy", "max p"],
        [[format_temperature(t), *map(float, p), float(h), float(m)] for t, p, h, m in rows],
    )
    note = f"entropy in nats; uniform over {z.size} would be ln {z.size} = {np.log(z.size):.4f}"
    return f"{table}\n{note}"
