"""The documented orders of a sampler chain, and how a chain is put in one.

Two named orders exist because the two ecosystems differ on one question:
does truncation see the tempered distribution (transformers: temperature
first) or the untempered one (llama.cpp: temperature last)?
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thermoscope.sampling.warpers import Warper

__all__ = ["LLAMA_CPP_ORDER", "TRANSFORMERS_ORDER", "arrange"]

#: Stages that read the token history, in both orders: biases, then penalties
#: (transformers: sequence bias, repetition penalty, no-repeat-n-gram; llama.cpp:
#: logit bias, then ``penalties`` = repeat, frequency, presence; then DRY).
_HISTORY = (
    "logit_bias",
    "sequence_bias",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
    "no_repeat_ngram",
    "dry",
)

#: transformers' order (``GenerationMixin._get_logits_processor``): biases and
#: penalties, then temperature, top-h, top-k, top-p, min-p, typical, epsilon,
#: eta. Steps transformers lacks sit next to their relatives: dynamic
#: temperature with temperature, p-less and top-nσ after the other truncations,
#: XTC after them (as in llama.cpp), adaptive-p last (it shapes the draw).
TRANSFORMERS_ORDER: tuple[str, ...] = (
    *_HISTORY,
    "temperature",
    "entropy_temperature",
    "top_h",
    "top_k",
    "top_p",
    "min_p",
    "typical",
    "epsilon",
    "eta",
    "p_less",
    "top_n_sigma",
    "xtc",
    "adaptive_p",
)

#: llama.cpp's default chain (``common_params_sampling.samplers``): logit bias,
#: penalties, DRY, top-nσ, top-k, typical, top-p, min-p, XTC, then temperature
#: (and dynatemp) last, so the truncations see the untempered distribution;
#: adaptive-p, when used, is the last stage. Steps llama.cpp lacks (epsilon,
#: eta, top-h, p-less, no-repeat-n-gram, sequence bias) sit with their relatives.
LLAMA_CPP_ORDER: tuple[str, ...] = (
    *_HISTORY,
    "top_n_sigma",
    "top_k",
    "typical",
    "top_p",
    "min_p",
    "epsilon",
    "eta",
    "top_h",
    "p_less",
    "xtc",
    "temperature",
    "entropy_temperature",
    "adaptive_p",
)


_NAMED_ORDERS = {"transformers": TRANSFORMERS_ORDER, "llama.cpp": LLAMA_CPP_ORDER}


def _order_key(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, type) and issubclass(item, Warper):
        return item.name
    raise TypeError(f"`order` entries must be warper classes or names, got {item!r}.")


def arrange(warpers: tuple[Warper, ...], order: str | Sequence[Any] | None) -> tuple[Warper, ...]:
    """``warpers`` in ``order``: a named order, ``"as_given"``, or a sequence of kinds."""
    if order == "as_given":
        return warpers
    if order is None:
        order = "transformers"
    if isinstance(order, str):
        if order not in _NAMED_ORDERS:
            raise ValueError(
                "`order` must be 'transformers', 'llama.cpp', 'as_given' or a sequence of "
                f"warper classes or names, got {order!r}."
            )
        names: Sequence[str] = _NAMED_ORDERS[order]
    else:
        names = [_order_key(item) for item in order]
    rank = {name: i for i, name in enumerate(names)}
    missing = sorted({w.name for w in warpers} - rank.keys())
    if missing:
        raise ValueError(
            f"`order` must mention every warper in the chain, got no place for {missing}."
        )
    # sorted() is stable: warpers of the same kind keep the order they were given in.
    return tuple(sorted(warpers, key=lambda w: rank[w.name]))
