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

All of it runs on the scores' device with torch operations, ``mu`` included:
no host copy of the scores and no host read of a device value per step.

Examples
--------
>>> import torch
>>> m = Mirostat(tau=1.0, eta=0.5)
>>> z = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
>>> m(torch.tensor([[7]]), z)  # mu = 2 bits keeps p >= 1/4
tensor([[-0.5108, -1.2040,    -inf]])
>>> _ = m(torch.tensor([[7, 1]]), z)  # token 1 had q = 1/3: surprise 1.585 bits
>>> m.mu.round(decimals=4)
tensor([1.7075], dtype=torch.float64)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor

from thermoscope import _temperature
from thermoscope._validation import check_temperature
from thermoscope.generation._steps import StepTracker

__all__ = ["Mirostat"]

_LN2 = math.log(2.0)


def _parameter(value: Any, name: str) -> float:
    arr = check_temperature(value, name)
    if arr.ndim != 0 or not np.isfinite(arr):
        raise ValueError(f"`{name}` must be a single finite number >= 0, got {value!r}.")
    return float(arr)


def _work_dtype(device: torch.device) -> torch.dtype:
    """float64, the precision the thresholds are kept in; float32 where a device lacks it."""
    return torch.float32 if device.type == "mps" else torch.float64


def _truncate(z: torch.Tensor, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kept mask and renormalised log-probabilities ``log q`` (-inf where removed)."""
    # T = 1 as a tensor made on the device: a Python number would be copied
    # there from the host at every call.
    one = torch.ones((), dtype=z.dtype, device=z.device)
    logp = _temperature.log_softmax(z, one, -1)
    keep = -logp / _LN2 <= mu[:, None]
    # llama.cpp keeps one token when every surprise exceeds mu; here the most
    # likely ones, ties included.
    top = z == z.amax(dim=-1, keepdim=True)
    keep |= ~keep.any(dim=-1, keepdim=True) & top
    masked = logp.masked_fill(~keep, float("-inf"))
    return keep, _temperature.log_softmax(masked, one, -1)


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
    :class:`~thermoscope.generation._steps.StepTracker`), so each
    sequence starts afresh. A row whose last token had ``q = 0`` (a finished
    row padded by ``generate``, or a token forced by a later processor)
    keeps its ``mu``. The kept set equals llama.cpp's (a prefix of the
    tokens sorted by probability) except that ties at the top are all kept
    when the fallback keeps one.

    Everything is computed on the scores' device with torch operations, in
    float64 (float32 on devices without float64, such as ``mps``); ``mu``
    and the pending update live there too, and whether a call starts a new
    generation is folded into the arithmetic rather than read, so a step
    never waits for the device. :attr:`trace` reads that answer only when
    it is looked at.

    Use it through :func:`~thermoscope.generation.config.generate_kwargs`
    (no other warper may act after it). To temper first, as llama.cpp's
    ``--temp`` does before Mirostat, put a
    :class:`~thermoscope.generation.processor.SamplerLogitsProcessor` with a
    :class:`~thermoscope.sampling.Temperature` before it in the list.

    Attributes
    ----------
    mu : torch.Tensor of shape (B,)
        The current thresholds (bits), after the updates made so far, on the
        device of the last scores (float64 on the CPU before the first call).

    Examples
    --------
    >>> Mirostat(tau=3.0).mu
    tensor([6.], dtype=torch.float64)
    """

    def __init__(self, tau: float = 5.0, eta: float = 0.1):
        self.tau = _parameter(tau, "tau")
        self.eta = _parameter(eta, "eta")
        self.mu: torch.Tensor = self._initial(1, torch.device("cpu"))
        # (restarted, mu) per step: restarted is a bool, or a device flag read lazily.
        self._steps: list[tuple[bool | torch.Tensor, torch.Tensor]] = []
        self._logq: torch.Tensor | None = None
        self._tracker = StepTracker()

    def _initial(self, rows: int, device: torch.device) -> torch.Tensor:
        return torch.full((rows,), 2.0 * self.tau, dtype=_work_dtype(device), device=device)

    @property
    def trace(self) -> list[torch.Tensor]:
        """``mu`` used at each step of the current generation, one (B,) tensor per step.

        Reads the device to learn where the current generation started.

        Examples
        --------
        >>> Mirostat(tau=3.0).trace
        []
        """
        start = 0
        for i in range(len(self._steps) - 1, -1, -1):
            restarted, mu = self._steps[i]
            if not isinstance(restarted, bool):
                restarted = bool(restarted)
                self._steps[i] = (restarted, mu)
            if restarted:
                start = i
                break
        del self._steps[:start]
        return [mu for _, mu in self._steps]

    def reset(self) -> None:
        """Forget the state: the next call starts a new generation with ``mu = 2 tau``.

        Examples
        --------
        >>> m = Mirostat(tau=3.0)
        >>> m.reset()
        >>> float(m.mu[0])
        6.0
        """
        self._tracker.reset()
        self._logq = None
        self.mu = self._initial(1, torch.device("cpu"))
        self._steps = []

    def _updated(self, tokens: torch.Tensor) -> torch.Tensor:
        """``mu`` after the pending update for ``tokens`` (B,), on the device."""
        assert self._logq is not None
        ids = tokens.to(device=self._logq.device, dtype=torch.int64).reshape(-1, 1)
        vocab = self._logq.shape[-1]
        # Clamped, not checked: an id outside the vocabulary (the first token of
        # another generation, ruled out later by the device) must not fault.
        logq = self._logq.gather(-1, ids.clamp(0, vocab - 1)).squeeze(-1)
        seen = torch.isfinite(logq) & (ids.squeeze(-1) >= 0) & (ids.squeeze(-1) < vocab)
        surprise = -torch.where(seen, logq, torch.zeros_like(logq)) / _LN2
        return torch.where(seen, self.mu - self.eta * (surprise - self.tau), self.mu)

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
        tensor([2.], dtype=torch.float64)
        """
        if self._logq is None:
            return
        ids = torch.as_tensor(tokens, device=self._logq.device).reshape(-1)
        rows, vocab = self._logq.shape
        if ids.shape[0] != rows:
            raise ValueError(
                f"`tokens` must have one token per batch row ({rows}), got {ids.shape[0]}."
            )
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise TypeError(f"`tokens` must be integer token ids, got dtype {ids.dtype}.")
        if bool(((ids < 0) | (ids >= vocab)).any()):
            raise ValueError(f"`tokens` must be ids in [0, {vocab}), got {ids.tolist()}.")
        self.mu = self._updated(ids)
        self._logq = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Update ``mu`` with the previous token, then truncate this step's ``scores``."""
        _, restarted = self._tracker.advance(input_ids)
        rows, device = scores.shape[0], scores.device
        if self._logq is not None and self._logq.shape != scores.shape:
            restarted = True  # another vocabulary: nothing to continue from
        if restarted is True:
            self._logq = None
            self.mu = self._initial(rows, device)
            self._steps = []
        elif self._logq is not None:
            updated = self._updated(input_ids[:, -1])
            if restarted is False:
                self.mu = updated
            else:
                # Shaped like a continuation: the device picks between the update
                # and a fresh start (the token comparison is not read here).
                self.mu = torch.where(restarted, self._initial(rows, device), updated)
        elif restarted is not False:
            self.mu = torch.where(restarted, self._initial(rows, device), self.mu)
        with torch.no_grad():  # the state must not hold on to a caller's graph
            keep, self._logq = _truncate(scores.to(_work_dtype(device)), self.mu)
        self._steps.append((restarted, self.mu))
        out = scores.masked_fill(~keep, float("-inf"))
        return out  # type: ignore[return-value]  # a FloatTensor in, the same kind out
