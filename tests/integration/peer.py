"""A peer ASP for integration tests: a switch (or HLR) as an M3UA client over loopback TCP.

It drives its own client-role stack (the same cores, configured as the far end: point code
200, SSN 146) over a real TCP connection to the node under test, and records every M3UA
message both ways into an SCTP-framed pcap so tshark can read what the node emitted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from scp.adapters.capture import SctpPcapWriter
from scp.app import build_stack
from scp.config import parse_config
from scp.core.m3ua_asp import AspState, Transmit
from scp.core.m3ua_framing import M3uaStreamReader
from scp.core.stack import TC_TYPES

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
        self._timer: asyncio.TimerHandle | None = None
        self.assoc_id = 1
        self.deaf = False  # True: read nothing any more (a peer that hangs without closing)

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.closed.clear()
        self._process(self.stack.association_up(self.assoc_id, time.monotonic()))

    def data_received(self, data: bytes) -> None:
        if self.deaf:
            return
        for m in self.reader.feed(data):
            self.received.append(m)
            if self.pcap:
                self.pcap.write(m, ts=time.time(), src=("127.0.0.1", 2905), dst=("127.0.0.2", 2905))
            self._process(self.stack.receive(self.assoc_id, m, time.monotonic()))

    def connection_lost(self, exc: Exception | None) -> None:
        self._process(self.stack.association_down(self.assoc_id, time.monotonic()))
        self.transport = None
        self.closed.set()
        self.changed.set()

    # -- driving -----------------------------------------------------------------------------
    def _process(self, outputs: list[object]) -> None:
        for o in outputs:
            if type(o) is Transmit:
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
            elif type(o) in TC_TYPES:
                self.indications.append(o)
        self.changed.set()
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        d = self.stack.next_deadline()
        if d is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(max(0.0, d - time.monotonic()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._process(self.stack.handle_timer(time.monotonic()))

    def request(self, prim: object) -> None:
        """Send a TC request (e.g. a TcBegin with an InitialDP invoke) through the peer's stack."""
        self._process(self.stack.tc_request(prim, time.monotonic()))  # type: ignore[arg-type]

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
        if self._timer is not None:
            self._timer.cancel()

    def finish(self) -> None:
        if self.pcap:
            self.pcap.close()
            self.pcap = None


async def connect_peer(port: int, pcap: Path | None = None, *, beat: float = 0.0) -> PeerAsp:
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_connection(lambda: PeerAsp(pcap, beat=beat), "127.0.0.1", port)
    return peer
