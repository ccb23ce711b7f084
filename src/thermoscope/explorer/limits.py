"""Caps that bound the work one request to the explorer can ask for."""

from __future__ import annotations

from dataclasses import dataclass, fields

from thermoscope._validation import check_integer

__all__ = ["ExplorerLimits", "ModelBusy"]


@dataclass(frozen=True)
class ExplorerLimits:
    """What the explorer's API accepts at most.

    Attributes
    ----------
    max_logits : int, default 4096
        Values in one logits-mode request (and labels).
    max_label_chars : int, default 64
        Characters in one label.
    max_prompt_chars : int, default 2000
        Characters in a prompt (the model's context is a further limit).
    max_new_tokens : int, default 200
        Tokens one "sample a continuation" request may generate.
    max_body_bytes : int, default 262144
        Size of a request body; larger bodies get 413 before they are parsed.
    max_draws : int, default 1000000
        Draws one "draw samples" request may ask for.

    Examples
    --------
    >>> ExplorerLimits(max_new_tokens=16).max_new_tokens
    16
    >>> ExplorerLimits(max_logits=0)
    Traceback (most recent call last):
    ...
    ValueError: `max_logits` must be an integer >= 1, got 0.
    >>> ExplorerLimits(max_draws="many")
    Traceback (most recent call last):
    ...
    TypeError: `max_draws` must be an integer >= 1, got 'many'.
    """

    max_logits: int = 4096
    max_label_chars: int = 64
    max_prompt_chars: int = 2000
    max_new_tokens: int = 200
    max_body_bytes: int = 256 * 1024
    max_draws: int = 1_000_000

    def __post_init__(self) -> None:
        for field in fields(self):
            value = check_integer(getattr(self, field.name), field.name, minimum=1)
            if value.ndim != 0:
                raise TypeError(
                    f"`{field.name}` must be a single integer >= 1, got shape {value.shape}."
                )
            object.__setattr__(self, field.name, int(value))  # frozen: set once, as a Python int


class ModelBusy(Exception):
    """Too many model requests are already waiting: the server answers 429.

    ``retry_after`` is the number of seconds the client should wait
    (the ``Retry-After`` header).

    Examples
    --------
    >>> ModelBusy(3).retry_after
    3
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the model is busy: {retry_after} s until a request can be queued")
        self.retry_after = retry_after
