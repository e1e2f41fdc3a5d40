"""The SMPP gateway's TCP link (scp.adapters.smpp._Link): read on the event loop, written by a
thread of its own. Real loopback sockets against a plain asyncio server: the bytes arrive
whole and in order (through a full send buffer too), ``close()`` sends what was queued first,
and however the connection ends the gateway hears of it once, the writer thread ends and the
socket is closed."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator

import pytest

from scp.adapters import smpp
from tests.helpers import eventually

pytestmark = pytest.mark.integration


class _Gateway:
    """What the link calls back: the bytes it read and how it ended."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.ended: list[Exception | None] = []
        self._close_reason: str | None = None

    def _received(self, data: bytes) -> None:
        self.received += data

    def _disconnected(self, exc: Exception | None) -> None:
        self.ended.append(exc)


class _Peer:
    """A loopback server that keeps what it reads; ``paused`` stops it reading."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = asyncio.Event()
        self.paused = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connected.set()
        while True:
            while self.paused.is_set():
                await asyncio.sleep(0.01)
            chunk = await reader.read(65536)
            if not chunk:
                self.eof.set()
                return
            self.data += chunk


@pytest.fixture
async def peer() -> AsyncIterator[tuple[_Peer, int]]:
    p = _Peer()
    server = await asyncio.start_server(p.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield p, port
    finally:
        if p.writer is not None:
            p.writer.close()
        server.close()
        await server.wait_closed()


async def _link(peer: tuple[_Peer, int]) -> tuple[smpp._Link, _Gateway, socket.socket]:
    """A link to the peer, once the peer has the connection."""
    p, port = peer
    loop = asyncio.get_running_loop()
    sock = await smpp._connect(loop, "127.0.0.1", port)
    gw = _Gateway()
    link = smpp._Link(gw, sock, loop)  # type: ignore[arg-type]
    await p.connected.wait()
    return link, gw, sock


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "smpp-writer"]


async def test_writes_arrive_whole_and_in_order_through_a_full_buffer(
    peer: tuple[_Peer, int],
) -> None:
    p, _ = peer
    link, gw, sock = await _link(peer)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    p.paused.set()  # the peer stops reading: the kernel buffers fill, the writer waits
    chunks = [i.to_bytes(4, "big") * 1000 for i in range(10_000)]  # 40 MB: more than any buffer
    for c in chunks:
        link.write(c)
    await asyncio.sleep(0.2)
    assert len(p.data) < 40_000_000  # it really waited for room
    p.paused.clear()
    await eventually(lambda: len(p.data) == 40_000_000, timeout=30)
    assert bytes(p.data) == b"".join(chunks)
    link.close()
    await eventually(lambda: gw.ended == [None])
    await eventually(lambda: sock.fileno() == -1)
    await asyncio.wait_for(p.eof.wait(), 5)


async def test_reads_reach_the_gateway_and_the_peers_close_ends_the_link_once(
    peer: tuple[_Peer, int],
) -> None:
    p, _ = peer
    before = len(_writer_threads())
    link, gw, sock = await _link(peer)
    assert p.writer is not None
    p.writer.write(b"\x00\x00\x00\x10abcdefghijkl")
    await p.writer.drain()
    await eventually(lambda: bytes(gw.received) == b"\x00\x00\x00\x10abcdefghijkl")
    p.writer.close()
    await eventually(lambda: gw.ended == [None])
    await eventually(lambda: sock.fileno() == -1)
    await eventually(lambda: len(_writer_threads()) == before)
    link.write(b"after the end")  # dropped, not raised
    link.close()
    await asyncio.sleep(0.05)
    assert gw.ended == [None]


async def test_close_sends_what_was_queued_first(peer: tuple[_Peer, int]) -> None:
    p, _ = peer
    link, gw, sock = await _link(peer)
    link.write(b"unbind")
    link.write(b"_resp")
    link.close()
    link.write(b"too late")
    assert link.is_closing()
    await asyncio.wait_for(p.eof.wait(), 5)
    assert bytes(p.data) == b"unbind_resp"
    await eventually(lambda: gw.ended == [None] and sock.fileno() == -1)


async def test_a_reset_under_a_blocked_writer_ends_the_link_with_its_reason(
    peer: tuple[_Peer, int],
) -> None:
    p, _ = peer
    before = len(_writer_threads())
    link, gw, sock = await _link(peer)
    p.paused.set()
    for _ in range(2000):
        link.write(b"x" * 10_000)  # more than the buffers hold: the writer blocks
    await asyncio.sleep(0.2)
    assert p.writer is not None
    raw = p.writer.get_extra_info("socket")
    # RST instead of FIN (SO_LINGER 0): the writer's send fails, the reader sees the error
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    p.writer.transport.abort()
    await eventually(lambda: len(gw.ended) == 1, timeout=10)
    assert gw.ended[0] is not None or gw._close_reason is not None
    await eventually(lambda: sock.fileno() == -1)
    await eventually(lambda: len(_writer_threads()) == before)
