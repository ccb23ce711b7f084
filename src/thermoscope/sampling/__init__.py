"""Sampling engine: warpers (temperature, top-k, top-p, ...) chained by a `Sampler`.

Everything here is numpy; torch tensors are accepted and returned without
importing torch unless one is passed.

Examples
--------
>>> from thermoscope.sampling import Sampler
>>> s = Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9)
>>> s.sample([2.0, 1.0, -1.0], n=4, seed=0).tolist()
[0, 0, 0, 0]
"""

from thermoscope.sampling.sampler import LLAMA_CPP_ORDER, TRANSFORMERS_ORDER, Sampler
from thermoscope.sampling.summary import SamplingSummary, sampler_for, summarize_sampling
from thermoscope.sampling.warpers import (
    EntropyTemperature,
    Epsilon,
    MinP,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    Warper,
)

__all__ = [
    "LLAMA_CPP_ORDER",
    "TRANSFORMERS_ORDER",
    "EntropyTemperature",
    "Epsilon",
    "MinP",
    "Sampler",
    "SamplingSummary",
    "Temperature",
    "TopK",
    "TopNSigma",
    "TopP",
    "Typical",
    "Warper",
    "sampler_for",
    "summarize_sampling",
]
