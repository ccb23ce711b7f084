"""One batch of samples: ``n`` continuations of one prompt through ``generate``, with log p.

:func:`sample_batch` repeats the prompt ``n`` times, runs one ``generate``
call through the given processors (with every one of transformers' own
warpers switched off, see :func:`~thermoscope.generation.generate_kwargs`),
cuts each row after its end-of-sequence token and scores what it generated
with one teacher-forced pass. ``generate`` runs inside
``torch.random.fork_rng``, so the caller's global torch RNG is left as it was.

Examples
--------
>>> Batch([[5]], ["x"], [-1.0]).texts
['x']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from thermoscope._progress import Bar

__all__ = ["Batch", "sample_batch"]

# Rows of the teacher-forced log-probability pass are chunked so that one
# chunk's logits stay under this many floats (256 MiB in float32).
_LOGIT_BUDGET = 1 << 26


@dataclass(frozen=True)
class Batch:
    """The generated tokens of each row (end-of-sequence included), their text and mean log p."""

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


def _progress_criteria(bar: Bar) -> Any:
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Tick(StoppingCriteria):
        """Advances the bar once per generation step; never stops anything."""

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            bar.update(1)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Tick()])


def sample_batch(
    model: Any,
    tokenizer: Any,
    prompt_ids: Any,
    processors: Sequence[Any],
    *,
    n: int,
    max_new_tokens: int,
    torch_seed: int,
    bar: Bar,
) -> Batch:
    """``n`` samples of ``prompt_ids`` (1, L) through ``processors``; advances ``bar`` per step."""
    import torch

    from thermoscope.generation.config import generate_kwargs

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
    return Batch(tokens, texts, _mean_logprobs(model, sequences, start, lengths))
