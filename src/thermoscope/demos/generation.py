"""Generation at several temperatures with the embedded language model.

The embedded model (a small GPT-2 trained on the Python standard library's
sources) continues ``def parse(`` at T = 0.2, 0.7 and 1.2: at 0.2 the samples
are near-copies of the model's favourite continuation, at 1.2 they scatter.
The diversity table (distinct-n up, self-BLEU down) and the mean
log-probability under the model (down) put numbers on it, and the
next-token table shows the distribution that is being sharpened or flattened.

Examples
--------
>>> from thermoscope.demos.generation import TEMPERATURES, PROMPT
>>> TEMPERATURES, PROMPT
((0.2, 0.7, 1.2), 'def parse(')
"""

from __future__ import annotations

import pathlib
from typing import Any

from thermoscope._validation import check_seed
from thermoscope.demos._output import prepare_out_dir, save_outputs

__all__ = ["PROMPT", "TEMPERATURES", "generation_demo", "generation_figure"]

#: The demo's temperatures and prompt.
TEMPERATURES = (0.2, 0.7, 1.2)
PROMPT = "def parse("

#: File names written under ``out_dir``.
TEXT_FILE = "generation.txt"
FIGURE_FILE = "generation_diversity.png"


def generation_figure(result: Any) -> Any:
    """Distinct-1/2/3, self-BLEU and repetition against temperature (a matplotlib Figure).

    Examples
    --------
    >>> import math
    >>> from thermoscope.generation.diversity import Diversity
    >>> from thermoscope.generation import GenerationResult, Sample
    >>> r = GenerationResult("p", (0.5, 1.0), (Sample(0.5, 0, "a", (1,), -1.0),
    ...     Sample(1.0, 0, "b", (2,), -2.0)), {0.5: Diversity(0.2, 0.3, 0.4, 0.9, 0.5),
    ...     1.0: Diversity(0.8, 0.9, 1.0, 0.1, 0.0)})
    >>> [line.get_label() for line in generation_figure(r).axes[0].lines][:2]
    ['distinct-1', 'distinct-2']
    """
    from matplotlib.figure import Figure

    temps = list(result.temperatures)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for attr, label, style in (
        ("distinct_1", "distinct-1", "o-"),
        ("distinct_2", "distinct-2", "s-"),
        ("distinct_3", "distinct-3", "^-"),
        ("self_bleu", "self-BLEU", "k--"),
        ("repetition", "repetition (seq-rep-4)", "r:"),
    ):
        ax.plot(temps, [getattr(result.diversity[t], attr) for t in temps], style, label=label)
    ax.set_xlabel("sampling temperature T")
    ax.set_ylabel("score (0 to 1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Hotter sampling, more varied continuations of {result.prompt!r}")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def generation_demo(
    out_dir: pathlib.Path | None = None,
    *,
    seed: int = 0,
    quick: bool = False,
    model: str | pathlib.Path | None = None,
) -> str:
    """Samples of the embedded model at T = 0.2, 0.7, 1.2 with diversity and next-token tables.

    Parameters
    ----------
    out_dir : pathlib.Path, optional
        Folder for ``generation.txt`` (the report) and
        ``generation_diversity.png``; nothing is written when omitted.
    seed : int, default 0
    quick : bool, default False
        2 samples of 16 tokens per temperature instead of 4 of 60.
    model : str or Path, optional
        Another local causal-LM folder instead of the embedded model.

    Examples
    --------
    >>> generation_demo(seed=-1)
    Traceback (most recent call last):
    ...
    ValueError: `seed` must be an integer >= 0, got -1.
    """
    from thermoscope.generation import (
        generate_at_temperatures,
        load_model,
        next_token_table,
    )

    s = check_seed(seed)
    out = prepare_out_dir(out_dir)
    lm, tokenizer = load_model(model)
    n, max_new_tokens = (2, 16) if quick else (4, 60)
    result = generate_at_temperatures(
        lm, tokenizer, PROMPT, TEMPERATURES, n=n, max_new_tokens=max_new_tokens, seed=s,
        progress=False,
    )  # fmt: skip
    table = next_token_table(lm, tokenizer, PROMPT, TEMPERATURES, top=8)
    name = "the embedded model" if model is None else f"the model in {str(model)!r}"
    lo, hi = result.diversity[TEMPERATURES[0]], result.diversity[TEMPERATURES[-1]]
    lines = [
        "What you see: a small language model (trained on Python's standard library) "
        f"continues {PROMPT!r} at three temperatures, and numbers that measure the samples.",
        "Why it matters: this is the temperature knob of every chat model. Cold sampling "
        "repeats the likeliest phrase; hot sampling invents and loses the thread.",
        'Try it: thermoscope generate --prompt "def parse(" -t 0.7 samples one continuation; '
        "thermoscope explore shows the next-token distribution of any prompt.",
        "",
        f"Generation with {name}: {n} samples of up to {max_new_tokens} tokens per "
        f"temperature (seed {s})",
        "",
        result.format(),
        "",
        "Next-token distribution after the prompt:",
        table.format(),
        "",
        f"From T = {TEMPERATURES[0]:g} to T = {TEMPERATURES[-1]:g}: distinct-2 "
        f"{lo.distinct_2:.3f} -> {hi.distinct_2:.3f}, repetition {lo.repetition:.3f} -> "
        f"{hi.repetition:.3f}, mean log p {result.mean_logprob(TEMPERATURES[0]):.3f} -> "
        f"{result.mean_logprob(TEMPERATURES[-1]):.3f}: hotter sampling buys variety with "
        "likelihood.",
    ]
    if out is not None:
        written = save_outputs(
            out,
            "\n".join(lines),
            TEXT_FILE,
            generation_figure(result),
            FIGURE_FILE,
            caption="Distinct n-grams rise and self-BLEU and repetition fall as T rises: "
            "the samples stop copying each other and themselves.",
        )
        lines += ["", *(f"wrote {p}" for p in written)]
    return "\n".join(lines)
