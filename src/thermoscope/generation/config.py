"""``generate`` arguments in which a thermoscope processor is the only warper.

A thermoscope processor must be the only warper. ``generate`` adds its own
temperature, top-k, top-p, min-p, typical, epsilon, eta and top-h warpers
*after* every custom processor, from the model's generation config and the
call's arguments, and transformers' default ``top_k`` is 50: a bare
``generate(do_sample=True, logits_processor=[p])`` silently truncates to 50
tokens after the sampler. :func:`generate_kwargs` builds arguments that
switch every built-in warper off (and raises if the caller asks for one);
:func:`check_generation_config` says whether a given config and arguments
would warp a second time.

Examples
--------
>>> from thermoscope.generation import SamplerLogitsProcessor
>>> from thermoscope.sampling import Sampler
>>> p = SamplerLogitsProcessor(Sampler.from_options(temperature=0.5, top_k=2))
>>> sorted(generate_kwargs(p, max_new_tokens=5))[:4]
['do_sample', 'epsilon_cutoff', 'eta_cutoff', 'logits_processor']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import GenerationConfig
from transformers.generation import logits_process as _lp

__all__ = ["NEUTRAL_WARPER_SETTINGS", "check_generation_config", "generate_kwargs"]


#: ``generate`` arguments that switch each of transformers' own warpers off.
#: Keys missing from the installed transformers' ``GenerationConfig`` are skipped.
NEUTRAL_WARPER_SETTINGS: Mapping[str, Any] = {
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "top_h": None,
}

# transformers' fallbacks for settings that are None in both the call and the
# model's generation config (GenerationConfig._get_default_generation_params):
# top_k = 50 is the one that warps.
_TRANSFORMERS_DEFAULTS: Mapping[str, Any] = {
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
}

# transformers' own warpers, refused inside `logits_processor` next to ours.
_WARPER_CLASSES: tuple[type, ...] = tuple(
    getattr(_lp, name)
    for name in (
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
        "MinPLogitsWarper",
        "TypicalLogitsWarper",
        "EpsilonLogitsWarper",
        "EtaLogitsWarper",
        "TopHLogitsWarper",
    )
    if hasattr(_lp, name)
)


def _warps(name: str, value: Any) -> bool:
    """Whether ``generate`` builds a warper for the setting ``name`` at ``value``."""
    if value is None:
        return False
    if name == "temperature":
        return bool(value != 1.0)
    if name == "top_k":
        return bool(value != 0)
    if name in ("top_p", "typical_p"):
        return bool(value < 1.0)
    if name in ("epsilon_cutoff", "eta_cutoff"):
        return bool(0.0 < value < 1.0)
    return True  # min_p, top_h: any value builds a warper


def _fresh_config() -> Any:
    # GenerationConfig's __init__ is untyped: one Any handle keeps mypy strict.
    make: Any = GenerationConfig
    return make()


def _known_settings() -> dict[str, Any]:
    fresh = _fresh_config()
    return {k: v for k, v in NEUTRAL_WARPER_SETTINGS.items() if hasattr(fresh, k)}


def check_generation_config(generation_config: Any = None, **kwargs: Any) -> None:
    """Raise if ``generate`` would warp the scores after a thermoscope processor.

    Parameters
    ----------
    generation_config : transformers.GenerationConfig, optional
        The model's config (``model.generation_config``); ``None`` means a
        fresh one, whose unset values fall back to transformers' defaults.
    **kwargs
        The arguments that will be passed to ``generate`` (they override the config).

    Raises
    ------
    ValueError
        Naming every setting that would add a warper (``top_k=50`` when it
        only comes from transformers' default), and how to switch it off.

    Examples
    --------
    >>> check_generation_config(top_k=0, do_sample=True)
    >>> check_generation_config(do_sample=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `generation_config` must not warp the scores a second time ...
    """
    config = _fresh_config() if generation_config is None else generation_config
    if not isinstance(config, GenerationConfig):
        raise TypeError(
            "`generation_config` must be a transformers.GenerationConfig, "
            f"got {type(config).__name__}."
        )
    active = []
    for name in _known_settings():
        if name in kwargs:
            value, origin = kwargs[name], ""
        elif getattr(config, name, None) is not None:
            value, origin = getattr(config, name), " (from the generation config)"
        else:
            value, origin = _TRANSFORMERS_DEFAULTS.get(name), " (transformers' default)"
        if _warps(name, value):
            active.append(f"{name}={value!r}{origin}")
    if active:
        raise ValueError(
            "`generation_config` must not warp the scores a second time after a "
            f"thermoscope processor, got {', '.join(active)}. Put these settings in the "
            "Sampler and call generate(**generate_kwargs(processor, ...)), which switches "
            "transformers' warpers off (temperature=1.0, top_k=0, top_p=1.0, ...)."
        )


def generate_kwargs(*processors: Any, **kwargs: Any) -> dict[str, Any]:
    """Arguments for ``model.generate`` that sample through ``processors`` and nothing else.

    Sets ``do_sample=True``, every one of transformers' warpers to its "off"
    value (:data:`NEUTRAL_WARPER_SETTINGS`: ``temperature=1.0``, ``top_k=0``,
    ``top_p=1.0``, ...), and appends ``processors`` after any
    ``logits_processor`` given in ``kwargs`` (so repetition penalties and the
    like run before the sampler). Other ``kwargs`` pass through unchanged.

    Parameters
    ----------
    *processors : LogitsProcessor
        Usually one :class:`SamplerLogitsProcessor` or
        :class:`~thermoscope.generation.mirostat.Mirostat`.
    **kwargs
        Further ``generate`` arguments (``max_new_tokens``, ``attention_mask``...).

    Raises
    ------
    ValueError
        If ``kwargs`` asks for a warper of its own (``top_p=0.9``,
        ``temperature=0.7``, a ``TopPLogitsWarper`` in ``logits_processor``...),
        for ``do_sample=False`` or for beam search (``num_beams > 1``).

    Examples
    --------
    >>> from thermoscope.generation import SamplerLogitsProcessor
    >>> from thermoscope.sampling import Sampler
    >>> kw = generate_kwargs(SamplerLogitsProcessor(Sampler.greedy()), max_new_tokens=3)
    >>> kw["do_sample"], kw["top_k"], kw["temperature"], kw["max_new_tokens"]
    (True, 0, 1.0, 3)
    >>> generate_kwargs(SamplerLogitsProcessor(Sampler.greedy()), top_p=0.9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `top_p` must be left to the Sampler ...
    """
    if not processors:
        raise ValueError("`processors` must name at least one logits processor, got none.")
    for name, value in kwargs.items():
        if name in NEUTRAL_WARPER_SETTINGS and _warps(name, value):
            raise ValueError(
                f"`{name}` must be left to the Sampler (it is the only warper), got "
                f"{name}={value!r}. Put it in the Sampler, e.g. "
                f"Sampler.from_options({'epsilon' if name == 'epsilon_cutoff' else name}=...)."
            )
    if kwargs.get("do_sample", True) is not True:
        raise ValueError(
            f"`do_sample` must be True (the processor samples), got {kwargs['do_sample']!r}; "
            "for greedy decoding use Sampler.greedy()."
        )
    if (kwargs.get("num_beams") or 1) > 1:
        raise ValueError(
            f"`num_beams` must be 1 (thermoscope processors sample; beam search re-ranks "
            f"with log-probabilities), got {kwargs['num_beams']!r}."
        )
    extra = list(kwargs.pop("logits_processor", None) or [])
    for proc in extra:
        if isinstance(proc, _WARPER_CLASSES):
            raise ValueError(
                "`logits_processor` must not contain transformers' warpers next to a "
                f"thermoscope processor, got {type(proc).__name__}."
            )
    out = dict(_known_settings())
    out.update(kwargs)
    out["do_sample"] = True
    out["logits_processor"] = _lp.LogitsProcessorList([*extra, *processors])
    return out
