"""The explorer's FastAPI application: the page, its static files and a JSON API.

Routes
------
``GET /``
    The page (``static/index.html``); its state lives in the URL's query.
``GET /api/info``
    The model's name, the limits and the example logits.
``POST /api/distribution``
    :func:`~thermoscope.sampling.summarize_sampling` of logits and a setting:
    the same numbers the page computes in the browser.
``POST /api/draw``
    ``n`` seeded draws from the sampler, their counts and a chi-square test
    (:func:`~thermoscope.sampling.goodness_of_fit`).
``POST /api/trace``
    Any sampler chain (every stage of ``Sampler.from_options``, an engine
    preset, a token history) stage by stage (``Sampler.trace``), its final
    probabilities, and optionally ``n`` seeded draws with a chi-square test.
``POST /api/next-token``
    A prompt's next-token logits under the model (or, after a ``continuation``
    of token ids, the logits of that step of a generation).
``POST /api/sample``
    One continuation of a prompt sampled with a setting.
``POST /api/generate-stream``
    The same continuation token by token as it is generated: newline-delimited
    JSON, a ``start`` line, one ``token`` line per token (its probability and
    the step's top tokens after the chain), then ``end`` (or ``error``).

Each route validates its request (:mod:`~thermoscope.explorer.schemas`, then
:mod:`~thermoscope.explorer.refusals`), calls the library and returns a
schema. Bad parameters get 422 with a one-line ``detail`` naming the field
(a stream's before its first line); a body that cannot be parsed at all
(nested too deep, say) gets 400; bodies over ``max_body_bytes`` get 413
(:mod:`~thermoscope.explorer.middleware`); a server without a model answers
503 on the model routes; a full model queue 429. Every refusal is
``{"detail": "<one line>"}`` and is declared in the OpenAPI schema. Nothing a
client sends makes the server answer 500.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from thermoscope import __version__
from thermoscope.explorer.backend import ModelBackend, TokenStream
from thermoscope.explorer.examples import EXAMPLES
from thermoscope.explorer.limits import ExplorerLimits
from thermoscope.explorer.middleware import add_middleware
from thermoscope.explorer.refusals import (
    NoModel,
    Unprocessable,
    add_refusal_handlers,
    check_prompt,
    labels_of,
    logits_of,
    new_tokens_of,
    refused_as_422,
)
from thermoscope.explorer.schemas import (
    MODEL_REFUSALS,
    REFUSALS,
    ChainRequest,
    DistributionRequest,
    DistributionResponse,
    DrawRequest,
    DrawResponse,
    InfoResponse,
    NextTokenRequest,
    NextTokenResponse,
    SampleRequest,
    SampleResponse,
    StreamEnd,
    StreamError,
    StreamRequest,
    StreamStart,
    StreamToken,
    TraceResponse,
)
from thermoscope.sampling import Sampler, goodness_of_fit, summarize_sampling

__all__ = ["create_app"]

_STATIC = Path(__file__).with_name("static")

#: The stream route's 200 answer, declared in the OpenAPI schema.
_NDJSON: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "one JSON object a line: start, token..., then end or error",
        "content": {"application/x-ndjson": {}},
    }
}


def _ndjson(start: StreamStart, stream: TokenStream) -> Iterator[str]:
    """The stream's lines; a failure after the first line ends it with an ``error`` line."""
    yield start.model_dump_json() + "\n"
    try:
        for step in stream:
            yield StreamToken(**step.__dict__).model_dump_json() + "\n"
    except Exception as exc:  # the status line is already sent: say it in the stream
        yield StreamError(detail=str(exc) or type(exc).__name__).model_dump_json() + "\n"
        return
    n = len(stream.tokens)
    first = stream.first_token_seconds
    rest = None if first is None or stream.seconds is None or n < 2 else stream.seconds - first
    yield (
        StreamEnd(
            text=stream.text,
            tokens=stream.tokens,
            mean_logprob=None if math.isnan(stream.mean_logprob) else stream.mean_logprob,
            stopped=stream.stopped,  # type: ignore[arg-type]
            first_token_ms=None if first is None else 1000 * first,
            ms_per_token=None if rest is None else 1000 * rest / (n - 1),
        ).model_dump_json()
        + "\n"
    )


