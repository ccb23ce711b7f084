"""The shapes of the explorer's JSON API: one pydantic model per request and response.

Requests are strict (JSON ``true`` is not the number 1, ``"0.5"`` is not 0.5)
and forbid unknown fields, so a typo is a 422 naming the field instead of a
silently ignored setting. What the schema cannot say (caps that depend on the
server's :class:`~thermoscope.explorer.ExplorerLimits`, a blank prompt) is
checked in :mod:`thermoscope.explorer.refusals`.

Examples
--------
>>> DistributionRequest(logits=[2.0, None], top_k=1).top_p
1.0
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from thermoscope.explorer.examples import Example
from thermoscope.explorer.limits import ExplorerLimits

__all__ = [
    "DEFAULT_NEW_TOKENS",
    "MAX_SEED",
    "MODEL_REFUSALS",
    "REFUSALS",
    "ChainRequest",
    "DistributionRequest",
    "DistributionResponse",
    "DrawRequest",
    "DrawResponse",
    "ErrorResponse",
    "InfoResponse",
    "NextTokenRequest",
    "NextTokenResponse",
    "SampleRequest",
    "SampleResponse",
    "SamplingOptions",
    "Setting",
    "StreamEnd",
    "StreamError",
    "StreamRequest",
    "StreamStart",
    "StreamToken",
    "TraceResponse",
]

#: Largest seed accepted (numpy's SeedSequence takes any int; JSON clients and
#: JavaScript handle integers exactly up to 2**53).
MAX_SEED = 2**53 - 1

#: New tokens sampled when a request does not say (or the server's cap, if lower).
DEFAULT_NEW_TOKENS = 40

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class SamplingOptions(TypedDict):
    """A :class:`Setting` as keyword arguments of ``summarize_sampling`` and ``Sampler``."""

    temperature: float
    top_k: int
    top_p: float
    min_p: float


class Setting(BaseModel):
    """Temperature and truncation: ``top_k = 0``, ``top_p = 1``, ``min_p = 0`` switch off."""

    model_config = ConfigDict(extra="forbid", strict=True)

    temperature: FiniteFloat = Field(1.0, ge=0.0, le=1e6, description="0 is greedy")
    top_k: int = Field(0, ge=0, le=2**31 - 1, description="0 keeps every token")
    top_p: FiniteFloat = Field(1.0, gt=0.0, le=1.0, description="1 keeps every token")
    min_p: FiniteFloat = Field(0.0, ge=0.0, le=1.0, description="0 keeps every token")

    def options(self) -> SamplingOptions:
        """The setting as keyword arguments.

        Examples
        --------
        >>> Setting(temperature=0.7, top_p=0.9).options()
        {'temperature': 0.7, 'top_k': 0, 'top_p': 0.9, 'min_p': 0.0}
        """
        return SamplingOptions(
            temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, min_p=self.min_p
        )


class DistributionRequest(Setting):
    """Logits (``null`` marks a masked token) and optional labels."""

    logits: list[FiniteFloat | None] = Field(description="null marks a masked token (-inf)")
    labels: list[str] | None = None


class DrawRequest(DistributionRequest):
    """Logits and a setting, and how many seeded draws to take from the sampler."""

    n: int = Field(1000, ge=1, le=10**9, description="number of draws (capped by the server)")
    seed: int = Field(0, ge=0, le=MAX_SEED)


class ChainRequest(DrawRequest):
    """Any sampler chain on logits: every ``Sampler.from_options`` setting, stage by stage.

    Fields left out are off, or the ``preset``'s value (an engine's default
    chain); the ``history`` feeds the history-aware stages; ``seed`` draws
    the draws and the coins of random stages (XTC); ``n = 0`` draws nothing.
    """

    n: int = Field(0, ge=0, le=10**9, description="draws to take (0: only the trace)")
    preset: Literal["transformers", "llama.cpp", "vllm", "openai"] | None = None
    order: Literal["transformers", "llama.cpp"] | None = None
    history: list[int] | None = Field(
        None, max_length=1_000_000, description="token ids so far (for penalties, DRY)"
    )
    typical_p: FiniteFloat | None = None
    epsilon: FiniteFloat | None = None
    eta: FiniteFloat | None = None
    top_h: FiniteFloat | None = None
    p_less: bool | None = None
    top_n_sigma: float | None = None
    repetition_penalty: FiniteFloat | None = None
    frequency_penalty: FiniteFloat | None = None
    presence_penalty: FiniteFloat | None = None
    penalty_last_n: int | None = None
    no_repeat_ngram_size: int | None = None
    logit_bias: dict[str, float] | None = Field(
        None, description="token id (as a string key) -> bias; -inf bans it"
    )
    dry_multiplier: FiniteFloat | None = None
    dry_base: FiniteFloat | None = None
    dry_allowed_length: int | None = None
    dry_last_n: int | None = None
    dry_sequence_breakers: list[list[int]] | None = None
    xtc_probability: FiniteFloat | None = None
    xtc_threshold: FiniteFloat | None = None
    adaptive_target: FiniteFloat | None = None
    adaptive_decay: FiniteFloat | None = None

    def chain_options(self) -> dict[str, Any]:
        """``Sampler.from_options`` keywords: the preset's, then every field sent.

        Examples
        --------
        >>> ChainRequest(logits=[1.0], preset="llama.cpp", temperature=0.2).chain_options()
        {'top_k': 40, 'top_p': 0.95, 'min_p': 0.05, 'temperature': 0.2, 'order': 'llama.cpp'}
        """
        from thermoscope.sampling.engines import preset_options

        skip = {"logits", "labels", "n", "seed", "preset", "order", "history", "logit_bias"}
        given = {name: getattr(self, name) for name in sorted(self.model_fields_set - skip)}
        if self.logit_bias is not None:
            given["logit_bias"] = _bias_of(self.logit_bias)
        return preset_options(self.preset, given, self.order)


def _bias_of(bias: dict[str, float]) -> dict[int, float]:
    """JSON's string keys as token ids; a key that is not an integer is refused by name."""
    out = {}
    for key, value in bias.items():
        try:
            out[int(key)] = value
        except ValueError:
            raise ValueError(f"`logit_bias` keys must be token ids, got {key!r}.") from None
    return out


