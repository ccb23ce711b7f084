"""Running the explorer: in the foreground (the CLI) or from a background thread."""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["HEADER_TIMEOUT", "BackgroundServer", "serve"]

#: Seconds a client has to send a request's headers before its connection is closed.
HEADER_TIMEOUT = 10.0


def _protocol(header_timeout: float) -> type[Any]:
    """uvicorn's h11 protocol, closing connections whose request headers do not arrive in time.

    uvicorn bounds the idle time between requests (keep-alive) but not the
    time to send a request's headers, so a client that opens connections and
    trickles bytes would hold them forever. The clock starts when the
    connection opens or a partial request arrives, and is not reset by more
    bytes; complete headers stop it.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:
                if self._header_timer is None:
                    self._arm()
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutProtocol


def serve(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8765, log_level: str = "warning"
) -> None:
    """Run ``app`` with uvicorn in the foreground until interrupted (Ctrl-C).

    Examples
    --------
    >>> from thermoscope.explorer import create_app
    >>> callable(serve) and callable(create_app)  # serve(create_app()) blocks until Ctrl-C
    True
    """
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, http=_protocol(HEADER_TIMEOUT))


class BackgroundServer:
    """uvicorn serving an app from a daemon thread, e.g. beside a notebook or in tests.

    Parameters
    ----------
    app
        An ASGI application, such as :func:`~thermoscope.explorer.create_app`'s.
    host : str, default "127.0.0.1"
    port : int, default 0
        0 lets the system pick a free port (see :attr:`url`).
    timeout : float, default 30
        Seconds to wait for the server to start, and for it to stop.
    header_timeout : float, default HEADER_TIMEOUT
        Seconds a client has to send a request's headers.

    Examples
    --------
    >>> import httpx
    >>> from thermoscope.explorer import create_app
    >>> with BackgroundServer(create_app()) as url:
    ...     r = httpx.post(f"{url}/api/distribution", json={"logits": [1.0, 1.0]})
    >>> r.json()["probabilities"]
    [0.5, 0.5]
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 30.0,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        import uvicorn

        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            http=_protocol(header_timeout),
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._timeout = timeout
        self.url = ""

    def start(self) -> str:
        """Start serving; return the base URL, e.g. ``http://127.0.0.1:40123``.

        Examples
        --------
        >>> from thermoscope.explorer import create_app
        >>> server = BackgroundServer(create_app())
        >>> server.start().startswith("http://127.0.0.1:")
        True
        >>> server.stop()
        """
        if self._thread is not None:
            raise RuntimeError("this BackgroundServer was already started")
        self._thread = threading.Thread(target=self._server.run, name="thermoscope-explorer")
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the explorer server did not start")
            time.sleep(0.02)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        """Ask the server to finish its requests and stop; wait for its thread.

        Examples
        --------
        >>> import httpx
        >>> from thermoscope.explorer import create_app
        >>> server = BackgroundServer(create_app())
        >>> url = server.start()
        >>> server.stop()
        >>> try:
        ...     httpx.get(f"{url}/api/info", timeout=2.0)
        ... except httpx.ConnectError:
        ...     print("stopped")
        stopped
        """
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self._timeout)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
