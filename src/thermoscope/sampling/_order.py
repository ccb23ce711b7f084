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

#: transformers' order (``GenerationMixin._get_logits_processor``): temperature
#: first, then top-k, top-p, min-p, typical, epsilon. Steps transformers lacks
#: sit next to their relatives: dynamic temperature with temperature, top-nσ last.
TRANSFORMERS_ORDER: tuple[str, ...] = (
    "temperature",
    "entropy_temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical",
    "epsilon",
    "top_n_sigma",
)

#: llama.cpp's default chain (``common_params_sampling.samplers``): top-nσ,
#: top-k, typical, top-p, min-p, then temperature (and dynatemp) last, so the
#: truncations see the untempered distribution. llama.cpp has no epsilon step;
#: it sits with the other truncations.
LLAMA_CPP_ORDER: tuple[str, ...] = (
    "top_n_sigma",
    "top_k",
    "typical",
    "top_p",
    "min_p",
    "epsilon",
    "temperature",
    "entropy_temperature",
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