class NextTokenRequest(BaseModel):
    """A prompt (and the tokens generated after it), and how many likely tokens to decode."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str
    top: int = Field(100, ge=1, le=1000)
    continuation: list[int] = Field(
        [],
        max_length=100_000,
        description="token ids after the prompt's (a generation so far): that step's logits",
    )


class SampleRequest(Setting):
    """A prompt to continue with a setting."""

    prompt: str
    max_new_tokens: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description=f"default: {DEFAULT_NEW_TOKENS}, or the server's cap if lower",
    )
    seed: int = Field(0, ge=0, le=MAX_SEED)


class StreamRequest(SampleRequest):
    """A prompt to continue with a setting, token by token, with each step's top tokens."""

    top: int = Field(10, ge=1, le=100, description="most likely tokens reported per step")


class StreamStart(BaseModel):
    """The first line of a stream: what is being generated."""

    event: Literal["start"] = "start"
    model: str
    prompt_tokens: int
    max_new_tokens: int
    seed: int


class StreamToken(BaseModel):
    """One line per generated token: the token and the step's distribution after the chain."""

    event: Literal["token"] = "token"
    step: int
    token_id: int
    text: str = Field(description="what the token adds to the continuation")
    probability: float = Field(description="the token's probability when it was drawn")
    logprob: float = Field(description="its natural-log probability under the model at T = 1")
    top_ids: list[int]
    top_tokens: list[str]
    top_probabilities: list[float]


class StreamEnd(BaseModel):
    """The last line of a finished stream: the whole continuation and the timings."""

    event: Literal["end"] = "end"
    text: str
    tokens: list[int]
    mean_logprob: float | None = Field(description="mean log p at T = 1; None without tokens")
    stopped: Literal["eos", "length", "cancelled"]
    first_token_ms: float | None
    ms_per_token: float | None = Field(description="after the first token; None below two")


class StreamError(BaseModel):
    """The last line of a stream that failed after it started."""

    event: Literal["error"] = "error"
    detail: str


class InfoResponse(BaseModel):
    """The server's version, its model (``None``: logits mode only), caps and examples."""

    version: str
    model: str | None
    limits: ExplorerLimits
    examples: list[Example]


class DistributionResponse(BaseModel):
    """What one setting does to the logits (see ``summarize_sampling``)."""

    labels: list[str]
    tempered: list[float]
    probabilities: list[float]
    kept: list[bool]
    entropy: float
    nucleus_mass: float
    kept_count: int
    max_probability: float


class DrawResponse(BaseModel):
    """Counts of ``n`` seeded draws per token, and a chi-square test against the probabilities."""

    n: int
    seed: int
    counts: list[int]
    probabilities: list[float]
    chi_square_p: float | None = Field(description="None when fewer than two tokens are kept")


class TraceResponse(BaseModel):
    """A chain stage by stage (``Sampler.trace``), and the draws when ``n > 0``."""

    sampler: str
    order: list[str]
    stages: list[dict[str, Any]]
    probabilities: list[float]
    counts: list[int] | None
    chi_square_p: float | None


class NextTokenResponse(BaseModel):
    """The next-token logits over the whole vocabulary, and the top tokens decoded."""

    model: str
    logits: list[float]
    top_ids: list[int]
    top_tokens: list[str]
    prompt_tokens: int


class SampleResponse(BaseModel):
    """One sampled continuation."""

    model: str
    text: str
    tokens: list[int]
    mean_logprob: float


class ErrorResponse(BaseModel):
    """Every refusal: one line that names the field at fault."""

    detail: str


#: The refusals each API route can answer, declared in the OpenAPI schema.
REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "the body could not be parsed at all"},
    413: {"model": ErrorResponse, "description": "the body is larger than max_body_bytes"},
    422: {"model": ErrorResponse, "description": "a parameter is refused; detail names it"},
}
#: The refusals of the routes that need a model.
MODEL_REFUSALS: dict[int | str, dict[str, Any]] = {
    **REFUSALS,
    503: {"model": ErrorResponse, "description": "this server has no model"},
}
