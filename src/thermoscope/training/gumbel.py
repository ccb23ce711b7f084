"""Gumbel-softmax samples and an annealer for their temperature.

``gumbel_softmax(logits, T)`` is ``softmax((logits + g) / T)`` with ``g``
standard Gumbel noise (Jang et al. 2017; Maddison et al. 2017): a relaxed
one-hot sample whose gradient flows to the logits. As ``T -> 0`` it becomes
the one-hot Gumbel-max sample, distributed as ``softmax(logits)``, with an
ever noisier gradient; at large ``T`` it is smooth but biased. Hence an
annealed temperature, which people copy from forum posts ("from 5 to 0.05
over 5 epochs", DALLE-mtf issue 2): :class:`GumbelAnnealer` makes it one line
on top of :mod:`thermoscope.sampling.schedules`.

Examples
--------
>>> import torch
>>> from thermoscope.training import GumbelAnnealer, gumbel_softmax
>>> annealer = GumbelAnnealer.exponential(start=5.0, end=0.05, steps=100)
>>> y = gumbel_softmax(torch.zeros(2, 3), annealer.temperature, generator=0)
>>> y.shape, bool(torch.allclose(y.sum(-1), torch.ones(2)))
(torch.Size([2, 3]), True)
>>> round(annealer.step(), 4)  # 5 * 0.01 ** (1 / 100)
4.775
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from thermoscope import _temperature as kernel
from thermoscope._backend import as_compute
from thermoscope._validation import check_axis, check_integer, check_logits, check_seed
from thermoscope.sampling.schedules import Cosine, ExponentialDecay, Linear, as_schedule
from thermoscope.training._inputs import positive_temperature, require_tensor

__all__ = ["GumbelAnnealer", "gumbel_softmax"]


def _generator(generator: Any, device: torch.device) -> torch.Generator | None:
    """A torch.Generator on ``device`` from a generator, an integer seed >= 0, or None."""
    if generator is None or isinstance(generator, torch.Generator):
        if generator is not None and generator.device.type != device.type:
            raise ValueError(
                f"`generator` must be on the logits' device ({device.type}), "
                f"got a generator on {generator.device.type}."
            )
        return generator
    if isinstance(generator, (bool, str, bytes, float)):
        raise TypeError(
            f"`generator` must be a torch.Generator or an integer seed >= 0, got {generator!r}."
        )
    return torch.Generator(device=device).manual_seed(check_seed(generator, "generator"))


def gumbel_softmax(
    logits: torch.Tensor,
    temperature: Any,
    *,
    hard: bool = False,
    generator: Any = None,
    dim: int = -1,
) -> torch.Tensor:
    """Relaxed (or straight-through one-hot) categorical samples: ``softmax((logits + g) / T)``.

    Parameters
    ----------
    logits : torch.Tensor
        Unnormalised log-probabilities; ``-inf`` entries are never sampled.
    temperature : float, torch.Tensor or LearnableTemperature
        ``T > 0`` and finite: one number, or one per slice (the shape of
        ``logits`` without ``dim``). A tensor keeps its gradient.
    hard : bool, default False
        Return the one-hot Gumbel-max sample ``onehot(argmax(logits + g))``
        (exactly one-hot in the forward pass) whose gradient is the relaxed
        sample's (straight-through).
    generator : torch.Generator or int, optional
        The noise's random stream (a generator on the logits' device, or an
        integer seed >= 0). None uses torch's global generator, as
        ``torch.nn.functional.gumbel_softmax`` does.
    dim : int, default -1
        The category axis.

    Returns
    -------
    torch.Tensor
        Samples of the logits' shape and dtype (half precision computed in
        float32), summing to 1 along ``dim``.

    Notes
    -----
    ``g = -log E`` with ``E ~ Exponential(1)`` drawn by ``Tensor.exponential_``,
    as in ``torch.nn.functional.gumbel_softmax``: with the same stream the two
    give the same samples. ``E`` is kept above the smallest normal float so
    ``g`` stays finite. The hard sample is ``argmax(logits + g)``, exactly
    distributed as ``softmax(logits)`` whatever ``T``; the forward value is
    ``y_hard + (y_soft - y_soft')`` with ``y_soft'`` a gradient-free copy,
    which is exactly ``y_hard`` (torch's ``y_hard - y_soft + y_soft`` can be
    off by an ulp).

    Examples
    --------
    >>> import torch
    >>> y = gumbel_softmax(torch.tensor([[0.0, 0.0, -float("inf")]]), 0.5, hard=True, generator=1)
    >>> y.sum().tolist(), y[0, 2].tolist()
    (1.0, 0.0)
    """
    require_tensor(logits, "logits")
    z, back = as_compute(logits, "logits")
    if z.ndim == 0:
        raise ValueError("`logits` must have at least 1 dimension(s), got a scalar.")
    axis = check_axis(dim, z.ndim, "dim")
    if z.shape[axis] == 0:
        raise ValueError(f"`logits` must not be empty along `dim`, got shape {tuple(z.shape)}.")
    check_logits(z, "logits", axis)
    if not isinstance(hard, bool):
        raise TypeError(f"`hard` must be True or False, got {hard!r}.")
    batch = tuple(z.shape[:axis]) + tuple(z.shape[axis + 1 :])
    t = positive_temperature(temperature, z, batch)
    gen = _generator(generator, z.device)
    draws = torch.empty_like(z).exponential_(generator=gen)
    noisy = z - torch.log(draws.clamp_min_(torch.finfo(z.dtype).tiny))
    soft = kernel.softmax(noisy, t, axis)
    if not hard:
        return back(soft)  # type: ignore[no-any-return]
    index = noisy.argmax(dim=axis, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(axis, index, 1.0)
    with torch.no_grad():
        frozen = soft.clone()
    return back(one_hot + (soft - frozen))  # type: ignore[no-any-return]


class GumbelAnnealer:
    """The temperature of Gumbel-softmax through training: a schedule and a step counter.

    Parameters
    ----------
    schedule : Schedule or callable
        Any :mod:`thermoscope.sampling.schedules` schedule (``ExponentialDecay``,
        ``Cosine``, ``Linear``, ``Piecewise``, ...) or a callable
        ``step -> temperature``. Each temperature it gives must be finite and > 0.
    start_step : int, default 0
        The step to start from (resuming without a state dict).

    Notes
    -----
    Read :attr:`temperature` for the current step, call :meth:`step` once per
    training step (after the optimizer step): it advances the counter and
    returns the next temperature. The state is the step counter alone.

    Examples
    --------
    >>> from thermoscope.sampling.schedules import Cosine
    >>> a = GumbelAnnealer(Cosine(1.0, 0.5, steps=2))
    >>> a.temperature, a.step(), a.step(), a.step()
    (1.0, 0.75, 0.5, 0.5)
    """

    def __init__(self, schedule: Any, *, start_step: int = 0) -> None:
        if isinstance(schedule, (bool, str, bytes)):
            raise TypeError(
                "`schedule` must be a schedule or a callable step -> temperature, "
                f"got {schedule!r}."
            )
        self._schedule: Callable[[Any], Any] = as_schedule(schedule, "schedule")
        self._step = _step_count(start_step, "start_step")
        self._value(self._step)  # a schedule that starts at T <= 0 fails here, not mid-run

    @classmethod
    def exponential(cls, start: float = 5.0, end: float = 0.05, *, steps: int) -> GumbelAnnealer:
        """Geometric decay from ``start`` to ``end`` over ``steps``, then ``end``.

        The defaults are DALLE-mtf's recipe (5 to 0.05; ``steps`` = five
        epochs of steps there).

        Examples
        --------
        >>> GumbelAnnealer.exponential(steps=2).step()  # sqrt(5 * 0.05)
        0.5
        """
        return cls(ExponentialDecay(start, end=end, steps=steps))

    @classmethod
    def linear(cls, start: float, end: float, *, steps: int) -> GumbelAnnealer:
        """Straight line from ``start`` to ``end`` (> 0) over ``steps``, then ``end``.

        Examples
        --------
        >>> GumbelAnnealer.linear(1.0, 0.5, steps=2).step()
        0.75
        """
        return cls(Linear(start, end, steps))

    @classmethod
    def cosine(cls, start: float, end: float, *, steps: int) -> GumbelAnnealer:
        """Half a cosine from ``start`` to ``end`` (> 0) over ``steps``, then ``end``.

        Examples
        --------
        >>> GumbelAnnealer.cosine(1.0, 0.5, steps=2).step()
        0.75
        """
        return cls(Cosine(start, end, steps))

    @property
    def schedule(self) -> Callable[[Any], Any]:
        """The wrapped schedule.

        Examples
        --------
        >>> GumbelAnnealer(0.5).schedule
        Constant(t=0.5)
        """
        return self._schedule

    @property
    def current_step(self) -> int:
        """How many times :meth:`step` was called (plus ``start_step``).

        Examples
        --------
        >>> GumbelAnnealer(0.5, start_step=3).current_step
        3
        """
        return self._step

    @property
    def temperature(self) -> float:
        """The temperature at the current step.

        Examples
        --------
        >>> GumbelAnnealer.exponential(steps=10).temperature
        5.0
        """
        return self._value(self._step)

    def step(self) -> float:
        """Advance one training step and return the new temperature.

        Examples
        --------
        >>> GumbelAnnealer.linear(2.0, 1.0, steps=4).step()
        1.75
        """
        value = self._value(self._step + 1)
        self._step += 1
        return value

    def state_dict(self) -> dict[str, int]:
        """The state to checkpoint: ``{"step": current_step}``.

        Examples
        --------
        >>> GumbelAnnealer(0.5, start_step=7).state_dict()
        {'step': 7}
        """
        return {"step": self._step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output.

        Examples
        --------
        >>> a = GumbelAnnealer.linear(2.0, 1.0, steps=4)
        >>> a.load_state_dict({"step": 2})
        >>> a.temperature
        1.5
        """
        if not isinstance(state, dict) or set(state) != {"step"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"`state` must be a dict with the one key 'step', got {got}.")
        step = _step_count(state["step"], "state['step']")
        self._value(step)
        self._step = step

    def _value(self, step: int) -> float:
        value = float(self._schedule(step))
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(
                f"`schedule` must give a finite temperature > 0, got {value!r} at step {step}."
            )
        return value

    def __repr__(self) -> str:
        """The schedule and the step.

        Examples
        --------
        >>> GumbelAnnealer(0.5)
        GumbelAnnealer(Constant(t=0.5), current_step=0)
        """
        return f"GumbelAnnealer({self._schedule!r}, current_step={self._step})"


def _step_count(value: Any, name: str) -> int:
    arr = check_integer(value, name, minimum=0)
    if arr.ndim != 0:
        raise TypeError(f"`{name}` must be a single integer >= 0, got shape {arr.shape}.")
    return int(arr)
