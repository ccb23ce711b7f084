"""The explorer's language model: next-token logits, sampled continuations and token streams.

Model calls run one at a time (a lock) with few torch threads (``threads``):
the explorer shares its machine with a browser, and the embedded model's
operations are too small to split. Measured on a busy 2-core machine, 40
tokens took 0.3-0.5 s with one thread and 1.5-7 s with torch's default of
two, whose threads wait on each other whenever a core is taken.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thermoscope._validation import check_integer
from thermoscope.explorer.limits import ModelBusy

if TYPE_CHECKING:
    from thermoscope.generation.sweep import Sample

__all__ = ["ModelBackend", "NextToken", "StreamedToken", "TokenStream"]


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (None: leave them as they are)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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


@dataclass(frozen=True)
class StreamedToken:
    """One generated token and the distribution it was drawn from.

    Attributes
    ----------
    step : int
        0 for the first generated token.
    token_id : int
    text : str
        The text this token adds to the continuation ("" while it ends inside
        a character that the next tokens complete).
    probability : float
        Its probability under the sampling distribution (after the chain).
    logprob : float
        Its natural-log probability under the model at T = 1.
    top_ids, top_tokens, top_probabilities : list
        The step's most likely tokens after the chain, most likely first.

    Examples
    --------
    >>> StreamedToken(0, 5, "x", 0.5, -1.0, [5], ["x"], [0.5]).probability
    0.5
    """

    step: int
    token_id: int
    text: str
    probability: float
    logprob: float
    top_ids: list[int]
    top_tokens: list[str]
    top_probabilities: list[float]


class TokenStream:
    """The tokens of one seeded continuation, one :class:`StreamedToken` as each is drawn.

    Iterate it once; leaving the loop early (or :meth:`cancel`) stops the
    generation at its next step. The attributes after ``prompt_tokens`` are
    final once the iteration has ended.

    Attributes
    ----------
    prompt_tokens : int
    max_new_tokens : int
    tokens : list of int
        The token ids generated so far (an end-of-sequence token included).
    text : str
        The whole continuation, decoded without special tokens.
    stopped : str
        ``"eos"``, ``"length"`` or ``"cancelled"`` ("" while running).
    first_token_seconds, seconds : float or None
        From the request to the first token, and to the last.

    Examples
    --------
    >>> stream = ModelBackend().stream("import os\\nimport", max_new_tokens=3, seed=0)
    >>> [t.step for t in stream], stream.stopped
    ([0, 1, 2], 'length')
    """

    def __init__(self, prompt_tokens: int, max_new_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.tokens: list[int] = []
        self.text = ""
        self.stopped = ""
        self.first_token_seconds: float | None = None
        self.seconds: float | None = None
        self._sum_logprob = 0.0
        self._events: queue.Queue[StreamedToken | BaseException | None] = queue.Queue()
        self._cancelled = threading.Event()
        self._started = time.monotonic()

    def __iter__(self) -> Iterator[StreamedToken]:
        try:
            while True:
                item = self._events.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the generation at its next step.

        Examples
        --------
        >>> TokenStream(1, 1).cancel()
        """
        self._cancelled.set()

    @property
    def mean_logprob(self) -> float:
        """Mean log-probability of the generated tokens under the model at T = 1.

        Examples
        --------
        >>> TokenStream(1, 1).mean_logprob
        nan
        """
        return self._sum_logprob / len(self.tokens) if self.tokens else math.nan


