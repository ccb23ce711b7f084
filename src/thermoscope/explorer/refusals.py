"""What the explorer refuses, and how every refusal reads: ``{"detail": "<one line>"}``.

The pydantic schemas check each field on its own; the checks here need the
server's :class:`~thermoscope.explorer.ExplorerLimits` or look at several
fields at once. Every refusal names the field at fault, in the library's one
wording ("`name` must be <allowed>, got <value>."):

- 422: :class:`Unprocessable` (raised by these checks), a pydantic validation
  error, or the library's own ``ValueError`` / ``TypeError`` (see
  :func:`refused_as_422`);
- 503: a model route on a server without a model (:class:`NoModel`), or
  without the ``hf`` extra.

Examples
--------
>>> from thermoscope.explorer.schemas import DistributionRequest
>>> logits_of(DistributionRequest(logits=[1.0, None]), ExplorerLimits())
[1.0, -inf]
>>> logits_of(DistributionRequest(logits=[None]), ExplorerLimits())
Traceback (most recent call last):
...
thermoscope.explorer.refusals.Unprocessable: `logits` must have at least one unmasked (non-null) value.
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from thermoscope.explorer.limits import ExplorerLimits
from thermoscope.explorer.schemas import DEFAULT_NEW_TOKENS, DistributionRequest, SampleRequest

__all__ = [
    "NoModel",
    "Unprocessable",
    "add_refusal_handlers",
    "check_prompt",
    "labels_of",
    "logits_of",
    "new_tokens_of",
    "refused_as_422",
]


class Unprocessable(Exception):
    """A request that parses but asks for something the explorer refuses (422)."""


class NoModel(Exception):
    """A model route on a server started without a model (503)."""


@contextmanager
def refused_as_422() -> Iterator[None]:
    """The library's ValueError / TypeError (messages name the argument) become 422s.

    Examples
    --------
    >>> with refused_as_422():
    ...     raise ValueError("`top_p` must be in (0, 1], got 2.")
    Traceback (most recent call last):
    ...
    thermoscope.explorer.refusals.Unprocessable: `top_p` must be in (0, 1], got 2.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        raise Unprocessable(str(exc)) from None


def _check_text(text: str, name: str) -> None:
    """Refuse strings that are not Unicode text (JSON's "\\ud800" decodes to a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Unprocessable(
            f"`{name}` must be valid Unicode text, got a lone surrogate at character {exc.start}."
        ) from None


def check_prompt(prompt: str, limits: ExplorerLimits) -> None:
    """Refuse a prompt that is not text, blank, or longer than ``max_prompt_chars``.

    Examples
    --------
    >>> check_prompt("import os", ExplorerLimits())
    >>> check_prompt("  ", ExplorerLimits())
    Traceback (most recent call last):
    ...
    thermoscope.explorer.refusals.Unprocessable: `prompt` must contain some text, got an empty prompt.
    """  # noqa: E501
    _check_text(prompt, "prompt")
    if not prompt.strip():
        raise Unprocessable("`prompt` must contain some text, got an empty prompt.")
    if len(prompt) > limits.max_prompt_chars:
        raise Unprocessable(
            f"`prompt` must be at most {limits.max_prompt_chars} characters, got {len(prompt)}."
        )


def logits_of(request: DistributionRequest, limits: ExplorerLimits) -> list[float]:
    """The request's logits (``null`` -> ``-inf``), checked against ``max_logits``.

    Examples
    --------
    >>> logits_of(DistributionRequest(logits=[2.0, 1.0]), ExplorerLimits(max_logits=1))
    Traceback (most recent call last):
    ...
    thermoscope.explorer.refusals.Unprocessable: `logits` must have at most 1 values, got 2.
    """
    n = len(request.logits)
    if n == 0:
        raise Unprocessable("`logits` must not be empty, got [].")
    if n > limits.max_logits:
        raise Unprocessable(f"`logits` must have at most {limits.max_logits} values, got {n}.")
    z = [-math.inf if v is None else v for v in request.logits]
    if all(v == -math.inf for v in z):
        raise Unprocessable("`logits` must have at least one unmasked (non-null) value.")
    return z


def labels_of(request: DistributionRequest, limits: ExplorerLimits) -> list[str]:
    """The request's labels, one per logit; their indices when it sends none.

    Examples
    --------
    >>> labels_of(DistributionRequest(logits=[2.0, 1.0]), ExplorerLimits())
    ['0', '1']
    """
    n = len(request.logits)
    if request.labels is None:
        return [str(i) for i in range(n)]
    if len(request.labels) != n:
        raise Unprocessable(
            f"`labels` must have one entry per logit ({n}), got {len(request.labels)}."
        )
    for label in request.labels:
        _check_text(label, "labels")
        if len(label) > limits.max_label_chars:
            raise Unprocessable(
                f"`labels` entries must be at most {limits.max_label_chars} characters, "
                f"got one of {len(label)}."
            )
    return list(request.labels)


def new_tokens_of(request: SampleRequest, limits: ExplorerLimits) -> int:
    """How many tokens to sample: the request's count, or the default capped by the server.

    Examples
    --------
    >>> new_tokens_of(SampleRequest(prompt="x"), ExplorerLimits(max_new_tokens=5))
    5
    """
    new_tokens = request.max_new_tokens or min(DEFAULT_NEW_TOKENS, limits.max_new_tokens)
    if new_tokens > limits.max_new_tokens:
        raise Unprocessable(
            f"`max_new_tokens` must be at most {limits.max_new_tokens}, got {new_tokens}."
        )
    return new_tokens


def _field(loc: Sequence[int | str]) -> str:
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


def _refusal(detail: str, status_code: int) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


def add_refusal_handlers(app: FastAPI) -> None:
    """Answer every refusal raised in ``app``'s routes as ``{"detail": "<one line>"}``.

    Examples
    --------
    >>> app = FastAPI()
    >>> add_refusal_handlers(app)
    >>> Unprocessable in app.exception_handlers
    True
    """

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _refusal(_validation_detail(exc), 422)

    @app.exception_handler(Unprocessable)
    async def refused(request: Request, exc: Unprocessable) -> JSONResponse:
        return _refusal(str(exc), 422)

    @app.exception_handler(NoModel)
    async def no_model(request: Request, exc: NoModel) -> JSONResponse:
        return _refusal("this server has no model: start it with `thermoscope explore`", 503)

    @app.exception_handler(ModuleNotFoundError)
    async def missing(request: Request, exc: ModuleNotFoundError) -> JSONResponse:
        return _refusal(f"the model mode needs {exc.name}: pip install 'thermoscope[hf]'", 503)
