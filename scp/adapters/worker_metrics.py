"""How worker 0 of a node reads the metrics of its sibling workers: a Unix stream socket each.

``mcn-scp run --workers N`` runs N processes, each counting its own traffic, and only worker 0
serves ``[web] listen``. So that ``/metrics`` covers the whole node, every worker serves its
own exposition text on ``<dir>/metrics-<id>.sock`` (the directory of the worker link, mode
0600) and worker 0 reads each sibling's at scrape time: connect, read to the end, done. A
sibling that is down, restarting or slower than the timeout gives nothing (:func:`fetch`
returns None), which the exporter counts as a worker not alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

__all__ = ["FETCH_TIMEOUT", "MetricsServer", "fetch", "metrics_socket"]

FETCH_TIMEOUT = 1.0  # s a sibling has to hand over its metrics (Prometheus's own is 10 s)

log = structlog.get_logger("scp.worker_metrics")


def metrics_socket(directory: str | Path, worker_id: int) -> Path:
    """Where worker ``worker_id`` of the node running in ``directory`` serves its metrics."""
    return Path(directory) / f"metrics-{worker_id}.sock"


class MetricsServer:
    """This worker's metrics, rendered by ``render`` for each sibling that connects."""

    def __init__(
        self, directory: str | Path, worker_id: int, render: Callable[[], Awaitable[bytes]]
    ) -> None:
        self.path = metrics_socket(directory, worker_id)
        self._render = render
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by this worker's previous life (it was killed)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o600)  # the node's counters are for the node's own user

    async def _serve(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(await self._render())
            await writer.drain()
        except Exception as e:  # the reader counts this worker as not answering
            log.warning("metrics for a sibling worker failed", error=f"{type(e).__name__}: {e}")
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
    directory: str | Path, worker_id: int, timeout: float = FETCH_TIMEOUT
) -> bytes | None:
    """Worker ``worker_id``'s metrics text, or None if it did not hand any over in time."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(
                str(metrics_socket(directory, worker_id))
            )
            try:
                text = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    return text or None  # nothing: its rendering failed (it logged why)
