"""`SamplerLogitsProcessor`: any thermoscope `Sampler` inside transformers' ``generate``.

``model.generate(..., do_sample=True, logits_processor=[SamplerLogitsProcessor(s)])``
samples each token from ``s.probs`` of that step's logits: the processor
returns ``s.logits(scores)`` (removed tokens ``-inf``), and ``generate`` draws
from ``softmax`` of what the last processor returns. With ``seed=`` the
processor draws the token itself (``s.sample`` with per-row seeds and the
sequence length as the step) and returns it as the only finite score, so a
request's continuation does not depend on the rest of the batch.

Everything stays on the scores' device: the processors make no host copy of
the scores and, of their own, no host read of a device value per step (the
one exception, with a ``schedule``, is described in
:class:`SamplerLogitsProcessor`).

It must be the only warper: build ``generate``'s arguments with
:func:`~thermoscope.generation.config.generate_kwargs`, which switches
transformers' own warpers off (its default ``top_k=50`` would otherwise
truncate a second time).

Examples
--------
>>> import torch
>>> from thermoscope.sampling import Sampler
>>> p = SamplerLogitsProcessor(Sampler.from_options(temperature=0.5, top_k=2))
>>> p(torch.tensor([[0, 1]]), torch.tensor([[1.0, 3.0, 2.0]]))
tensor([[-inf, 6., 4.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor

from thermoscope._validation import check_integer, check_seed
from thermoscope.generation._steps import StepTracker
from thermoscope.sampling import Sampler, Temperature
from thermoscope.sampling.schedules import as_schedule

__all__ = ["SamplerLogitsProcessor"]


def _temperature_slot(sampler: Sampler) -> tuple[tuple[Any, ...], int]:
    """The sampler's warpers and where a scheduled temperature goes (-1: prepend)."""
    warpers = sampler.warpers
    slots = [i for i, w in enumerate(warpers) if isinstance(w, Temperature)]
    if len(slots) > 1:
        raise ValueError(
            "`sampler` must have at most one Temperature step for `schedule` to set, "
            f"got {len(slots)}."
        )
    return warpers, (slots[0] if slots else -1)


def _as_seeds(seed: Any) -> int | torch.Tensor | None:
    """``seed`` as one int, or as a CPU int64 tensor with one seed per batch row."""
    if seed is None:
        return None
    if isinstance(seed, torch.Tensor):
        # Read once, here: the seeds are the caller's, not a per-step value.
        seed = seed.tolist()
    if np.ndim(seed) == 0:
        return check_seed(seed, "seed")
    arr = check_integer(seed, "seed", minimum=0)
    if arr.ndim != 1:
        raise ValueError(
            f"`seed` must be one integer or one integer per batch row (1-D), got shape {arr.shape}."
        )
    return torch.from_numpy(arr)


