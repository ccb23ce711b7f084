"""The same prompt at several temperatures: samples, diversity and likelihood.

:func:`generate_at_temperatures` samples ``n`` continuations at each
temperature through thermoscope's sampler inside ``generate`` (transformers'
own warpers switched off) and measures each temperature's diversity
(distinct-n, self-BLEU, repetition) and mean log-probability. It takes any
transformers causal LM and its tokenizer, e.g. from
:func:`~thermoscope.generation.load_model`.

Examples
--------
>>> Sample(0.7, 0, "x", (5,), -1.5).as_dict()["n_tokens"]
1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from thermoscope._progress import progress_bar
from thermoscope._tables import format_table, format_temperature
from thermoscope.generation._batch import sample_batch
from thermoscope.generation._inputs import (
    check_max_new_tokens,
    check_n,
    check_temperatures,
    encode_prompt,
    torch_seeds,
)
from thermoscope.generation.diversity import Diversity, diversity

__all__ = ["GenerationResult", "Sample", "generate_at_temperatures"]


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
        """JSON-ready fields.

        Examples
        --------
        >>> Sample(0.7, 0, "x", (5,), -1.5).as_dict()["tokens"]
        [5]
        """
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
    ...                      {1.0: Diversity(1.0, 1.0, *[float("nan")] * 3)})
    >>> r.mean_logprob(1.0)
    -2.0
    """

    prompt: str
    temperatures: tuple[float, ...]
    samples: tuple[Sample, ...]
    diversity: Mapping[float, Diversity]
    sampler_options: Mapping[str, Any] = field(default_factory=dict)

    def mean_logprob(self, temperature: float) -> float:
        """Mean of the samples' mean log-probabilities at ``temperature``.

        Examples
        --------
        >>> r = GenerationResult("p", (1.0,), (Sample(1.0, 0, "ab", (1, 2), -2.0),),
        ...                      {1.0: Diversity(1.0, 1.0, *[float("nan")] * 3)})
        >>> r.mean_logprob(1.0)
        -2.0
        """
        values = [s.mean_logprob for s in self.samples if s.temperature == temperature]
        return float(np.mean(values))

    def diversity_table(self) -> str:
        """One row per temperature: diversity metrics and mean log-probability.

        Examples
        --------
        >>> r = GenerationResult("p", (1.0,), (Sample(1.0, 0, "ab", (1, 2), -2.0),),
        ...                      {1.0: Diversity(1.0, 1.0, *[float("nan")] * 3)})
        >>> r.diversity_table().split()[:3]
        ['T', 'distinct-1', 'distinct-2']
        """
        rows = [
            [format_temperature(t), *_diversity_cells(self.diversity[t]), self.mean_logprob(t)]
            for t in self.temperatures
        ]
        return format_table(["T", *_DIVERSITY_HEADERS, "mean log p"], rows)

    def format(self) -> str:
        """The samples of each temperature, then the diversity table.

        Examples
        --------
        >>> r = GenerationResult("p", (1.0,), (Sample(1.0, 0, "ab", (1, 2), -2.0),),
        ...                      {1.0: Diversity(1.0, 1.0, *[float("nan")] * 3)})
        >>> r.format().splitlines()[:3]
        ["prompt: 'p'", '', 'T = 1']
        """
        opts = ", ".join(f"{k}={v}" for k, v in self.sampler_options.items())
        lines = [f"prompt: {self.prompt!r}" + (f"   sampler: {opts}" if opts else "")]
        for t in self.temperatures:
            lines += ["", f"T = {format_temperature(t)}"]
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
        """JSON-ready: prompt, sampler options, samples and per-temperature diversity.

        Examples
        --------
        >>> r = GenerationResult("p", (1.0,), (Sample(1.0, 0, "ab", (1, 2), -2.0),),
        ...                      {1.0: Diversity(1.0, 1.0, *[float("nan")] * 3)})
        >>> r.as_dict()["diversity"][0]["mean_logprob"]
        -2.0
        """
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
    *,
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
        :func:`~thermoscope.generation.load_model`.
    prompt : str
        Non-empty; with ``max_new_tokens`` it must fit the model's context.
    temperatures : iterable of float
        Temperatures >= 0 (0: greedy, all samples equal).
    n : int, default 3
        Samples per temperature, 1 to 256.
    max_new_tokens : int, default 60
        1 to 2048; a sample ends earlier at end-of-sequence.
    seed : int, default 0
        An integer >= 0; each temperature draws with its own seed derived from it.
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

    temps = check_temperatures(temperatures)
    count = check_n(n)
    limit = check_max_new_tokens(max_new_tokens)
    if isinstance(prompt, str) and prompt == "":
        raise ValueError("`prompt` must not be empty, got ''.")
    options = dict(sampler_options or {})
    if "temperature" in options:
        raise ValueError(
            "`sampler_options` must not set `temperature` (give it in `temperatures`), "
            f"got temperature={options['temperature']!r}."
        )
    build = dict(options)
    if options.get("dry_multiplier") and options.get("tokenizer") is None:
        # DRY's default sequence breakers are strings: the model's tokenizer finds them.
        build["tokenizer"] = tokenizer
    samplers = [Sampler.from_options(temperature=t, **build) for t in temps]
    prompt_ids = encode_prompt(model, tokenizer, prompt, limit)
    seeds = torch_seeds(seed, len(temps))
    bar = progress_bar(len(temps) * limit, desc="generate", unit="tok", enabled=progress)
    samples: list[Sample] = []
    metrics: dict[float, Diversity] = {}
    try:
        for t, sampler, torch_seed in zip(temps, samplers, seeds, strict=True):
            bar.set_description(f"T = {format_temperature(t)}")
            batch = sample_batch(
                model,
                tokenizer,
                prompt_ids,
                [SamplerLogitsProcessor(sampler)],
                n=count,
                max_new_tokens=limit,
                torch_seed=torch_seed,
                bar=bar,
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
