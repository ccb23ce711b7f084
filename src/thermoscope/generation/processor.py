"""`SamplerLogitsProcessor`: any thermoscope `Sampler` inside transformers' ``generate``.

``model.generate(..., do_sample=True, logits_processor=[SamplerLogitsProcessor(s)])``
samples each token from ``s.probs`` of that step's logits: the processor
returns ``s.logits(scores)`` (removed tokens ``-inf``), and ``generate`` draws
from ``softmax`` of what the last processor returns.

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
    by exactly one token (same batch); the step is then the number of tokens
    generated so far (0 at the first call).

    Examples
    --------
    >>> import torch
    >>> t = StepTracker()
    >>> t.update(torch.tensor([[5, 6]])), t.update(torch.tensor([[5, 6, 7]]))
    ((0, True), (1, False))
    >>> t.update(torch.tensor([[5, 6]]))
    (0, True)
    """

    __slots__ = ("_prompt_length", "_seen")

    def __init__(self) -> None:
        self._seen: torch.Tensor | None = None
        self._prompt_length = 0

    def update(self, input_ids: torch.Tensor) -> tuple[int, bool]:
        """Record ``input_ids`` (B, L); return ``(step, started_new_generation)``."""
        prev = self._seen
        fresh = (
            prev is None
            or input_ids.shape[0] != prev.shape[0]
            or input_ids.shape[-1] != prev.shape[-1] + 1
            or not torch.equal(input_ids[:, :-1], prev)
        )
        if fresh:
            self._prompt_length = int(input_ids.shape[-1])
        self._seen = input_ids
        return int(input_ids.shape[-1]) - self._prompt_length, fresh

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

    Notes
    -----
    Each call returns ``sampler.logits(scores)`` for that step's sampler:
    torch in, torch out, on the scores' device and in their dtype (the chain
    runs in numpy on the CPU). ``generate`` then draws from ``softmax`` of
    them with its own (``torch.manual_seed``-able) random generator, so with
    :func:`generate_kwargs` the distribution of every token is exactly
    ``sampler.probs`` of the logits that reach the processor. Build the
    arguments with :func:`generate_kwargs`: ``generate`` applies
    transformers' own warpers after every custom processor, and its default
    ``top_k=50`` would otherwise truncate a second time.

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
    """

    def __init__(self, sampler: Sampler | Callable[[float], Sampler], schedule: Any = None):
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
        self.sampler = sampler
        self.schedule: Callable[[Any], Any] | None = (
            None if schedule is None else as_schedule(schedule, "schedule")
        )
        self.temperatures: list[float] = []
        self._tracker = StepTracker()
        self._cached: tuple[float, Sampler] | None = None

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
        """Warp one step's ``scores`` (B, V) with that step's sampler."""
        step, fresh = self._tracker.update(input_ids)
        if fresh:
            self.temperatures = []
        if self.schedule is None:
            sampler = self.sampler_at(step)
        else:
            t = float(self.schedule(step))
            self.temperatures.append(t)
            sampler = self._for_temperature(t)
        out: torch.FloatTensor = _logits(sampler, scores)
        return out


def _logits(sampler: Sampler, scores: torch.Tensor) -> Any:
    """``sampler.logits(scores)``, sharing memory with CPU float32/float64 scores.

    The Sampler would do the same numpy computation on the same array; going
    through numpy here only skips its generic torch round trip (device and
    dtype moves that are no-ops for such scores), a per-step fixed cost.
    """
    if scores.device.type == "cpu" and scores.dtype in (torch.float32, torch.float64):
        warped = sampler.logits(scores.detach().numpy())
        return torch.from_numpy(np.ascontiguousarray(warped))
    return sampler.logits(scores)
