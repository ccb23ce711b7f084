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

It must be the only warper. ``generate`` adds its own temperature, top-k,
top-p, min-p, typical, epsilon, eta and top-h warpers *after* every custom
processor, from the model's generation config and the call's arguments, and
transformers' default ``top_k`` is 50: a bare ``generate(do_sample=True,
logits_processor=[p])`` silently truncates to 50 tokens after the sampler.
:func:`generate_kwargs` builds arguments that switch every built-in warper
off (and raises if the caller asks for one); :func:`check_generation_config`
says whether a given config and arguments would warp a second time.

Examples
--------
>>> import torch
>>> from thermoscope.sampling import Sampler
>>> p = SamplerLogitsProcessor(Sampler.from_options(temperature=0.5, top_k=2))
>>> p(torch.tensor([[0, 1]]), torch.tensor([[1.0, 3.0, 2.0]]))
tensor([[-inf, 6., 4.]])
>>> sorted(generate_kwargs(p, max_new_tokens=5))[:4]
['do_sample', 'epsilon_cutoff', 'eta_cutoff', 'logits_processor']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig, LogitsProcessor
from transformers.generation import logits_process as _lp

from thermoscope._validation import check_integer, check_seed
from thermoscope.sampling import Sampler, Temperature
from thermoscope.sampling.schedules import as_schedule

__all__ = [
    "NEUTRAL_WARPER_SETTINGS",
    "SamplerLogitsProcessor",
    "StepTracker",
    "check_generation_config",
    "generate_kwargs",
]

#: ``generate`` arguments that switch each of transformers' own warpers off.
#: Keys missing from the installed transformers' ``GenerationConfig`` are skipped.
NEUTRAL_WARPER_SETTINGS: Mapping[str, Any] = {
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "min_p": None,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "top_h": None,
}

# transformers' fallbacks for settings that are None in both the call and the
# model's generation config (GenerationConfig._get_default_generation_params):
# top_k = 50 is the one that warps.
_TRANSFORMERS_DEFAULTS: Mapping[str, Any] = {
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
}

# transformers' own warpers, refused inside `logits_processor` next to ours.
_WARPER_CLASSES: tuple[type, ...] = tuple(
    getattr(_lp, name)
    for name in (
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
        "MinPLogitsWarper",
        "TypicalLogitsWarper",
        "EpsilonLogitsWarper",
        "EtaLogitsWarper",
        "TopHLogitsWarper",
    )
    if hasattr(_lp, name)
)


def _warps(name: str, value: Any) -> bool:
    """Whether ``generate`` builds a warper for the setting ``name`` at ``value``."""
    if value is None:
        return False
    if name == "temperature":
        return bool(value != 1.0)
    if name == "top_k":
        return bool(value != 0)
    if name in ("top_p", "typical_p"):
        return bool(value < 1.0)
    if name in ("epsilon_cutoff", "eta_cutoff"):
        return bool(0.0 < value < 1.0)
    return True  # min_p, top_h: any value builds a warper


def _known_settings() -> dict[str, Any]:
    fresh = GenerationConfig()
    return {k: v for k, v in NEUTRAL_WARPER_SETTINGS.items() if hasattr(fresh, k)}


def check_generation_config(generation_config: Any = None, **kwargs: Any) -> None:
    """Raise if ``generate`` would warp the scores after a thermoscope processor.

    Parameters
    ----------
    generation_config : transformers.GenerationConfig, optional
        The model's config (``model.generation_config``); ``None`` means a
        fresh one, whose unset values fall back to transformers' defaults.
    **kwargs
        The arguments that will be passed to ``generate`` (they override the config).

    Raises
    ------
    ValueError
        Naming every setting that would add a warper (``top_k=50`` when it
        only comes from transformers' default), and how to switch it off.

    Examples
    --------
    >>> check_generation_config(top_k=0, do_sample=True)
    >>> check_generation_config(do_sample=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `generation_config` must not warp the scores a second time ...
    """
    config = GenerationConfig() if generation_config is None else generation_config
    if not isinstance(config, GenerationConfig):
        raise TypeError(
            "`generation_config` must be a transformers.GenerationConfig, "
            f"got {type(config).__name__}."
        )
    active = []
    for name in _known_settings():
        if name in kwargs:
            value, origin = kwargs[name], ""
        elif getattr(config, name, None) is not None:
            value, origin = getattr(config, name), " (from the generation config)"
        else:
            value, origin = _TRANSFORMERS_DEFAULTS.get(name), " (transformers' default)"
        if _warps(name, value):
            active.append(f"{name}={value!r}{origin}")
    if active:
        raise ValueError(
            "`generation_config` must not warp the scores a second time after a "
            f"thermoscope processor, got {', '.join(active)}. Put these settings in the "
            "Sampler and call generate(**generate_kwargs(processor, ...)), which switches "
            "transformers' warpers off (temperature=1.0, top_k=0, top_p=1.0, ...)."
        )


