"""Generate at several temperatures, the next-token table, dynamic-temperature comparison.

Everything takes a transformers causal LM and its tokenizer (any local model
directory, loaded with :func:`load_model`; the embedded default when no path
is given) and samples through thermoscope's processors inside ``generate``,
with every one of transformers' own warpers switched off.

Randomness: each temperature (or strategy) gets its own torch seed derived
from ``seed`` with ``numpy.random.SeedSequence``; ``generate`` runs inside
``torch.random.fork_rng``, so the caller's global torch RNG is left as it
was and the same ``seed`` always gives the same samples.

Examples
--------
>>> from thermoscope.generation.runs import check_max_new_tokens
>>> check_max_new_tokens(60)
60
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from thermoscope._tables import format_table
from thermoscope._validation import check_integer, check_seed, check_temperature
from thermoscope.generation.diversity import Diversity, diversity

__all__ = [
    "MAX_NEW_TOKENS",
    "MAX_SAMPLES",
    "GenerationResult",
    "NextTokenTable",
    "Sample",
    "Strategy",
    "StrategyResult",
    "check_max_new_tokens",
    "compare_dynamic",
    "continue_prompt",
    "dynamic_strategies",
    "format_strategies",
    "generate_at_temperatures",
    "load_model",
    "next_token_logits",
    "next_token_table",
]

#: Largest ``max_new_tokens`` accepted (also bounded by the model's context).
MAX_NEW_TOKENS = 2048
#: Largest number of samples ``n`` per temperature or strategy.
MAX_SAMPLES = 256
# Rows of the teacher-forced log-probability pass are chunked so that one
# chunk's logits stay under this many floats (256 MiB in float32).
_LOGIT_BUDGET = 1 << 26


# -- loading and checking ----------------------------------------------------


def load_model(path: str | Path | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local causal-LM folder, or the embedded model.

    Uses ``thermoscope.models.load_model`` (the embedded default model and
    its checks). Without that module, a ``path`` is still loaded with
    ``AutoModelForCausalLM`` / ``AutoTokenizer`` from local files only.

    Raises
    ------
    ValueError
        Naming ``model``: the folder does not exist or holds no causal LM.

    Examples
    --------
    >>> try:
    ...     load_model("/no/such/folder")
    ... except ValueError as exc:
    ...     print("`model`" in str(exc))
    True
    """
    try:
        from thermoscope.models import load_model as load_packaged
    except ModuleNotFoundError as exc:
        if exc.name != "thermoscope.models":
            raise
        if path is None:
            raise ValueError(
                "`model` must be a path to a local causal LM folder: this install has no "
                "embedded model (thermoscope.models is missing), got None."
            ) from None
        return _load_local(path)
    model, tokenizer = load_packaged(path)
    return model, tokenizer


def _load_local(path: str | Path) -> tuple[Any, Any]:
    folder = Path(path)
    what = "a folder holding a transformers causal language model (config.json and weights)"
    if not folder.is_dir():
        raise ValueError(f"`model` must be {what}, got {str(path)!r}: no such folder.")
    if not (folder / "config.json").is_file():
        raise ValueError(f"`model` must be {what}, got {str(path)!r}: it has no config.json.")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"`model` must be {what}, got {str(path)!r}: {reason}") from None
    model.eval()
    return model, tokenizer


def check_max_new_tokens(max_new_tokens: Any) -> int:
    """``max_new_tokens`` as an int in [1, :data:`MAX_NEW_TOKENS`].

    Examples
    --------
    >>> check_max_new_tokens(0)
    Traceback (most recent call last):
    ...
    ValueError: `max_new_tokens` must be an integer >= 1, got 0.
    """
    arr = check_integer(max_new_tokens, "max_new_tokens")
    if arr.ndim != 0:
        raise TypeError(f"`max_new_tokens` must be a single integer, got shape {arr.shape}.")
    value = int(arr)
    if value > MAX_NEW_TOKENS:
        raise ValueError(f"`max_new_tokens` must be <= {MAX_NEW_TOKENS}, got {value}.")
    return value


