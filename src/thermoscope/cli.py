"""The ``thermoscope`` command line.

Every command is a thin shell over the library: parse, call, print. Bad input
of any kind becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from thermoscope import __version__

__all__ = ["main"]

_EPILOG_SOFTMAX = """\
examples:
  thermoscope softmax --logits 5,2.2,2,4.5,3,2.7 -t 0.1 0.5 1 2 5
  thermoscope softmax --logits 2,1,0.5 --labels cat,dog,fish -t 0 1 inf --json
"""

_EPILOG_SAMPLE = """\
examples:
  thermoscope sample --logits 5,2.2,2,4.5,3,2.7 -t 0.7 --top-k 3 --top-p 0.9 -n 10000 --seed 0
  thermoscope sample --logits 2,1,0.5 --min-p 0.05 --order llama.cpp -n 1000 --json
"""

_EPILOG_ENTROPY = """\
examples:
  thermoscope entropy-target --logits 5,2.2,2,4.5,3,2.7 --entropy 1.0
  thermoscope entropy-target --logits 2,1,0.5 --entropy 1 --bits
"""

_EPILOG_MAIN = """\
examples:
  thermoscope softmax --logits 5,2.2,2,4.5,3,2.7 -t 0.1 0.5 1 2 5
  thermoscope sample --logits 5,2.2,2,4.5,3,2.7 -t 0.7 --top-k 3 -n 10000 --seed 0
  thermoscope entropy-target --logits 5,2.2,2,4.5,3,2.7 --entropy 1.0
  thermoscope demo

Run `thermoscope COMMAND --help` for each command's options.
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parse_logits(text: str) -> np.ndarray:
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(
                f"`--logits` must be comma-separated numbers (e.g. 5,2.2,-inf), got {item!r}."
            ) from None
    return np.array(values, dtype=np.float64)


def _parse_temperature(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number >= 0 (0 = greedy, inf = uniform), got {text!r}"
        ) from None


def _labels(args: argparse.Namespace, size: int) -> list[str]:
    if args.labels is None:
        return [str(i) for i in range(size)]
    labels = [s.strip() for s in args.labels.split(",")]
    if len(labels) != size:
        raise ValueError(
            f"`--labels` must have one label per logit ({size}), got {len(labels)} labels."
        )
    return labels


def _add_logits_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--logits",
        required=True,
        help="comma-separated scores, e.g. 5,2.2,2,4.5,3,2.7 (-inf masks a token)",
    )
    parser.add_argument("--labels", help="comma-separated names, one per logit")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _cmd_softmax(args: argparse.Namespace) -> str:
    from thermoscope.core import entropy, max_probability, softmax
    from thermoscope.tables import format_table

    z = _parse_logits(args.logits)
    labels = _labels(args, z.size)
    temps = list(args.temperature)
    probs = softmax(np.broadcast_to(z, (len(temps), z.size)), np.array(temps))
    ent = entropy(probs)
    top = max_probability(probs)
    if args.json:
        return json.dumps(
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
                    for t, p, h, m in zip(temps, probs, ent, top, strict=True)
                ],
            }
        )
    headers = ["T", *labels, "entropy", "max p"]
    rows = [
        [_fmt_t(t), *map(float, p), float(h), float(m)]
        for t, p, h, m in zip(temps, probs, ent, top, strict=True)
    ]
    note = f"entropy in nats; uniform over {z.size} would be ln {z.size} = {np.log(z.size):.4f}"
    return f"{format_table(headers, rows)}\n{note}"


def _fmt_t(t: float) -> str:
    return "inf" if np.isinf(t) else f"{t:g}"


def _cmd_sample(args: argparse.Namespace) -> str:
    from scipy import stats

    from thermoscope.sampling import Sampler
    from thermoscope.tables import format_table

    z = _parse_logits(args.logits)
    labels = _labels(args, z.size)
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
    if kept.size > 1:
        p_value: float | None = float(
            stats.chisquare(counts[kept], probs[kept] / probs[kept].sum() * args.n).pvalue
        )
    else:
        p_value = None
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
                "masked_draws": int(counts[probs == 0].sum()),
                "chi_square_p_value": p_value,
            }
        )
    rows = [[labels[i], int(i), float(probs[i]), float(freq[i]), int(counts[i])] for i in kept]
    table = format_table(["token", "index", "prob", "frequency", "count"], rows)
    dropped = [labels[i] for i in np.flatnonzero(probs == 0)]
    lines = [
        f"sampler: {sampler!r}",
        table,
        f"kept {kept.size} of {z.size} tokens; removed: {', '.join(dropped) or 'none'}",
        f"draws: {args.n} (seed {args.seed}); draws of removed tokens: "
        f"{int(counts[probs == 0].sum())}",
    ]
    if p_value is None:
        lines.append("chi-square: not applicable (a single token is kept; every draw is it)")
    else:
        lines.append(f"chi-square goodness of fit, frequencies vs probabilities: p = {p_value:.4f}")
    return "\n".join(lines)


