"""M3UA over TCP: each message framed by the length in its own common header (RFC 4666 §3.1).

This is how Osmocom (``osmo-stp`` with ``transport-proto tcp``) and jSS7 carry M3UA when SCTP
is unavailable. The adapter is asyncio glue only: bytes in, whole messages out to the node via
:class:`~scp.adapters.transport.AssociationHandler`; framing lives in
:mod:`scp.core.m3ua_framing`. Server role listens; client role keeps every configured peer
connected, reconnecting with exponential backoff after a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, cast

import structlog

from scp.adapters.transport import (
    ACCEPT_RESOURCE_ERRORS,
    AssociationHandler,
    Backoff,
    RationedLog,
    keep_connected,
    new_assoc_id,
)
from scp.core.m3ua_framing import M3uaFramingError, M3uaStreamReader

log = structlog.get_logger("scp.tcp")

MAX_WRITE_BUFFER = 8 * 1024 * 1024  # bytes queued toward one peer before it counts as stuck


class _M3uaTcpProtocol(asyncio.Protocol):
    """One TCP connection = one M3UA association."""

    def __init__(self, owner: TcpTransport, on_lost: asyncio.Future[None] | None = None) -> None:
        self.owner = owner
        self.assoc_id = new_assoc_id()
        self.reader = M3uaStreamReader()
        self.transport: asyncio.Transport | None = None
        self.on_lost = on_lost
        self.closing_reason = "peer closed"
        self.refused = False  # over [m3ua] max_connections: closed at once, never reported

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance)
        self.transport = cast(asyncio.Transport, transport)
        owner = self.owner
        if owner.role == "server" and len(owner._conns) >= owner.max_connections:
            self.refused = True
            owner.rationed.warning(
                "m3ua connection refused: max_connections reached",
                max_connections=owner.max_connections,
                peer=str(transport.get_extra_info("peername")),
            )
            self.transport.abort()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Signalling is latency-bound: never wait for Nagle to fill a segment.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")[:2]
        local = transport.get_extra_info("sockname")[:2]
        self.owner._conns[self.assoc_id] = self
        self.owner.handler.association_up(self.assoc_id, peer, local)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        try:
            messages = self.reader.feed(data)
        except M3uaFramingError as e:
            # A length we cannot trust means we have lost the message boundaries for good.
            log.warning("m3ua framing lost, closing", assoc=self.assoc_id, error=str(e))
            self.closing_reason = f"framing error: {e}"
            if self.transport is not None:
                self.transport.close()
            return
        handler = self.owner.handler
        for m in messages:
            handler.association_data(self.assoc_id, m, 0)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        self.owner._conns.pop(self.assoc_id, None)
        reason = self.closing_reason if exc is None else f"{self.closing_reason}: {exc}"
        self.owner.handler.association_down(self.assoc_id, reason)
        if self.on_lost is not None and not self.on_lost.done():
            self.on_lost.set_result(None)


class TcpTransport:
    """M3UA/TCP in server role (``listen``) or client role (``peers``)."""

    def __init__(
        self,
        *,
        handler: AssociationHandler,
        role: str,
        listen: tuple[str, int] | None = None,
        peers: tuple[tuple[str, int], ...] = (),
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
        max_connections: int = 64,
        reuse_port: bool = False,
    ) -> None:
        self.handler = handler
        self.max_connections = max_connections
        # SO_REUSEPORT: the workers of one node (`mcn-scp run --workers N`) listen on one
        # address and the kernel spreads the incoming associations over them
        self.reuse_port = reuse_port
        self.rationed = RationedLog(log)
        self._loop_handler: Any = None
        self.role = role
        self.listen_addr = listen
        self.peers = peers
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._conns: dict[int, _M3uaTcpProtocol] = {}
        self._server: asyncio.Server | None = None
        self._clients: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def listening(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.role == "server":
            assert self.listen_addr is not None
            host, port = self.listen_addr
            self._server = await loop.create_server(
                lambda: _M3uaTcpProtocol(self),
                host,
                port,
                reuse_address=True,
                reuse_port=self.reuse_port or None,
            )
            # asyncio reports accept() out of descriptors through the loop's exception handler,
            # with a traceback, at every retry: rationed to one line per interval here
            self._loop_handler = loop.get_exception_handler()
            loop.set_exception_handler(self._on_loop_exception)
            log.info("m3ua tcp listening", addresses=self.listening)
        else:
            for peer in self.peers:
                self._clients.append(asyncio.create_task(self._keep_connected(peer)))

    async def _keep_connected(self, peer: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()

        async def connect_once() -> asyncio.Future[None]:
            lost: asyncio.Future[None] = loop.create_future()
            await loop.create_connection(lambda: _M3uaTcpProtocol(self, lost), *peer)
            return lost

        await keep_connected(
            peer,
            connect_once,
            backoff=Backoff(self.reconnect_min, self.reconnect_max),
            stopping=lambda: self._stopping,
            log=log,
            transport="tcp",
        )

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in ACCEPT_RESOURCE_ERRORS:
            self.rationed.warning("m3ua accept failed: out of resources", error=str(exc))
            return
        if self._loop_handler is not None:
            self._loop_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def send(self, assoc_id: int, stream: int, data: bytes) -> bool:
        conn = self._conns.get(assoc_id)
        if conn is None or conn.transport is None or conn.transport.is_closing():
            return False
        if conn.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            # The peer stopped reading: queueing more would only grow memory without bound.
            log.warning("m3ua tcp peer not reading, closing", assoc=assoc_id)
            self.close_association(assoc_id, "peer not reading (write buffer full)")
            return False
        conn.transport.write(data)
        return True

    def close_association(self, assoc_id: int, reason: str) -> None:
        conn = self._conns.get(assoc_id)
        if conn is not None and conn.transport is not None:
            conn.closing_reason = reason
            conn.transport.close()

    async def stop(self) -> None:
        self._stopping = True
        for t in self._clients:
            t.cancel()
        for t in self._clients:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns.values()):
            conn.closing_reason = "shutdown"
            if conn.transport is not None:
                conn.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
            loop = asyncio.get_running_loop()
            if loop.get_exception_handler() == self._on_loop_exception:
                loop.set_exception_handler(self._loop_handler)
        # Let connection_lost callbacks run so every association is reported down.
        await asyncio.sleep(0)