def _check_n(n: Any) -> int:
    arr = check_integer(n, "n")
    if arr.ndim != 0:
        raise TypeError(f"`n` must be a single integer, got shape {arr.shape}.")
    if int(arr) > MAX_SAMPLES:
        raise ValueError(f"`n` must be <= {MAX_SAMPLES}, got {int(arr)}.")
    return int(arr)


def _check_temperatures(temperatures: Any) -> tuple[float, ...]:
    arr = check_temperature(temperatures, "temperatures")
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


def _encode(model: Any, tokenizer: Any, prompt: Any, max_new_tokens: int) -> Any:
    """The prompt's ids, shape (1, L), on the model's device; context limits checked."""
    if not isinstance(prompt, str):
        raise TypeError(f"`prompt` must be a string, got {type(prompt).__name__}.")
    if prompt == "":
        raise ValueError("`prompt` must not be empty, got ''.")
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
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


def _torch_seeds(seed: Any, count: int) -> list[int]:
    seq = np.random.SeedSequence(check_seed(seed))
    return [int(child.generate_state(1)[0]) for child in seq.spawn(count)]


# -- progress ------------------------------------------------------------------


class _NoBar:
    """Stands in for a tqdm bar when tqdm is not installed or progress is off."""

    def update(self, n: int = 1) -> None:
        """Ignore progress."""

    def set_description(self, text: str) -> None:
        """Ignore the stage name."""

    def close(self) -> None:
        """Nothing to close."""


def _bar(total: int, desc: str, progress: bool) -> Any:
    if not progress:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is an optional extra: same results, no bar
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="tok", file=sys.stderr, leave=False, disable=None)


def _progress_criteria(bar: Any) -> Any:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Tick(StoppingCriteria):
        """Advances the bar once per generation step; never stops anything."""

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            bar.update(1)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Tick()])


# -- one batch of samples --------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    tokens: list[list[int]]
    texts: list[str]
    mean_logprob: list[float]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def _mean_logprobs(model: Any, sequences: Any, start: int, lengths: list[int]) -> list[float]:
    """Mean log p(token | prefix) at T = 1 of each row's generated tokens (teacher forced)."""
    import torch

    rows, total = sequences.shape
    vocab = int(model.config.vocab_size)
    chunk = max(1, _LOGIT_BUDGET // max(1, total * vocab))
    out: list[float] = []
    with torch.no_grad():
        for lo in range(0, rows, chunk):
            part = sequences[lo : lo + chunk]
            logits = model(input_ids=part).logits[:, start - 1 : total - 1].float()
            logp = torch.log_softmax(logits, dim=-1)
            picked = logp.gather(-1, part[:, start:, None]).squeeze(-1).cpu().numpy()
            for r, row in enumerate(picked):
                out.append(float(np.mean(row[: lengths[lo + r]])))
    return out


def _sample(
    model: Any,
    tokenizer: Any,
    prompt_ids: Any,
    processors: Sequence[Any],
    n: int,
    max_new_tokens: int,
    torch_seed: int,
    bar: Any,
) -> _Batch:
    import torch

    from thermoscope.generation.processor import generate_kwargs

    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = min(eos) if eos else 0
    input_ids = prompt_ids.repeat(n, 1)
    kwargs = generate_kwargs(
        *processors,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=max_new_tokens,
        pad_token_id=pad,
        stopping_criteria=_progress_criteria(bar),
    )
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(torch_seed)
        sequences = model.generate(input_ids, **kwargs)
    start = int(prompt_ids.shape[-1])
    steps = int(sequences.shape[-1]) - start
    bar.update(max_new_tokens - steps)  # the steps skipped by an early stop
    tokens, lengths = [], []
    for row in sequences[:, start:].tolist():
        end = next((i + 1 for i, tok in enumerate(row) if tok in eos), len(row))
        tokens.append(row[:end])
        lengths.append(end)
    texts = [tokenizer.decode(t, skip_special_tokens=True) for t in tokens]
    return _Batch(tokens, texts, _mean_logprobs(model, sequences, start, lengths))


# -- generation at several temperatures -------------------------------------------


def _label(t: float) -> str:
    return "inf" if math.isinf(t) else f"{t:g}"


@dataclass(frozen=True)
class Sample:
    """One generated sample.

    Attributes
    ----------
    temperature : float
    index : int
        Sample number within its temperature (0-based).
    text : str
        The continuation (special tokens removed), without the prompt.
    tokens : tuple of int
        Its token ids, up to and including an end-of-sequence token.
    mean_logprob : float
        Mean natural-log probability of those tokens under the model at T = 1
        (0 is certain; more negative is less likely).

    Examples
    --------
    >>> Sample(0.7, 0, "x", (5,), -1.5).as_dict()["tokens"]
    [5]
    """

    temperature: float
    index: int
    text: str
    tokens: tuple[int, ...]
    mean_logprob: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "temperature": self.temperature,
            "index": self.index,
            "text": self.text,
            "tokens": list(self.tokens),
            "n_tokens": len(self.tokens),
            "mean_logprob": self.mean_logprob,
        }


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in (text.splitlines() or [""]))


