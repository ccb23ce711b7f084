"""thermoscope: compute, sample, fit and see temperature, the T in softmax(z / T).

The public API, in one screen. Each name is imported from its home the first
time it is used (PEP 562), so ``import thermoscope`` loads numpy only; torch,
scipy, matplotlib and transformers load when a function that needs them runs.

Examples
--------
>>> import thermoscope as ts
>>> ts.softmax([2.0, 1.0, 0.0], 0.5).round(4)
array([0.8668, 0.1173, 0.0159])
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("thermoscope")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

#: Public name -> the package that is its home.
_HOMES: dict[str, str] = {
    # the math
    "effective_temperature": "thermoscope.core",
    "entropy": "thermoscope.core",
    "free_energy": "thermoscope.core",
    "log_softmax": "thermoscope.core",
    "max_probability": "thermoscope.core",
    "perplexity": "thermoscope.core",
    "reweight": "thermoscope.core",
    "softmax": "thermoscope.core",
    "temperature_for_entropy": "thermoscope.core",
    # sampling
    "LOGPROBS_MODES": "thermoscope.sampling",
    "EntropyTemperature": "thermoscope.sampling",
    "Epsilon": "thermoscope.sampling",
    "MinP": "thermoscope.sampling",
    "SampleResult": "thermoscope.sampling",
    "Sampler": "thermoscope.sampling",
    "Temperature": "thermoscope.sampling",
    "TopK": "thermoscope.sampling",
    "TopNSigma": "thermoscope.sampling",
    "TopP": "thermoscope.sampling",
    "Typical": "thermoscope.sampling",
    "goodness_of_fit": "thermoscope.sampling",
    "summarize_sampling": "thermoscope.sampling",
    "AdaptiveP": "thermoscope.sampling",
    "DRY": "thermoscope.sampling",
    "Eta": "thermoscope.sampling",
    "FrequencyPenalty": "thermoscope.sampling",
    "LogitBias": "thermoscope.sampling",
    "NoRepeatNGram": "thermoscope.sampling",
    "PLess": "thermoscope.sampling",
    "PresencePenalty": "thermoscope.sampling",
    "RepetitionPenalty": "thermoscope.sampling",
    "SequenceBias": "thermoscope.sampling",
    "TopH": "thermoscope.sampling",
    "XTC": "thermoscope.sampling",
    # calibration
    "TemperatureScaler": "thermoscope.calibration",
    "brier_score": "thermoscope.calibration",
    "debiased_calibration_error": "thermoscope.calibration",
    "expected_calibration_error": "thermoscope.calibration",
    "fit_temperature": "thermoscope.calibration",
    "maximum_calibration_error": "thermoscope.calibration",
    "negative_log_likelihood": "thermoscope.calibration",
    "reliability_curve": "thermoscope.calibration",
    "smooth_calibration_error": "thermoscope.calibration",
    # integrations
    "calibrate_language_model": "thermoscope.generation",
    "embedded_model_path": "thermoscope.generation",
    "load_model": "thermoscope.generation",
    "kd_loss": "thermoscope.distill",
    "UCB1": "thermoscope.rl",
    "BoltzmannPolicy": "thermoscope.rl",
    "EpsilonGreedy": "thermoscope.rl",
    "run_bandit": "thermoscope.rl",
    "coverage": "thermoscope.recommend",
    "exposure": "thermoscope.recommend",
    "gini": "thermoscope.recommend",
    "long_tail_share": "thermoscope.recommend",
    "sample_items": "thermoscope.recommend",
    "attention_entropy": "thermoscope.attention",
    "attention_weights": "thermoscope.attention",
}

__all__ = [
    "DRY",
    "LOGPROBS_MODES",
    "UCB1",
    "XTC",
    "AdaptiveP",
    "BoltzmannPolicy",
    "EntropyTemperature",
    "Epsilon",
    "EpsilonGreedy",
    "Eta",
    "FrequencyPenalty",
    "LogitBias",
    "MinP",
    "NoRepeatNGram",
    "PLess",
    "PresencePenalty",
    "RepetitionPenalty",
    "SampleResult",
    "Sampler",
    "SequenceBias",
    "Temperature",
    "TemperatureScaler",
    "TopH",
    "TopK",
    "TopNSigma",
    "TopP",
    "Typical",
    "__version__",
    "attention_entropy",
    "attention_weights",
    "brier_score",
    "calibrate_language_model",
    "coverage",
    "debiased_calibration_error",
    "effective_temperature",
    "embedded_model_path",
    "entropy",
    "expected_calibration_error",
    "exposure",
    "fit_temperature",
    "free_energy",
    "gini",
    "goodness_of_fit",
    "kd_loss",
    "load_model",
    "log_softmax",
    "long_tail_share",
    "max_probability",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "perplexity",
    "reliability_curve",
    "reweight",
    "run_bandit",
    "sample_items",
    "smooth_calibration_error",
    "softmax",
    "summarize_sampling",
    "temperature_for_entropy",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'thermoscope' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


if TYPE_CHECKING:  # what type checkers and IDEs see; tests/test_architecture.py keeps it in step
    from thermoscope.attention import attention_entropy, attention_weights
    from thermoscope.calibration import (
        TemperatureScaler,
        brier_score,
        debiased_calibration_error,
        expected_calibration_error,
        fit_temperature,
        maximum_calibration_error,
        negative_log_likelihood,
        reliability_curve,
        smooth_calibration_error,
    )
    from thermoscope.core import (
        effective_temperature,
        entropy,
        free_energy,
        log_softmax,
        max_probability,
        perplexity,
        reweight,
        softmax,
        temperature_for_entropy,
    )
    from thermoscope.distill import kd_loss
    from thermoscope.generation import calibrate_language_model, embedded_model_path, load_model
    from thermoscope.recommend import coverage, exposure, gini, long_tail_share, sample_items
    from thermoscope.rl import UCB1, BoltzmannPolicy, EpsilonGreedy, run_bandit
    from thermoscope.sampling import (
        DRY,
        LOGPROBS_MODES,
        XTC,
        AdaptiveP,
        EntropyTemperature,
        Epsilon,
        Eta,
        FrequencyPenalty,
        LogitBias,
        MinP,
        NoRepeatNGram,
        PLess,
        PresencePenalty,
        RepetitionPenalty,
        Sampler,
        SampleResult,
        SequenceBias,
        Temperature,
        TopH,
        TopK,
        TopNSigma,
        TopP,
        Typical,
        goodness_of_fit,
        summarize_sampling,
    )
