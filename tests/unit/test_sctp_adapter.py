"""The SCTP adapter against a fake socket (no kernel SCTP here), and a live test that says why it skips.

The fake keeps the pysctp surface the adapter uses (``sctp_send``/``sctp_recv`` with a
sndrcvinfo carrying stream and PPID in network byte order) and a real socketpair underneath, so
the adapter's ``loop.add_reader`` readiness path is the real one.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from scp.adapters.sctp import FLAG_NOTIFICATION, PPID_M3UA, SctpTransport, sctp_available


@dataclass
class FakeSndRcvInfo:
    stream: int
    ppid: int


class shutdown_event:  # noqa: N801 - named as pysctp names its notification class
    pass


class FakeSctpSocket:
    """One end of a fake one-to-one SCTP association."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self.inbox: collections.deque[tuple[int, bytes, object]] = collections.deque()
        self.sent: list[tuple[bytes, int, int]] = []
        self.closed = False
        self.blocking = True

    # what the adapter calls
    def setblocking(self, flag: bool) -> None:
        self.blocking = flag

    def fileno(self) -> int:
        return self._r.fileno()

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 2905)

    def sctp_send(self, msg: bytes, ppid: int = 0, stream: int = 0) -> int:
        self.sent.append((bytes(msg), socket.ntohl(ppid), stream))
        return len(msg)

    def sctp_recv(self, maxlen: int) -> tuple[tuple[str, int], int, bytes, object]:
        self._r.recv(1)
        flags, msg, notif = self.inbox.popleft()
        return (("127.0.0.2", 4000), flags, msg, notif)

    def close(self) -> None:
        self.closed = True
        self._r.close()
        self._w.close()

    def get_status(self) -> object:
        class Status:
            outstrms = self.granted_streams

        return Status()

    granted_streams = 17

    # client role
    def connect(self, addr: tuple[str, int]) -> None:
        self.connected_to = addr

    def getsockopt(self, level: int, opt: int) -> int:
        return 0  # SO_ERROR: the non-blocking connect succeeded

    # what the test calls: the "peer" sends
    def peer_sends(self, msg: bytes, stream: int, ppid: int = PPID_M3UA) -> None:
        self.inbox.append((0, msg, FakeSndRcvInfo(stream, socket.htonl(ppid))))
        self._w.send(b"x")

    def peer_shuts_down(self) -> None:
        self.inbox.append((FLAG_NOTIFICATION, b"", shutdown_event()))
        self._w.send(b"x")


class FakeListener:
    def __init__(self, conns: list[FakeSctpSocket]) -> None:
        self._r, self._w = socket.socketpair()
        self.conns = conns
        self.bound: tuple[str, int] | None = None

    def setsockopt(self, *a: object) -> None:
        pass

    def bind(self, addr: tuple[str, int]) -> None:
        self.bound = addr

    def listen(self, n: int) -> None:
        pass

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return self._r.fileno()

    def getsockname(self) -> tuple[str, int]:
        assert self.bound is not None
        return self.bound

    def accept(self) -> tuple[FakeSctpSocket, tuple[str, int]]:
        self._r.recv(1)
        return self.conns.pop(0), ("127.0.0.2", 4000)

    def peer_connects(self) -> None:
        self._w.send(b"x")

    def close(self) -> None:
        self._r.close()
        self._w.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.changed = asyncio.Event()

    def association_up(self, assoc_id: int, peer: tuple[str, int], local: tuple[str, int]) -> None:
        self.events.append(("up", assoc_id, peer))
        self.changed.set()

    def association_data(self, assoc_id: int, data: bytes, stream: int) -> None:
        self.events.append(("data", assoc_id, data, stream))
        self.changed.set()

    def association_down(self, assoc_id: int, reason: str) -> None:
        self.events.append(("down", assoc_id, reason))
        self.changed.set()

    async def wait_for(self, kind: str, n: int = 1) -> None:
        for _ in range(200):
            if sum(1 for e in self.events if e[0] == kind) >= n:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.05)
            except TimeoutError:
                pass
        raise AssertionError(f"no {kind} event: {self.events}")


ASPUP = bytes.fromhex("0100030100000008")


async def server_up(conn: FakeSctpSocket) -> tuple[SctpTransport, Recorder]:
    """A server-role transport whose listener hands out ``conn``, with its association up."""
    listener = FakeListener([conn])
    rec = Recorder()
    t = SctpTransport(
        handler=rec, role="server", listen=("127.0.0.1", 2905), socket_factory=lambda: listener
    )
    await t.start()
    listener.peer_connects()
    await rec.wait_for("up")
    return t, rec


