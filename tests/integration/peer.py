"""A peer ASP for integration tests: a switch (or HLR) as an M3UA client over loopback TCP.

It drives its own client-role stack (the same cores, configured as the far end: point code
200, SSN 146) over a real TCP connection to the node under test, and records every M3UA
message both ways into an SCTP-framed pcap so tshark can read what the node emitted.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path
from typing import cast

from scp.adapters.capture import SctpPcapWriter
from scp.adapters.driver import CoreDriver
from scp.app import build_stack
from scp.config import parse_config
from scp.core.m3ua_asp import AspState, Transmit
from scp.core.m3ua_framing import M3uaStreamReader
from scp.core.stack import StackOutput
from scp.primitives import (
    TcBegin,
    TcComponentEvent,
    TcContinue,
    TcEnd,
    TcNotice,
    TcPAbort,
    TcPrimitive,
    TcUAbort,
    TcUni,
)

PEER_CONFIG = """
[node]
name = "peer-msc"
worker_id = 7
[m3ua]
role = "client"
peers = ["127.0.0.1:1"]
routing_context = 1
local_pc = 200
beat_interval = {beat}
[sccp]
global_title = "8613900000"
default_dpc = 100
"""


class PeerAsp(asyncio.Protocol):
    """Client-role stack over a TCP connection; TC indications land in ``self.indications``."""

    def __init__(self, pcap: Path | None = None, *, beat: float = 0.0) -> None:
        self.cfg = parse_config(PEER_CONFIG.format(beat=beat))
        self.stack = build_stack(self.cfg)
        self.reader = M3uaStreamReader()
        self.transport: asyncio.Transport | None = None
        self.indications: list[object] = []
        self.received: list[bytes] = []
        self.sent: list[bytes] = []
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()
        self.pcap = SctpPcapWriter.open(str(pcap)) if pcap else None
        self.driver: CoreDriver[StackOutput] = CoreDriver(
            self.stack, self._output, after=self.changed.set
        )
        self.assoc_id = 1
        self.deaf = False  # True: read nothing any more (a peer that hangs without closing)

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance)
        self.transport = cast(asyncio.Transport, transport)
        self.closed.clear()
        self.driver.feed(lambda now: self.stack.association_up(self.assoc_id, now))

    def data_received(self, data: bytes) -> None:
        if self.deaf:
            return
        for m in self.reader.feed(data):
            self.received.append(m)
            if self.pcap:
                self.pcap.write(m, ts=time.time(), src=("127.0.0.1", 2905), dst=("127.0.0.2", 2905))
            self.driver.feed(partial(self.stack.receive, self.assoc_id, m))

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.feed(lambda now: self.stack.association_down(self.assoc_id, now))
        self.transport = None
        self.closed.set()
        self.changed.set()

    # -- driving -----------------------------------------------------------------------------
    def _output(self, o: StackOutput) -> None:
        """Transmit goes on the wire (and into the pcap); TC indications are kept."""
        match o:
            case Transmit():
                self.sent.append(o.data)
                if self.pcap:
                    self.pcap.write(
                        o.data,
                        ts=time.time(),
                        src=("127.0.0.2", 2905),
                        dst=("127.0.0.1", 2905),
                        stream=o.stream,
                    )
                if self.transport is not None:
                    self.transport.write(o.data)
            case (
                TcBegin()
                | TcContinue()
                | TcEnd()
                | TcUAbort()
                | TcPAbort()
                | TcUni()
                | TcNotice()
                | TcComponentEvent()
            ):
                self.indications.append(o)
            case _:
                pass  # the peer's own association events and logs

    def request(self, prim: TcPrimitive) -> None:
        """Send a TC request (e.g. a TcBegin with an InitialDP invoke) through the peer's stack."""
        self.driver.feed(lambda now: self.stack.tc_request(prim, now))

    @property
    def active(self) -> bool:
        return self.stack.m3ua.asp_state(self.assoc_id) == AspState.ACTIVE

    async def wait(self, predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("condition not met in time")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(remaining, 0.1))
            except TimeoutError:
                pass

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.driver.close()

    def finish(self) -> None:
        if self.pcap:
            self.pcap.close()
            self.pcap = None


async def connect_peer(
    port: int, pcap: Path | None = None, *, beat: float = 0.0, source: str | None = None
) -> PeerAsp:
    """A peer connected to the node on loopback ``port``; ``source``: the address to connect
    from (e.g. 127.0.0.2, a host distinct from 127.0.0.1 as the node sees it)."""
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_connection(
        lambda: PeerAsp(pcap, beat=beat),
        "127.0.0.1",
        port,
        local_addr=(source, 0) if source is not None else None,
    )
    return peer
