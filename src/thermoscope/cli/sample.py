"""``thermoscope sample``: draw through a sampler chain and test the draws against theory."""

from __future__ import annotations

import argparse
import json

import numpy as np

from thermoscope.cli._args import (
    CommandParser,
    add_logits_arguments,
    add_subcommand,
    labels_for,
    parse_logits,
    parse_temperature,
)

EXAMPLES = """\
  thermoscope sample --logits 5,2.2,2,4.5,3,2.7 -t 0.7 --top-k 3 --top-p 0.9 -n 10000 --seed 0
  thermoscope sample --logits 2,1,0.5 --min-p 0.05 --order llama.cpp -n 1000 --json
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``sample`` subcommand."""
    p = add_subcommand(
        sub,
        "sample",
        help="draw tokens through a sampler chain and compare with its probabilities",
        description="Apply temperature / top-k / top-p / min-p (and typical, epsilon, "
        "top-n-sigma), draw n samples with a seed, and print kept tokens, probabilities, "
        "frequencies and a chi-square goodness-of-fit test.",
        examples=EXAMPLES,
    )
    add_logits_arguments(p)
    p.add_argument("-t", "--temperature", type=parse_temperature, default=1.0)
    p.add_argument("--top-k", type=int, default=None, help="keep the k most likely (k >= 1)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus mass in (0, 1]")
    p.add_argument("--min-p", type=float, default=None, help="keep p >= min_p * max p, [0, 1]")
    p.add_argument("--typical-p", type=float, default=None, help="locally typical mass in (0, 1]")
    p.add_argument("--epsilon", type=float, default=None, help="drop tokens with p < epsilon")
    p.add_argument(
        "--top-n-sigma", type=float, default=None, help="keep logits >= max - n * std (n >= 0)"
    )
    p.add_argument(
        "--order",
        default="transformers",
        choices=["transformers", "llama.cpp"],
        help="transformers: temperature first (default); llama.cpp: temperature last",
    )
    p.add_argument("-n", type=int, default=10_000, help="number of draws (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed >= 0 (default 0)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Sample, count, and test the counts for parsed ``sample`` arguments."""
    from thermoscope._tables import format_table
    from thermoscope.sampling import Sampler, goodness_of_fit

    z = parse_logits(args.logits)
    labels = labels_for(args, z.size)
    if args.n < 1:
        raise ValueError(f"`-n` must be an integer >= 1, got {args.n}.")
    if args.top_k is not None and args.top_k < 1:
        # The library reads top_k=0 as "no top-k step" (transformers' convention);
        # on the command line that is spelled by leaving --top-k out.
        raise ValueError(f"`--top-k` must be an integer >= 1, got {args.top_k}.")
    sampler = Sampler.from_options(
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        typical_p=args.typical_p,
        epsilon=args.epsilon,
        top_n_sigma=args.top_n_sigma,
        order=args.order,
    )
    probs = np.asarray(sampler.probs(z), dtype=np.float64)
    draws = np.asarray(sampler.sample(z, n=args.n, seed=args.seed)).reshape(-1)
    counts = np.bincount(draws, minlength=z.size)
    kept = np.flatnonzero(probs > 0)
    freq = counts / args.n
    fit = goodness_of_fit(counts, probs)
    if args.json:
        return json.dumps(
            {
                "sampler": repr(sampler),
                "n": args.n,
                "seed": args.seed,
                "kept": [
                    {
                        "index": int(i),
                        "label": labels[i],
                        "prob": float(probs[i]),
                        "frequency": float(freq[i]),
                        "count": int(counts[i]),
                    }
                    for i in kept
                ],
                "masked_draws": fit.removed_draws,
                "chi_square_p_value": fit.p_value,
            }
        )
    rows = [[labels[i], int(i), float(probs[i]), float(freq[i]), int(counts[i])] for i in kept]
    table = format_table(["token", "index", "prob", "frequency", "count"], rows)
    dropped = [labels[i] for i in np.flatnonzero(probs == 0)]
    lines = [
        f"sampler: {sampler!r}",
        table,
        f"kept {kept.size} of {z.size} tokens; removed: {', '.join(dropped) or 'none'}",
        f"draws: {args.n} (seed {args.seed}); draws of removed tokens: {fit.removed_draws}",
    ]
    if fit.p_value is None:
        lines.append("chi-square: not applicable (a single token is kept; every draw is it)")
    else:
        lines.append(
            f"chi-square goodness of fit, frequencies vs probabilities: p = {fit.p_value:.4f}"
        )
    return "\n".join(lines)
