"""M3UA over SCTP through pysctp (RFC 4666 §1.3.1; SCTP per RFC 9260).

Each association carries M3UA with payload protocol identifier 3 (RFC 4666 §1.4.7); stream 0
carries management (ASPSM/ASPTM/MGMT/RKM) and DATA goes on the stream the M3UA layer picked from
the SLS, as the ``Transmit`` output says. pysctp is optional (``pip install mcn-scp[sctp]``,
which needs the system's ``libsctp``); without it, or without kernel SCTP, :func:`sctp_available`
says why and the node refuses ``transport = "sctp"`` with that reason.

The adapter is asyncio glue only: a non-blocking TCP-style (one-to-one) SCTP socket per
association, watched with ``loop.add_reader``. The socket factory is injectable so the tests
drive the very same code with a fake socket where the kernel has no SCTP.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import socket
from collections.abc import Callable
from typing import Any

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

log = structlog.get_logger("scp.sctp")

PPID_M3UA = 3
OUT_STREAMS = 17  # stream 0 for management + 16 data streams chosen by SLS
MAX_MESSAGE = 65536


def sctp_available() -> tuple[bool, str]:
    """Whether pysctp imports and the kernel opens an SCTP socket; the reason when not."""
    try:
        import sctp  # noqa: F401 - optional (mcn-scp[sctp]): the probe itself
    except ImportError as e:
        return False, f"pysctp is not installed ({e}); install mcn-scp[sctp] and libsctp"
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    except OSError as e:
        return False, f"the kernel has no SCTP: {e.strerror}"
    s.close()
    return True, ""


def pysctp_socket_factory(family: int = socket.AF_INET) -> Any:
    """A TCP-style pysctp socket with 17 outbound streams and data I/O events on."""
    import sctp  # optional (mcn-scp[sctp]): only a node with transport = "sctp" gets here

    sk = sctp.sctpsocket_tcp(family)
    init = sk.get_initmsg()
    init.num_ostreams = OUT_STREAMS
    init.max_instreams = OUT_STREAMS
    sk.set_initmsg(init)
    # data_io delivers the sndrcvinfo (stream, ppid) with every message.
    sk.events.data_io = True
    sk.events.association = True
    sk.events.shutdown = True
    sk.events.flush()
    return sk


FLAG_NOTIFICATION = 0x8000  # MSG_NOTIFICATION in <netinet/sctp.h>


class SctpAssociation:
    """One SCTP association: reads messages when the socket is readable, queues writes."""

    def __init__(
        self,
        owner: SctpTransport,
        sock: Any,
        peer: tuple[str, int],
        on_lost: asyncio.Future[None] | None = None,
        admitted: str | None = None,
    ) -> None:
        self.owner = owner
        self.sock = sock
        self.peer = peer
        # server role: the address it was admitted from (counted in the limits until closed)
        self.admitted = admitted
        self.assoc_id = new_assoc_id()
        self.on_lost = on_lost
        self._pending: collections.deque[tuple[int, bytes]] = collections.deque()
        self._closed = False
        self._loop = asyncio.get_running_loop()

    def open(self) -> None:
        # The peer may grant fewer outbound streams than we asked for (STPs often allow 2-8):
        # sending on a stream beyond that fails, so DATA streams are folded into what we got.
        self.out_streams = OUT_STREAMS
        try:
            granted = int(self.sock.get_status().outstrms)
            if granted > 0:
                self.out_streams = granted
        except (AttributeError, OSError, ValueError):
            pass
        self.sock.setblocking(False)
        self._loop.add_reader(self.sock.fileno(), self.on_readable)
        self.owner._assocs[self.assoc_id] = self
        local = self.sock.getsockname()[:2]
        self.owner.handler.association_up(self.assoc_id, self.peer, local)

    def on_readable(self) -> None:
        try:
            _from, flags, msg, notif = self.sock.sctp_recv(MAX_MESSAGE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.close(f"recv failed: {e}")
            return
        if flags & FLAG_NOTIFICATION:
            # Association change / shutdown events: a closing peer also gives an empty read.
            kind = type(notif).__name__
            if kind in ("shutdown_event",) or (
                kind == "assoc_change" and getattr(notif, "state", None) in (1, 2)
            ):
                self.close(f"peer {kind}")
            return
        if not msg:
            self.close("peer closed")
            return
        stream = getattr(notif, "stream", 0) or 0
        ppid = socket.ntohl(getattr(notif, "ppid", 0) or 0) if notif is not None else PPID_M3UA
        if ppid not in (PPID_M3UA, 0):
            log.warning("sctp message with foreign ppid dropped", assoc=self.assoc_id, ppid=ppid)
            return
        self.owner.handler.association_data(self.assoc_id, bytes(msg), stream)

    def send(self, stream: int, data: bytes) -> bool:
        if self._closed:
            return False
        if stream >= self.out_streams:
            stream = 1 + (stream - 1) % (self.out_streams - 1) if self.out_streams > 1 else 0
        if self._pending:
            self._pending.append((stream, data))
            return True
        return self._try_send(stream, data)

    def _try_send(self, stream: int, data: bytes) -> bool:
        try:
            self.sock.sctp_send(data, ppid=socket.htonl(PPID_M3UA), stream=stream)
        except (BlockingIOError, InterruptedError):
            self._pending.append((stream, data))
            self._loop.add_writer(self.sock.fileno(), self._on_writable)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                self._pending.append((stream, data))
                self._loop.add_writer(self.sock.fileno(), self._on_writable)
            else:
                self.close(f"send failed: {e}")
                return False
        return True

    def _on_writable(self) -> None:
        self._loop.remove_writer(self.sock.fileno())
        while self._pending and not self._closed:
            stream, data = self._pending.popleft()
            before = len(self._pending)
            self._try_send(stream, data)
            if len(self._pending) > before:  # would block again: re-queued at the end
                self._pending.rotate(1)
                return

    def close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        fd = self.sock.fileno()
        with contextlib.suppress(Exception):
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.owner._assocs.pop(self.assoc_id, None)
        if self.admitted is not None:
            self.owner.limits.closed(self.admitted)
        self.owner.handler.association_down(self.assoc_id, reason)
        if self.on_lost is not None and not self.on_lost.done():
            self.on_lost.set_result(None)


class SctpTransport:
    """M3UA/SCTP in server role (listen and accept) or client role (connect and reconnect)."""

    def __init__(
        self,
        *,
        handler: AssociationHandler,
        role: str,
        listen: tuple[str, int] | None = None,
        peers: tuple[tuple[str, int], ...] = (),
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
        socket_factory: Callable[[], Any] = pysctp_socket_factory,
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
        self.socket_factory = socket_factory
        self._assocs: dict[int, SctpAssociation] = {}
        self._listener: Any = None
        self._clients: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def listening(self) -> list[tuple[str, int]]:
        if self._listener is None:
            return []
        return [self._listener.getsockname()[:2]]

    async def start(self) -> None:
        if self.role == "server":
            assert self.listen_addr is not None
            sk = self.socket_factory()
            sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port:
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sk.bind(self.listen_addr)
            sk.listen(16)
            sk.setblocking(False)
            self._listener = sk
            asyncio.get_running_loop().add_reader(sk.fileno(), self._on_accept)
            log.info("m3ua sctp listening", addresses=self.listening)
        else:
            for peer in self.peers:
                self._clients.append(asyncio.create_task(self._keep_connected(peer)))

    def _on_accept(self) -> None:
        try:
            conn, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.rationed.warning("m3ua accept failed", error=str(e))
            if e.errno in ACCEPT_RESOURCE_ERRORS:
                # the listener stays readable while descriptors are exhausted: without a pause
                # the loop would spin on it (asyncio's own servers wait a second too)
                loop = asyncio.get_running_loop()
                loop.remove_reader(self._listener.fileno())
                loop.call_later(ACCEPT_RETRY_DELAY, self._resume_accept)
            return
        address = canonical_address(str(addr[0]))
        if not self.limits.admit(address, str(addr), self.rationed):
            with contextlib.suppress(OSError):
                conn.close()
            return
        SctpAssociation(self, conn, tuple(addr[:2]), admitted=address).open()

    def _resume_accept(self) -> None:
        if self._listener is not None and not self._stopping:
            asyncio.get_running_loop().add_reader(self._listener.fileno(), self._on_accept)

    async def _keep_connected(self, peer: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()

        async def connect_once() -> asyncio.Future[None]:
            sk = self.socket_factory()
            try:
                sk.setblocking(False)
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    sk.connect(peer)
                await _wait_connected(loop, sk)
            except OSError:
                with contextlib.suppress(OSError):
                    sk.close()
                raise
            lost: asyncio.Future[None] = loop.create_future()
            SctpAssociation(self, sk, peer, lost).open()
            return lost

        await keep_connected(
            peer,
            connect_once,
            backoff=Backoff(self.reconnect_min, self.reconnect_max),
            stopping=lambda: self._stopping,
            log=log,
            transport="sctp",
        )

    def send(self, assoc_id: int, stream: int, data: bytes) -> bool:
        a = self._assocs.get(assoc_id)
        return a.send(stream, data) if a is not None else False

    def close_association(self, assoc_id: int, reason: str) -> None:
        a = self._assocs.get(assoc_id)
        if a is not None:
            a.close(reason)

    async def stop(self) -> None:
        self._stopping = True
        for t in self._clients:
            t.cancel()
        for t in self._clients:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._listener is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
        for a in list(self._assocs.values()):
            a.close("shutdown")


async def _wait_connected(loop: asyncio.AbstractEventLoop, sk: Any) -> None:
    """Wait for a non-blocking connect to finish; raise OSError if it failed."""
    fut: asyncio.Future[None] = loop.create_future()
    fd = sk.fileno()

    def writable() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_writer(fd, writable)
    try:
        await fut
    finally:
        loop.remove_writer(fd)
    err = sk.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, errno.errorcode.get(err, str(err)))