def create_app(
    backend: ModelBackend | None = None,
    *,
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
        The caps on one request; default ``ExplorerLimits()``.
    allowed_hosts : sequence of str, optional
        Host names the server answers to (others get 400), e.g.
        :data:`~thermoscope.explorer.middleware.LOOPBACK_HOSTS`, which
        ``thermoscope explore`` uses against DNS rebinding. ``None``: no check.

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
    add_refusal_handlers(app)
    add_middleware(app, max_body_bytes=caps.max_body_bytes, allowed_hosts=allowed_hosts)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")

    def model() -> ModelBackend:
        if backend is None:
            raise NoModel
        return backend

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(_STATIC / "index.html", media_type="text/html")

    @app.get("/api/info")
    def info() -> InfoResponse:
        """The model's name, the limits and the example logits."""
        return InfoResponse(
            version=__version__,
            model=None if backend is None else backend.name,
            limits=caps,
            examples=list(EXAMPLES),
        )

    @app.post("/api/distribution", responses=REFUSALS)
    def distribution(request: DistributionRequest) -> DistributionResponse:
        """Temper, truncate and renormalise logits; the page's numbers, computed by Python."""
        z = logits_of(request, caps)
        labels = labels_of(request, caps)
        with refused_as_422():
            s = summarize_sampling(z, **request.options())
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

    @app.post("/api/draw", responses=REFUSALS)
    def draw(request: DrawRequest) -> DrawResponse:
        """Draw ``n`` tokens with the sampler (seeded) and test the counts against theory."""
        z = logits_of(request, caps)
        labels_of(request, caps)
        if request.n > caps.max_draws:
            raise Unprocessable(f"`n` must be at most {caps.max_draws}, got {request.n}.")
        with refused_as_422():
            sampler = Sampler.from_options(**request.options())
            probs = np.asarray(sampler.probs(z), dtype=np.float64)
            drawn = sampler.sample(z, n=request.n, seed=request.seed)
        counts = np.bincount(drawn, minlength=len(z))
        return DrawResponse(
            n=request.n,
            seed=request.seed,
            counts=counts.tolist(),
            probabilities=probs.tolist(),
            chi_square_p=goodness_of_fit(counts, probs).p_value,
        )

    @app.post("/api/trace", responses=REFUSALS)
    def trace(request: ChainRequest) -> TraceResponse:
        """Any chain (every sampler, an engine preset, a history), stage by stage, and draws."""
        z = logits_of(request, caps)
        labels_of(request, caps)
        if request.n > caps.max_draws:
            raise Unprocessable(f"`n` must be at most {caps.max_draws}, got {request.n}.")
        with refused_as_422():
            sampler = Sampler.from_options(**request.chain_options())
            kw: dict[str, Any] = {"history": request.history, "seed": request.seed}
            steps = sampler.trace(z, **kw)
            probs = np.asarray(sampler.probs(z, **kw), dtype=np.float64)
            counts = None
            if request.n:
                drawn = sampler.sample(z, n=request.n, **kw)
                counts = np.bincount(drawn, minlength=len(z))
        return TraceResponse(
            sampler=repr(sampler),
            order=list(steps.order),
            stages=steps.to_dict()["stages"],
            probabilities=probs.tolist(),
            counts=None if counts is None else counts.tolist(),
            chi_square_p=None if counts is None else goodness_of_fit(counts, probs).p_value,
        )

    @app.post("/api/next-token", responses=MODEL_REFUSALS)
    def next_token(request: NextTokenRequest) -> NextTokenResponse:
        """The prompt's next-token logits under the model."""
        check_prompt(request.prompt, caps)
        if len(request.continuation) > caps.max_new_tokens:
            raise Unprocessable(
                f"`continuation` must have at most {caps.max_new_tokens} tokens, "
                f"got {len(request.continuation)}."
            )
        lm = model()
        with refused_as_422():
            step = lm.next_token(request.prompt, top=request.top, continuation=request.continuation)
        return NextTokenResponse(
            model=lm.name,
            logits=step.logits,
            top_ids=step.top_ids,
            top_tokens=step.top_tokens,
            prompt_tokens=step.prompt_tokens,
        )

    @app.post("/api/sample", responses=MODEL_REFUSALS)
    def sample(request: SampleRequest) -> SampleResponse:
        """One continuation of the prompt, sampled with the setting."""
        check_prompt(request.prompt, caps)
        new_tokens = new_tokens_of(request, caps)
        lm = model()
        with refused_as_422():
            out = lm.sample(
                request.prompt, **request.options(), max_new_tokens=new_tokens, seed=request.seed
            )
        return SampleResponse(
            model=lm.name, text=out.text, tokens=list(out.tokens), mean_logprob=out.mean_logprob
        )

    @app.post("/api/generate-stream", responses={**MODEL_REFUSALS, **_NDJSON})
    def generate_stream(request: StreamRequest) -> StreamingResponse:
        """The continuation token by token, as newline-delimited JSON (see the module's notes)."""
        check_prompt(request.prompt, caps)
        new_tokens = new_tokens_of(request, caps)
        lm = model()
        with refused_as_422():
            stream = lm.stream(
                request.prompt,
                **request.options(),
                max_new_tokens=new_tokens,
                seed=request.seed,
                top=request.top,
            )
        start = StreamStart(
            model=lm.name,
            prompt_tokens=stream.prompt_tokens,
            max_new_tokens=new_tokens,
            seed=request.seed,
        )
        return StreamingResponse(_ndjson(start, stream), media_type="application/x-ndjson")

    return app
