"""Where a draw's randomness comes from: per-row counter seeds, or a numpy Generator.

``seed=`` gives counter-based uniforms (:mod:`thermoscope.sampling._counter`):
a row's draws depend on its own seed and step only. ``rng=`` follows the
library's one rule for generators (:func:`thermoscope._validation.as_generator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._backend import is_torch
from thermoscope._validation import as_generator, check_integer, check_seed_bits, per_row
from thermoscope.sampling._counter import uniforms
from thermoscope.sampling._input import Rows

__all__ = ["Randomness", "check_count", "randomness"]

#: The most draws per row one call may ask for (8 TiB of draws: beyond any memory).
_MAX_COUNT = 2**40


def check_count(n: Any) -> int:
    """``n``, the number of draws per row: a single integer >= 1."""
    count = check_integer(n, "n", maximum=_MAX_COUNT)
    if count.ndim != 0:
        raise TypeError(f"`n` must be a single integer >= 1, got shape {count.shape}.")
    return int(count)


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
    arr = check_seed_bits(value, name)  # int64; seeds up to 2**64 - 1 keep their bit pattern
    # Host values stay on the host, also for torch rows: the uniforms are then
    # computed there and reach the device in one copy (see Randomness).
    return np.ascontiguousarray(per_row(arr, rows.batch_shape, name)).reshape(batch), []


def _to_rows(u: Any, like: Any) -> Any:
    """Host uniforms ``u`` as a tensor on ``like``'s device (``u`` itself for numpy rows).

    On an accelerator the copy goes from pinned memory without blocking: it
    is queued on the stream like a kernel, so the host never waits for the
    device (a pageable copy would synchronise the stream).
    """
    if not is_torch(like) or is_torch(u):
        return u
    import torch

    arr = np.asarray(u)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr)  # torch wants its own writable memory (a broadcast seed is a view)
    host = torch.from_numpy(arr)
    if like.device.type == "cpu":
        return host
    return host.pin_memory().to(like.device, non_blocking=True)


class Randomness:
    """One call's source of random numbers: per-row counter seeds, or a Generator.

    Built once per call by :func:`randomness` (which validates ``seed``,
    ``rng`` and ``step``); gives the draws' uniforms and the random stages'
    coins. Counter coins use the row's seed mixed with a per-stage ``salt``
    (so a coin never equals a draw's uniform), counted at the same step.
    """

    __slots__ = ("_gen", "_like", "_seeds", "_steps")

    def __init__(self, seeds: Any, steps: Any, gen: np.random.Generator | None, like: Any):
        # Seeds and steps are both host arrays or both tensors on the rows' device:
        # a host one beside a device one is copied there (a few bytes).
        if is_torch(seeds) and not is_torch(steps):
            steps = _to_rows(steps, seeds)
        elif is_torch(steps) and not is_torch(seeds):
            seeds = _to_rows(seeds, steps)
        self._seeds, self._steps, self._gen, self._like = seeds, steps, gen, like

    def uniforms(self, n: int) -> Any:
        """(B, n) float64 uniforms of the rows' kind, on the rows' device.

        Host seeds give host uniforms (a few numpy operations, where the
        device would run dozens of tiny kernels) copied to the device once.
        """
        if self._gen is None:
            return _to_rows(uniforms(self._seeds, self._steps, n), self._like)
        return _to_rows(self._gen.random((self._like.shape[0], n)), self._like)

    def coins(self, salt: int) -> Any:
        """(B,) float64 uniforms for a random stage identified by ``salt``."""
        if self._gen is None:
            # XOR with the salt's 64-bit pattern: a different Philox key per stage kind.
            salted = self._seeds ^ (salt - (1 << 64) if salt >= (1 << 63) else salt)
            return _to_rows(uniforms(salted, self._steps, 1)[:, 0], self._like)
        return self.uniforms(1)[:, 0]


def randomness(rows: Rows, seed: Any, rng: Any, step: Any, *, required: bool = True) -> Any:
    """Validate ``seed`` / ``rng`` / ``step`` for ``rows`` into a :class:`Randomness`.

    With neither ``seed`` nor ``rng``: fresh OS entropy when ``required``
    (draws), else None (a call that only warps: a random stage then asks for
    a seed).
    """
    if seed is not None:
        if rng is not None:
            raise ValueError("`seed` and `rng` must not both be given; pass one of them.")
        seeds, seeds_ok = _row_integers(seed, rows, "seed")
        steps, steps_ok = _row_integers(step, rows, "step")
        rows.validate(*seeds_ok, *steps_ok)
        return Randomness(seeds, steps, None, rows.z)
    if not (isinstance(step, (int, np.integer)) and step == 0):
        raise ValueError(
            "`step` numbers seeded draws: pass `seed` with it (rng= draws ignore it), "
            f"got step={step!r} and no seed."
        )
    rows.validate()
    if rng is None and not required:
        return None
    return Randomness(None, None, as_generator(rng), rows.z)
