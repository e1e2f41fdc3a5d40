"""How the simulator reaches an SCP: M3UA over TCP toward a running one (``--target``), or an
in-process one (:class:`scp.tools.replay.inprocess.InProcessScp`, the default), optionally
writing every message both ways to a pcap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from scp.config import Config
from scp.core.m3ua_framing import M3uaStreamReader
from scp.tools.replay.inprocess import InProcessScp
from scp.tools.simulate.peer import SimPeer

__all__ = [
    "connect_tcp",
    "connect_in_process",
]


class _TcpPeer(asyncio.Protocol):
    def __init__(self, peer: SimPeer, wire: Callable[[bytes, bool], None] | None) -> None:

        self.peer = peer
        self.reader = M3uaStreamReader()
        self.transport: asyncio.Transport | None = None
        self.wire = wire
        self.closed = asyncio.Event()
        peer.send_bytes = self._send

    def _send(self, data: bytes) -> None:
        if self.wire is not None:
            self.wire(data, True)
        if self.transport is not None:
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance)
        self.transport = cast(asyncio.Transport, transport)
        self.peer.connected()

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self.reader.feed(data)
        except Exception:  # noqa: BLE001 - framing lost: drop the association
            if self.transport is not None:
                self.transport.close()
            return
        for m in msgs:
            if self.wire is not None:
                self.wire(m, False)
            self.peer.receive(m)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.peer.disconnected()
        self.closed.set()


class Connection:
    """A connected simulator: the peer plus how to close it."""

    def __init__(self, peer: SimPeer, closer: Callable[[], Any]) -> None:
        self.peer = peer
        self._closer = closer

    async def close(self) -> None:
        self.peer.close()
        r = self._closer()
        if asyncio.iscoroutine(r):
            await r


def wire_writer(capture: Any) -> Callable[[bytes, bool], None] | None:
    if capture is None:
        return None
    sim, scp = ("10.0.0.2", 2906), ("10.0.0.1", 2905)

    def wire(data: bytes, outgoing: bool) -> None:
        capture.write(
            data, ts=time.time(), src=sim if outgoing else scp, dst=scp if outgoing else sim
        )

    return wire


async def connect_tcp(
    host: str,
    port: int,
    *,
    scp_pc: int = 100,
    routing_context: int = 1,
    network_indicator: int = 2,
    local_pc: int = 200,
    capture: Any = None,
    timeout: float = 5.0,
    pc_format: str = "itu",
) -> Connection:
    """The simulator as an M3UA ASP over TCP toward a running SCP; waits for ASP-ACTIVE.
    ``pc_format`` is the SCP's ``[m3ua] pc_format``: SCCP addresses carry point codes."""
    peer = SimPeer(
        scp_pc=scp_pc,
        local_pc=local_pc,
        routing_context=routing_context,
        network_indicator=network_indicator,
        pc_format=pc_format,
    )
    proto = _TcpPeer(peer, wire_writer(capture))
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(lambda: proto, host, port), timeout
        )
        await asyncio.wait_for(peer.active.wait(), timeout)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(f"cannot reach an active M3UA SCP at {host}:{port}: {exc}") from None

    async def close() -> None:
        peer.shutdown()
        await asyncio.sleep(0.05)
        transport.close()
        await asyncio.sleep(0)

    return Connection(peer, close)


async def connect_in_process(
    cfg: Config, *, pool: Any = None, users: Any = None, capture: Any = None
) -> tuple[Connection, Any]:
    """The simulator wired to an in-process SCP (same cores and TC-users as ``mcn-scp run``).

    Returns the connection and the :class:`~scp.replay.InProcessScp`. Bytes cross on the next
    loop iteration in both directions, as they would over a socket.
    """
    loop = asyncio.get_running_loop()
    wire = wire_writer(capture)
    peer = SimPeer(
        scp_pc=cfg.m3ua.local_pc,
        routing_context=cfg.m3ua.routing_context,
        network_indicator=cfg.m3ua.network_indicator,
        pc_format=cfg.m3ua.pc_format,
    )

    def to_peer(data: bytes) -> None:
        if wire is not None:
            wire(data, False)
        loop.call_soon(peer.receive, data)

    scp = InProcessScp(cfg, pool=pool, users=users, on_send=to_peer)
    scp.node.association_up(scp.assoc_id, scp.PEER, scp.LOCAL)

    def to_scp(data: bytes) -> None:
        if wire is not None:
            wire(data, True)
        loop.call_soon(scp.feed, data)

    peer.send_bytes = to_scp
    peer.connected()
    await asyncio.wait_for(peer.active.wait(), 5.0)

    async def close() -> None:
        await scp.stop()

    return Connection(peer, close), scp