def generate_kwargs(*processors: Any, **kwargs: Any) -> dict[str, Any]:
    """Arguments for ``model.generate`` that sample through ``processors`` and nothing else.

    Sets ``do_sample=True``, every one of transformers' warpers to its "off"
    value (:data:`NEUTRAL_WARPER_SETTINGS`: ``temperature=1.0``, ``top_k=0``,
    ``top_p=1.0``, ...), and appends ``processors`` after any
    ``logits_processor`` given in ``kwargs`` (so repetition penalties and the
    like run before the sampler). Other ``kwargs`` pass through unchanged.

    Parameters
    ----------
    *processors : LogitsProcessor
        Usually one :class:`SamplerLogitsProcessor` or
        :class:`~thermoscope.generation.mirostat.Mirostat`.
    **kwargs
        Further ``generate`` arguments (``max_new_tokens``, ``attention_mask``...).

    Raises
    ------
    ValueError
        If ``kwargs`` asks for a warper of its own (``top_p=0.9``,
        ``temperature=0.7``, a ``TopPLogitsWarper`` in ``logits_processor``...),
        for ``do_sample=False`` or for beam search (``num_beams > 1``).

    Examples
    --------
    >>> from thermoscope.sampling import Sampler
    >>> kw = generate_kwargs(SamplerLogitsProcessor(Sampler.greedy()), max_new_tokens=3)
    >>> kw["do_sample"], kw["top_k"], kw["temperature"], kw["max_new_tokens"]
    (True, 0, 1.0, 3)
    >>> generate_kwargs(SamplerLogitsProcessor(Sampler.greedy()), top_p=0.9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `top_p` must be left to the Sampler ...
    """
    if not processors:
        raise ValueError("`processors` must name at least one logits processor, got none.")
    for name, value in kwargs.items():
        if name in NEUTRAL_WARPER_SETTINGS and _warps(name, value):
            raise ValueError(
                f"`{name}` must be left to the Sampler (it is the only warper), got "
                f"{name}={value!r}. Put it in the Sampler, e.g. "
                f"Sampler.from_options({'epsilon' if name == 'epsilon_cutoff' else name}=...)."
            )
    if kwargs.get("do_sample", True) is not True:
        raise ValueError(
            f"`do_sample` must be True (the processor samples), got {kwargs['do_sample']!r}; "
            "for greedy decoding use Sampler.greedy()."
        )
    if (kwargs.get("num_beams") or 1) > 1:
        raise ValueError(
            f"`num_beams` must be 1 (thermoscope processors sample; beam search re-ranks "
            f"with log-probabilities), got {kwargs['num_beams']!r}."
        )
    extra = list(kwargs.pop("logits_processor", None) or [])
    for proc in extra:
        if isinstance(proc, _WARPER_CLASSES):
            raise ValueError(
                "`logits_processor` must not contain transformers' warpers next to a "
                f"thermoscope processor, got {type(proc).__name__}."
            )
    out = dict(_known_settings())
    out.update(kwargs)
    out["do_sample"] = True
    out["logits_processor"] = _lp.LogitsProcessorList([*extra, *processors])
    return out


