"""The math of temperature: softmax_T, entropy, free energy and their limits.

Every public function here validates its input in the caller's own array
library and hands it to the one temperature kernel
(:mod:`thermoscope._temperature`): numpy in, numpy out; a torch tensor in, torch
operations on its device and a tensor out, with its gradient kept (also with
respect to a tensor temperature).

- :mod:`~thermoscope.core._softmax`: ``softmax``, ``log_softmax``, ``reweight``;
- :mod:`~thermoscope.core._information`: ``entropy``, ``perplexity``,
  ``max_probability``, ``free_energy``;
- :mod:`~thermoscope.core._inverse`: ``temperature_for_entropy``,
  ``effective_temperature``.

The temperature is the one knob, so it may be passed by position
(``softmax(z, 0.7)``); every other option (``axis``, ``base``) is keyword-only.

Examples
--------
>>> from thermoscope.core import entropy, softmax
>>> round(float(entropy(softmax([1.0, 1.0]), base=2)), 6)
1.0
"""

from thermoscope.core._information import entropy, free_energy, max_probability, perplexity
from thermoscope.core._inverse import effective_temperature, temperature_for_entropy
from thermoscope.core._softmax import log_softmax, reweight, softmax

__all__ = [
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
