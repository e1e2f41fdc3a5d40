"""An SCP node whose association is a function call: what offline replay feeds, the simulator's
default target, and what the demo captures are made against.

The node is :class:`scp.app.Node` with the TC-users of :func:`scp.app.build_users` (the same
cores and TC-users as ``mcn-scp run``); only the transport is replaced by a loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from scp.app import Node, TcUsers, build_users
from scp.codecs import m3ua
from scp.config import Config
from scp.primitives import MtpTransfer
from scp.service.dialogue import DialogueUser

__all__ = ["InProcessScp"]


class _LoopbackTransport:
    """Stands in for the TCP/SCTP adapter: what the node sends goes to a callback."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self.deliver = deliver
        self.listening: list[tuple[str, int]] = []

    def send(self, assoc_id: int, stream: int, data: bytes) -> bool:
        self.deliver(data)
        return True

    def close_association(self, assoc_id: int, reason: str) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class InProcessScp:
    """An SCP node (same cores, same TC-users) whose association is a function call.

    ``feed(m3ua)`` delivers one M3UA message from the peer; what the node sends lands in
    ``sent`` and in ``on_send``. The node's ASP is brought up by sending ASPUP / ASPAC for the
    peer (RFC 4666 §4.3.4.1, §4.3.4.3), so DATA is accepted exactly as on the wire.
    Needs a running event loop (the node arms asyncio timers).
    """

    PEER = ("127.0.0.2", 2906)
    LOCAL = ("127.0.0.1", 2905)

    def __init__(
        self,
        cfg: Config,
        *,
        pool: asyncpg.Pool | None = None,
        users: Callable[[Node], list[DialogueUser]] | None = None,
        on_send: Callable[[bytes], None] | None = None,
    ) -> None:
        # The replayer plays the ASP that connects in: the node is the server side of a TCP
        # association that never opens a socket, whatever the config says for the live node.
        m = cfg.m3ua
        if m.role != "server" or m.transport != "tcp":
            cfg = dataclasses.replace(
                cfg, m3ua=dataclasses.replace(m, role="server", transport="tcp")
            )
        self.cfg = cfg
        self.sent: list[bytes] = []
        self.on_send = on_send
        self.changed = asyncio.Event()
        if users is None and pool is not None:
            users = build_users(pool, cfg)
        self.users = users
        # without a database: the stack alone (the node's default TC-user)
        self.node = Node(cfg, users=users)
        self.node.transport = _LoopbackTransport(self._sent)  # type: ignore[assignment]
        self.assoc_id = 1

    def _sent(self, data: bytes) -> None:
        self.sent.append(data)
        self.changed.set()
        if self.on_send is not None:
            self.on_send(data)

    def start(self) -> None:
        """Association up and the peer ASP active (ASPUP, ASPAC with our routing context)."""
        self.node.association_up(self.assoc_id, self.PEER, self.LOCAL)
        rc = self.cfg.m3ua.routing_context
        self.feed(m3ua.encode(m3ua.make(m3ua.MessageType.ASPUP)))
        self.feed(
            m3ua.encode(
                m3ua.make(
                    m3ua.MessageType.ASPAC, routing_context=rc, traffic_mode=_traffic_mode(self.cfg)
                )
            )
        )

    def feed(self, data: bytes) -> None:
        # As an SCTP peer would: management on stream 0, DATA on a data stream (RFC 4666 §1.4.7)
        self.node.association_data(self.assoc_id, data, 1 if data[2:4] == b"\x01\x01" else 0)

    def feed_transfer(self, x: MtpTransfer) -> None:
        self.feed(m3ua.encode_data(x, rc=self.cfg.m3ua.routing_context))

    async def settle(self, quiet: float = 0.05, limit: float = 3.0) -> None:
        """Wait until the node's TC-users are idle (they may await the database: on a loaded
        machine longer than any fixed pause) and it has then sent nothing for ``quiet`` s."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), quiet)
            except TimeoutError:
                if not self._users_busy():
                    return

    def _users_busy(self) -> bool:
        return isinstance(self.users, TcUsers) and self.users.busy

    async def stop(self) -> None:
        self.node.association_down(self.assoc_id, "replay done")
        self.node.driver.close()
        # The node's TC-users hold database work in flight: let it finish before the pool
        # closes.
        if isinstance(self.users, TcUsers):
            with contextlib.suppress(Exception):  # shutting down: report nothing more
                await asyncio.wait_for(self.users.aclose(), 5.0)


def _traffic_mode(cfg: Any) -> int:
    return {"override": 1, "loadshare": 2, "broadcast": 3}[cfg.m3ua.traffic_mode]
