"""Where a draw's randomness comes from: per-row counter seeds, or a numpy Generator.

``seed=`` gives counter-based uniforms (:mod:`thermoscope.sampling._counter`):
a row's draws depend on its own seed and step only. ``rng=`` follows the
library's one rule for generators (:func:`thermoscope._validation.as_generator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._validation import as_generator, check_integer, per_row
from thermoscope.sampling._counter import uniforms
from thermoscope.sampling._input import Rows

__all__ = ["draw_uniforms"]

_MAX_SEED = 2**64


def draw_uniforms(rows: Rows, n: Any, seed: Any, rng: Any, step: Any) -> Any:
    """(B, n) float64 uniforms of the rows' kind: counter-based with ``seed``, else rng's."""
    count = check_integer(n, "n")
    if count.ndim != 0:
        raise TypeError(f"`n` must be a single integer >= 1, got shape {count.shape}.")
    if seed is not None:
        if rng is not None:
            raise ValueError("`seed` and `rng` must not both be given; pass one of them.")
        seeds, seeds_ok = _row_integers(seed, rows, "seed")
        steps, steps_ok = _row_integers(step, rows, "step")
        # One host read for the logits', the seeds' and the steps' checks.
        rows.validate(*seeds_ok, *steps_ok)
        return uniforms(seeds, steps, int(count))
    if not (isinstance(step, (int, np.integer)) and step == 0):
        raise ValueError(
            "`step` numbers seeded draws: pass `seed` with it (rng= draws ignore it), "
            f"got step={step!r} and no seed."
        )
    # The library's one rule for `rng`: a Generator (advanced), an int seed, or None.
    gen = as_generator(rng)
    rows.validate()
    u = gen.random((rows.z.shape[0], int(count)))
    if rows.torch:
        import torch

        return torch.as_tensor(u, device=rows.z.device)  # one host-to-device copy
    return u


def _row_integers(value: Any, rows: Rows, name: str) -> tuple[Any, list[Any]]:
    """A seed or step (one integer >= 0, or one per row) as (B,) int64 of the rows' kind.

    Seeds up to ``2**64 - 1`` are kept as their 64-bit pattern. A torch tensor
    is checked on its device: the second value holds its ``(flag, raise_error)``
    check for :meth:`Rows.validate` (empty for host values, checked here).
    """
    batch = rows.z.shape[0]
    if is_torch(value):
        import torch

        if not rows.torch:
            raise TypeError(
                f"`{name}` must be an integer or a numpy array of integers for numpy logits, "
                "got a torch tensor."
            )
        if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
            raise TypeError(
                f"`{name}` must be an integer >= 0 (an integer tensor), got {value.dtype}."
            )
        flat = per_row(value, rows.batch_shape, name).reshape(batch).to(rows.z.device, torch.int64)

        def negative() -> None:
            bad = flat[flat < 0][0]
            raise ValueError(f"`{name}` must be an integer >= 0, got {bad.tolist()}.")

        return flat, [((flat < 0).any(), negative)]
    if isinstance(value, int) and not isinstance(value, bool) and value >= _MAX_SEED:
        raise ValueError(f"`{name}` must be an integer below 2**64, got {value}.")
    arr = check_integer(value, name, minimum=0)  # int64; uint64 seeds keep their bit pattern
    flat = np.ascontiguousarray(per_row(arr, rows.batch_shape, name)).reshape(batch)
    if rows.torch:
        import torch

        return torch.as_tensor(np.array(flat), device=rows.z.device), []
    return flat, []
