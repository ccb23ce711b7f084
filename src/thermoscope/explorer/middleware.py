"""What wraps every request to the explorer: host check, body cap, security headers.

:func:`add_middleware` installs, from the outside in:

1. security headers on every response (``nosniff`` and a strict
   Content-Security-Policy: the page loads only its own files);
2. optionally, a ``Host`` check (:data:`LOOPBACK_HOSTS` for ``thermoscope
   explore``): a web page that rebinds its own domain to 127.0.0.1 (DNS
   rebinding) then cannot talk to the explorer;
3. the body cap: 413 for a body over ``max_body_bytes``, before it is parsed;

and answers :class:`~thermoscope.explorer.limits.ModelBusy` (the model's
queue is full) with 429 and ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thermoscope.explorer.limits import ModelBusy

__all__ = ["CONTENT_SECURITY_POLICY", "LOOPBACK_HOSTS", "add_middleware"]

#: The names of this machine's loopback interface, as a browser sends them in ``Host``.
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]")

#: The page loads scripts, styles and images from the server only, and cannot be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
)


def _too_large(limit: int) -> str:
    return f"the request body must be at most {limit} bytes"


class _BodyTooLarge(HTTPException):
    """Raised inside the app when the streamed body passes the cap.

    An HTTPException because FastAPI turns any other exception raised while it
    reads the body into a 400; this one it re-raises and answers with 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


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
                await self._refuse(send)
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
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse({"detail": _too_large(self.limit)}, status_code=413)
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


async def _busy(request: Request, exc: Exception) -> Response:
    """429 with Retry-After when the model's queue is full (see ModelBackend)."""
    wait = exc.retry_after if isinstance(exc, ModelBusy) else 1
    return JSONResponse(
        {"detail": f"the model is busy with other requests; retry in {wait} s"},
        status_code=429,
        headers={"Retry-After": str(wait)},
    )


def add_middleware(
    app: FastAPI, *, max_body_bytes: int, allowed_hosts: Sequence[str] | None = None
) -> None:
    """Wrap ``app`` in the explorer's middleware (see the module docstring).

    Parameters
    ----------
    app : fastapi.FastAPI
    max_body_bytes : int
        Larger request bodies get 413.
    allowed_hosts : sequence of str, optional
        Host names the server answers to (others get 400); ``None``: no check.

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> app = FastAPI()
    >>> add_middleware(app, max_body_bytes=10, allowed_hosts=LOOPBACK_HOSTS)
    >>> TestClient(app, base_url="http://127.0.0.1").post("/", content=b"x" * 11).status_code
    413
    """
    # Added first, so it runs inside the headers middleware: an exception raised
    # in the receive of a BaseHTTPMiddleware reaches the route wrapped in an
    # ExceptionGroup, which FastAPI would answer with 400 instead of 413.
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    app.add_exception_handler(ModelBusy, _busy)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.middleware("http")(_security_headers)
