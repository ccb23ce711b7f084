"""thermoscope: compute, sample, fit and see temperature, the T in softmax(z / T).

The public API, in one screen. Heavy backends (torch, matplotlib,
transformers) are imported only by the functions that need them.
"""

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
from thermoscope.sampling import (
    EntropyTemperature,
    Epsilon,
    MinP,
    Sampler,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
)

__version__ = "0.1.0"

__all__ = [
    "EntropyTemperature",
    "Epsilon",
    "MinP",
    "Sampler",
    "Temperature",
    "TopK",
    "TopNSigma",
    "TopP",
    "Typical",
    "__version__",
    "effective_temperature",
    "entropy",
    "free_energy",
    "log_softmax",
    "max_probability",
    "perplexity",
    "reweight",
    "softmax",
    "temperature_for_entropy",
]
