"""Mirostat 2.0 (Basu et al., 2021) as llama.cpp's ``llama_sampler_mirostat_v2``.

Mirostat steers the *surprise* of the sampled tokens, ``-log2 p`` in bits,
towards a target ``tau``. It keeps a threshold ``mu`` (starting at ``2 tau``)
and at every step:

1. ``p = softmax(z)``; keep the tokens whose surprise ``-log2 p_i <= mu``
   (at least the most likely one);
2. renormalise over the kept tokens, ``q``, and draw a token ``x`` from ``q``;
3. ``mu <- mu - eta * (-log2 q_x - tau)``.

A sampled token more surprising than ``tau`` lowers ``mu`` (the next step
truncates harder), a predictable one raises it.

How it cooperates with ``generate``
-----------------------------------
A ``LogitsProcessor`` runs *before* ``generate`` draws the token, so
:class:`Mirostat` does steps 1-2 as a warper: it returns the logits with the
removed tokens at ``-inf``, and ``generate``'s own multinomial draw from
``softmax`` of them is the draw from ``q`` (seeded by ``torch.manual_seed``).
Step 3 needs the drawn token: it is read at the next call, as the last
column of ``input_ids``, and ``mu`` is updated with that token's ``q`` from
the previous step before anything else. The sequence of thresholds is
therefore exactly llama.cpp's; only the update after the very last token is
not made (nothing is sampled with it); :meth:`Mirostat.observe` makes it
when the final ``mu`` is wanted.

Examples
--------
>>> import torch
>>> m = Mirostat(tau=1.0, eta=0.5)
>>> z = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
>>> m(torch.tensor([[7]]), z)  # mu = 2 bits keeps p >= 1/4
tensor([[-0.5108, -1.2040,    -inf]])
>>> _ = m(torch.tensor([[7, 1]]), z)  # token 1 had q = 1/3: surprise 1.585 bits
>>> m.mu.round(4)
array([1.7075])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor

from thermoscope._validation import check_temperature
from thermoscope.generation.processor import StepTracker

__all__ = ["Mirostat"]

Array = np.ndarray[Any, np.dtype[Any]]


def _parameter(value: Any, name: str) -> float:
    arr = check_temperature(value, name)
    if arr.ndim != 0 or not np.isfinite(arr):
        raise ValueError(f"`{name}` must be a single finite number >= 0, got {value!r}.")
    return float(arr)


def _truncate(z: Array, mu: Array) -> tuple[Array, Array]:
    """Kept mask and renormalised log-probabilities ``log q`` (-inf where removed)."""
    top = np.max(z, axis=1, keepdims=True)
    logp = z - top
    logp -= np.log(np.sum(np.exp(logp), axis=1, keepdims=True))
    surprise = -logp / math.log(2.0)
    keep = surprise <= mu[:, None]
    # llama.cpp keeps one token when every surprise exceeds mu; here the most
    # likely ones, ties included (logp == 0 after the shift means "is the max").
    keep |= ~keep.any(axis=1, keepdims=True) & (z == top)
    masked = np.where(keep, logp, -np.inf)
    kept_max = np.max(masked, axis=1, keepdims=True)
    logq = masked - kept_max
    logq -= np.log(np.sum(np.exp(logq), axis=1, keepdims=True))
    return keep, logq


class Mirostat(LogitsProcessor):
    """Mirostat 2.0 as a transformers ``LogitsProcessor``: target surprise ``tau`` bits.

    Parameters
    ----------
    tau : float, default 5.0
        Target surprise per token in bits (llama.cpp's ``--mirostat-ent``,
        default 5.0). Lower is more predictable; 2-4 suits small models.
    eta : float, default 0.1
        Learning rate of ``mu`` (``--mirostat-lr``, default 0.1).

    Notes
    -----
    State: ``mu`` has one value per batch row, all ``2 * tau`` at the first
    call of every generation (a call whose ``input_ids`` do not extend the
    previous call's by one token, see
    :class:`~thermoscope.generation.processor.StepTracker`), so each
    sequence starts afresh. A row whose last token had ``q = 0`` (a finished
    row padded by ``generate``, or a token forced by a later processor)
    keeps its ``mu``. Computed in float64 from the scores; the kept set
    equals llama.cpp's (a prefix of the tokens sorted by probability) except
    that ties at the top are all kept when the fallback keeps one.

    Use it through :func:`~thermoscope.generation.processor.generate_kwargs`
    (no other warper may act after it). To temper first, as llama.cpp's
    ``--temp`` does before Mirostat, put a
    :class:`~thermoscope.generation.processor.SamplerLogitsProcessor` with a
    :class:`~thermoscope.sampling.Temperature` before it in the list.

    Attributes
    ----------
    mu : ndarray of shape (B,)
        The current thresholds (bits), after the updates made so far.
    trace : list of ndarray
        ``mu`` used at each step of the current generation.

    Examples
    --------
    >>> Mirostat(tau=3.0).mu
    array([6.])
    """

    def __init__(self, tau: float = 5.0, eta: float = 0.1):
        self.tau = _parameter(tau, "tau")
        self.eta = _parameter(eta, "eta")
        self.mu: Array = np.array([2.0 * self.tau])
        self.trace: list[Array] = []
        self._logq: Array | None = None
        self._tracker = StepTracker()

    def reset(self) -> None:
        """Forget the state: the next call starts a new generation with ``mu = 2 tau``."""
        self._tracker.reset()
        self._logq = None
        self.mu = np.array([2.0 * self.tau])
        self.trace = []

    def observe(self, tokens: Any) -> None:
        """Apply the pending ``mu`` update for the tokens drawn at the last step.

        ``generate`` does this by itself at the next call; call it after
        ``generate`` to include the final token in :attr:`mu`.

        Examples
        --------
        >>> import torch
        >>> m = Mirostat(tau=1.0, eta=1.0)
        >>> _ = m(torch.tensor([[0]]), torch.tensor([[0.0, 0.0]]))
        >>> m.observe([1]); m.mu  # q = 1/2: surprise 1 bit = tau, mu unchanged
        array([2.])
        """
        if self._logq is None:
            return
        ids = np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens)
        ids = ids.reshape(-1).astype(np.int64)
        if ids.shape[0] != self._logq.shape[0]:
            raise ValueError(
                f"`tokens` must have one token per batch row ({self._logq.shape[0]}), "
                f"got {ids.shape[0]}."
            )
        logq = self._logq[np.arange(ids.shape[0]), ids]
        seen = np.isfinite(logq)
        surprise = -logq[seen] / math.log(2.0)
        self.mu[seen] = self.mu[seen] - self.eta * (surprise - self.tau)
        self._logq = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Update ``mu`` with the previous token, then truncate this step's ``scores``."""
        _, fresh = self._tracker.update(input_ids)
        if fresh:
            self._logq = None
            self.mu = np.full(scores.shape[0], 2.0 * self.tau)
            self.trace = []
        else:
            self.observe(input_ids[:, -1])
        z = scores.detach().to(device="cpu", dtype=torch.float64).numpy()
        keep, self._logq = _truncate(z, self.mu)
        self.trace.append(self.mu.copy())
        mask = torch.from_numpy(~keep).to(scores.device)
        out = scores.masked_fill(mask, float("-inf"))
        return out  # type: ignore[return-value]  # a FloatTensor in, the same kind out
