"""Language models: thermoscope's samplers inside transformers' ``generate``.

- :class:`SamplerLogitsProcessor` runs any :class:`~thermoscope.sampling.Sampler`
  (with a per-step temperature schedule if wanted) as a ``LogitsProcessor``;
  :func:`generate_kwargs` builds ``generate`` arguments in which it is the
  only warper, :func:`check_generation_config` says when it would not be.
- :class:`Mirostat`: Mirostat 2.0 as llama.cpp has it.
- :func:`generate_at_temperatures`, :func:`next_token_table`,
  :func:`compare_dynamic`: the same prompt at several temperatures or
  strategies, with diversity (:func:`distinct_n`, :func:`self_bleu`,
  :func:`repetition_rate`) and likelihood.
- :data:`PRESETS`: temperature ranges and sampler settings per task.

Names load on first use, so ``import thermoscope.generation`` does not import
torch or transformers until a processor or a run is needed.

Examples
--------
>>> from thermoscope.generation import distinct_n, get_preset
>>> distinct_n([[1, 2, 1, 2]], 2)
0.6666666666666666
>>> get_preset("dialogue").temperature_range
(0.7, 1.0)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "PRESETS",
    "Diversity",
    "GenerationResult",
    "Mirostat",
    "NextTokenTable",
    "Preset",
    "Sample",
    "SamplerLogitsProcessor",
    "Strategy",
    "StrategyResult",
    "check_generation_config",
    "compare_dynamic",
    "continue_prompt",
    "distinct_n",
    "diversity",
    "dynamic_strategies",
    "generate_at_temperatures",
    "generate_kwargs",
    "get_preset",
    "load_model",
    "next_token_table",
    "presets_table",
    "repetition_rate",
    "self_bleu",
]

_HOME = {
    "SamplerLogitsProcessor": "processor",
    "check_generation_config": "processor",
    "generate_kwargs": "processor",
    "Mirostat": "mirostat",
    "Diversity": "diversity",
    "distinct_n": "diversity",
    "diversity": "diversity",
    "repetition_rate": "diversity",
    "self_bleu": "diversity",
    "PRESETS": "presets",
    "Preset": "presets",
    "get_preset": "presets",
    "presets_table": "presets",
    "GenerationResult": "runs",
    "NextTokenTable": "runs",
    "Sample": "runs",
    "Strategy": "runs",
    "StrategyResult": "runs",
    "compare_dynamic": "runs",
    "continue_prompt": "runs",
    "dynamic_strategies": "runs",
    "generate_at_temperatures": "runs",
    "load_model": "runs",
    "next_token_logits": "runs",
    "next_token_table": "runs",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'thermoscope.generation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"thermoscope.generation.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
