"""The explorer's FastAPI application: the page, its static files and a JSON API.

Routes
------
``GET /``
    The page (``static/index.html``); its state lives in the URL's query.
``GET /api/info``
    The model's name and vocabulary size, the limits and the presets.
``POST /api/distribution``
    :func:`~thermoscope.sampling.summarize_sampling` of logits and a setting:
    the same numbers the page computes in the browser.
``POST /api/draw``
    ``n`` seeded draws from the sampler, their counts and a chi-square test.
``POST /api/next-token``
    A prompt's next-token logits under the model.
``POST /api/sample``
    One continuation of a prompt sampled with a setting.

Bad parameters get 422 with a one-line ``detail`` naming the field; a body
that cannot be parsed at all (nested too deep, say) gets 400; bodies over
``max_body_bytes`` get 413; a server without a model answers 503 on the model
routes. Every refusal is ``{"detail": "<one line>"}`` and is declared in the
OpenAPI schema. Nothing a client sends makes the server answer 500.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thermoscope import __version__
from thermoscope.explorer.backend import ModelBackend
from thermoscope.explorer.limits import ExplorerLimits
from thermoscope.explorer.presets import PRESETS
from thermoscope.sampling.summary import sampler_for, summarize_sampling

__all__ = ["LOOPBACK_HOSTS", "create_app"]

STATIC = Path(__file__).with_name("static")

#: The names of this machine's loopback interface, as a browser sends them in ``Host``.
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]")

#: Largest seed accepted (numpy's SeedSequence takes any int; JSON clients and
#: JavaScript handle integers exactly up to 2**53).
MAX_SEED = 2**53 - 1

#: New tokens sampled when a request does not say.
DEFAULT_NEW_TOKENS = 40

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Setting(BaseModel):
    """Temperature and truncation: ``top_k = 0``, ``top_p = 1``, ``min_p = 0`` switch off."""

    model_config = ConfigDict(extra="forbid", strict=True)

    temperature: FiniteFloat = Field(1.0, ge=0.0, le=1e6, description="0 is greedy")
    top_k: int = Field(0, ge=0, le=2**31 - 1, description="0 keeps every token")
    top_p: FiniteFloat = Field(1.0, gt=0.0, le=1.0, description="1 keeps every token")
    min_p: FiniteFloat = Field(0.0, ge=0.0, le=1.0, description="0 keeps every token")


class DistributionRequest(Setting):
    """Logits (``null`` marks a masked token) and optional labels."""

    logits: list[FiniteFloat | None] = Field(description="null marks a masked token (-inf)")
    labels: list[str] | None = None


class DrawRequest(DistributionRequest):
    """Logits and a setting, and how many seeded draws to take from the sampler."""

    n: int = Field(1000, ge=1, le=10**9, description="number of draws (capped by the server)")
    seed: int = Field(0, ge=0, le=MAX_SEED)


class DrawResponse(BaseModel):
    """Counts of ``n`` seeded draws per token, and a chi-square test against the probabilities."""

    n: int
    seed: int
    counts: list[int]
    probabilities: list[float]
    chi_square_p: float | None = Field(description="None when fewer than two tokens are kept")


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


class NextTokenRequest(BaseModel):
    """A prompt, and how many of the most likely tokens to decode."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str
    top: int = Field(100, ge=1, le=1000)


class NextTokenResponse(BaseModel):
    """The next-token logits over the whole vocabulary, and the top tokens decoded."""

    model: str
    logits: list[float]
    top_ids: list[int]
    top_tokens: list[str]
    prompt_tokens: int


class SampleRequest(Setting):
    """A prompt to continue with a setting."""

    prompt: str
    max_new_tokens: int | None = Field(
        None, ge=1, le=100_000, description="default: 40, or the server's cap if lower"
    )
    seed: int = Field(0, ge=0, le=MAX_SEED)


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
_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "the body could not be parsed at all"},
    413: {"model": ErrorResponse, "description": "the body is larger than max_body_bytes"},
    422: {"model": ErrorResponse, "description": "a parameter is refused; detail names it"},
}
_MODEL_REFUSALS: dict[int | str, dict[str, Any]] = {
    **_REFUSALS,
    503: {"model": ErrorResponse, "description": "this server has no model"},
}


class _Unprocessable(Exception):
    """A request that parses but asks for something the explorer refuses (422)."""


class _NoModel(Exception):
    """A model route on a server started without a model (503)."""


