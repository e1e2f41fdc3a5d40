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

The private directory (:func:`private_directory`) is named after the process that made it, so
that the directories of processes killed with SIGKILL, which could not remove their own, are
removed by the next node to start on the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import structlog

__all__ = [
    "FETCH_TIMEOUT",
    "MetricsServer",
    "Request",
    "fetch",
    "metrics_socket",
    "private_directory",
]

FETCH_TIMEOUT = 1.0  # s a node process has to answer (Prometheus's own scrape timeout is 10 s)
MAX_REQUEST = 64  # octets of a request line; a client that sends more is not ours

Request = Literal["metrics", "ready"]

log = structlog.get_logger("scp.worker_metrics")


def private_directory(kind: str, parent: str | None = None) -> str:
    """A new directory for the node-local sockets (mode 0700), ``mcn-scp-<kind>-<pid>-*`` in
    ``parent`` (the system's temporary directory). This user's directories of that kind whose
    process no longer runs go first: a node killed with SIGKILL leaves its own behind."""
    parent = parent or tempfile.gettempdir()
    prefix = f"mcn-scp-{kind}-"
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for e in entries:
            pid = e.name[len(prefix) :].split("-", 1)[0] if e.name.startswith(prefix) else ""
            if not pid.isdigit() or _running(int(pid)):
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
                shutil.rmtree(e.path, ignore_errors=True)
                log.info("stale link directory removed", path=e.path)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (a reused pid keeps a stale directory: harmless)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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
