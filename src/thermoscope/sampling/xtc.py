"""XTC, "exclude top choices": now and then, remove the most likely tokens but one.

With probability ``probability`` per row (one seeded coin per row and step),
every token whose probability is at least ``threshold`` is removed except the
least probable of them, so the draw picks a less obvious but still plausible
token. Only when at least two tokens reach the threshold does anything change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._temperature import row_weights
from thermoscope._typing import Array
from thermoscope._validation import check_fraction, check_integer
from thermoscope.sampling import _kernels
from thermoscope.sampling._context import Context
from thermoscope.sampling._input import on_device, rows_param
from thermoscope.sampling.warpers import Warper, _freeze

__all__ = ["XTC"]

#: The key of XTC's coins ("XTC" in ASCII): a stream apart from the draws' and other stages'.
XTC_SALT = 0x58_54_43

#: llama.cpp: above 1/2 at most one token can reach the threshold, so XTC is off.
_OFF_ABOVE = 0.5


@dataclass(frozen=True, eq=False)
class XTC(Warper):
    """Exclude top choices (llama.cpp's ``xtc`` sampler), with a seeded coin per row.

    On each row whose coin comes up (probability ``probability``), the tokens
    whose probability is ``>= threshold`` are found; if there are at least
    two, all of them except the least probable are removed (set to ``-inf``).
    Probabilities are the softmax of the row as it arrives at this stage, over
    its finite entries.

    Parameters
    ----------
    probability : float or array_like
        Chance in [0, 1] that the cut happens on a row at a step; ``0`` is off.
        Typical values 0.1-0.5 (llama.cpp's ``--xtc-probability``, default 0 = off).
    threshold : float or array_like
        In [0, 1]; tokens with probability ``>= threshold`` are the top
        choices. Typical value 0.1 (llama.cpp's ``--xtc-threshold`` default).
        Above 0.5 at most one token can reach it, so XTC is off, as in llama.cpp.
    min_keep : int, default 1
        The cut is skipped (the row is left whole) unless at least this many
        tokens remain after it, as llama.cpp's ``min_keep``; >= 0.

    Notes
    -----
    Matches llama.cpp's ``llama_sample_xtc_apply`` (``src/llama-sampler.cpp``,
    as vendored by llama-cpp-python 0.3.36): the coin, ``threshold > 0.5`` off,
    the cut only when two or more tokens reach the threshold, and the
    all-or-nothing ``min_keep`` rule. In both of thermoscope's orders XTC comes
    after the truncations (top-k, top-p, min-p, ...), where llama.cpp puts it.

    Differences, each deliberate:

    - The coin comes from the call's ``seed=`` / ``step=`` (counter-based,
      one per row, the same alone or in a batch) or ``rng=``, not from a
      sampler-owned ``mt19937``; the cut happens when ``coin < probability``,
      so its frequency is exactly ``probability``. Without ``seed`` or ``rng``
      a call raises a ValueError naming ``seed`` (unless XTC is off on every
      row).
    - Ties: tokens tied with the least probable top choice are all kept
      (llama.cpp keeps the one its sort happens to put last).
    - Probabilities are compared in log space in float64
      (``z >= max + log(threshold * sum(exp(z - max)))``), not in float32.

    The result on a row depends only on its finite values, so the fused path
    runs XTC on its candidate list after the first cut.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.log(np.array([[0.4, 0.3, 0.2, 0.1]]))
    >>> np.isfinite(XTC(1.0, 0.15)(z, seed=0))  # 0.4 and 0.3 go, 0.2 (the least top choice) stays
    array([[False, False,  True,  True]])
    >>> np.isfinite(XTC(1.0, 0.6)(z, seed=0))  # threshold > 0.5: off
    array([[ True,  True,  True,  True]])
    """

    probability: float | Array
    threshold: float | Array
    min_keep: int = field(default=1, kw_only=True)
    name: ClassVar[str] = "xtc"
    on_candidates: ClassVar[bool] = True

    def __post_init__(self) -> None:
        prob = check_fraction(self.probability, "probability", low_open=False)
        thr = check_fraction(self.threshold, "threshold", low_open=False)
        keep = check_integer(self.min_keep, "min_keep", minimum=0)
        if keep.ndim != 0:
            raise TypeError(f"`min_keep` must be a single integer >= 0, got shape {keep.shape}.")
        object.__setattr__(self, "probability", _freeze(prob))
        object.__setattr__(self, "threshold", _freeze(thr))
        object.__setattr__(self, "min_keep", int(keep))

    def apply(self, z: Any, batch_shape: tuple[int, ...]) -> Any:
        return self.apply_in(z, Context(batch_shape))

    def apply_in(self, z: Any, ctx: Context) -> Any:
        """Cut the top choices of the rows whose coin comes up (coins from ``ctx``).

        Examples
        --------
        >>> import numpy as np
        >>> XTC(0.0, 0.1).apply_in(np.array([[0.0, 0.0]]), Context((1,)))  # off: no coin
        array([[0., 0.]])
        """
        p = rows_param(self.probability, ctx.batch_shape, "probability")
        t = rows_param(self.threshold, ctx.batch_shape, "threshold")
        live = (p > 0) & (t <= _OFF_ABOVE)
        if not live.any():
            return z.clone() if is_torch(z) else z.copy()
        # Rows that are off never cut: a chance of 0 beats every coin in [0, 1).
        chance = on_device(np.where(live, p, 0.0), z)
        on = ctx.coins(type(self).__name__, XTC_SALT) < chance
        if is_torch(z):
            return _exclude_torch(z, on, on_device(t, z), self.min_keep)
        return _exclude_numpy(z, on, t, self.min_keep)


def _exclude_numpy(z: Array, on: Array, t: Array, min_keep: int) -> Array:
    """Remove every top choice but the least probable on the rows where ``on``."""
    w, m = row_weights(z)
    total = w.sum(axis=-1, dtype=np.float64)
    with np.errstate(divide="ignore"):  # threshold 0: log 0 = -inf, every token is a top choice
        cut = m[:, 0].astype(np.float64) + np.log(t * total)
    finite = z > -np.inf
    top = (z >= _kernels.floor_in(cut, z.dtype)[:, None]) & finite
    least = np.where(top, z, np.inf).min(axis=-1)  # +inf where a row has no top choice
    removed = z > least[:, None]
    n_removed = removed.sum(axis=-1)
    cuts = on & (n_removed >= 1) & (finite.sum(axis=-1) - n_removed >= min_keep)
    return _kernels.apply_mask(z, ~(removed & cuts[:, None]))


def _exclude_torch(z: Any, on: Any, t: Any, min_keep: int) -> Any:
    """:func:`_exclude_numpy` with torch operations on ``z``'s device."""
    import torch

    from thermoscope.sampling import _kernels_torch as KT

    w, m = row_weights(z)
    cut = m[:, 0].to(torch.float64) + torch.log(t * KT.sum64(w))
    finite = z > -torch.inf
    top = (z >= KT.floor_in(cut, z.dtype)[:, None]) & finite
    least = torch.where(top, z, torch.inf).amin(dim=-1)
    removed = z > least[:, None]
    n_removed = removed.sum(dim=-1)
    cuts = on & (n_removed >= 1) & (finite.sum(dim=-1) - n_removed >= min_keep)
    return KT.apply_mask(z, ~(removed & cuts[:, None]))
