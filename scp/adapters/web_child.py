"""The web application of ``mcn-scp run`` in a child process of its own, supervised by the node.

Web requests (a portal page renders templates and reads PostgreSQL) would otherwise take turns
with the signalling on the node's one event loop, and a busy portal delayed the answers to the
switch (README "Known limits"). So the node serves ``[web] listen`` from a child: the same
``mcn-scp`` executable in its ``web`` role, linked to its node.

* The node binds ``[web] listen`` itself (a busy port stops the node's start, as before) and
  hands the listening socket to the child, which accepts on it. The node keeps it open while
  the child restarts: connections wait in the listen queue instead of being refused.
* The link is a Unix socket pair whose child end the child inherits (``--node-link FD``). The
  node writes the hand-over, one JSON line (the node's config, the database, the node-local
  link directory of :mod:`scp.adapters.worker_metrics`, the worker IDs, the listening socket's
  descriptor); the child answers ``serving`` once it serves. The child stops when the link
  reaches its end: the node is gone, even killed with SIGKILL, so no web child outlives its node.
* The node restarts a child that died, after :class:`~scp.adapters.supervisor.RestartBackoff`'s
  delay (1 s doubling to 30 s while it keeps dying young); on the node's stop it sends SIGTERM,
  waits ``stop_timeout`` and then kills. The child runs in a process group of its own, so a
  Ctrl-C at the terminal reaches it through the node only, and in the node's session, where
  its niceness counts against the node's.
* The child lowers its own CPU priority (``[web] nice``, :func:`lower_priority`), so that on a
  small machine the signalling process wins the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from scp.adapters.http import bind_listener
from scp.adapters.supervisor import RestartBackoff
from scp.config import Config, config_from_data, config_to_data

__all__ = [
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "ChildLink",
    "Handover",
    "WebChild",
    "lower_priority",
]

START_TIMEOUT = 60.0  # s the child has to serve after its start (Python, FastAPI, the pool)
STOP_TIMEOUT = 10.0  # s the child has to stop after SIGTERM (its own grace is 5 s) before a kill
SERVING = b"serving\n"
MAX_HANDOVER = 1 << 20  # octets of the hand-over line

log = structlog.get_logger("scp.web_child")


class WebChild:
    """Runs ``command`` (plus ``--node-link FD``) as the node's web process on ``host:port``
    with ``handover`` until :meth:`stop` (see the module doc)."""

    def __init__(
        self,
        command: Sequence[str],
        handover: Handover,
        *,
        host: str,
        port: int,
        backoff: RestartBackoff | None = None,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        logger: Any = log,
    ) -> None:
        self.command = list(command)
        self.handover = handover
        self.host = host
        self.port = port
        self.backoff = backoff or RestartBackoff()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.clock = clock
        self.log = logger
        self.pid: int | None = None
        self.starts = 0
        self._sock: socket.socket | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._link: asyncio.StreamWriter | None = None
        self._stopping = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind ``[web] listen`` and start the child; OSError when the address is taken or the
        first child does not come to serve (its own log says why)."""
        self._sock = bind_listener(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        try:
            started = await self._spawn()
        except BaseException:
            await self.stop()
            raise
        self._watch = asyncio.create_task(self._supervise(started), name="web-child")

    async def _spawn(self) -> float:
        """One life of the child, up to its ``serving``; the time it started."""
        assert self._sock is not None
        mine, theirs = socket.socketpair()
        try:
            fd = self._sock.fileno()
            line = replace(self.handover, listen_fd=fd).encode()
            self.starts += 1
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                "--node-link",
                str(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(fd, theirs.fileno()),
                # a process group of its own (a Ctrl-C at the terminal reaches it through the
                # node only), in the node's session: with autogroup scheduling (Linux
                # sched_autogroup_enabled) each session shares the CPU as one group whatever
                # its niceness, so in a session of its own [web] nice would be void against
                # the node (measured: calls' p99 under web load 15-27 ms, against 8 ms with a
                # web process of the same niceness in the node's session)
                # (uvloop's subprocess_exec knows no process_group argument)
                preexec_fn=_own_process_group,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        started = self.clock()
        self._proc, self.pid = proc, proc.pid
        self.log.info("web child started", pid=proc.pid, start=self.starts)
        reader, writer = await asyncio.open_unix_connection(sock=mine)
        self._link = writer
        writer.write(line)
        try:
            async with asyncio.timeout(self.start_timeout):
                await writer.drain()
                said = await reader.readline()
        except (OSError, TimeoutError):
            said = b""
        if said != SERVING:
            await self._end(proc)
            raise OSError(f"web child {proc.pid} did not start serving (exit {proc.returncode})")
        self.log.info("web child serving", pid=proc.pid, url=f"http://{self.host}:{self.port}/")
        return started

    async def _supervise(self, started: float) -> None:
        """Restart the child whenever it ends, until the node stops."""
        while True:
            proc = self._proc
            assert proc is not None
            rc = await proc.wait()
            self._close_link()
            delay = self.backoff.after(self.clock() - started)
            self.log.warning("web child exited", pid=proc.pid, status=rc, restart_in=delay)
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    return
                try:
                    started = await self._spawn()
                    break
                except OSError as e:
                    delay = self.backoff.after(None)
                    self.log.error("web child failed to start", error=str(e), restart_in=delay)

    async def _end(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM to the child, ``stop_timeout`` for it to stop, then SIGKILL."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except TimeoutError:
                self.log.error("web child did not stop: killed", pid=proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._close_link()

    def _close_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    async def stop(self) -> None:
        """The child stopped (SIGTERM, then SIGKILL past ``stop_timeout``), the socket closed."""
        self._stopping.set()
        if self._watch is not None:  # waiting on the child, or between two of its lives
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            await self._end(proc)
            self.log.info("web child stopped", pid=proc.pid, status=proc.returncode)
        self._close_link()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass(frozen=True)
class Handover:
    """What the node hands its web child: its config, the database (None: the child resolves
    it as every command does, ``$MCN_DATABASE_URL`` or the embedded server), the node-local
    link's directory and the node's worker IDs (the first, the process that started the child,
    answers for the node's readiness), whether the node runs ``--workers`` processes, and the
    descriptor of the listening socket."""

    config: Config
    dsn: str | None
    directory: str
    workers: tuple[int, ...]
    per_worker: bool
    listen_fd: int = -1

    def encode(self) -> bytes:
        data = {
            "config": config_to_data(self.config),
            "source": self.config.source,
            "dsn": self.dsn,
            "directory": self.directory,
            "workers": list(self.workers),
            "per_worker": self.per_worker,
            "listen_fd": self.listen_fd,
        }
        return json.dumps(data).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Handover:
        """The hand-over of ``line``; ValueError when it is not one (ConfigError included)."""
        try:
            d = json.loads(line)
            workers = tuple(int(w) for w in d["workers"])
            if not workers:
                raise ValueError("no worker IDs")
            return cls(
                config=config_from_data(d["config"], str(d["source"])),
                dsn=None if d["dsn"] is None else str(d["dsn"]),
                directory=str(d["directory"]),
                workers=workers,
                per_worker=bool(d["per_worker"]),
                listen_fd=int(d["listen_fd"]),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a hand-over: {type(e).__name__}: {e}") from None


class ChildLink:
    """The child's end of the link: the hand-over in, ``serving`` out, the node's end watched."""

    def __init__(self, sock: socket.socket, handover: Handover) -> None:
        self.handover = handover
        self._sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None

    @classmethod
    def accept(cls, fd: int, timeout: float = START_TIMEOUT) -> ChildLink:
        """The link on descriptor ``fd`` with the hand-over read from it, before the event loop
        runs (the CLI configures logging from its config); ValueError when none comes."""
        try:
            sock = socket.socket(fileno=fd)
        except OSError as e:
            raise ValueError(f"--node-link {fd}: {e.strerror}") from None
        sock.settimeout(timeout)
        line = b""
        try:
            while not line.endswith(b"\n") and len(line) < MAX_HANDOVER:
                got = sock.recv(1)  # one octet at a time: nothing past the line is taken
                if not got:
                    break
                line += got
            return cls(sock, Handover.decode(line))
        except (OSError, ValueError) as e:
            sock.close()
            raise ValueError(f"no hand-over from the node: {e}") from None

    async def open(self) -> None:
        """The link on the running event loop."""
        self._sock.setblocking(False)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=self._sock)

    def serving(self) -> None:
        """Tell the node the child serves."""
        assert self._writer is not None
        self._writer.write(SERVING)

    async def node_gone(self) -> None:
        """Returns when the node's end of the link closes (its stop, or its death)."""
        assert self._reader is not None
        with contextlib.suppress(OSError):
            while await self._reader.read(4096):
                pass

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        else:
            self._sock.close()


def _own_process_group() -> None:
    """In the child before exec: a process group of its own (see :meth:`WebChild._spawn`)."""
    os.setpgid(0, 0)


def lower_priority(increment: int) -> int:
    """This process's niceness raised by ``increment`` (``[web] nice``); the new niceness."""
    return os.nice(increment)
