"""``thermoscope sample``: draw through a sampler chain and test the draws against theory."""

from __future__ import annotations

import argparse

import numpy as np

from thermoscope.cli._args import (
    MAX_SEED,
    CommandParser,
    add_logits_arguments,
    add_subcommand,
    integer_in,
    labels_for,
    parse_logits,
)
from thermoscope.cli._json import dumps
from thermoscope.cli._sampler_args import add_sampler_arguments, parse_history, sampler_from_args

#: The most draws of one ``sample`` call: 1e8 draws need about 2.5 GB (uniforms,
#: targets and tokens, 8 bytes each); more is refused, not left to run out of memory.
MAX_DRAWS = 100_000_000

EXAMPLES = """\
  thermoscope sample --logits 5,2.2,2,4.5,3,2.7 -t 0.7 --top-k 3 --top-p 0.9 -n 10000 --seed 0
  thermoscope sample --logits 2,1,0.5 --min-p 0.05 --order llama.cpp -n 1000 --json
  thermoscope sample --logits 5,2.2,2,4.5,3,2.7 --preset llama.cpp --trace
  thermoscope sample --logits 5,2.2,2,4.5 --history 0,3,0,3 --repetition-penalty 1.3 --trace
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``sample`` subcommand."""
    p = add_subcommand(
        sub,
        "sample",
        help="draw tokens through a sampler chain and compare with its probabilities",
        description="Apply a sampler chain (temperature, top-k, top-p, min-p, typical, "
        "epsilon, eta, top-h, p-less, top-n-sigma, repetition / frequency / presence "
        "penalties, no-repeat-n-gram, logit bias, DRY, XTC, adaptive-p; or an engine's "
        "default chain with --preset), draw n samples with a seed, and print kept tokens, "
        "probabilities, frequencies and a chi-square goodness-of-fit test. --trace shows "
        "what each stage of the chain kept and removed.",
        examples=EXAMPLES,
    )
    add_logits_arguments(p)
    add_sampler_arguments(p)
    p.add_argument(
        "-n",
        type=integer_in("-n", 1, MAX_DRAWS),
        default=10_000,
        help=f"number of draws (default 10000, at most {MAX_DRAWS:_})",
    )
    p.add_argument(
        "--seed",
        type=integer_in("--seed", 0, MAX_SEED),
        default=0,
        help="random seed >= 0 (default 0)",
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="also show the chain stage by stage: what each stage kept and removed",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Sample, count, and test the counts for parsed ``sample`` arguments."""
    from thermoscope._tables import format_table
    from thermoscope.sampling import goodness_of_fit

    z = parse_logits(args.logits)
    labels = labels_for(args, z.size)
    if args.n < 1:
        raise ValueError(f"`-n` must be an integer >= 1, got {args.n}.")
    sampler = sampler_from_args(args)
    history = parse_history(args.history)
    # One seed for the draws and for the coins of random stages (XTC): the
    # probabilities shown are those the draws come from.
    probs = np.asarray(sampler.probs(z, history=history, seed=args.seed), dtype=np.float64)
    draws = np.asarray(sampler.sample(z, n=args.n, seed=args.seed, history=history)).reshape(-1)
    trace = sampler.trace(z, history=history, seed=args.seed) if args.trace else None
    counts = np.bincount(draws, minlength=z.size)
    kept = np.flatnonzero(probs > 0)
    freq = counts / args.n
    fit = goodness_of_fit(counts, probs)
    if args.json:
        return dumps(
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
                **({"trace": trace.to_dict()} if trace is not None else {}),
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
    if trace is not None:
        lines += ["", "the chain, stage by stage (input mass: under the untruncated distribution):"]
        lines.append(trace.table(labels))
    return "\n".join(lines)
