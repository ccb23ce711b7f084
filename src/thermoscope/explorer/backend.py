"""The explorer's language model: next-token logits and sampled continuations."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermoscope._validation import check_integer
from thermoscope.explorer.limits import ModelBusy

if TYPE_CHECKING:
    from thermoscope.generation.sweep import Sample

__all__ = ["ModelBackend", "NextToken"]


@dataclass(frozen=True)
class NextToken:
    """A prompt's next-token logits over the whole vocabulary.

    Attributes
    ----------
    logits : list of float
        One float per vocabulary entry (the model's float32 values).
    top_ids : list of int
        The ``top`` highest-logit token ids, highest first.
    top_tokens : list of str
        Those tokens, decoded.
    prompt_tokens : int
    """

    logits: list[float]
    top_ids: list[int]
    top_tokens: list[str]
    prompt_tokens: int


class ModelBackend:
    """A causal LM loaded once, on first use, and used by one request at a time.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A local transformers causal-LM folder; default: the embedded model.

    Notes
    -----
    A lock serialises model calls: ``generate`` seeds torch's global RNG, so
    two interleaved calls would not be reproducible.

    Examples
    --------
    >>> backend = ModelBackend()
    >>> backend.name
    'tiny-python-gpt2'
    >>> step = backend.next_token("import os\\nimport", top=3)
    >>> len(step.logits) == backend.vocab_size, len(step.top_tokens)
    (True, 3)
    """

    def __init__(self, path: str | Path | None = None, *, max_waiting: int = 8) -> None:
        from thermoscope.generation.model import embedded_model_path

        self._path = None if path is None else Path(path)
        self.name = (self._path or embedded_model_path()).name
        self.max_waiting = int(check_integer(max_waiting, "max_waiting"))
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._waiting = 0
        self._mean_seconds = 1.0  # running mean of a model call, for Retry-After
        self._loaded: tuple[Any, Any] | None = None

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """Hold the model for one call, or raise ModelBusy when the queue is full.

        Every waiting request holds one of the server's worker threads; a
        bounded queue leaves the others to the logits routes, which never
        touch the model.
        """
        with self._count_lock:
            if self._waiting >= self.max_waiting:
                raise ModelBusy(max(1, math.ceil(self._mean_seconds * self._waiting)))
            self._waiting += 1
        try:
            with self._lock:
                start = time.monotonic()
                yield
                spent = time.monotonic() - start
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * spent
        finally:
            with self._count_lock:
                self._waiting -= 1

    def load(self) -> tuple[Any, Any]:
        """``(model, tokenizer)``, loading them on the first call.

        Examples
        --------
        >>> backend = ModelBackend()
        >>> backend.load() is backend.load()
        True
        """
        loaded = self._loaded
        if loaded is not None:  # loaded once, never replaced: no wait behind a model call
            return loaded
        with self._lock:
            if self._loaded is None:
                from thermoscope.generation.model import load_model

                self._loaded = load_model(self._path)
            return self._loaded

    @property
    def vocab_size(self) -> int:
        """Length of the model's logit vector.

        Examples
        --------
        >>> ModelBackend().vocab_size
        4096
        """
        model, _ = self.load()
        return int(model.get_output_embeddings().weight.shape[0])

    def next_token(self, prompt: str, top: int = 100) -> NextToken:
        """The next-token logits of ``prompt`` and its ``top`` most likely tokens.

        Raises
        ------
        ValueError or TypeError
            Naming ``prompt`` when it is empty or does not fit the context.

        Examples
        --------
        >>> ModelBackend().next_token("import os\\nimport", top=2).top_tokens
        [' os', ' sys']
        """
        from thermoscope.generation.next_token import next_token_logits

        model, tokenizer = self.load()
        with self._turn():
            z = next_token_logits(model, tokenizer, prompt)
        order = np.argsort(-z, kind="stable")[: min(top, z.size)]
        return NextToken(
            logits=z.tolist(),
            top_ids=order.tolist(),
            top_tokens=[tokenizer.decode([int(i)]) for i in order],
            prompt_tokens=len(tokenizer(prompt)["input_ids"]),
        )

    def sample(
        self,
        prompt: str,
        *,
        temperature: float,
        top_k: int,
        top_p: float,
        min_p: float,
        max_new_tokens: int,
        seed: int,
    ) -> Sample:
        """One continuation of ``prompt`` with these settings (0 / 1 / 0 switch a step off).

        A thin, serialised caller of :func:`thermoscope.generation.continue_prompt`.

        Examples
        --------
        >>> out = ModelBackend().sample(
        ...     "import os\\nimport", temperature=0.0, top_k=0, top_p=1.0, min_p=0.0,
        ...     max_new_tokens=2, seed=0,
        ... )
        >>> len(out.tokens) <= 2
        True
        """
        from thermoscope.generation.next_token import continue_prompt

        model, tokenizer = self.load()
        with self._turn():
            return continue_prompt(
                model,
                tokenizer,
                prompt,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                min_p=min_p,
                max_new_tokens=max_new_tokens,
                seed=seed,
            )
