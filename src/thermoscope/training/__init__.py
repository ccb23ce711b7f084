"""Temperature in training: a learnable temperature, contrastive losses, Gumbel-softmax (torch).

- :class:`LearnableTemperature`: ``T`` as a parameter, bounded hard (CLIP's
  clamp, with a gradient that can always bring it back) or soft (a smooth
  squashing); ``LearnableTemperature.clip()`` is CLIP's.
- :func:`info_nce_loss`, :func:`nt_xent_loss` (SimCLR, with a duplicates
  mask), :func:`clip_loss`: cosine similarities over ``T``, the library's one
  log-softmax kernel.
- :func:`gumbel_softmax` (relaxed and straight-through, seeded) and
  :class:`GumbelAnnealer` over :mod:`thermoscope.sampling.schedules`.

This package needs torch and is not imported by ``import thermoscope``.

Examples
--------
>>> import torch
>>> from thermoscope.training import LearnableTemperature, nt_xent_loss
>>> temp = LearnableTemperature(0.5)
>>> z1, z2 = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)).chunk(2)
>>> loss = nt_xent_loss(z1, z2, temperature=temp)
>>> loss.backward()
>>> temp.raw.grad is not None
True
"""

from thermoscope.training.contrastive import clip_loss, info_nce_loss, nt_xent_loss
from thermoscope.training.gumbel import GumbelAnnealer, gumbel_softmax
from thermoscope.training.temperature import LearnableTemperature

__all__ = [
    "GumbelAnnealer",
    "LearnableTemperature",
    "clip_loss",
    "gumbel_softmax",
    "info_nce_loss",
    "nt_xent_loss",
]