def _generate_into(
    stream: TokenStream,
    model: Any,
    tokenizer: Any,
    prompt_ids: Any,
    sampler: Any,
    seed: int,
    top: int,
) -> None:
    """Run ``generate`` as ``thermoscope generate`` does with ``-n 1``, feeding ``stream``.

    The same processor, arguments and torch seed as
    :func:`~thermoscope.generation.generate_at_temperatures` (one
    temperature, ``n = 1``), so a seed gives the CLI's tokens; two
    processors that leave the scores unchanged read each step's model and
    sampling distributions, and a stopping criterion that stops nothing
    (unless cancelled) reads the drawn token.
    """
    import torch
    from transformers import LogitsProcessor, StoppingCriteria, StoppingCriteriaList

    from thermoscope.generation._batch import _eos_ids
    from thermoscope.generation._inputs import torch_seeds
    from thermoscope.generation.config import generate_kwargs
    from thermoscope.generation.processor import SamplerLogitsProcessor

    seen: dict[str, Any] = {}

    class _Read(LogitsProcessor):
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            seen[self.name] = scores
            return scores

    decoded = {"text": "", "shown": 0}

    class _Emit(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            token = int(input_ids[0, -1])
            logp = torch.log_softmax(seen["model"][0].float(), dim=-1)
            probs = torch.softmax(seen["sampler"][0].float(), dim=-1)
            best = torch.topk(probs, min(top, probs.shape[-1]))
            stream.tokens.append(token)
            text = tokenizer.decode(stream.tokens, skip_special_tokens=True)
            piece = ""
            if not text.endswith("\ufffd"):  # a character that the next token completes
                piece, decoded["shown"] = text[decoded["shown"] :], len(text)
            ids = best.indices.tolist()
            event = StreamedToken(
                step=len(stream.tokens) - 1,
                token_id=token,
                text=piece,
                probability=float(probs[token]),
                logprob=float(logp[token]),
                top_ids=ids,
                top_tokens=[tokenizer.decode([i]) for i in ids],
                top_probabilities=best.values.tolist(),
            )
            stream._sum_logprob += event.logprob
            if stream.first_token_seconds is None:
                stream.first_token_seconds = time.monotonic() - stream._started
            stream._events.put(event)
            stop = stream._cancelled.is_set()
            return torch.full(
                (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
            )

    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = min(eos) if eos else 0
    kwargs = generate_kwargs(
        _Read("model"),
        SamplerLogitsProcessor(sampler),
        _Read("sampler"),
        attention_mask=torch.ones_like(prompt_ids),
        max_new_tokens=stream.max_new_tokens,
        pad_token_id=pad,
        stopping_criteria=StoppingCriteriaList([_Emit()]),
    )
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(torch_seeds(seed, 1)[0])
        model.generate(prompt_ids, **kwargs)
    stream.text = tokenizer.decode(stream.tokens, skip_special_tokens=True)
    if stream._cancelled.is_set():
        stream.stopped = "cancelled"
    elif stream.tokens and stream.tokens[-1] in eos:
        stream.stopped = "eos"
    else:
        stream.stopped = "length"


class ModelBackend:
    """A causal LM loaded once, on first use, and used by one request at a time.

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A local transformers causal-LM folder; default: the embedded model.
    max_waiting : int, default 8
        Model requests that may wait for the model at once; more get
        :class:`~thermoscope.explorer.limits.ModelBusy`.
    threads : int or None, default 1
        torch intra-op threads during a model call (restored afterwards);
        ``None`` leaves torch's setting. Raise it for a large model on an
        otherwise idle machine.

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

    def __init__(
        self, path: str | Path | None = None, *, max_waiting: int = 8, threads: int | None = 1
    ) -> None:
        from thermoscope.generation.model import embedded_model_path

        self._path = None if path is None else Path(path)
        self.name = (self._path or embedded_model_path()).name
        self.max_waiting = int(check_integer(max_waiting, "max_waiting"))
        self.threads = None if threads is None else int(check_integer(threads, "threads"))
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
        self._join_queue()
        try:
            with self._hold():
                yield
        finally:
            self._leave_queue()

    def _join_queue(self) -> None:
        with self._count_lock:
            if self._waiting >= self.max_waiting:
                raise ModelBusy(max(1, math.ceil(self._mean_seconds * self._waiting)))
            self._waiting += 1

    def _leave_queue(self) -> None:
        with self._count_lock:
            self._waiting -= 1

    @contextmanager
    def _hold(self) -> Iterator[None]:
        """The model's lock and thread setting for one call, timed for Retry-After."""
        with self._lock, _torch_threads(self.threads):
            start = time.monotonic()
            yield
            spent = time.monotonic() - start
            self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * spent

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

    def next_token(
        self, prompt: str, top: int = 100, continuation: Sequence[int] = ()
    ) -> NextToken:
        """The next-token logits of ``prompt`` and its ``top`` most likely tokens.

        Parameters
        ----------
        prompt : str
        top : int, default 100
        continuation : sequence of int, optional
            Token ids that follow the prompt's tokens (a generated
            continuation so far): the logits are then those of the token after
            them, the distribution of that step of the generation.

        Raises
        ------
        ValueError or TypeError
            Naming ``prompt`` when it is empty or does not fit the context,
            ``continuation`` when it holds something other than token ids.

        Examples
        --------
        >>> ModelBackend().next_token("import os\\nimport", top=2).top_tokens
        [' os', ' sys']
        >>> ModelBackend().next_token("import os\\nimport", top=1, continuation=[588]).top_tokens
        ['.']
        """
        import torch

        from thermoscope.generation._inputs import encode_prompt

        model, tokenizer = self.load()
        after = self._token_ids(continuation)
        ids = encode_prompt(model, tokenizer, prompt, 1 + len(after))
        if after:
            ids = torch.cat([ids, torch.tensor([after], device=ids.device)], dim=-1)
        with self._turn(), torch.no_grad():
            # The host copy is the point: the logits go out as JSON.
            z = model(input_ids=ids).logits[0, -1].double().cpu().numpy()
        order = np.argsort(-z, kind="stable")[: min(top, z.size)]
        return NextToken(
            logits=z.tolist(),
            top_ids=order.tolist(),
            top_tokens=[tokenizer.decode([int(i)]) for i in order],
            prompt_tokens=int(ids.shape[-1]) - len(after),
        )

    def _token_ids(self, ids: Sequence[int]) -> list[int]:
        """``ids`` as a list of the model's token ids, or an error naming ``continuation``."""
        out = [int(check_integer(i, "continuation", minimum=0)) for i in ids]
        bad = [i for i in out if i >= self.vocab_size]
        if bad:
            raise ValueError(
                f"`continuation` must hold token ids below {self.vocab_size}, got {bad[0]}."
            )
        return out

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

    def stream(
        self,
        prompt: str,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        min_p: float = 0.0,
        max_new_tokens: int = 40,
        seed: int = 0,
        top: int = 10,
    ) -> TokenStream:
        """One seeded continuation of ``prompt``, token by token, as it is generated.

        The same tokens as ``thermoscope generate --prompt PROMPT -n 1 -t T
        --top-k K --top-p P --min-p M --seed SEED --max-new-tokens N`` (0 / 1 / 0
        switch a step off). The settings, the prompt and the model's queue are
        checked here, before the first token; the generation then runs on a
        thread of its own, holding the model.

        Parameters
        ----------
        prompt : str
        temperature, top_k, top_p, min_p
            The sampling setting (``Sampler.from_options``).
        max_new_tokens : int, default 40
        seed : int, default 0
        top : int, default 10
            How many of each step's most likely tokens to report.

        Returns
        -------
        TokenStream

        Raises
        ------
        ValueError or TypeError
            Naming the argument at fault.
        ModelBusy
            When ``max_waiting`` model requests are already waiting.

        Examples
        --------
        >>> stream = ModelBackend().stream("import os\\nimport", temperature=0.0, max_new_tokens=2)
        >>> steps = list(stream)
        >>> len(steps), steps[0].probability, stream.text == "".join(s.text for s in steps)
        (2, 1.0, True)
        """
        from thermoscope._validation import check_seed
        from thermoscope.generation._inputs import check_max_new_tokens, encode_prompt
        from thermoscope.sampling import Sampler

        limit = check_max_new_tokens(max_new_tokens)
        seed = check_seed(seed, "seed")
        top = int(check_integer(top, "top", minimum=1))
        sampler = Sampler.from_options(
            temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p
        )
        model, tokenizer = self.load()
        prompt_ids = encode_prompt(model, tokenizer, prompt, limit)
        stream = TokenStream(int(prompt_ids.shape[-1]), limit)
        self._join_queue()

        def run() -> None:
            try:
                with self._hold():
                    _generate_into(stream, model, tokenizer, prompt_ids, sampler, seed, top)
            except BaseException as exc:  # handed to the reader, which raises it
                stream._events.put(exc)
            finally:
                self._leave_queue()
                stream.seconds = time.monotonic() - stream._started
                stream._events.put(None)

        threading.Thread(target=run, name="thermoscope-stream", daemon=True).start()
        return stream