class _BodyTooLarge(HTTPException):
    """Raised inside the app when the streamed body passes the cap.

    An HTTPException because FastAPI turns any other exception raised while it
    reads the body into a 400; this one it re-raises and answers with 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body must be at most {limit} bytes")


class _BodyLimit:
    """ASGI middleware: answer 413 when a request body exceeds ``limit`` bytes.

    It checks ``Content-Length`` first and counts streamed chunks too, so a
    chunked body cannot slip past the cap.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._too_large(send)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge(self.limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"the request body must be at most {self.limit} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _validation_detail(exc: RequestValidationError) -> str:
    """The first validation error as one line that names the field."""
    errors = exc.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    if first.get("type") == "json_invalid":
        where = first.get("loc", ("body", "?"))[-1]
        return f"the request body must be valid JSON ({first.get('msg')} at character {where})"
    shown = repr(first.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"`{_field(first.get('loc', ()))}`: {first.get('msg', 'invalid')}, got {shown}{more}"


@contextmanager
def _refused_as_422() -> Iterator[None]:
    """The library's ValueError / TypeError (messages name the argument) become 422s."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise _Unprocessable(str(exc)) from None


def _check_text(text: str, name: str) -> None:
    """Refuse strings that are not Unicode text (JSON's "\\ud800" decodes to a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Unprocessable(
            f"`{name}` must be valid Unicode text, got a lone surrogate at character {exc.start}."
        ) from None


def _check_prompt(prompt: str, limits: ExplorerLimits) -> None:
    _check_text(prompt, "prompt")
    if not prompt.strip():
        raise _Unprocessable("`prompt` must contain some text, got an empty prompt.")
    if len(prompt) > limits.max_prompt_chars:
        raise _Unprocessable(
            f"`prompt` must be at most {limits.max_prompt_chars} characters, got {len(prompt)}."
        )


def _labels(request: DistributionRequest, limits: ExplorerLimits) -> list[str]:
    n = len(request.logits)
    if request.labels is None:
        return [str(i) for i in range(n)]
    if len(request.labels) != n:
        raise _Unprocessable(
            f"`labels` must have one entry per logit ({n}), got {len(request.labels)}."
        )
    for label in request.labels:
        _check_text(label, "labels")
        if len(label) > limits.max_label_chars:
            raise _Unprocessable(
                f"`labels` entries must be at most {limits.max_label_chars} characters, "
                f"got one of {len(label)}."
            )
    return list(request.labels)


def chi_square_p(counts: Any, probs: Any) -> float | None:
    """Goodness-of-fit p-value of ``counts`` against ``probs`` over the possible tokens.

    Tokens of probability 0 are left out (a draw of one would be a bug, not
    chance); ``None`` when fewer than two tokens are possible.

    Examples
    --------
    >>> round(chi_square_p([48, 52], [0.5, 0.5]), 4)
    0.6892
    >>> chi_square_p([10, 0], [1.0, 0.0]) is None
    True
    """
    from scipy.stats import chisquare

    c = np.asarray(counts, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    possible = p > 0
    if possible.sum() < 2:
        return None
    expected = p[possible] / p[possible].sum() * c[possible].sum()
    return float(chisquare(c[possible], expected).pvalue)


def create_app(
    backend: ModelBackend | None = None,
    limits: ExplorerLimits | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The explorer application.

    Parameters
    ----------
    backend : ModelBackend, optional
        The model behind the model mode (loaded on its first use). ``None``:
        a server without a model; the model routes answer 503.
    limits : ExplorerLimits, optional
    allowed_hosts : sequence of str, optional
        Host names the server answers to (others get 400), e.g.
        :data:`LOOPBACK_HOSTS`, which ``thermoscope explore`` uses: a web
        page that rebinds its own domain to 127.0.0.1 (DNS rebinding) then
        cannot talk to the explorer. ``None``: no check.

    Returns
    -------
    fastapi.FastAPI

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app())
    >>> r = client.post("/api/distribution", json={"logits": [2, 1, 0.5], "top_k": 2})
    >>> [round(p, 4) for p in r.json()["probabilities"]]
    [0.7311, 0.2689, 0.0]
    >>> client.post("/api/distribution", json={"logits": [1], "top_p": 2}).status_code
    422
    """
    caps = limits or ExplorerLimits()
    app = FastAPI(
        title="thermoscope explorer",
        version=__version__,
        description="See what temperature, top-k, top-p and min-p do to a distribution.",
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(_Unprocessable)
    async def _refused(request: Request, exc: _Unprocessable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    # Added first, so it runs inside _headers: an exception raised in the
    # receive of a BaseHTTPMiddleware (_headers) reaches the route wrapped in
    # an ExceptionGroup, which FastAPI would answer with 400 instead of 413.
    app.add_middleware(_BodyLimit, limit=caps.max_body_bytes)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
        )
        return response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def model() -> ModelBackend:
        if backend is None:
            raise _NoModel
        return backend

    @app.exception_handler(ModuleNotFoundError)
    async def _missing(request: Request, exc: ModuleNotFoundError) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the model mode needs {exc.name}: pip install 'thermoscope[hf]'"},
            status_code=503,
        )

    @app.exception_handler(_NoModel)
    async def _no_model(request: Request, exc: _NoModel) -> JSONResponse:
        return JSONResponse(
            {"detail": "this server has no model: start it with `thermoscope explore`"},
            status_code=503,
        )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        """The model's name, the limits and the presets."""
        return {
            "version": __version__,
            "model": None if backend is None else backend.name,
            "limits": {
                "max_logits": caps.max_logits,
                "max_label_chars": caps.max_label_chars,
                "max_prompt_chars": caps.max_prompt_chars,
                "max_new_tokens": caps.max_new_tokens,
                "max_body_bytes": caps.max_body_bytes,
                "max_draws": caps.max_draws,
            },
            "presets": [p.as_dict() for p in PRESETS],
        }

    def logits_of(request: DistributionRequest) -> list[float]:
        """The request's logits (null -> -inf), checked against the caps."""
        n = len(request.logits)
        if n == 0:
            raise _Unprocessable("`logits` must not be empty, got [].")
        if n > caps.max_logits:
            raise _Unprocessable(f"`logits` must have at most {caps.max_logits} values, got {n}.")
        z = [-math.inf if v is None else v for v in request.logits]
        if all(v == -math.inf for v in z):
            raise _Unprocessable("`logits` must have at least one unmasked (non-null) value.")
        return z

    @app.post("/api/distribution", responses=_REFUSALS)
    def distribution(request: DistributionRequest) -> DistributionResponse:
        """Temper, truncate and renormalise logits; the page's numbers, computed by Python."""
        z = logits_of(request)
        labels = _labels(request, caps)
        with _refused_as_422():
            s = summarize_sampling(
                z, request.temperature, request.top_k, request.top_p, request.min_p
            )
        return DistributionResponse(
            labels=labels,
            tempered=s.tempered.tolist(),
            probabilities=s.probabilities.tolist(),
            kept=s.kept.tolist(),
            entropy=s.entropy,
            nucleus_mass=s.nucleus_mass,
            kept_count=s.kept_count,
            max_probability=s.max_probability,
        )

    @app.post("/api/draw", responses=_REFUSALS)
    def draw(request: DrawRequest) -> DrawResponse:
        """Draw ``n`` tokens with the sampler (seeded) and test the counts against theory."""
        z = logits_of(request)
        _labels(request, caps)
        if request.n > caps.max_draws:
            raise _Unprocessable(f"`n` must be at most {caps.max_draws}, got {request.n}.")
        with _refused_as_422():
            sampler = sampler_for(request.temperature, request.top_k, request.top_p, request.min_p)
            probs = np.asarray(sampler.probs(z), dtype=np.float64)
            drawn = sampler.sample(z, n=request.n, seed=request.seed)
        counts = np.bincount(drawn, minlength=len(z))
        return DrawResponse(
            n=request.n,
            seed=request.seed,
            counts=counts.tolist(),
            probabilities=probs.tolist(),
            chi_square_p=chi_square_p(counts, probs),
        )

    @app.post("/api/next-token", responses=_MODEL_REFUSALS)
    def next_token(request: NextTokenRequest) -> NextTokenResponse:
        """The prompt's next-token logits under the model."""
        _check_prompt(request.prompt, caps)
        lm = model()
        with _refused_as_422():
            step = lm.next_token(request.prompt, top=request.top)
        return NextTokenResponse(
            model=lm.name,
            logits=step.logits,
            top_ids=step.top_ids,
            top_tokens=step.top_tokens,
            prompt_tokens=step.prompt_tokens,
        )

    @app.post("/api/sample", responses=_MODEL_REFUSALS)
    def sample(request: SampleRequest) -> SampleResponse:
        """One continuation of the prompt, sampled with the setting."""
        _check_prompt(request.prompt, caps)
        new_tokens = request.max_new_tokens or min(DEFAULT_NEW_TOKENS, caps.max_new_tokens)
        if new_tokens > caps.max_new_tokens:
            raise _Unprocessable(
                f"`max_new_tokens` must be at most {caps.max_new_tokens}, got {new_tokens}."
            )
        lm = model()
        with _refused_as_422():
            out = lm.sample(
                request.prompt,
                temperature=request.temperature,
                top_k=request.top_k,
                top_p=request.top_p,
                min_p=request.min_p,
                max_new_tokens=new_tokens,
                seed=request.seed,
            )
        return SampleResponse(
            model=lm.name, text=out.text, tokens=list(out.tokens), mean_logprob=out.mean_logprob
        )

    return app
