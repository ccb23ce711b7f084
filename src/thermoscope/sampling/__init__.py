"""Sampling engine: warpers (temperature, top-k, top-p, ...) chained by a `Sampler`.

numpy input is computed with numpy; a torch tensor with torch operations on
its device (CPU or CUDA), returned as a tensor there, never copied to the
host. torch is not imported unless a tensor is passed. Seeded draws are
batch-invariant: a row's token depends on its own logits, seed and step only.

Examples
--------
>>> from thermoscope.sampling import Sampler
>>> s = Sampler.from_options(temperature=0.7, top_k=50, top_p=0.9)
>>> s.sample([2.0, 1.0, -1.0], n=4, seed=0).tolist()
[0, 0, 1, 0]
>>> r = s.sample_with_logprobs([2.0, 1.0, -1.0], n=2, seed=0, top=2)
>>> r.tokens.tolist(), r.logprobs.round(3).tolist(), r.top_ids.tolist()
([0, 0], [-0.215, -0.215], [0, 1])
"""

from thermoscope.sampling._logprobs import MODES as LOGPROBS_MODES
from thermoscope.sampling._logprobs import SampleResult
from thermoscope.sampling.adaptive_p import AdaptiveP
from thermoscope.sampling.dry import DRY
from thermoscope.sampling.engines import ENGINE_PRESETS, EnginePreset
from thermoscope.sampling.entropy_cuts import Eta, PLess, TopH
from thermoscope.sampling.goodness import GoodnessOfFit, goodness_of_fit
from thermoscope.sampling.penalties import (
    FrequencyPenalty,
    LogitBias,
    NoRepeatNGram,
    PresencePenalty,
    RepetitionPenalty,
    SequenceBias,
)
from thermoscope.sampling.sampler import LLAMA_CPP_ORDER, TRANSFORMERS_ORDER, Sampler
from thermoscope.sampling.summary import SamplingSummary, summarize_sampling
from thermoscope.sampling.trace import StageTrace, Trace
from thermoscope.sampling.warpers import (
    EntropyTemperature,
    Epsilon,
    HistoryWarper,
    MinP,
    Temperature,
    TopK,
    TopNSigma,
    TopP,
    Typical,
    Warper,
)
from thermoscope.sampling.xtc import XTC

__all__ = [
    "DRY",
    "ENGINE_PRESETS",
    "LLAMA_CPP_ORDER",
    "LOGPROBS_MODES",
    "TRANSFORMERS_ORDER",
    "XTC",
    "AdaptiveP",
    "EnginePreset",
    "EntropyTemperature",
    "Epsilon",
    "Eta",
    "FrequencyPenalty",
    "GoodnessOfFit",
    "HistoryWarper",
    "LogitBias",
    "MinP",
    "NoRepeatNGram",
    "PLess",
    "PresencePenalty",
    "RepetitionPenalty",
    "SampleResult",
    "Sampler",
    "SamplingSummary",
    "SequenceBias",
    "StageTrace",
    "Temperature",
    "TopH",
    "TopK",
    "TopNSigma",
    "TopP",
    "Trace",
    "Typical",
    "Warper",
    "goodness_of_fit",
    "summarize_sampling",
]