def _cmd_entropy_target(args: argparse.Namespace) -> str:
    from thermoscope.core import entropy, softmax, temperature_for_entropy

    z = _parse_logits(args.logits)
    base = 2.0 if args.bits else None
    t = temperature_for_entropy(z, args.entropy, base=base)
    reached = float(entropy(softmax(z, t), base=base))
    unit = "bits" if args.bits else "nats"
    if args.json:
        return json.dumps(
            {"target": args.entropy, "unit": unit, "temperature": t, "entropy": reached}
        )
    return (
        f"temperature {t:.6g} gives entropy {reached:.6f} {unit} (target {args.entropy:g} {unit})"
    )


def _cmd_demo(args: argparse.Namespace) -> str:
    from thermoscope.tour import theory_tour

    return theory_tour(seed=args.seed)


def _glue_logits(argv: list[str]) -> list[str]:
    """Join ``--logits VALUE`` into ``--logits=VALUE``.

    argparse takes a value such as ``-1,2`` or ``-inf,0`` for an option, so
    negative logits would need ``--logits=...``; gluing them here lets users
    type what they mean.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--logits" and i + 1 < len(argv):
            out.append(f"--logits={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``thermoscope`` command (for docs and tests).

    Examples
    --------
    >>> build_parser().parse_args(["softmax", "--logits", "1,2", "-t", "0.5"]).temperature
    [0.5]
    """
    parser = _Parser(
        prog="thermoscope",
        description="Compute, sample, fit and see temperature: the T in softmax(z / T).",
        epilog=_EPILOG_MAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"thermoscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "softmax",
        help="probabilities, entropy and max probability at several temperatures",
        description="Print softmax(logits / T) for each temperature T, with entropy "
        "(nats) and max probability. T = 0 is the greedy limit, T = inf uniform.",
        epilog=_EPILOG_SOFTMAX,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_logits_arguments(p)
    p.add_argument(
        "-t",
        "--temperature",
        nargs="+",
        type=_parse_temperature,
        default=[0.1, 0.5, 1.0, 2.0, 5.0],
        help="temperatures (default: 0.1 0.5 1 2 5)",
    )
    p.set_defaults(run=_cmd_softmax)

    p = sub.add_parser(
        "sample",
        help="draw tokens through a sampler chain and compare with its probabilities",
        description="Apply temperature / top-k / top-p / min-p, draw n samples with a "
        "seed, and print kept tokens, probabilities, frequencies and a chi-square test.",
        epilog=_EPILOG_SAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_logits_arguments(p)
    p.add_argument("-t", "--temperature", type=_parse_temperature, default=1.0)
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
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=_cmd_sample)

    p = sub.add_parser(
        "entropy-target",
        help="the temperature at which the distribution reaches a given entropy",
        description="Solve entropy(softmax(logits / T)) = target for T (unique: entropy "
        "rises with T).",
        epilog=_EPILOG_ENTROPY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_logits_arguments(p)
    p.add_argument("--entropy", type=float, required=True, help="target entropy (nats)")
    p.add_argument("--bits", action="store_true", help="the target is in bits, not nats")
    p.set_defaults(run=_cmd_entropy_target)

    p = sub.add_parser(
        "demo",
        help="the main job: a guided tour of temperature, every number computed live",
        description="Print the theory tour: limits, entropy, free energy, symmetries, "
        "the seeds' worked examples recomputed, and sampling checked against theory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``thermoscope`` command line; return the exit status.

    Examples
    --------
    >>> main(["entropy-target", "--logits", "1,1", "--entropy", "0.6931471805599453"])
    temperature 0 gives entropy 0.693147 nats (target 0.693147 nats)
    0
    """
    parser = build_parser()
    args = parser.parse_args(_glue_logits(sys.argv[1:] if argv is None else list(argv)))
    if args.command is None:
        parser.print_help()
        return 2
    try:
        output: Any = args.run(args)
    except (ValueError, TypeError) as exc:
        print(f"thermoscope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
