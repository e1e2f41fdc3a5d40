"""The node-local link to the web process: each node process's metrics and readiness on a Unix
stream socket of its own.

``mcn-scp run`` serves its web application from a child process (:mod:`scp.adapters.web_child`),
and under ``--workers N`` runs N node processes, each counting its own traffic. So that
``/metrics`` and ``/readyz`` speak for the node, every node process serves
``<dir>/metrics-<id>.sock`` (in a private directory, mode 0600) and the web process asks at
each request: it connects, sends one request line and reads the answer to the end.

* ``metrics``: the process's own families in the Prometheus text format.
* ``ready``: its readiness checks as a JSON object ``{"m3ua": [true, "..."], ...}``.

A process that is down, restarting or slower than the timeout gives nothing (:func:`fetch`
returns None): the exporter counts it as not alive, ``/readyz`` says the node does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import structlog

__all__ = ["FETCH_TIMEOUT", "MetricsServer", "Request", "fetch", "metrics_socket"]

FETCH_TIMEOUT = 1.0  # s a node process has to answer (Prometheus's own scrape timeout is 10 s)
MAX_REQUEST = 64  # octets of a request line; a client that sends more is not ours

Request = Literal["metrics", "ready"]

log = structlog.get_logger("scp.worker_metrics")


def metrics_socket(directory: str | Path, worker_id: int) -> Path:
    """Where node process (worker) ``worker_id`` of the node running in ``directory`` answers."""
    return Path(directory) / f"metrics-{worker_id}.sock"


class MetricsServer:
    """This process's answers: its metrics rendered by ``render``, its readiness by ``ready``
    (a JSON document), for each client that connects and asks."""

    def __init__(
        self,
        directory: str | Path,
        worker_id: int,
        render: Callable[[], Awaitable[bytes]],
        ready: Callable[[], Awaitable[bytes]] | None = None,
    ) -> None:
        self.path = metrics_socket(directory, worker_id)
        self._answers: dict[bytes, Callable[[], Awaitable[bytes]]] = {b"metrics": render}
        if ready is not None:
            self._answers[b"ready"] = ready
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by this process's previous life (it was killed)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o600)  # the node's counters are for the node's own user

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(FETCH_TIMEOUT):
                line = await reader.readuntil(b"\n")
            answer = self._answers.get(line.strip()) if len(line) <= MAX_REQUEST else None
            if answer is not None:
                writer.write(await answer())
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # not a request: closed without an answer
        except Exception as e:  # the reader counts this process as not answering
            log.warning("answer on the node link failed", error=f"{type(e).__name__}: {e}")
        finally:
            writer.close()

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def fetch(
    directory: str | Path,
    worker_id: int,
    what: Request = "metrics",
    timeout: float = FETCH_TIMEOUT,
) -> bytes | None:
    """Node process ``worker_id``'s answer to ``what``, or None if none came in time."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(
                str(metrics_socket(directory, worker_id))
            )
            try:
                writer.write(what.encode() + b"\n")
                text = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    return text or None  # nothing: its rendering failed (it logged why)
