"""A learnable temperature for contrastive training, bounded the way CLIP needs.

CLIP learns the logit scale ``1 / T`` and states that it is "clipped to
prevent scaling the logits by more than 100" (Radford et al. 2021, section
2.4). The released ``clip/model.py`` has no clamp (openai/CLIP issue 46; PR
530 proposed ``torch.clamp(logit_scale.exp(), max=100)`` in ``forward``); the
training recipe, as open_clip reproduces it (``src/training/train.py``),
clamps the *parameter* in place after every optimizer step:
``logit_scale.clamp_(0, math.log(100))`` under ``torch.no_grad()``, so the
scale stays in [1, 100]. Without a bound the scale climbs to the cap or falls
to 1 (open_clip issues 214 and 815).

:class:`LearnableTemperature` offers both kinds of bound with a gradient that
stays meaningful at the bound:

- ``bound="hard"``: the value is clamped in ``forward`` and the parameter
  can also be projected after the step (:meth:`LearnableTemperature.clamp_`,
  open_clip's way). Inside and exactly at the bound the gradient is the
  unbounded one (as ``torch.clamp``). Beyond the bound a plain clamp gives a
  zero gradient, so a parameter pushed past it (by momentum, weight decay, a
  large step) would be stuck there for good; here only the part of the
  gradient that points back inside passes, so it can always return and is
  never pushed further out.
- ``bound="soft"``: ``log T`` is squashed smoothly into
  ``[log min_t, log max_t]`` by a scaled ``tanh``; the gradient is non-zero
  everywhere and shrinks near the bounds, like a barrier. No projection needed.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import nn

from thermoscope._backend import as_compute
from thermoscope._validation import check_scalar

__all__ = ["LearnableTemperature"]

_PARAMETRIZATIONS = ("log_t", "log_scale")
_BOUNDS = ("hard", "soft")


def _positive(value: Any, name: str) -> float:
    x = check_scalar(value, name, "a number > 0")
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"`{name}` must be finite and > 0, got {x!r}.")
    return x


class _InwardClamp(torch.autograd.Function):
    """``raw.clamp(lo, hi)`` whose gradient beyond a bound keeps only its inward part."""

    @staticmethod
    def forward(ctx: Any, raw: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        ctx.save_for_backward(raw)
        ctx.lo, ctx.hi = lo, hi
        return raw.clamp(lo, hi)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (raw,) = ctx.saved_tensors
        inside = (raw >= ctx.lo) & (raw <= ctx.hi)
        # Gradient descent moves raw by -grad: above hi a positive grad moves it down
        # (inward), below lo a negative one moves it up.
        inward = ((raw > ctx.hi) & (grad > 0)) | ((raw < ctx.lo) & (grad < 0))
        return torch.where(inside | inward, grad, torch.zeros_like(grad)), None, None


class LearnableTemperature(nn.Module):
    """A temperature ``T`` learned by gradient descent, kept in ``[min_t, max_t]``.

    Parameters
    ----------
    init : float, default 1.0
        Initial temperature, in ``[min_t, max_t]`` (strictly inside for
        ``bound="soft"``).
    parametrization : {"log_t", "log_scale"}, default "log_t"
        What the parameter ``raw`` holds: ``log T``, or ``log(1 / T)`` (CLIP's
        ``logit_scale``; its state dict value ports directly). Both make
        multiplicative steps in ``T``; with Adam they train alike.
    min_t, max_t : float, default 0.01 and 100.0
        Bounds, ``0 < min_t < max_t < inf``. CLIP's cap of 100 on the scale
        is ``min_t = 0.01``.
    bound : {"hard", "soft"}, default "hard"
        ``"hard"``: clamp, the gradient passes inside, at the bound, and
        beyond it only when it points back inside. ``"soft"``: a smooth
        squashing with a non-zero gradient everywhere (see Notes).
    learnable : bool, default True
        ``False`` stores ``raw`` as a buffer: a fixed temperature with the
        same interface (for ablations).

    Notes
    -----
    With ``s = +1`` for ``"log_t"`` and ``-1`` for ``"log_scale"``, the raw
    bounds are ``[lo, hi]``, the sorted ``s * log(min_t)`` and ``s * log(max_t)``.
    Hard: ``log T = s * clamp(raw, lo, hi)``. Soft:
    ``log T = s * (m + h * tanh((raw - m) / h))`` with ``m = (lo + hi) / 2``
    and ``h = (hi - lo) / 2``: slope 1 in the middle (``raw`` is about
    ``s * log T`` there), ``d log T / d raw = 1 - ((s log T - m) / h)^2`` near
    the bounds, never exactly 0 mathematically (in floating point ``tanh``
    saturates some ``10 h`` beyond the middle).

    Examples
    --------
    >>> import torch
    >>> lt = LearnableTemperature.clip()
    >>> round(lt.scale.tolist(), 3), round(lt.temperature.tolist(), 3)
    (14.286, 0.07)
    >>> lt(torch.tensor([0.7, 0.0])).tolist()  # logits / T
    [10.0, 0.0]
    """

    raw: torch.Tensor

    def __init__(
        self,
        init: float = 1.0,
        *,
        parametrization: Literal["log_t", "log_scale"] = "log_t",
        min_t: float = 0.01,
        max_t: float = 100.0,
        bound: Literal["hard", "soft"] = "hard",
        learnable: bool = True,
    ) -> None:
        super().__init__()
        if parametrization not in _PARAMETRIZATIONS:
            raise ValueError(
                f"`parametrization` must be 'log_t' or 'log_scale', got {parametrization!r}."
            )
        if bound not in _BOUNDS:
            raise ValueError(f"`bound` must be 'hard' or 'soft', got {bound!r}.")
        if not isinstance(learnable, bool):
            raise TypeError(f"`learnable` must be True or False, got {learnable!r}.")
        lo_t, hi_t = _positive(min_t, "min_t"), _positive(max_t, "max_t")
        if not lo_t < hi_t:
            raise ValueError(f"`max_t` must be > `min_t` ({lo_t!r}), got {hi_t!r}.")
        t0 = _positive(init, "init")
        inside = lo_t < t0 < hi_t if bound == "soft" else lo_t <= t0 <= hi_t
        if not inside:
            where = f"({lo_t!r}, {hi_t!r})" if bound == "soft" else f"[{lo_t!r}, {hi_t!r}]"
            raise ValueError(f"`init` must be in {where} (min_t, max_t), got {t0!r}.")
        self.parametrization = parametrization
        self.bound = bound
        self.min_t, self.max_t = lo_t, hi_t
        self.learnable = learnable
        self._sign = 1.0 if parametrization == "log_t" else -1.0
        ends = sorted((self._sign * math.log(lo_t), self._sign * math.log(hi_t)))
        self._lo, self._hi = ends[0], ends[1]
        self._mid, self._half = (self._lo + self._hi) / 2, (self._hi - self._lo) / 2
        value = self._sign * math.log(t0)
        if bound == "soft":
            value = self._mid + self._half * math.atanh((value - self._mid) / self._half)
        data = torch.tensor(value, dtype=torch.get_default_dtype())
        if learnable:
            self.raw = nn.Parameter(data)
        else:
            self.register_buffer("raw", data)

    @classmethod
    def clip(cls) -> LearnableTemperature:
        """CLIP's temperature: ``T = 0.07`` (scale ``1 / 0.07``), log-scale, scale capped at 100.

        The paper caps the scale at 100 (``min_t = 0.01``); open_clip also
        keeps it >= 1, which is ``max_t=1.0`` here.

        Examples
        --------
        >>> LearnableTemperature.clip().parametrization
        'log_scale'
        """
        return cls(0.07, parametrization="log_scale", min_t=0.01, max_t=100.0, bound="hard")

    def _bounded_raw(self) -> torch.Tensor:
        if self.bound == "hard":
            out: torch.Tensor = _InwardClamp.apply(self.raw, self._lo, self._hi)  # type: ignore[no-untyped-call]
            return out
        return self._mid + self._half * torch.tanh((self.raw - self._mid) / self._half)

    @property
    def temperature(self) -> torch.Tensor:
        """The temperature ``T``: a 0-d tensor in the parameter's dtype, with its gradient.

        Examples
        --------
        >>> round(LearnableTemperature(0.5).temperature.tolist(), 6)
        0.5
        """
        return torch.exp(self._sign * self._bounded_raw())

    @property
    def scale(self) -> torch.Tensor:
        """The logit scale ``1 / T`` (CLIP's ``logit_scale.exp()``), with its gradient.

        Examples
        --------
        >>> round(LearnableTemperature(0.5).scale.tolist(), 6)
        2.0
        """
        return torch.exp(-self._sign * self._bounded_raw())

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits / T``, in the logits' dtype (half precision computed in float32).

        Examples
        --------
        >>> LearnableTemperature(2.0)(torch.tensor([4.0, -2.0])).tolist()
        [2.0, -1.0]
        """
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"`logits` must be a torch tensor, got {type(logits).__name__}.")
        work, back = as_compute(logits, "logits")
        return back(work / self.temperature.to(dtype=work.dtype, device=work.device))  # type: ignore[no-any-return]

    @torch.no_grad()
    def clamp_(self) -> LearnableTemperature:
        """Project the parameter into its bounds in place (open_clip's clamp after the step).

        Call it after ``optimizer.step()`` with ``bound="hard"``: the parameter
        then never lingers beyond the bound. A no-op for ``bound="soft"``.

        Examples
        --------
        >>> lt = LearnableTemperature(1.0, max_t=2.0)
        >>> _ = lt.raw.data.fill_(5.0)
        >>> round(lt.clamp_().raw.tolist(), 4)  # log 2
        0.6931
        """
        if self.bound == "hard":
            self.raw.clamp_(self._lo, self._hi)
        return self

    def extra_repr(self) -> str:
        """The current temperature and the settings.

        Examples
        --------
        >>> LearnableTemperature(0.5)
        LearnableTemperature(temperature=0.5, parametrization='log_t', bound='hard', min_t=0.01, max_t=100.0, learnable=True)
        """  # noqa: E501
        with torch.no_grad():
            t = float(self.temperature)
        return (
            f"temperature={t:.6g}, parametrization={self.parametrization!r}, "
            f"bound={self.bound!r}, min_t={self.min_t!r}, max_t={self.max_t!r}, "
            f"learnable={self.learnable!r}"
        )
