"""One prompt, one step: the next-token distribution, and one continuation.

:func:`next_token_logits` runs the model once on a prompt;
:func:`next_token_table` shows its most likely next tokens at several
temperatures; :func:`continue_prompt` samples one seeded continuation with an
interactive setting (temperature, top-k, top-p, min-p). The web explorer and
the notebook widgets are thin callers of these.

Examples
--------
>>> next_token_table(None, None, "x", [1.0], top=0)
Traceback (most recent call last):
...
ValueError: `top` must be an integer >= 1, got 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._tables import format_table, format_temperature
from thermoscope._typing import Array, FloatArray
from thermoscope.generation._inputs import check_temperatures, check_top, encode_prompt
from thermoscope.generation.sweep import Sample, generate_at_temperatures

__all__ = ["NextTokenTable", "continue_prompt", "next_token_logits", "next_token_table"]


@dataclass(frozen=True, eq=False)
class NextTokenTable:
    """The next-token distribution at several temperatures (see :func:`next_token_table`).

    Attributes
    ----------
    prompt : str
    temperatures : tuple of float
    token_ids : ndarray of int, shape (top,)
        The most likely next tokens at T = 1, most likely first.
    tokens : tuple of str
        Their decoded text.
    probs : ndarray, shape (len(temperatures), top)
        Their probabilities at each temperature.
    entropy : ndarray, shape (len(temperatures),)
        Entropy (nats) of the whole next-token distribution at each temperature.
    vocab_size : int

    Examples
    --------
    >>> t = NextTokenTable("p", (1.0,), np.array([3]), ("a",), np.array([[0.5]]),
    ...                    np.array([0.69]), 2)
    >>> t.as_dict()["rows"][0]["top_mass"]
    0.5
    """

    prompt: str
    temperatures: tuple[float, ...]
    token_ids: Array
    tokens: tuple[str, ...]
    probs: FloatArray
    entropy: FloatArray
    vocab_size: int

    def format(self) -> str:
        """Tokens as rows, temperatures as columns, then entropy and the mass shown.

        Examples
        --------
        >>> t = NextTokenTable("p", (1.0,), np.array([3]), ("a",), np.array([[0.5]]),
        ...                    np.array([0.69]), 2)
        >>> t.format().splitlines()[0].split()
        ['token', 'id', 'T=1']
        """
        headers = ["token", "id", *(f"T={format_temperature(t)}" for t in self.temperatures)]
        rows: list[list[Any]] = [
            [repr(tok), int(i), *map(float, self.probs[:, k])]
            for k, (tok, i) in enumerate(zip(self.tokens, self.token_ids, strict=True))
        ]
        rows.append(["(top mass)", "", *map(float, self.probs.sum(axis=1))])
        rows.append(["entropy", "", *map(float, self.entropy)])
        note = (
            f"prompt {self.prompt!r}; entropy in nats over all {self.vocab_size} tokens "
            f"(uniform: ln {self.vocab_size} = {math.log(self.vocab_size):.4f})"
        )
        return f"{format_table(headers, rows)}\n{note}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: tokens and one row per temperature.

        Examples
        --------
        >>> t = NextTokenTable("p", (1.0,), np.array([3]), ("a",), np.array([[0.5]]),
        ...                    np.array([0.69]), 2)
        >>> t.as_dict()["token_ids"]
        [3]
        """
        return {
            "prompt": self.prompt,
            "tokens": list(self.tokens),
            "token_ids": [int(i) for i in self.token_ids],
            "rows": [
                {
                    "temperature": t,
                    "probs": [float(p) for p in self.probs[k]],
                    "top_mass": float(self.probs[k].sum()),
                    "entropy": float(self.entropy[k]),
                }
                for k, t in enumerate(self.temperatures)
            ],
        }


def next_token_logits(model: Any, tokenizer: Any, prompt: str) -> FloatArray:
    """The model's logits for the token that follows ``prompt``: float64, shape (V,).

    Raises
    ------
    ValueError or TypeError
        Naming ``prompt`` when it is not a non-empty string shorter than the
        model's context.

    Examples
    --------
    >>> next_token_logits(None, None, "")
    Traceback (most recent call last):
    ...
    ValueError: `prompt` must not be empty, got ''.
    """
    import torch

    ids = encode_prompt(model, tokenizer, prompt, 1)
    with torch.no_grad():
        # The host copy is the point: the logits feed tables, JSON and widgets.
        z: FloatArray = model(input_ids=ids).logits[0, -1].double().cpu().numpy()
    return z


def next_token_table(
    model: Any,
    tokenizer: Any,
    prompt: str,
    temperatures: Iterable[float],
    *,
    top: int = 10,
    sampler_options: Mapping[str, Any] | None = None,
) -> NextTokenTable:
    """The ``top`` most likely next tokens and their probabilities at each temperature.

    Parameters
    ----------
    model, tokenizer
        A transformers causal LM and its tokenizer.
    prompt : str
        Non-empty, shorter than the model's context.
    temperatures : iterable of float
        Temperatures >= 0.
    top : int, default 10
        Number of tokens shown (capped at the vocabulary size).
    sampler_options : mapping, optional
        Truncation applied after the temperature (``{"top_p": 0.9}``); the
        probabilities and entropy are then those of the sampling distribution.

    Examples
    --------
    >>> next_token_table(None, None, "x", [1.0], top=0)
    Traceback (most recent call last):
    ...
    ValueError: `top` must be an integer >= 1, got 0.
    """
    from thermoscope.core import entropy
    from thermoscope.sampling import Sampler

    temps = check_temperatures(temperatures)
    top = check_top(top)
    options = dict(sampler_options or {})
    samplers = [Sampler.from_options(temperature=t, **options) for t in temps]
    z = next_token_logits(model, tokenizer, prompt)
    probs = np.stack([s.probs(z) for s in samplers])
    k = min(top, z.size)
    order = np.argsort(-z, kind="stable")[:k]
    tokens = tuple(tokenizer.decode([int(i)]) for i in order)
    return NextTokenTable(
        prompt, temps, order, tokens, probs[:, order], np.asarray(entropy(probs)), int(z.size)
    )


def continue_prompt(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
    max_new_tokens: int = 40,
    seed: int = 0,
) -> Sample:
    """One seeded continuation of ``prompt`` with an interactive setting.

    The settings go straight to :meth:`~thermoscope.sampling.Sampler.from_options`,
    the one home of the "off" convention: ``top_k = 0``, ``top_p = 1`` and
    ``min_p = 0`` switch a step off, as on the explorer's sliders. The
    sampling is :func:`~thermoscope.generation.generate_at_temperatures` with
    one temperature and ``n = 1``; the web explorer and the notebook widget
    both sample through this function.

    Examples
    --------
    >>> continue_prompt(None, None, "x", max_new_tokens=0)
    Traceback (most recent call last):
    ...
    ValueError: `max_new_tokens` must be an integer >= 1, got 0.
    """
    result = generate_at_temperatures(
        model,
        tokenizer,
        prompt,
        [temperature],
        n=1,
        max_new_tokens=max_new_tokens,
        seed=seed,
        sampler_options={"top_k": top_k, "top_p": top_p, "min_p": min_p},
        progress=False,
    )
    return result.samples[0]
