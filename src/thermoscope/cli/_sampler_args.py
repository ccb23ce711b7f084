"""The sampler options of ``sample`` and ``generate``: one set of flags, one way to a Sampler.

Every flag maps to the :meth:`~thermoscope.sampling.Sampler.from_options`
keyword of the same name; a flag left out is off, or the ``--preset``'s
value. Range checks are the library's, so a bad value gets the same message
on the command line as in Python, naming the option.
"""

from __future__ import annotations

import argparse
from typing import Any

from thermoscope.cli._args import parse_temperature

__all__ = ["add_sampler_arguments", "parse_history", "sampler_from_args", "sampler_options"]

#: flag dest -> (from_options keyword, type, help)
_TRUNCATION: tuple[tuple[str, str, Any, str], ...] = (
    ("--top-k", "top_k", int, "keep the k most likely (k >= 1)"),
    ("--top-p", "top_p", float, "nucleus mass in (0, 1]"),
    ("--min-p", "min_p", float, "keep p >= min_p * max p, in [0, 1]"),
    ("--typical-p", "typical_p", float, "locally typical mass in (0, 1]"),
    ("--epsilon", "epsilon", float, "drop tokens with p < epsilon"),
    ("--eta", "eta", float, "eta-sampling cutoff in (0, 1) (transformers' eta_cutoff)"),
    ("--top-h", "top_h", float, "Top-H entropy budget in (0, 1] (transformers' top_h)"),
    ("--top-n-sigma", "top_n_sigma", float, "keep logits >= max - n * std (n >= 0)"),
)
_HISTORY: tuple[tuple[str, str, Any, str], ...] = (
    ("--repetition-penalty", "repetition_penalty", float, "> 0; 1 = off (transformers)"),
    ("--frequency-penalty", "frequency_penalty", float, "subtract penalty * count (OpenAI)"),
    ("--presence-penalty", "presence_penalty", float, "subtract penalty if seen (OpenAI)"),
    ("--penalty-last-n", "penalty_last_n", int, "penalties see the last n tokens only"),
    ("--no-repeat-ngram", "no_repeat_ngram_size", int, "ban repeating an n-gram (n >= 1)"),
    ("--dry-multiplier", "dry_multiplier", float, "DRY penalty strength; 0 = off"),
    ("--dry-base", "dry_base", float, "DRY growth per repeated token (default 1.75)"),
    ("--dry-allowed-length", "dry_allowed_length", int, "repeats this long are free (2)"),
    ("--dry-last-n", "dry_last_n", int, "DRY looks at the last n tokens (-1 = all)"),
)
_OTHER: tuple[tuple[str, str, Any, str], ...] = (
    ("--xtc-probability", "xtc_probability", float, "XTC: chance per row to cut top choices"),
    ("--xtc-threshold", "xtc_threshold", float, "XTC: top choices are p >= this (0.1)"),
    ("--adaptive-target", "adaptive_target", float, "adaptive-p target probability"),
    ("--adaptive-decay", "adaptive_decay", float, "adaptive-p EMA decay (0.9)"),
)


def add_sampler_arguments(p: argparse.ArgumentParser, *, one_call: bool = True) -> None:
    """Add the sampler flags, grouped, with ``--order``.

    ``one_call`` (``sample``): also ``-t``, ``--preset`` (an engine's chain)
    and ``--history``. ``generate`` has its own ``-t`` (several temperatures)
    and ``--preset``, and the model's tokens are the history.
    """
    from thermoscope.sampling.engines import ENGINE_PRESETS

    chain = p.add_argument_group("the sampler chain")
    if one_call:
        chain.add_argument(
            "-t",
            "--temperature",
            type=parse_temperature,
            default=None,
            help="temperature >= 0 (0 = greedy, inf = uniform; default 1, or the preset's)",
        )
    for flag, dest, kind, text in _TRUNCATION:
        chain.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    chain.add_argument(
        "--p-less",
        dest="p_less",
        nargs="?",
        const=True,
        default=None,
        choices=["p-less", "p-less-norm"],
        help="p-less sampling, parameter-free (optionally the p-less-norm variant)",
    )
    chain.add_argument(
        "--order",
        default=None,
        choices=["transformers", "llama.cpp"],
        help="transformers: temperature first (default); llama.cpp: temperature last",
    )
    if one_call:
        chain.add_argument(
            "--preset",
            default=None,
            choices=list(ENGINE_PRESETS),
            help="start from an engine's default chain (see `thermoscope presets`); "
            "flags given override its values",
        )
    hist = p.add_argument_group(
        "history-aware stages (they read " + ("--history)" if one_call else "the tokens so far)")
    )
    if one_call:
        hist.add_argument(
            "--history",
            default=None,
            help="the token ids generated so far, comma-separated (e.g. 3,1,4,1,5)",
        )
    for flag, dest, kind, text in _HISTORY:
        hist.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    hist.add_argument(
        "--logit-bias",
        default=None,
        help="add a bias to tokens: ID=BIAS,... (e.g. 2=-inf,5=1.5)",
    )
    other = p.add_argument_group("random and stateful stages")
    for flag, dest, kind, text in _OTHER:
        other.add_argument(flag, dest=dest, type=kind, default=None, help=text)


def parse_history(text: str | None) -> list[int] | None:
    """``--history`` as a list of token ids (None when not given).

    Examples
    --------
    >>> parse_history("3, 1,4")
    [3, 1, 4]
    >>> parse_history("") is None
    True
    """
    if text is None or not text.strip():
        return None
    out = []
    for item in text.split(","):
        try:
            out.append(int(item.strip()))
        except ValueError:
            raise ValueError(
                f"`--history` must be comma-separated token ids (e.g. 3,1,4), got {item!r}."
            ) from None
    return out


def _parse_bias(text: str) -> dict[int, float]:
    """``--logit-bias`` ``ID=BIAS,...`` as a mapping."""
    out: dict[int, float] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[int(key.strip())] = float(value.strip())
        except ValueError:
            raise ValueError(
                f"`--logit-bias` must be ID=BIAS pairs, comma-separated (e.g. 2=-inf,5=1.5), "
                f"got {item!r}."
            ) from None
    return out


def sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    """The :meth:`Sampler.from_options` keywords (``order`` included) the parsed flags give.

    An engine ``--preset``'s options come first, the flags given override
    them. ``--top-k`` must be >= 1 here: the library reads ``top_k=0`` as
    "no top-k step"; on the command line that is spelled by leaving it out.
    """
    from thermoscope.sampling.engines import ENGINE_PRESETS, preset_options

    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"`--top-k` must be an integer >= 1, got {args.top_k}.")
    preset = getattr(args, "preset", None)
    keys = ["temperature", "p_less"] + [d for _, d, _, _ in _TRUNCATION + _HISTORY + _OTHER]
    given = {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}
    if getattr(args, "logit_bias", None):
        given["logit_bias"] = _parse_bias(args.logit_bias)
    # generate's --preset may name a task preset instead: only engines are read here.
    engine = preset if preset in ENGINE_PRESETS else None
    return preset_options(engine, given, args.order)


def sampler_from_args(args: argparse.Namespace) -> Any:
    """The Sampler the parsed flags describe (see :func:`sampler_options`)."""
    from thermoscope.sampling import Sampler

    return Sampler.from_options(**sampler_options(args))