_DIVERSITY_HEADERS = ["distinct-1", "distinct-2", "distinct-3", "self-BLEU", "repetition"]


def _diversity_cells(d: Diversity) -> list[Any]:
    return [d.distinct_1, d.distinct_2, d.distinct_3, d.self_bleu, d.repetition]


@dataclass(frozen=True)
class GenerationResult:
    """Samples at several temperatures and their diversity (see :func:`generate_at_temperatures`).

    Attributes
    ----------
    prompt : str
    temperatures : tuple of float
    samples : tuple of Sample
        One row per sample, grouped by temperature.
    diversity : dict of float to Diversity
        Distinct-1/2/3 (over token ids), self-BLEU and repetition rate of each
        temperature's samples.
    sampler_options : dict
        The other sampler settings (top_p, min_p, ...), the same at every temperature.

    Examples
    --------
    >>> r = GenerationResult("p", (1.0,), (Sample(1.0, 0, "ab", (1, 2), -2.0),),
    ...                      {1.0: Diversity(1.0, 1.0, math.nan, math.nan, math.nan)})
    >>> r.mean_logprob(1.0)
    -2.0
    """

    prompt: str
    temperatures: tuple[float, ...]
    samples: tuple[Sample, ...]
    diversity: Mapping[float, Diversity]
    sampler_options: Mapping[str, Any] = field(default_factory=dict)

    def mean_logprob(self, temperature: float) -> float:
        """Mean of the samples' mean log-probabilities at ``temperature``."""
        values = [s.mean_logprob for s in self.samples if s.temperature == temperature]
        return float(np.mean(values))

    def diversity_table(self) -> str:
        """One row per temperature: diversity metrics and mean log-probability."""
        rows = [
            [_label(t), *_diversity_cells(self.diversity[t]), self.mean_logprob(t)]
            for t in self.temperatures
        ]
        return format_table(["T", *_DIVERSITY_HEADERS, "mean log p"], rows)

    def format(self) -> str:
        """The samples of each temperature, then the diversity table."""
        opts = ", ".join(f"{k}={v}" for k, v in self.sampler_options.items())
        lines = [f"prompt: {self.prompt!r}" + (f"   sampler: {opts}" if opts else "")]
        for t in self.temperatures:
            lines += ["", f"T = {_label(t)}"]
            for s in self.samples:
                if s.temperature == t:
                    lines.append(
                        f"  [{s.index + 1}] {len(s.tokens)} tokens, mean log p {s.mean_logprob:.3f}"
                    )
                    lines.append(_indent(s.text))
        lines += [
            "",
            self.diversity_table(),
            "distinct-n over token ids (higher: more diverse); self-BLEU (lower: more "
            "diverse); repetition = seq-rep-4; mean log p under the model at T = 1.",
        ]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: prompt, sampler options, samples and per-temperature diversity."""
        return {
            "prompt": self.prompt,
            "sampler_options": dict(self.sampler_options),
            "samples": [s.as_dict() for s in self.samples],
            "diversity": [
                {
                    "temperature": t,
                    **self.diversity[t].as_dict(),
                    "mean_logprob": self.mean_logprob(t),
                }
                for t in self.temperatures
            ],
        }


def generate_at_temperatures(
    model: Any,
    tokenizer: Any,
    prompt: str,
    temperatures: Iterable[float],
    n: int = 3,
    max_new_tokens: int = 60,
    seed: int = 0,
    sampler_options: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> GenerationResult:
    """Sample ``n`` continuations of ``prompt`` at each temperature, with diversity metrics.

    Parameters
    ----------
    model, tokenizer
        A transformers causal LM (in eval mode) and its tokenizer, e.g. from
        :func:`load_model`.
    prompt : str
        Non-empty; with ``max_new_tokens`` it must fit the model's context.
    temperatures : iterable of float
        Temperatures >= 0 (0: greedy, all samples equal).
    n : int, default 3
        Samples per temperature, 1 to :data:`MAX_SAMPLES`.
    max_new_tokens : int, default 60
        1 to :data:`MAX_NEW_TOKENS`; a sample ends earlier at end-of-sequence.
    seed : int, default 0
    sampler_options : mapping, optional
        Other ``Sampler.from_options`` settings applied at every temperature,
        e.g. ``{"top_p": 0.9}`` or ``{"min_p": 0.05}``.
    progress : bool, default True
        Show a progress bar on stderr (when it is a terminal).

    Returns
    -------
    GenerationResult

    Notes
    -----
    The samples of one temperature are one batched ``generate`` call through
    :class:`~thermoscope.generation.processor.SamplerLogitsProcessor`.
    ``mean_logprob`` is computed afterwards by one teacher-forced forward pass.

    Examples
    --------
    >>> generate_at_temperatures(None, None, "", [1.0])
    Traceback (most recent call last):
    ...
    ValueError: `prompt` must not be empty, got ''.
    """
    from thermoscope.generation.processor import SamplerLogitsProcessor
    from thermoscope.sampling import Sampler

    temps = _check_temperatures(list(temperatures))
    count = _check_n(n)
    limit = check_max_new_tokens(max_new_tokens)
    if isinstance(prompt, str) and prompt == "":
        raise ValueError("`prompt` must not be empty, got ''.")
    options = dict(sampler_options or {})
    if "temperature" in options:
        raise ValueError(
            "`sampler_options` must not set `temperature` (give it in `temperatures`), "
            f"got temperature={options['temperature']!r}."
        )
    samplers = [Sampler.from_options(temperature=t, **options) for t in temps]
    prompt_ids = _encode(model, tokenizer, prompt, limit)
    seeds = _torch_seeds(seed, len(temps))
    bar = _bar(len(temps) * limit, "generate", progress)
    samples: list[Sample] = []
    metrics: dict[float, Diversity] = {}
    try:
        for t, sampler, torch_seed in zip(temps, samplers, seeds, strict=True):
            bar.set_description(f"T = {_label(t)}")
            batch = _sample(
                model,
                tokenizer,
                prompt_ids,
                [SamplerLogitsProcessor(sampler)],
                count,
                limit,
                torch_seed,
                bar,
            )
            samples += [
                Sample(t, i, text, tuple(tok), lp)
                for i, (text, tok, lp) in enumerate(
                    zip(batch.texts, batch.tokens, batch.mean_logprob, strict=True)
                )
            ]
            metrics[t] = diversity(batch.tokens, batch.texts)
    finally:
        bar.close()
    return GenerationResult(prompt, temps, tuple(samples), metrics, options)


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

    As on the explorer's sliders, ``top_k = 0``, ``top_p = 1`` and
    ``min_p = 0`` switch a step off; the sampling is
    :func:`generate_at_temperatures` with one temperature and ``n = 1``.

    Examples
    --------
    >>> continue_prompt(None, None, "x", max_new_tokens=0)
    Traceback (most recent call last):
    ...
    ValueError: `max_new_tokens` must be an integer >= 1, got 0.
    """
    options = {
        name: value
        for name, value, off in (("top_k", top_k, 0), ("top_p", top_p, 1.0), ("min_p", min_p, 0.0))
        if value != off
    }
    result = generate_at_temperatures(
        model,
        tokenizer,
        prompt,
        [temperature],
        n=1,
        max_new_tokens=max_new_tokens,
        seed=seed,
        sampler_options=options,
        progress=False,
    )
    return result.samples[0]


