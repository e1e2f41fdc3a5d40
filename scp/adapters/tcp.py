"""M3UA over TCP: each message framed by the length in its own common header (RFC 4666 §3.1).

This is how Osmocom (``osmo-stp`` with ``transport-proto tcp``) and jSS7 carry M3UA when SCTP
is unavailable. The adapter is asyncio glue only: bytes in, whole messages out to the node via
:class:`~scp.adapters.transport.AssociationHandler`; framing lives in
:mod:`scp.core.m3ua_framing`. Server role listens; client role keeps every configured peer
connected, reconnecting with exponential backoff after a loss.

The server accepts by itself (the listening socket in the loop's reader, then
``loop.connect_accepted_socket``) rather than through ``loop.create_server``: each connection
is admitted or refused by :class:`~scp.adapters.transport.ConnectionLimits` before it becomes
an association, and accept() failing for want of descriptors (EMFILE ...) is seen, logged
(rationed) and answered by a pause, the same on asyncio and on uvloop (whose own server
handles EMFILE inside libuv, closing the excess connections without telling anyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, cast

import structlog

from scp.adapters.transport import (
    ACCEPT_RESOURCE_ERRORS,
    ACCEPT_RETRY_DELAY,
    AssociationHandler,
    Backoff,
    ConnectionLimits,
    RationedLog,
    keep_connected,
    new_assoc_id,
)
from scp.core.m3ua_asp import canonical_address
from scp.core.m3ua_framing import M3uaFramingError, M3uaStreamReader

log = structlog.get_logger("scp.tcp")

MAX_WRITE_BUFFER = 8 * 1024 * 1024  # bytes queued toward one peer before it counts as stuck
ACCEPT_BATCH = 32  # connections accepted per wake-up of the listener (the backlog drains fast)


class _M3uaTcpProtocol(asyncio.Protocol):
    """One TCP connection = one M3UA association."""

    def __init__(
        self,
        owner: TcpTransport,
        on_lost: asyncio.Future[None] | None = None,
        admitted: str | None = None,
    ) -> None:
        self.owner = owner
        self.assoc_id = new_assoc_id()
        self.reader = M3uaStreamReader()
        self.transport: asyncio.Transport | None = None
        self.on_lost = on_lost
        self.closing_reason = "peer closed"
        # server role: the address the connection was admitted from (counted in the limits
        # until the connection is lost)
        self.admitted = admitted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance)
        self.transport = cast(asyncio.Transport, transport)
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
        if self.admitted is not None:
            self.owner.limits.closed(self.admitted)
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
        max_connections_per_address: int = 8,
        bound_addresses: frozenset[str] = frozenset(),
        reuse_port: bool = False,
    ) -> None:
        self.handler = handler
        self.max_connections = max_connections
        self.limits = ConnectionLimits(
            max_connections,
            max_connections_per_address,
            frozenset(canonical_address(a) for a in bound_addresses),
        )
        # SO_REUSEPORT: the workers of one node (`mcn-scp run --workers N`) listen on one
        # address and the kernel spreads the incoming associations over them
        self.reuse_port = reuse_port
        self.rationed = RationedLog(log)
        self.role = role
        self.listen_addr = listen
        self.peers = peers
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self._conns: dict[int, _M3uaTcpProtocol] = {}
        self._listeners: list[socket.socket] = []
        self._accepting: set[asyncio.Task[Any]] = set()  # connections being set up
        self._paused: asyncio.TimerHandle | None = None
        self._clients: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def listening(self) -> list[tuple[str, int]]:
        return [s.getsockname()[:2] for s in self._listeners]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.role == "server":
            assert self.listen_addr is not None
            host, port = self.listen_addr
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            for family, kind, proto, _name, address in dict.fromkeys(
                (i[0], i[1], i[2], i[3], i[4]) for i in infos
            ):
                sk = socket.socket(family, kind, proto)
                try:
                    sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if self.reuse_port:
                        sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    if family == socket.AF_INET6:
                        sk.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sk.bind(address)
                    sk.listen(128)
                    sk.setblocking(False)
                except OSError:
                    sk.close()
                    self._close_listeners()
                    raise
                self._listeners.append(sk)
            self._resume_accept()
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

    # -- server role: accepting ------------------------------------------------------------------

    def _on_accept(self, listener: socket.socket) -> None:
        """The listener is readable: accept what is waiting, each admitted or refused."""
        loop = asyncio.get_running_loop()
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in ACCEPT_RESOURCE_ERRORS:
                    self.rationed.warning("m3ua accept failed: out of resources", error=str(e))
                    # the listener stays readable while descriptors are exhausted: pause, or
                    # the loop would spin on it (asyncio's own servers wait a second too)
                    self._pause_accept(loop)
                else:
                    self.rationed.warning("m3ua accept failed", error=str(e))
                return
            address = canonical_address(str(addr[0]))
            if not self.limits.admit(address, f"{addr[0]}:{addr[1]}", self.rationed):
                conn.close()
                continue
            conn.setblocking(False)
            task = loop.create_task(self._set_up(conn, address))
            self._accepting.add(task)
            task.add_done_callback(self._accepting.discard)

    async def _set_up(self, conn: socket.socket, address: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: _M3uaTcpProtocol(self, admitted=address), conn
            )
        except OSError as e:  # the peer went before the transport was made
            self.limits.closed(address)
            conn.close()
            log.info("m3ua connection lost while being set up", error=str(e))

    def _pause_accept(self, loop: asyncio.AbstractEventLoop) -> None:
        for sk in self._listeners:
            loop.remove_reader(sk.fileno())
        if self._paused is None:
            self._paused = loop.call_later(ACCEPT_RETRY_DELAY, self._resume_accept)

    def _resume_accept(self) -> None:
        self._paused = None
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        for sk in self._listeners:
            loop.add_reader(sk.fileno(), self._on_accept, sk)

    def _close_listeners(self) -> None:
        loop = asyncio.get_running_loop()
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        for sk in self._listeners:
            loop.remove_reader(sk.fileno())
            sk.close()
        self._listeners = []

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
        self._close_listeners()
        for task in list(self._accepting):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        for conn in list(self._conns.values()):
            conn.closing_reason = "shutdown"
            if conn.transport is not None:
                conn.transport.close()
        # Let connection_lost callbacks run so every association is reported down.
        await asyncio.sleep(0)
