"""Dynamic temperature against fixed: one prompt, several decoding strategies, one table.

:func:`dynamic_strategies` lists fixed temperatures (the baselines) and the
confidence-adaptive strategies (entropy-based temperature, Mirostat 2.0,
min-p); :func:`compare_dynamic` samples each and reports diversity and
likelihood, :func:`format_strategies` prints the comparison.

Examples
--------
>>> [s.name for s in dynamic_strategies([0.7])][-2:]
['min-p 0.1, T = 1', 'min-p 0.1, T = 1.5']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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

__all__ = [
    "Strategy",
    "StrategyResult",
    "compare_dynamic",
    "dynamic_strategies",
    "format_strategies",
]


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
            f"T = {format_temperature(t)}",
            lambda: [SamplerLogitsProcessor(Sampler.from_options(temperature=t))],
        )

    def min_p(t: float, p: float) -> Strategy:
        return Strategy(
            f"min-p {p:g}, T = {format_temperature(t)}",
            lambda: [SamplerLogitsProcessor(Sampler.from_options(temperature=t, min_p=p))],
        )

    def mirostat(tau: float) -> Strategy:
        return Strategy(f"mirostat tau={tau:g}", lambda: [Mirostat(tau=tau, eta=0.1)])

    entropy_based = Strategy(
        "entropy T in [0.3, 1.3]",
        lambda: [SamplerLogitsProcessor(Sampler([EntropyTemperature(0.3, 1.3)]))],
    )
    temps = check_temperatures(temperatures)
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
        """JSON-ready fields.

        Examples
        --------
        >>> d = Diversity(1.0, 0.9, 0.8, 0.1, 0.0)
        >>> StrategyResult("T = 1", ("a",), d, -2.5).as_dict()["strategy"]
        'T = 1'
        """
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
    *,
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
        As in :func:`~thermoscope.generation.generate_at_temperatures`.
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
    count = check_n(n)
    limit = check_max_new_tokens(max_new_tokens)
    prompt_ids = encode_prompt(model, tokenizer, prompt, limit)
    seeds = torch_seeds(seed, len(chosen))
    bar = progress_bar(len(chosen) * limit, desc="compare", unit="tok", enabled=progress)
    results = []
    try:
        for strategy, torch_seed in zip(chosen, seeds, strict=True):
            bar.set_description(strategy.name)
            batch = sample_batch(
                model,
                tokenizer,
                prompt_ids,
                strategy.make(),
                n=count,
                max_new_tokens=limit,
                torch_seed=torch_seed,
                bar=bar,
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