class SamplerLogitsProcessor(LogitsProcessor):
    """A transformers ``LogitsProcessor`` that samples through a thermoscope ``Sampler``.

    Parameters
    ----------
    sampler : Sampler or callable
        A :class:`~thermoscope.sampling.Sampler` (any chain: temperature,
        top-k/p, min-p, typical, epsilon, top-nσ, entropy temperature...), or
        a factory ``temperature -> Sampler`` called with ``schedule(step)``.
    schedule : float, Schedule or callable, optional
        The temperature per generation step (``step`` = tokens generated so
        far, 0 for the first), e.g. :class:`~thermoscope.sampling.schedules.Linear`.
        With a ``Sampler``, its :class:`~thermoscope.sampling.Temperature`
        step takes the scheduled value at its place in the chain (a chain
        without one gets it first, as in transformers' order); with a
        factory, the factory gets it. Required with a factory.
    seed : int or sequence of int or torch.Tensor, optional
        Draw the tokens here, from counter-based random numbers: one seed
        for every row, or one per batch row (``generate``'s batch, so
        ``num_return_sequences`` rows each need their own). Without it
        ``generate`` draws (seeded by ``torch.manual_seed``).
    pad_token_id : int, optional
        With ``seed``: the token ``generate`` left-pads prompts with. Leading
        pad tokens are then not counted in a row's step, so a prompt draws
        the same continuation alone and inside a left-padded batch.

    Notes
    -----
    History-aware stages (:class:`~thermoscope.sampling.penalties.RepetitionPenalty`,
    DRY, ...) get ``input_ids`` as the history: the prompt and the tokens
    generated so far, as transformers' own processors see them (left padding
    included: give such stages a window, ``last_n``, shorter than the
    generated part, or unpadded prompts). A chain with XTC needs ``seed``: its
    coin is drawn with the row's seed.

    Without ``seed``, each call returns ``sampler.logits(scores)`` for that
    step's sampler: torch in, torch out, on the scores' device and in their
    dtype. ``generate`` then draws from ``softmax`` of them with its own
    (``torch.manual_seed``-able) random generator, so with
    :func:`~thermoscope.generation.generate_kwargs` the distribution of every
    token is exactly ``sampler.probs`` of the logits that reach the processor.
    Build the arguments with that function: ``generate`` applies
    transformers' own warpers after every custom processor, and its default
    ``top_k=50`` would otherwise truncate a second time.

    With ``seed``, each call draws one token per row with
    ``sampler.sample(scores, seed=seed, step=length)``, where ``length`` is
    the row's sequence length (``input_ids.shape[-1]``, less its leading pad
    tokens when ``pad_token_id`` is given), and returns scores that are 0 at
    that token and ``-inf`` elsewhere: ``generate``'s draw then picks it with
    probability 1. A row's token depends only on its own logits, seed and
    length, never on the other rows of the batch, its position in it or the
    previous calls; rows with the same seed and the same logits draw the same
    token. The token's distribution is still ``sampler.probs``; the returned
    (and ``output_scores``) scores are the one-hot ones.

    Everything runs on the scores' device: the scores are never copied to
    the host, and the processor reads no device value of its own (the
    Sampler's input checks are the Sampler's), except with a ``schedule``
    when the ids are shaped like the previous call's plus one token: telling
    a continuation from a new generation then compares the tokens, and that
    boolean is read after the step's work has been queued (see
    :class:`StepTracker`). Per-row seeds are moved to a device once.

    A new generation is detected when the ids do not extend the previous
    call's by one token (see :class:`StepTracker`); :meth:`reset` forces it.
    Not for beam search or assisted decoding.

    Attributes
    ----------
    temperatures : list of float
        The scheduled temperature of every step of the current generation
        (empty without a schedule).

    Examples
    --------
    >>> import torch
    >>> from thermoscope.sampling import Sampler
    >>> from thermoscope.sampling.schedules import Linear
    >>> p = SamplerLogitsProcessor(Sampler.from_options(top_k=2), schedule=Linear(1.0, 0.5, 1))
    >>> scores = torch.tensor([[1.0, 3.0, 2.0]])
    >>> p(torch.tensor([[0]]), scores), p(torch.tensor([[0, 1]]), scores)
    (tensor([[-inf, 3., 2.]]), tensor([[-inf, 6., 4.]]))
    >>> p.temperatures
    [1.0, 0.5]

    With seeds the token is drawn here; a row's draw ignores the other rows:

    >>> q = SamplerLogitsProcessor(Sampler.from_options(top_k=2), seed=[7, 8])
    >>> two = q(torch.tensor([[0, 1], [2, 3]]), torch.tensor([[1.0, 3.0, 2.0]] * 2))
    >>> one = SamplerLogitsProcessor(Sampler.from_options(top_k=2), seed=[8])(
    ...     torch.tensor([[2, 3]]), torch.tensor([[1.0, 3.0, 2.0]]))
    >>> bool(torch.equal(two[1:], one)), int(torch.isfinite(one).sum())
    (True, 1)
    """

    def __init__(
        self,
        sampler: Sampler | Callable[[float], Sampler],
        schedule: Any = None,
        *,
        seed: int | Any = None,
        pad_token_id: int | None = None,
    ):
        if isinstance(sampler, Sampler):
            self._warpers, self._slot = _temperature_slot(sampler)
            self._factory: Callable[[float], Sampler] | None = None
        elif callable(sampler):
            if schedule is None:
                raise ValueError(
                    "`schedule` must be given with a sampler factory (it gives the "
                    "temperature the factory is called with), got None."
                )
            self._factory = sampler
            self._warpers, self._slot = (), -1
        else:
            raise TypeError(
                "`sampler` must be a thermoscope Sampler or a callable temperature -> Sampler, "
                f"got {type(sampler).__name__}."
            )
        self._seeds = _as_seeds(seed)
        if pad_token_id is not None:
            if self._seeds is None:
                raise ValueError(
                    "`pad_token_id` must come with `seed` (it sets the step of seeded draws), "
                    f"got pad_token_id={pad_token_id!r} and no seed."
                )
            pad_token_id = check_seed(pad_token_id, "pad_token_id")
        self.pad_token_id: int | None = pad_token_id
        self.sampler = sampler
        self.schedule: Callable[[Any], Any] | None = (
            None if schedule is None else as_schedule(schedule, "schedule")
        )
        self.temperatures: list[float] = []
        self._tracker = StepTracker()
        self._cached: tuple[float, Sampler] | None = None
        self._seeds_on: dict[torch.device, torch.Tensor] = {}

    @property
    def seed(self) -> int | torch.Tensor | None:
        """The seed of every row (int), the per-row seeds (CPU int64 tensor), or None.

        Examples
        --------
        >>> SamplerLogitsProcessor(Sampler(), seed=3).seed
        3
        """
        return self._seeds

    def reset(self) -> None:
        """Start the next call as a new generation (step 0).

        Examples
        --------
        >>> SamplerLogitsProcessor(Sampler()).reset()
        """
        self._tracker.reset()

    def sampler_at(self, step: int) -> Sampler:
        """The sampler used at generation step ``step``.

        Examples
        --------
        >>> from thermoscope.sampling.schedules import Piecewise
        >>> p = SamplerLogitsProcessor(Sampler(), schedule=Piecewise((2,), (1.0, 0.0)))
        >>> p.sampler_at(1).warpers, p.sampler_at(2).warpers
        ((Temperature(temperature=1.0),), (Temperature(temperature=0.0),))
        """
        if self.schedule is None:
            assert isinstance(self.sampler, Sampler)  # a factory requires a schedule
            return self.sampler
        return self._for_temperature(float(self.schedule(step)))

    def _for_temperature(self, t: float) -> Sampler:
        if self._cached is not None and self._cached[0] == t:
            return self._cached[1]
        if self._factory is not None:
            made = self._factory(t)
            if not isinstance(made, Sampler):
                raise TypeError(
                    "`sampler` factory must return a thermoscope Sampler, "
                    f"got {type(made).__name__}."
                )
        else:
            steps = list(self._warpers)
            if self._slot < 0:
                steps.insert(0, Temperature(t))
            else:
                steps[self._slot] = Temperature(t)
            made = Sampler(steps, order="as_given")
        self._cached = (t, made)
        return made

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Warp one step's ``scores`` (B, V) with that step's sampler (or draw from it)."""
        out: torch.FloatTensor
        if self.schedule is None:
            assert isinstance(self.sampler, Sampler)  # a factory requires a schedule
            out = self._apply(self.sampler, input_ids, scores)
            return out
        step, restarted = self._tracker.advance(input_ids)
        if restarted is True:
            self.temperatures = []
        t = float(self.schedule(step))
        out = self._apply(self._for_temperature(t), input_ids, scores)
        # Shaped like a continuation: the token comparison is read only now,
        # with this step's work already queued on the device. A new generation
        # of that shape (rare) is redone at step 0.
        if not isinstance(restarted, bool) and bool(restarted):
            self._tracker.restart(input_ids)
            self.temperatures = []
            t = float(self.schedule(0))
            out = self._apply(self._for_temperature(t), input_ids, scores)
        self.temperatures.append(t)
        return out

    def _apply(self, sampler: Sampler, input_ids: torch.Tensor, scores: torch.Tensor) -> Any:
        # History-aware stages (penalties, DRY, no-repeat-n-gram) read the
        # sequence so far: generate's input_ids, prompt included, as
        # transformers' own processors do.
        history = input_ids if any(w.needs_history for w in sampler.warpers) else None
        if self._seeds is None:
            return sampler.logits(scores, history=history)
        tokens = sampler.sample(
            scores, seed=self._row_seeds(scores), step=self._steps(input_ids), history=history
        ).reshape((*scores.shape[:-1], 1))
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, tokens.to(scores.device), 0.0)

    def _row_seeds(self, scores: torch.Tensor) -> int | torch.Tensor:
        seeds = self._seeds
        if not isinstance(seeds, torch.Tensor):
            assert seeds is not None
            return seeds
        rows = scores.shape[0] if scores.ndim > 1 else 1
        if seeds.shape[0] != rows:
            raise ValueError(
                f"`seed` must have one seed per batch row ({rows}), got {seeds.shape[0]}."
            )
        on = self._seeds_on.get(scores.device)
        if on is None:
            on = self._seeds_on[scores.device] = seeds.to(scores.device)
        return on

    def _steps(self, input_ids: torch.Tensor) -> int | torch.Tensor:
        """The draw step of every row: its sequence length, leading pad tokens excluded."""
        length = int(input_ids.shape[-1])
        if self.pad_token_id is None:
            return length
        leading = (input_ids == self.pad_token_id).to(torch.int64).cumprod(dim=-1).sum(dim=-1)
        return length - leading
