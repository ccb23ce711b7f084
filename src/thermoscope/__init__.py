"""thermoscope: compute, sample, fit and see temperature, the T in softmax(z / T).

The public API, in one screen. Heavy backends (torch, matplotlib,
transformers) are imported only by the functions that need them.
"""

from thermoscope.attention import attention_entropy, attention_weights
from thermoscope.calibration import (
    TemperatureScaler,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_curve,
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
from thermoscope.models import embedded_model_path, load_model
from thermoscope.recommend import coverage, exposure, gini, long_tail_share, sample_items
from thermoscope.rl import UCB1, BoltzmannPolicy, EpsilonGreedy, run_bandit
from thermoscope.sampling import (
    LOGPROBS_MODES,
    EntropyTemperature,
    Epsilon,
    MinP,
    Sampler,
    SampleResult,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    summarize_sampling,
)

__version__ = "0.1.0"

__all__ = [
    "LOGPROBS_MODES",
    "UCB1",
    "BoltzmannPolicy",
    "EntropyTemperature",
    "Epsilon",
    "EpsilonGreedy",
    "MinP",
    "SampleResult",
    "Sampler",
    "Temperature",
    "TemperatureScaler",
    "TopK",
    "TopNSigma",
    "TopP",
    "Typical",
    "__version__",
    "attention_entropy",
    "attention_weights",
    "brier_score",
    "coverage",
    "effective_temperature",
    "embedded_model_path",
    "entropy",
    "expected_calibration_error",
    "exposure",
    "fit_temperature",
    "free_energy",
    "gini",
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
    "softmax",
    "summarize_sampling",
    "temperature_for_entropy",
]