async def test_server_accepts_reads_streams_and_sends_with_ppid_3() -> None:
    conn = FakeSctpSocket()
    t, rec = await server_up(conn)
    assert t.listening == [("127.0.0.1", 2905)]
    assoc = rec.events[0][1]
    conn.peer_sends(ASPUP, stream=0)
    conn.peer_sends(b"\x01\x00\x01\x01" + b"\x00\x00\x00\x08", stream=5)
    await rec.wait_for("data", 2)
    data = [e for e in rec.events if e[0] == "data"]
    assert data[0][2:] == (ASPUP, 0)
    assert data[1][3] == 5
    assert t.send(assoc, 3, b"\x01\x00\x01\x01\x00\x00\x00\x08")
    assert conn.sent == [(b"\x01\x00\x01\x01\x00\x00\x00\x08", PPID_M3UA, 3)]
    await t.stop()
    assert conn.closed
    await rec.wait_for("down")


async def test_foreign_ppid_is_dropped_and_shutdown_event_closes() -> None:
    conn = FakeSctpSocket()
    t, rec = await server_up(conn)
    conn.peer_sends(b"not m3ua", stream=1, ppid=46)  # 46 = Diameter
    conn.peer_shuts_down()
    await rec.wait_for("down")
    assert not [e for e in rec.events if e[0] == "data"]
    assert conn.closed
    assert not t.send(rec.events[0][1], 0, ASPUP)
    await t.stop()


async def test_client_connects_and_reconnects_after_the_peer_shuts_down() -> None:
    made: list[FakeSctpSocket] = []

    def factory() -> FakeSctpSocket:
        made.append(FakeSctpSocket())
        return made[-1]

    rec = Recorder()
    t = SctpTransport(
        handler=rec,
        role="client",
        peers=(("127.0.0.1", 2905),),
        reconnect_min=0.01,
        reconnect_max=0.02,
        socket_factory=factory,
    )
    await t.start()
    await rec.wait_for("up")
    assert made[0].connected_to == ("127.0.0.1", 2905)
    made[0].peer_shuts_down()
    await rec.wait_for("down")
    await rec.wait_for("up", 2)  # a new socket, a new association
    assert len(made) == 2 and made[0].closed
    assert t.send(rec.events[-1][1], 0, ASPUP)
    assert made[1].sent == [(ASPUP, PPID_M3UA, 0)]
    await t.stop()
    assert made[1].closed


async def test_data_streams_fold_into_the_streams_the_peer_granted() -> None:
    conn = FakeSctpSocket()
    conn.granted_streams = 3  # stream 0 for management, 1 and 2 for DATA
    t, rec = await server_up(conn)
    assoc = rec.events[0][1]
    for stream in (0, 1, 2, 3, 4, 16):
        assert t.send(assoc, stream, ASPUP)
    assert [s for _, _, s in conn.sent] == [0, 1, 2, 1, 2, 2]
    await t.stop()


async def test_connections_from_one_address_are_limited_until_one_closes() -> None:
    """[m3ua] max_connections_per_address on the SCTP listener: a second association from
    127.0.0.2 is closed at once, never reported; once the first is gone one gets in again."""
    conns = [FakeSctpSocket() for _ in range(3)]
    listener = FakeListener(list(conns))
    rec = Recorder()
    t = SctpTransport(
        handler=rec,
        role="server",
        listen=("127.0.0.1", 2905),
        socket_factory=lambda: listener,
        max_connections_per_address=1,
    )
    await t.start()
    listener.peer_connects()
    await rec.wait_for("up")
    listener.peer_connects()  # the same address again: refused
    for _ in range(100):
        if conns[1].closed:
            break
        await asyncio.sleep(0.01)
    assert conns[1].closed and [e[0] for e in rec.events] == ["up"]
    conns[0].peer_shuts_down()
    await rec.wait_for("down")
    listener.peer_connects()
    await rec.wait_for("up", 2)
    assert not conns[2].closed
    await t.stop()


@pytest.mark.parametrize(
    "scenario",
    [
        test_server_accepts_reads_streams_and_sends_with_ppid_3,
        test_foreign_ppid_is_dropped_and_shutdown_event_closes,
        test_client_connects_and_reconnects_after_the_peer_shuts_down,
        test_data_streams_fold_into_the_streams_the_peer_granted,
        test_connections_from_one_address_are_limited_until_one_closes,
    ],
    ids=lambda f: f.__name__.removeprefix("test_"),
)
def test_the_same_on_uvloop(scenario: Callable[[], Awaitable[None]]) -> None:
    """Each case above on uvloop ([node] event_loop): libuv watches the association's
    descriptor for add_reader / add_writer instead of asyncio's selector."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_on_running_loop(scenario, "uvloop"))


async def _on_running_loop(scenario: Callable[[], Awaitable[None]], module: str) -> None:
    assert type(asyncio.get_running_loop()).__module__.startswith(module)
    await scenario()


def test_live_sctp_socket() -> None:
    ok, why = sctp_available()
    if not ok:
        pytest.skip(f"live SCTP unavailable on this machine: {why}")
    from scp.adapters.sctp import pysctp_socket_factory

    s = pysctp_socket_factory()
    s.bind(("127.0.0.1", 0))
    s.close()
