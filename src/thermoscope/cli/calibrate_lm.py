"""``thermoscope calibrate-lm``: next-token calibration of a causal LM over text files.

A thin shell over :func:`thermoscope.generation.lm_calibration.calibrate_language_model`:
reads the files (UTF-8 text only), runs the model once over them, fits one
temperature on a random part of the windows and prints the held-out
before/after table (ECE, smooth ECE, class-wise ECE, NLL, perplexity, Brier).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from thermoscope.cli._args import MAX_SEED, CommandParser, add_subcommand, integer_in
from thermoscope.cli._json import dumps

EXAMPLES = """\
  thermoscope calibrate-lm --text held_out/*.py
  thermoscope calibrate-lm --model ./gpt2 --text a.txt b.txt --max-tokens 50000 --plot rel.png
  thermoscope calibrate-lm --text notes.txt --json
"""


def register(sub: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``calibrate-lm`` subcommand."""
    p = add_subcommand(
        sub,
        "calibrate-lm",
        help="next-token calibration of a language model on text files, before/after one T",
        description="Run a causal language model over text files, fit one temperature on a "
        "random part of the windows (exact NLL optimum) and print ECE, smooth ECE, class-wise "
        "ECE, NLL, perplexity, Brier and accuracy on the held-out rest, before and after.",
        examples=EXAMPLES,
    )
    p.add_argument("--text", nargs="+", required=True, metavar="FILE", help="UTF-8 text files")
    p.add_argument(
        "--model", help="a local causal LM folder (default: the embedded tiny-python-gpt2)"
    )
    p.add_argument(
        "--max-tokens",
        type=integer_in("--max-tokens", 2, 2**62),
        help="score at most this many tokens (default: all)",
    )
    p.add_argument(
        "--batch-size",
        type=integer_in("--batch-size", 1, 4096),
        default=8,
        help="windows per forward pass (default 8)",
    )
    p.add_argument(
        "--window",
        type=integer_in("--window", 2, 2**20),
        help="tokens per window (default: the model's context, at most 1024)",
    )
    p.add_argument(
        "--n-bins", type=integer_in("--n-bins", 1, 10_000), default=15, help="ECE bins (15)"
    )
    p.add_argument(
        "--seed",
        type=integer_in("--seed", 0, MAX_SEED),
        default=0,
        help="seed of the fit/evaluation split (default 0)",
    )
    p.add_argument("--plot", help="save a before/after reliability diagram (e.g. rel.png)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> str:
    """Read, calibrate, plot and format for parsed ``calibrate-lm`` arguments."""
    from thermoscope.calibration import TemperatureBoundWarning
    from thermoscope.cli.calibrate import _check_plot
    from thermoscope.generation.lm_calibration import calibrate_language_model, read_corpus

    if args.plot:
        _check_plot(args.plot)
    texts = read_corpus(args.text, "--text")
    if args.model is not None:
        from thermoscope.generation.model import load_model

        try:
            model, tokenizer = load_model(args.model)
        except ValueError as exc:
            raise ValueError(str(exc).replace("`model`", "`--model`", 1)) from None
    else:
        from thermoscope.generation.model import load_model

        model, tokenizer = load_model()
    window = args.window
    if window is not None:
        context = getattr(model.config, "n_positions", None) or getattr(
            model.config, "max_position_embeddings", 1024
        )
        if window > context:
            raise ValueError(
                f"`--window` must be at most the model's context ({context}), got {window}."
            )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TemperatureBoundWarning)
        try:
            result = calibrate_language_model(
                texts,
                model=model,
                tokenizer=tokenizer,
                window=window,
                batch_size=args.batch_size,
                max_tokens=args.max_tokens,
                n_bins=args.n_bins,
                seed=args.seed,
            )
        except ValueError as exc:
            raise ValueError(str(exc).replace("`texts`", "`--text`", 1)) from None
    for w in caught:
        if issubclass(w.category, TemperatureBoundWarning):
            print(f"thermoscope calibrate-lm: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    saved = ""
    if args.plot:
        from thermoscope.plots import plot_reliability

        t = result.temperature
        plot_reliability(
            {
                "before (T = 1)": result.before.summary.curve,
                f"after (T = {t:.3g})": result.after.summary.curve,
            },
            title=f"Next-token reliability ({result.n_eval_tokens} held-out tokens)",
            save=args.plot,
        )
        saved = f"\nreliability diagram saved to {args.plot}"
    if args.json:
        return dumps(result.as_dict() | {"plot": args.plot})
    return f"{result}{saved}"
