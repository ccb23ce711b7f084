"""Adaptive-p: steer each draw towards a target probability, with per-row memory.

llama.cpp's ``adaptive-p`` sampler (``llama_sampler_init_adaptive_p``, pull
request #17927) reshapes the distribution so that tokens whose probability is
near an *adapted* target become the likely ones, and keeps an exponential
moving average (EMA) of the probabilities of the tokens it drew, so that over
many steps the drawn tokens' probability averages the target. It is the one
stateful stage: :class:`AdaptiveP` holds one EMA per row and must be the last
stage of a :class:`~thermoscope.sampling.Sampler`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._typing import Array
from thermoscope.sampling._context import Context
from thermoscope.sampling._input import on_device, rows_param
from thermoscope.sampling.warpers import Warper

__all__ = ["AdaptiveP"]

# llama.cpp's transform constants (DISTRIBUTION_WIDTH, PEAK_LOGIT_VALUE, SHARPNESS).
WIDTH = 0.3
PEAK = 5.0
SHARPNESS = 10.0
#: The largest decay llama.cpp accepts (it clamps ``decay`` to [0, 0.99]).
MAX_DECAY = 0.99


def _numbers(value: Any, name: str, allowed: str) -> Array:
    """``value`` as a float64 array of finite numbers, or the standard error naming ``name``."""
    if is_torch(value) or isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"`{name}` must be {allowed}, got {value!r}.")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be {allowed}, got {value!r}.") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be {allowed}, got {value!r}.")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}.")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        bad = out[~np.isfinite(out)].flat[0]
        raise ValueError(f"`{name}` must be {allowed}, got {bad}.")
    return out


def _frozen(arr: Array) -> float | Array:
    if arr.ndim == 0:
        number: float = float(arr)
        return number
    out = np.array(arr, copy=True)
    out.flags.writeable = False
    return out


class AdaptiveP(Warper):
    """llama.cpp's adaptive-p: favour tokens whose probability is near a target.

    Each row's distribution ``p`` (softmax of the logits this stage receives)
    is turned into the logits ``5 - 10 d**2 / (1 + d)`` with
    ``d = |p - a| / 0.3``: quadratic near the adapted target ``a``, linear in
    the tails (removed tokens stay removed). The adapted target is
    ``a = clip(2 * target - ema, 0, 1)``, where ``ema`` is the exponential
    moving average of the pre-transform probabilities ``p`` of the tokens
    drawn so far: drawing below the target raises ``a``, above lowers it.

    Parameters
    ----------
    target : float or array_like
        Probability to aim for, in [0, 1], one value or one per row; a
        negative value switches the stage off on that row (llama.cpp's
        convention: its default ``--adaptive-target -1``). Typical values
        0.3-0.7.
    decay : float or array_like, default 0.9
        EMA decay in [0, 0.99]: the memory is about ``1 / (1 - decay)``
        tokens (llama.cpp's ``--adaptive-decay``, default 0.90).

    Notes
    -----
    Matches llama.cpp's ``llama_sampler_adaptive_p`` (``src/llama-sampler.cpp``,
    as vendored by llama-cpp-python 0.3.36), which selects the token and so is
    always the last stage; the Sampler refuses a chain where it is not, in
    either order. Each row's state is ``weighted_sum`` and ``total_weight``,
    initialised to ``target / (1 - decay)`` and ``1 / (1 - decay)`` (an EMA
    equal to the target, as after :meth:`reset`), and updated by
    :meth:`observe` with the drawn token's *original* probability (before
    the transform, after the stages before this one):
    ``weighted_sum = p + decay * weighted_sum``, ``total_weight = 1 + decay *
    total_weight``. llama.cpp computes in float32; here float64.

    This stage is stateful, so unlike the other warpers it is not a frozen
    dataclass: ``target`` and ``decay`` are fixed, the state changes. The
    state is sized by the first call (one EMA per row of the logits' batch)
    and lives with the logits (a numpy array, or a float64 tensor on their
    device); a batch of another size is an error until :meth:`reset`.
    :meth:`apply_in` (and so ``Sampler.probs``, ``logits``, ``trace``) never
    changes the state: only :meth:`observe` does, which the Sampler calls
    after each ``sample(n=1)`` with the drawn tokens. ``observe`` uses the
    probabilities of the rows last seen by ``apply_in``, the draw's own
    within a Sampler; llama.cpp also skips the update when the accepted
    token is not the one it selected, which cannot be told apart here.
    One instance serves one sequence batch, from one thread.

    Examples
    --------
    >>> import numpy as np
    >>> from thermoscope.sampling import Sampler
    >>> s = Sampler([AdaptiveP(0.3, decay=0.5)])
    >>> z = np.log(np.array([0.6, 0.3, 0.1]))
    >>> s.probs(z).round(3)  # the token of probability 0.3 is now the likeliest
    array([0.006, 0.929, 0.065])
    >>> s.sample(z, seed=0)
    array([1])
    >>> s.warpers[0].ema  # 0.3 drawn: (0.3 + 0.5 * 0.6) / (1 + 0.5 * 2)
    array([0.3])
    """

    name: ClassVar[str] = "adaptive_p"
    must_be_last: ClassVar[bool] = True
    stateful: ClassVar[bool] = True
    # The EMA update needs the drawn token's id in the probabilities apply_in saw.
    on_candidates: ClassVar[bool] = False

    def __init__(self, target: float | Array, *, decay: float | Array = 0.9):
        t = _numbers(target, "target", "a number in [0, 1] (negative: off)")
        if np.any(t > 1):
            raise ValueError(
                f"`target` must be a number in [0, 1] (negative: off), got {t[t > 1].flat[0]}."
            )
        d = _numbers(decay, "decay", f"a number in [0, {MAX_DECAY}]")
        if np.any((d < 0) | (d > MAX_DECAY)):
            bad = d[(d < 0) | (d > MAX_DECAY)].flat[0]
            raise ValueError(f"`decay` must be a number in [0, {MAX_DECAY}], got {bad}.")
        self._target = _frozen(t)
        self._decay = _frozen(d)
        self._state: tuple[Any, Any] | None = None
        # Per-row target and decay, flat (B,), fixed when the state is sized.
        self._rows: tuple[Array, Array] | None = None
        self._pending: Any = None

    @property
    def target(self) -> float | Array:
        """The target probability (one value, or one per row).

        Examples
        --------
        >>> AdaptiveP(0.5).target
        0.5
        """
        return self._target

    @property
    def decay(self) -> float | Array:
        """The EMA decay (one value, or one per row).

        Examples
        --------
        >>> AdaptiveP(0.5).decay
        0.9
        """
        return self._decay

    @property
    def weighted_sum(self) -> Any:
        """Per-row ``sum_i p_i * decay**i`` over the drawn tokens (None before the first call).

        Examples
        --------
        >>> AdaptiveP(0.5).weighted_sum is None
        True
        """
        return None if self._state is None else self._state[0]

    @property
    def total_weight(self) -> Any:
        """Per-row ``sum_i decay**i`` (None before the first call).

        Examples
        --------
        >>> w = AdaptiveP(0.5, decay=0.5)
        >>> _ = w([0.0, 1.0])
        >>> w.total_weight
        array([2.])
        """
        return None if self._state is None else self._state[1]

    @property
    def ema(self) -> Any:
        """Per-row moving average ``weighted_sum / total_weight`` (None before the first call).

        Examples
        --------
        >>> w = AdaptiveP(0.4)
        >>> _ = w([0.0, 1.0])
        >>> w.ema
        array([0.4])
        """
        return None if self._state is None else self._state[0] / self._state[1]

    def __repr__(self) -> str:
        return f"AdaptiveP(target={self._target!r}, decay={self._decay!r})"

    def reset(self) -> None:
        """Forget every row's state (new sequences); the next call sizes it anew.

        Examples
        --------
        >>> w = AdaptiveP(0.4)
        >>> _ = w([[0.0, 1.0], [1.0, 0.0]])
        >>> w.reset()
        >>> w.ema is None
        True
        """
        self._state = None
        self._rows = None
        self._pending = None

    def _rows_state(self, z: Any, batch_shape: tuple[int, ...]) -> tuple[Any, Any]:
        """The state as arrays of ``z``'s kind, created (at the EMA = target start) if unsized."""
        rows = int(z.shape[0])
        if self._state is None:
            target = rows_param(self._target, batch_shape, "target")
            decay = rows_param(self._decay, batch_shape, "decay")
            ws, tw = target / (1.0 - decay), 1.0 / (1.0 - decay)
            self._rows = (target, decay)
            self._state = (on_device(ws, z), on_device(tw, z))
            return self._state
        ws, tw = self._state
        if int(ws.shape[0]) != rows:
            raise ValueError(
                f"`logits` must have {int(ws.shape[0])} rows, the batch AdaptiveP's state was "
                f"sized for, got {rows}: call reset() to start new sequences."
            )
        if is_torch(z) != is_torch(ws) or (is_torch(z) and ws.device != z.device):
            # Another library or device than the last call's: the state follows the logits.
            ws, tw = (_moved(x, z) for x in (ws, tw))
            self._state = (ws, tw)
        return ws, tw

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        return self.apply_in(z, Context(batch_shape))

    def apply_in(self, z: Any, ctx: Context) -> Any:
        """The transformed logits of rows ``z`` (B, V); the state is read, never changed.

        Examples
        --------
        >>> AdaptiveP(0.5).apply_in(np.array([[0.0, 0.0]]), Context((1,)))
        array([[5., 5.]])
        """
        ws, tw = self._rows_state(z, ctx.batch_shape)
        target = rows_param(self._target, ctx.batch_shape, "target")
        if is_torch(z):
            import torch

            z64 = z.to(torch.float64)
            probs = torch.softmax(z64, dim=-1)
            t = on_device(target, z)
            adapted = torch.clamp(2.0 * torch.clamp(t, 0.0, 1.0) - ws / tw, 0.0, 1.0)
            dist = torch.abs(probs - adapted[:, None]) / WIDTH
            shaped = PEAK - SHARPNESS * dist * dist / (1.0 + dist)
            on = (t >= 0)[:, None] & torch.isfinite(z)
            self._pending = probs
            return torch.where(on, shaped.to(z.dtype), z)
        z64 = z.astype(np.float64)
        w = np.exp(z64 - z64.max(axis=-1, keepdims=True))
        probs = w / w.sum(axis=-1, keepdims=True)
        adapted = np.clip(2.0 * np.clip(target, 0.0, 1.0) - ws / tw, 0.0, 1.0)
        dist = np.abs(probs - adapted[:, None]) / WIDTH
        shaped = PEAK - SHARPNESS * dist * dist / (1.0 + dist)
        on = (target >= 0)[:, None] & np.isfinite(z)
        self._pending = probs
        return np.where(on, shaped, z).astype(z.dtype, copy=False)

    def observe(self, tokens: Any) -> None:
        """Update each row's EMA with the original probability of its drawn token.

        ``tokens`` (B,) are the ids drawn from the rows :meth:`apply_in` saw
        last (the Sampler passes them after each ``sample(n=1)``). Rows whose
        target is negative (off) keep their state.

        Examples
        --------
        >>> w = AdaptiveP(0.5, decay=0.0)
        >>> _ = w(np.log([[0.8, 0.2]]))
        >>> w.observe(np.array([1]))
        >>> w.ema
        array([0.2])
        """
        probs = self._pending
        if probs is None or self._state is None or self._rows is None:
            raise ValueError(
                "AdaptiveP.observe needs the distribution of the draw: call it after the "
                "stage has warped the logits the `tokens` were drawn from."
            )
        rows = int(probs.shape[0])
        ids = on_device(tokens, probs) if is_torch(probs) else tokens
        shape = tuple(ids.shape) if hasattr(ids, "shape") else ()
        if shape != (rows,):
            raise ValueError(
                f"`tokens` must hold one token id per row, shape ({rows},), got shape {shape}."
            )
        ws, tw = self._state
        target, decay = self._rows
        if is_torch(probs):
            import torch

            picked = probs.gather(1, ids.to(torch.int64)[:, None])[:, 0]
            on = on_device(target, probs) >= 0
            d = on_device(decay, probs)
            self._state = (
                torch.where(on, picked + d * ws, ws),
                torch.where(on, 1.0 + d * tw, tw),
            )
        else:
            ids = np.asarray(ids)
            vocab = probs.shape[1]
            if ids.dtype.kind not in "iu" or np.any((ids < 0) | (ids >= vocab)):
                raise ValueError(
                    f"`tokens` must be token ids in [0, {vocab}), got {ids.tolist()!r}."
                )
            picked = probs[np.arange(rows), ids]
            on = target >= 0
            self._state = (
                np.where(on, picked + decay * ws, ws),
                np.where(on, 1.0 + decay * tw, tw),
            )
        self._pending = None


def _moved(state: Any, like: Any) -> Any:
    """A (B,) float64 state array as ``like``'s kind and device."""
    if is_torch(like):
        return on_device(state, like) if not is_torch(state) else state.to(like.device)
    # A tensor state for numpy logits: its B numbers come to the host (a rare switch).
    return np.asarray(state.tolist(), dtype=np.float64)
