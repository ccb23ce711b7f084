"""Generation-style options to sampler stages: the one home of each option's "off" value.

:meth:`~thermoscope.sampling.Sampler.from_options` is the public entry; the
CLI, the explorer, the notebook widgets and the engine presets all build
their samplers through it, so one setting means one chain everywhere.

An option is off when it is ``None`` or a scalar equal to its neutral value
(the value that keeps every token and changes no logit), as transformers'
``generate``, vLLM and llama.cpp treat them. Options that only tune another
one (``dry_base`` for ``dry_multiplier``, ``xtc_threshold`` for
``xtc_probability``, ``penalty_last_n`` for the penalties) never build a step
by themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from thermoscope._validation import check_integer
from thermoscope.sampling.warpers import (
    Epsilon,
    MinP,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    Warper,
)

__all__ = ["OFF", "build_steps"]

#: Each option that builds a step, and its "off" value (None: only None is off).
OFF: Mapping[str, Any] = {
    "logit_bias": None,
    "sequence_bias": None,
    "repetition_penalty": 1.0,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
    "no_repeat_ngram_size": 0,
    "dry_multiplier": 0.0,
    "temperature": 1.0,
    "top_h": None,
    "top_k": 0,
    "top_p": 1.0,
    "min_p": 0.0,
    "typical_p": 1.0,
    "epsilon": 0.0,
    "eta": 0.0,
    "p_less": None,  # and False
    "top_n_sigma": None,
    "xtc_probability": 0.0,
    "adaptive_target": None,
}


def _on(options: Mapping[str, Any], name: str) -> bool:
    """Whether option ``name`` builds its step: given, and not its scalar "off" value.

    A value that is not a number (a string, say) builds the step, whose own
    check then names the argument.
    """
    value = options.get(name)
    if value is None:
        return False
    off = OFF[name]
    if name == "p_less" and value is False:
        return False  # p-less is a switch: True (or a variant name) builds it
    if off is None or np.ndim(value) != 0 or isinstance(value, Mapping):
        return True
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return True  # True == 1 is top_p's "off": the step's own check refuses it instead
    try:
        return bool(value != off)
    except (TypeError, ValueError):
        return True


def build_steps(options: Mapping[str, Any]) -> list[Warper]:
    """The steps ``options`` switch on, each validated by its own class.

    Examples
    --------
    >>> [w.name for w in build_steps({"temperature": 0.7, "top_k": 0, "top_p": 0.9})]
    ['temperature', 'top_p']
    """
    if options.get("top_k") is not None:
        # 0 is "off" here, so the floor a message states is 0, not TopK's 1.
        k = check_integer(options["top_k"], "top_k", minimum=0)
        if k.ndim == 0 and k == 0:
            options = {**options, "top_k": None}
    keep = {"min_tokens_to_keep": options.get("min_tokens_to_keep", 1)}
    last_n = options.get("penalty_last_n")
    steps: list[Warper] = []
    if _on(options, "logit_bias"):
        from thermoscope.sampling.penalties import LogitBias

        steps.append(LogitBias(options["logit_bias"]))
    if _on(options, "sequence_bias"):
        from thermoscope.sampling.penalties import SequenceBias

        steps.append(SequenceBias(options["sequence_bias"]))
    if _on(options, "repetition_penalty"):
        from thermoscope.sampling.penalties import RepetitionPenalty

        steps.append(RepetitionPenalty(options["repetition_penalty"], last_n=last_n))
    if _on(options, "frequency_penalty"):
        from thermoscope.sampling.penalties import FrequencyPenalty

        steps.append(FrequencyPenalty(options["frequency_penalty"], last_n=last_n))
    if _on(options, "presence_penalty"):
        from thermoscope.sampling.penalties import PresencePenalty

        steps.append(PresencePenalty(options["presence_penalty"], last_n=last_n))
    if _on(options, "no_repeat_ngram_size"):
        from thermoscope.sampling.penalties import NoRepeatNGram

        steps.append(NoRepeatNGram(options["no_repeat_ngram_size"]))
    if _on(options, "dry_multiplier"):
        from thermoscope.sampling.dry import DRY

        dry = {
            key: options[f"dry_{key}"]
            for key in ("base", "allowed_length", "last_n", "sequence_breakers")
            if options.get(f"dry_{key}") is not None
        }
        if options.get("tokenizer") is not None:
            dry["tokenizer"] = options["tokenizer"]
        elif "sequence_breakers" not in dry:
            # llama.cpp's default breakers are strings ("\n", ":", ...): without a
            # tokenizer to find their tokens, DRY runs with none (documented).
            dry["sequence_breakers"] = ()
        steps.append(DRY(options["dry_multiplier"], **dry))
    if _on(options, "temperature"):
        steps.append(Temperature(options["temperature"]))
    if _on(options, "top_h"):
        from thermoscope.sampling.entropy_cuts import TopH

        steps.append(TopH(options["top_h"]))
    if _on(options, "top_k"):
        steps.append(TopK(options["top_k"], **keep))
    if _on(options, "top_p"):
        steps.append(TopP(options["top_p"], **keep))
    if _on(options, "min_p"):
        steps.append(MinP(options["min_p"], **keep))
    if _on(options, "typical_p"):
        steps.append(Typical(options["typical_p"], **keep))
    if _on(options, "epsilon"):
        steps.append(Epsilon(options["epsilon"], **keep))
    if _on(options, "eta"):
        from thermoscope.sampling.entropy_cuts import Eta

        steps.append(Eta(options["eta"], **keep))
    if _on(options, "p_less"):
        from thermoscope.sampling.entropy_cuts import PLess

        steps.append(PLess() if options["p_less"] is True else PLess(options["p_less"]))
    if _on(options, "top_n_sigma"):
        steps.append(TopNSigma(options["top_n_sigma"]))
    if _on(options, "xtc_probability"):
        from thermoscope.sampling.xtc import XTC

        threshold = options.get("xtc_threshold")
        steps.append(XTC(options["xtc_probability"], 0.1 if threshold is None else threshold))
    if _on(options, "adaptive_target"):
        from thermoscope.sampling.adaptive_p import AdaptiveP

        decay = options.get("adaptive_decay")
        steps.append(
            AdaptiveP(options["adaptive_target"])
            if decay is None
            else AdaptiveP(options["adaptive_target"], decay=decay)
        )
    return steps
