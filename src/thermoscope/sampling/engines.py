"""The serving engines' default sampler chains, to reproduce "what would X sample here".

Each :class:`EnginePreset` records an engine's default settings and its stage
order, read from its source (cited per preset), and builds the equivalent
:class:`~thermoscope.sampling.Sampler` with
:meth:`~thermoscope.sampling.Sampler.from_options`. ``thermoscope sample
--preset llama.cpp`` and ``thermoscope presets`` use them.

Examples
--------
>>> from thermoscope.sampling.engines import ENGINE_PRESETS
>>> list(ENGINE_PRESETS)
['transformers', 'llama.cpp', 'vllm', 'openai']
>>> [w.name for w in ENGINE_PRESETS["llama.cpp"].sampler().warpers]
['top_k', 'top_p', 'min_p', 'temperature']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from thermoscope._tables import format_table
from thermoscope.sampling.sampler import Sampler

__all__ = ["ENGINE_PRESETS", "EnginePreset", "engines_table", "preset_options"]


@dataclass(frozen=True)
class EnginePreset:
    """One engine's default sampling settings and stage order.

    Attributes
    ----------
    name : str
        The preset's name (``--preset NAME``).
    title : str
        The engine and the call whose defaults these are.
    options : mapping
        :meth:`Sampler.from_options` keywords; options left out are off.
    order : str
        ``"transformers"`` or ``"llama.cpp"``: where the temperature runs.
    source : str
        Where the defaults were read (file and setting names).
    note : str
        What a user should know (e.g. "greedy unless do_sample=True").

    Examples
    --------
    >>> p = ENGINE_PRESETS["transformers"]
    >>> p.options["top_k"], p.order
    (50, 'transformers')
    """

    name: str
    title: str
    options: Mapping[str, Any] = field(repr=False)
    order: str
    source: str
    note: str

    def sampler(self, **overrides: Any) -> Sampler:
        """The preset's sampler; ``overrides`` replace or add :meth:`Sampler.from_options` keywords.

        Examples
        --------
        >>> ENGINE_PRESETS["llama.cpp"].sampler(temperature=0.2).warpers[-1]
        Temperature(temperature=0.2)
        """
        return Sampler.from_options(**preset_options(self.name, overrides))

    def describe(self) -> str:
        """The settings that are on, as ``name=value`` pairs.

        Examples
        --------
        >>> ENGINE_PRESETS["openai"].describe()
        'temperature=1.0, top_p=1.0'
        """
        return ", ".join(f"{k}={v}" for k, v in self.options.items())


ENGINE_PRESETS: Mapping[str, EnginePreset] = MappingProxyType(
    {
        p.name: p
        for p in (
            EnginePreset(
                "transformers",
                "Hugging Face transformers, generate(do_sample=True)",
                {"temperature": 1.0, "top_k": 50, "top_p": 1.0},
                "transformers",
                "GenerationConfig._get_default_generation_params (transformers 5.x): "
                "temperature 1.0, top_k 50, top_p 1.0, typical_p 1.0, repetition_penalty 1.0",
                "generate() is greedy unless do_sample=True (or the model's "
                "generation_config.json says otherwise); these are the values it then samples with",
            ),
            EnginePreset(
                "llama.cpp",
                "llama.cpp (llama-cli, llama-server), default sampler chain",
                {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "temperature": 0.8},
                "llama.cpp",
                "common/common.h common_params_sampling: samplers = penalties, dry, "
                "top_n_sigma, top_k, typ_p, top_p, min_p, xtc, temperature; top_k 40, "
                "top_p 0.95, min_p 0.05, temp 0.80; penalties, DRY, XTC, typical, "
                "top-n-sigma off by default",
                "temperature runs last: truncation sees the untempered distribution",
            ),
            EnginePreset(
                "vllm",
                "vLLM SamplingParams()",
                {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0},
                "transformers",
                "vllm/sampling_params.py SamplingParams: temperature 1.0, top_p 1.0, "
                "top_k 0 (off), min_p 0.0, repetition/frequency/presence penalties off",
                "pure sampling from the model's distribution unless the request or the "
                "model's generation_config sets more",
            ),
            EnginePreset(
                "openai",
                "OpenAI-compatible chat/completions API",
                {"temperature": 1.0, "top_p": 1.0},
                "transformers",
                "API reference: temperature default 1 (range 0-2), top_p default 1, "
                "frequency_penalty and presence_penalty default 0",
                "the API samples with T first; change temperature or top_p, not both",
            ),
        )
    }
)


def preset_options(
    preset: str | None, given: Mapping[str, Any], order: str | None = None
) -> dict[str, Any]:
    """:meth:`Sampler.from_options` keywords: the preset's settings and order, then ``given``.

    ``given`` options replace the preset's; ``order`` replaces its order.
    Without a preset and an order, ``order`` is left out (the Sampler's default).

    Examples
    --------
    >>> preset_options("llama.cpp", {"temperature": 0.2})
    {'top_k': 40, 'top_p': 0.95, 'min_p': 0.05, 'temperature': 0.2, 'order': 'llama.cpp'}
    >>> preset_options(None, {"top_p": 0.9})
    {'top_p': 0.9}
    """
    options: dict[str, Any] = {}
    if preset is not None:
        options.update(ENGINE_PRESETS[preset].options)
        order = order or ENGINE_PRESETS[preset].order
    options.update(given)
    if order is not None:
        options["order"] = order
    return options


def engines_table() -> str:
    """The engine presets as a text table.

    Examples
    --------
    >>> print(engines_table().splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    preset  engine  settings  order
    """
    rows = [[p.name, p.title, p.describe(), p.order] for p in ENGINE_PRESETS.values()]
    return format_table(["preset", "engine", "settings", "order"], rows)
