"""HTTP server glue: runs an ASGI application with uvicorn inside the event loop of the process
that serves it: ``mcn-scp web``, alone or as the web child of ``mcn-scp run``.

The application itself (routes, templates, authentication) lives in :mod:`scp.web`; this
adapter only binds the socket (or takes one already bound: the node binds ``[web] listen`` for
its web child, :mod:`scp.adapters.web_child`), serves, and stops cleanly.

Shutdown: :meth:`HttpServer.stop` stops accepting, lets requests in flight finish for up to
``grace`` seconds, then closes what is left (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger("scp.http")


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the process that serves (the node, or
    ``mcn-scp web``) owns SIGINT/SIGTERM and stops the server itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port`` (port 0: any free port); OSError when the
    address is taken, so a busy port fails at start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    """One uvicorn server on ``host:port`` (port 0: any free port, see :attr:`port`), or on
    ``sock``, a listening socket bound already (``host`` and ``port`` then only name it)."""

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        tls_cert: str = "",
        tls_key: str = "",
        trusted_proxies: tuple[str, ...] = (),
        max_connections: int = 1000,
        grace: int = 5,
        sock: socket.socket | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.port = port
        self._given = sock
        self._sock: socket.socket | None = None
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            # Logging stays structlog's (configured in scp.cli): uvicorn must not install its own.
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) or None,
            limit_concurrency=max_connections,
            timeout_graceful_shutdown=max(1, round(grace)),
            ssl_certfile=tls_cert or None,
            ssl_keyfile=tls_key or None,
            server_header=False,
        )
        self._server = _Server(self._config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind (so a busy port fails here, at start-up) and serve in the background."""
        sock = self._given or bind_listener(self.host, self._requested_port)
        self._given = None
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._task.done():  # failed before it came up (TLS files unreadable, ...)
                await self._task
                raise OSError(f"HTTP server on {self.host}:{self.port} did not start")
            await asyncio.sleep(0.01)
        scheme = "https" if self._config.ssl_certfile else "http"
        log.info("http serving", url=f"{scheme}://{self.url_host}:{self.port}/")

    @property
    def url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, self._config.timeout_graceful_shutdown or 5.0)
        except (TimeoutError, asyncio.CancelledError):
            self._server.force_exit = True
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self._task = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
