"""Language models: thermoscope's samplers inside transformers' ``generate``.

- :func:`load_model` (:mod:`~thermoscope.generation.model`): the embedded
  model or any local causal LM folder, checked, offline.
- :class:`SamplerLogitsProcessor` (:mod:`~thermoscope.generation.processor`)
  runs any :class:`~thermoscope.sampling.Sampler` (with a per-step
  temperature schedule if wanted) as a ``LogitsProcessor``;
  :func:`generate_kwargs` (:mod:`~thermoscope.generation.config`) builds
  ``generate`` arguments in which it is the only warper,
  :func:`check_generation_config` says when it would not be.
- :class:`Mirostat` (:mod:`~thermoscope.generation.mirostat`): Mirostat 2.0
  as llama.cpp has it.
- :func:`generate_at_temperatures` (:mod:`~thermoscope.generation.sweep`):
  the same prompt at several temperatures, with diversity
  (:mod:`~thermoscope.generation.diversity`: :func:`distinct_n`,
  :func:`self_bleu`, :func:`repetition_rate`) and likelihood.
- :func:`next_token_table` and :func:`continue_prompt`
  (:mod:`~thermoscope.generation.next_token`): one step of one prompt, and
  one continuation of it.
- :func:`compare_dynamic` (:mod:`~thermoscope.generation.compare`): fixed
  against dynamic temperature strategies.
- :data:`TASK_PRESETS` (:mod:`~thermoscope.generation.task_presets`):
  temperature ranges and sampler settings per task.
- :func:`calibrate_language_model`
  (:mod:`~thermoscope.generation.lm_calibration`): a causal LM's next-token
  calibration over a text corpus, before and after one fitted temperature.

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
    "TASK_PRESETS",
    "Diversity",
    "GenerationResult",
    "LMCalibration",
    "LMMetrics",
    "Mirostat",
    "NextTokenTable",
    "Sample",
    "SamplerLogitsProcessor",
    "Strategy",
    "StrategyResult",
    "TaskPreset",
    "calibrate_language_model",
    "check_generation_config",
    "compare_dynamic",
    "continue_prompt",
    "distinct_n",
    "diversity",
    "dynamic_strategies",
    "embedded_model_path",
    "format_strategies",
    "generate_at_temperatures",
    "generate_kwargs",
    "get_preset",
    "load_model",
    "next_token_logits",
    "next_token_table",
    "presets_table",
    "read_corpus",
    "repetition_rate",
    "self_bleu",
]

_HOME = {
    "embedded_model_path": "model",
    "load_model": "model",
    "SamplerLogitsProcessor": "processor",
    "check_generation_config": "config",
    "generate_kwargs": "config",
    "Mirostat": "mirostat",
    "Diversity": "diversity",
    "distinct_n": "diversity",
    "diversity": "diversity",
    "repetition_rate": "diversity",
    "self_bleu": "diversity",
    "TASK_PRESETS": "task_presets",
    "TaskPreset": "task_presets",
    "get_preset": "task_presets",
    "presets_table": "task_presets",
    "GenerationResult": "sweep",
    "Sample": "sweep",
    "generate_at_temperatures": "sweep",
    "NextTokenTable": "next_token",
    "continue_prompt": "next_token",
    "next_token_logits": "next_token",
    "next_token_table": "next_token",
    "Strategy": "compare",
    "StrategyResult": "compare",
    "compare_dynamic": "compare",
    "dynamic_strategies": "compare",
    "format_strategies": "compare",
    "LMCalibration": "lm_calibration",
    "LMMetrics": "lm_calibration",
    "calibrate_language_model": "lm_calibration",
    "read_corpus": "lm_calibration",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'thermoscope.generation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"thermoscope.generation.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
