"""Which generation step a ``LogitsProcessor`` call is: shared by the stateful processors.

Examples
--------
>>> import torch
>>> StepTracker().update(torch.tensor([[5, 6]]))
(0, True)
"""

from __future__ import annotations

import torch

__all__ = ["StepTracker"]


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