class StepTracker:
    """Knows which generation step a ``LogitsProcessor`` call is, and when a new run starts.

    ``generate`` calls each processor once per new token with the ids so far.
    A call starts a new generation unless its ids extend the previous call's
    by exactly one token (same batch, same device); the step is then the
    number of tokens generated so far (0 at the first call).

    The shapes decide most calls on the host. Only a call shaped like a
    continuation needs the tokens compared, and that comparison is a device
    value: :meth:`advance` hands it back unread (so a processor can queue its
    work first, or fold it into device arithmetic), :meth:`update` reads it.

    Examples
    --------
    >>> import torch
    >>> t = StepTracker()
    >>> t.update(torch.tensor([[5, 6]])), t.update(torch.tensor([[5, 6, 7]]))
    ((0, True), (1, False))
    >>> t.update(torch.tensor([[5, 6]]))
    (0, True)
    >>> t.update(torch.tensor([[9, 6, 7]]))  # one token longer, other tokens: a new run
    (0, True)
    """

    __slots__ = ("_prompt_length", "_seen")

    def __init__(self) -> None:
        self._seen: torch.Tensor | None = None
        self._prompt_length = 0

    def advance(self, input_ids: torch.Tensor) -> tuple[int, bool | torch.Tensor]:
        """Record ``input_ids`` (B, L) without reading the device: ``(step, restarted)``.

        When the shapes decide, ``restarted`` is a ``bool`` and ``step`` is
        exact. When the ids are shaped like the previous call's plus one
        token, ``step`` is the continuation's and ``restarted`` is a 0-d bool
        tensor on the ids' device, true when the earlier tokens differ: the
        call then really starts a new generation at step 0, which the caller
        records with :meth:`restart` once it has read the flag.

        Examples
        --------
        >>> import torch
        >>> t = StepTracker()
        >>> t.advance(torch.tensor([[5, 6]]))
        (0, True)
        >>> t.advance(torch.tensor([[5, 6, 7]]))
        (1, tensor(False))
        """
        prev = self._seen
        self._seen = input_ids
        length = int(input_ids.shape[-1])
        if (
            prev is None
            or input_ids.shape[0] != prev.shape[0]
            or length != prev.shape[-1] + 1
            or input_ids.device != prev.device
        ):
            self._prompt_length = length
            return 0, True
        return length - self._prompt_length, (input_ids[:, :-1] != prev).any()

    def restart(self, input_ids: torch.Tensor) -> None:
        """Record that the ids last given to :meth:`advance` started a new generation."""
        self._prompt_length = int(input_ids.shape[-1])

    def update(self, input_ids: torch.Tensor) -> tuple[int, bool]:
        """Record ``input_ids`` (B, L); return ``(step, started_new_generation)``.

        Reads the comparison of the tokens when the shapes do not decide (one
        host read of a device boolean).
        """
        step, restarted = self.advance(input_ids)
        if isinstance(restarted, bool):
            return step, restarted
        if bool(restarted):
            self.restart(input_ids)
            return 0, True
        return step, False

    def reset(self) -> None:
        """Forget the previous call: the next one starts a new generation."""
        self._seen = None


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
    Without ``seed``, each call returns ``sampler.logits(scores)`` for that
    step's sampler: torch in, torch out, on the scores' device and in their
    dtype. ``generate`` then draws from ``softmax`` of them with its own
    (``torch.manual_seed``-able) random generator, so with
    :func:`generate_kwargs` the distribution of every token is exactly
    ``sampler.probs`` of the logits that reach the processor. Build the
    arguments with :func:`generate_kwargs`: ``generate`` applies
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
        """The seed of every row (int), the per-row seeds (CPU int64 tensor), or None."""
        return self._seeds

    def reset(self) -> None:
        """Start the next call as a new generation (step 0)."""
        self._tracker.reset()

    def sampler_at(self, step: int) -> Sampler:
        """The sampler used at generation step ``step``.

        Examples
        --------
        >>> from thermoscope.sampling.schedules import Piecewise
        >>> p = SamplerLogitsProcessor(Sampler(), schedule=Piecewise((2,), (1.0, 0.0)))
        >>> p.sampler_at(1).warpers, p.sampler_at(2).warpers
        ((Temperature(t=1.0),), (Temperature(t=0.0),))
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
        if self.schedule is None:
            assert isinstance(self.sampler, Sampler)  # a factory requires a schedule
            return self._apply(self.sampler, input_ids, scores)
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
        if self._seeds is None:
            return sampler.logits(scores)
        tokens = sampler.sample(
            scores, seed=self._row_seeds(scores), step=self._steps(input_ids)
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
