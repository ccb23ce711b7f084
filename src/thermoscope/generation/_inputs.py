"""The checks every generation run shares: limits, temperatures, the prompt's ids, seeds.

Randomness: each temperature (or strategy) of a run gets its own torch seed
derived from ``seed`` with ``numpy.random.SeedSequence``, so the same
``seed`` always gives the same samples and one temperature's draws do not
depend on how many others run before it.

Examples
--------
>>> check_max_new_tokens(60)
60
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermoscope._validation import check_integer, check_seed, check_temperature

__all__ = [
    "MAX_NEW_TOKENS",
    "MAX_SAMPLES",
    "check_max_new_tokens",
    "check_n",
    "check_temperatures",
    "check_top",
    "encode_prompt",
    "torch_seeds",
]

#: Largest ``max_new_tokens`` accepted (also bounded by the model's context).
MAX_NEW_TOKENS = 2048
#: Largest number of samples ``n`` per temperature or strategy.
MAX_SAMPLES = 256


def _single_integer(value: Any, name: str) -> int:
    arr = check_integer(value, name)
    if arr.ndim != 0:
        raise TypeError(f"`{name}` must be a single integer, got shape {arr.shape}.")
    return int(arr)


def check_max_new_tokens(max_new_tokens: Any) -> int:
    """``max_new_tokens`` as an int in [1, :data:`MAX_NEW_TOKENS`].

    Examples
    --------
    >>> check_max_new_tokens(0)
    Traceback (most recent call last):
    ...
    ValueError: `max_new_tokens` must be an integer >= 1, got 0.
    """
    value = _single_integer(max_new_tokens, "max_new_tokens")
    if value > MAX_NEW_TOKENS:
        raise ValueError(f"`max_new_tokens` must be <= {MAX_NEW_TOKENS}, got {value}.")
    return value


def check_n(n: Any) -> int:
    """``n`` (samples per temperature or strategy) as an int in [1, :data:`MAX_SAMPLES`].

    Examples
    --------
    >>> check_n(300)
    Traceback (most recent call last):
    ...
    ValueError: `n` must be <= 256, got 300.
    """
    value = _single_integer(n, "n")
    if value > MAX_SAMPLES:
        raise ValueError(f"`n` must be <= {MAX_SAMPLES}, got {value}.")
    return value


def check_top(top: Any) -> int:
    """``top`` (tokens shown) as an int >= 1.

    Examples
    --------
    >>> check_top(5)
    5
    """
    return _single_integer(top, "top")


def check_temperatures(temperatures: Any) -> tuple[float, ...]:
    """A list of temperatures >= 0 as a tuple of floats.

    Examples
    --------
    >>> check_temperatures([0, 0.5])
    (0.0, 0.5)
    """
    arr = check_temperature(list(temperatures), "temperatures")
    if arr.ndim > 1:
        raise ValueError(f"`temperatures` must be a list of numbers, got shape {arr.shape}.")
    return tuple(float(t) for t in np.atleast_1d(arr))


def _context_length(model: Any) -> int | None:
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def encode_prompt(model: Any, tokenizer: Any, prompt: Any, max_new_tokens: int) -> Any:
    """The prompt's ids, shape (1, L), on the model's device; context limits checked.

    Examples
    --------
    >>> encode_prompt(None, None, 3, 1)
    Traceback (most recent call last):
    ...
    TypeError: `prompt` must be a string, got int.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"`prompt` must be a string, got {type(prompt).__name__}.")
    if prompt == "":
        raise ValueError("`prompt` must not be empty, got ''.")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A command line with invalid UTF-8 arrives as lone surrogates ('\udcff').
        raise ValueError(
            f"`prompt` must be valid UTF-8 text, got an undecodable character at position "
            f"{exc.start}: {prompt[exc.start : exc.start + 1]!r}."
        ) from None
    # verbose=False: the tokenizer's own warning about a long prompt would come
    # before the one-line error below that says the same.
    ids = tokenizer(prompt, return_tensors="pt", verbose=False)["input_ids"]
    length = int(ids.shape[-1])
    if length == 0:
        raise ValueError(f"`prompt` must encode to at least one token, got {prompt!r}.")
    context = _context_length(model)
    if context is not None:
        if length >= context:
            raise ValueError(
                f"`prompt` must be shorter than the model's context of {context} tokens, "
                f"got {length} tokens."
            )
        if length + max_new_tokens > context:
            raise ValueError(
                f"`max_new_tokens` must be <= {context - length} for this prompt (the "
                f"model's context of {context} tokens minus the prompt's {length}), "
                f"got {max_new_tokens}."
            )
    return ids.to(model.device)


def torch_seeds(seed: Any, count: int) -> list[int]:
    """``count`` independent torch seeds derived from ``seed`` (an integer >= 0).

    Examples
    --------
    >>> torch_seeds(0, 2) == torch_seeds(0, 3)[:2]
    True
    """
    seq = np.random.SeedSequence(check_seed(seed))
    return [int(child.generate_state(1)[0]) for child in seq.spawn(count)]