# -- next-token table ----------------------------------------------------------------


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
    token_ids: np.ndarray[Any, np.dtype[Any]]
    tokens: tuple[str, ...]
    probs: np.ndarray[Any, np.dtype[Any]]
    entropy: np.ndarray[Any, np.dtype[Any]]
    vocab_size: int

    def format(self) -> str:
        """Tokens as rows, temperatures as columns, then entropy and the mass shown."""
        headers = ["token", "id", *(f"T={_label(t)}" for t in self.temperatures)]
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
        """JSON-ready: tokens and one row per temperature."""
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


def next_token_logits(model: Any, tokenizer: Any, prompt: str) -> np.ndarray:
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

    ids = _encode(model, tokenizer, prompt, 1)
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1].double().cpu().numpy()


def next_token_table(
    model: Any,
    tokenizer: Any,
    prompt: str,
    temperatures: Iterable[float],
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

    temps = _check_temperatures(list(temperatures))
    k_arr = check_integer(top, "top")
    if k_arr.ndim != 0:
        raise TypeError(f"`top` must be a single integer, got shape {k_arr.shape}.")
    options = dict(sampler_options or {})
    samplers = [Sampler.from_options(temperature=t, **options) for t in temps]
    z = next_token_logits(model, tokenizer, prompt)
    probs = np.stack([s.probs(z) for s in samplers])
    k = min(int(k_arr), z.size)
    order = np.argsort(-z, kind="stable")[:k]
    tokens = tuple(tokenizer.decode([int(i)]) for i in order)
    return NextTokenTable(
        prompt, temps, order, tokens, probs[:, order], np.asarray(entropy(probs)), int(z.size)
    )


# -- dynamic temperature strategies ----------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """A decoding strategy to compare: a name and a maker of fresh processors.

    Attributes
    ----------
    name : str
    make : callable
        ``make() -> list of LogitsProcessor``, called once per ``generate`` so
        stateful processors (Mirostat) start afresh.

    Examples
    --------
    >>> Strategy("T=1", lambda: []).name
    'T=1'
    """

    name: str
    make: Callable[[], list[Any]]


def dynamic_strategies(temperatures: Iterable[float] = (0.7, 1.0)) -> tuple[Strategy, ...]:
    """Fixed temperatures and the confidence-adaptive strategies, ready to compare.

    - ``T = t`` for each fixed temperature (the baselines);
    - entropy-based temperature (llama.cpp's dynatemp): ``T`` from 0.3 to 1.3
      with the normalised entropy of each step;
    - Mirostat 2.0 with target surprise 3 and 5 bits (``eta = 0.1``);
    - min-p 0.1 at T = 1 and T = 1.5 (a threshold relative to the top token).

    Examples
    --------
    >>> [s.name for s in dynamic_strategies([0.7])][:3]
    ['T = 0.7', 'entropy T in [0.3, 1.3]', 'mirostat tau=3']
    """
    from thermoscope.generation.mirostat import Mirostat
    from thermoscope.generation.processor import SamplerLogitsProcessor
    from thermoscope.sampling import EntropyTemperature, Sampler

    def fixed(t: float) -> Strategy:
        return Strategy(
            f"T = {_label(t)}",
            lambda: [SamplerLogitsProcessor(Sampler.from_options(temperature=t))],
        )

    def min_p(t: float, p: float) -> Strategy:
        return Strategy(
            f"min-p {p:g}, T = {_label(t)}",
            lambda: [SamplerLogitsProcessor(Sampler.from_options(temperature=t, min_p=p))],
        )

    def mirostat(tau: float) -> Strategy:
        return Strategy(f"mirostat tau={tau:g}", lambda: [Mirostat(tau=tau, eta=0.1)])

    entropy_based = Strategy(
        "entropy T in [0.3, 1.3]",
        lambda: [SamplerLogitsProcessor(Sampler([EntropyTemperature(0.3, 1.3)]))],
    )
    temps = _check_temperatures(list(temperatures))
    return (
        *(fixed(t) for t in temps),
        entropy_based,
        mirostat(3.0),
        mirostat(5.0),
        min_p(1.0, 0.1),
        min_p(1.5, 0.1),
    )


@dataclass(frozen=True)
class StrategyResult:
    """One strategy's samples and their diversity and likelihood.

    Attributes
    ----------
    name : str
    texts : tuple of str
    diversity : Diversity
    mean_logprob : float
        Mean over samples of each sample's mean log-probability at T = 1.

    Examples
    --------
    >>> d = Diversity(1.0, 0.9, 0.8, 0.1, 0.0)
    >>> StrategyResult("T = 1", ("a",), d, -2.5).as_dict()["distinct_2"]
    0.9
    """

    name: str
    texts: tuple[str, ...]
    diversity: Diversity
    mean_logprob: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "strategy": self.name,
            **self.diversity.as_dict(),
            "mean_logprob": self.mean_logprob,
            "texts": list(self.texts),
        }


def format_strategies(results: Sequence[StrategyResult]) -> str:
    """The comparison table: one row per strategy.

    Examples
    --------
    >>> d = Diversity(1.0, 0.9, 0.8, 0.1, 0.0)
    >>> print(format_strategies([StrategyResult("T = 1", ("a",), d, -2.5)]).splitlines()[0])
    strategy  distinct-2  self-BLEU  repetition  mean log p
    """
    rows = [
        [r.name, r.diversity.distinct_2, r.diversity.self_bleu, r.diversity.repetition,
         r.mean_logprob]
        for r in results
    ]  # fmt: skip
    return format_table(["strategy", "distinct-2", "self-BLEU", "repetition", "mean log p"], rows)


def compare_dynamic(
    model: Any,
    tokenizer: Any,
    prompt: str,
    strategies: Sequence[Strategy] | None = None,
    n: int = 4,
    max_new_tokens: int = 60,
    seed: int = 0,
    progress: bool = True,
) -> tuple[StrategyResult, ...]:
    """Sample with each strategy; report distinct-2, self-BLEU, repetition and mean log p.

    Parameters
    ----------
    model, tokenizer, prompt, n, max_new_tokens, seed, progress
        As in :func:`generate_at_temperatures`.
    strategies : sequence of Strategy, optional
        Default :func:`dynamic_strategies` (T = 0.7 and 1 as baselines).

    Notes
    -----
    A good adaptive strategy reaches the diversity of a higher fixed
    temperature with the likelihood of a lower one.

    Examples
    --------
    >>> compare_dynamic(None, None, "p", strategies=[])
    Traceback (most recent call last):
    ...
    ValueError: `strategies` must not be empty, got [].
    """
    chosen = list(dynamic_strategies() if strategies is None else strategies)
    if not chosen:
        raise ValueError("`strategies` must not be empty, got [].")
    count = _check_n(n)
    limit = check_max_new_tokens(max_new_tokens)
    prompt_ids = _encode(model, tokenizer, prompt, limit)
    seeds = _torch_seeds(seed, len(chosen))
    bar = _bar(len(chosen) * limit, "compare", progress)
    results = []
    try:
        for strategy, torch_seed in zip(chosen, seeds, strict=True):
            bar.set_description(strategy.name)
            batch = _sample(
                model, tokenizer, prompt_ids, strategy.make(), count, limit, torch_seed, bar
            )
            results.append(
                StrategyResult(
                    strategy.name,
                    tuple(batch.texts),
                    diversity(batch.tokens, batch.texts),
                    float(np.mean(batch.mean_logprob)),
                )
            )
    finally:
        bar.close()
    return tuple(results)
