"""The node probed from outside over real TCP sockets: idle connections that never bring an ASP
up, more connections than ``[m3ua] max_connections``, an accept loop out of descriptors, and an
impostor sending DATA with a switch's bound point code. The real ASP must still get in and be
served.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scp.app import Node
from scp.codecs import m3ua as M
from scp.config import parse_config
from scp.primitives import TcEnd
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.transports import connect_tcp
from tests import tshark
from tests.integration.peer import connect_peer
from tests.integration.test_node_tcp import answers, idp_begin

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
max_connections = 3
aspup_timeout = 0.5
"""
WAIT = 10.0  # s: a generous bound on what must happen, never a measured duration


async def closed_by_node(reader: asyncio.StreamReader) -> bool:
    """True once the node has closed the connection (EOF or reset)."""
    try:
        return await asyncio.wait_for(reader.read(1), WAIT) == b""
    except ConnectionResetError:
        return True


async def closed_after_answers(reader: asyncio.StreamReader) -> bool:
    """True once the node has closed the connection, whatever it sent before."""
    try:
        while await asyncio.wait_for(reader.read(4096), WAIT):
            pass
    except ConnectionResetError:
        pass
    return True


async def test_idle_connections_are_closed_and_the_limit_holds() -> None:
    cfg = parse_config(CONFIG)
    node = Node(cfg)
    await node.start()
    port = node.transport.listening[0][1]
    writers: list[asyncio.StreamWriter] = []
    try:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        writers += [w for _r, w in idle]
        while len(node.association_ids) < 3:
            await asyncio.sleep(0.01)
        # the third brings its ASP up and no further: ASP-INACTIVE, which holds a place too
        r3, w3 = idle[2]
        w3.write(M.encode(M.make(M.MessageType.ASPUP)))
        assert (await asyncio.wait_for(r3.readexactly(8), WAIT))[2:4] == b"\x03\x04"  # ACK
        # a fourth while three are open: closed at once, never an association
        r4, w4 = await asyncio.open_connection("127.0.0.1", port)
        writers.append(w4)
        assert await closed_by_node(r4)
        assert len(node.association_ids) == 3
        # none of the three becomes active: each is closed by the ASPUP timer
        assert all([await closed_after_answers(r) for r, _w in idle])
        while node.association_ids:
            await asyncio.sleep(0.01)
        # the real ASP gets in and is served
        conn = await connect_tcp("127.0.0.1", port)
        sim = Simulator(conn.peer, cfg, timeout=WAIT)
        res = await sim.call("busy")
        assert res.ok and res.outcome == "continue", res.outcome
        await conn.close()
    finally:
        for w in writers:
            w.close()
        await node.stop()


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
async def test_accept_out_of_descriptors_is_logged_once_and_nothing_is_lost(
    loop_name: str,
) -> None:
    """The listener in a process with a few descriptors left (tests/integration/
    emfile_listener.py), on asyncio and on uvloop: 40 connections at once make accept() fail
    with EMFILE. One line says so (the retries are counted, not logged); once the descriptors
    come free every waiting connection is accepted, none closed unseen (uvloop's own server
    would drop them without a word), and a new one gets in."""
    repo = Path(__file__).resolve().parents[2]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.emfile_listener",
        loop_name,
        cwd=repo,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    lines: list[str] = []

    async def until(pred: Callable[[str], bool]) -> str:
        assert child.stdout is not None
        while True:
            line = (await asyncio.wait_for(child.stdout.readline(), WAIT)).decode().strip()
            assert line, f"the listener exited; it said {lines}"
            lines.append(line)
            if pred(line):
                return line

    socks: list[socket.socket] = []
    try:
        port = int((await until(lambda x: x.startswith("port ")))[5:])
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", port))
            socks.append(s)
        await until(lambda x: x.startswith("log m3ua accept failed: out of resources"))
        for s in socks:
            s.close()
        socks.clear()
        await until(lambda x: x == "up 40")  # every one of the 40 was accepted in the end
        socks.append(socket.create_connection(("127.0.0.1", port)))
        await until(lambda x: x == "up 41")
    finally:
        for s in socks:
            s.close()
        child.stdin.close()
        await asyncio.wait_for(child.wait(), WAIT)
    logged = [x for x in lines if x.startswith("log ")]
    assert logged == ["log m3ua accept failed: out of resources 0"], lines


LIMITS_CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
max_connections = 4
max_connections_per_address = 2
aspup_timeout = 600
[[m3ua.binding]]
address = "127.0.0.1"
point_codes = [200]
"""


async def test_one_host_cannot_take_the_places_of_the_bound_peers(tmp_path: Path) -> None:
    """Of four places, two are kept for the bound switch (127.0.0.1): a host that opens
    connections and never activates an ASP gets two (its per-address limit, and all the places
    left to unbound addresses), a third host none; the switch still gets in and is served."""
    cfg = parse_config(LIMITS_CONFIG)
    node = Node(cfg)
    await node.start()
    port = node.transport.listening[0][1]
    writers: list[asyncio.StreamWriter] = []
    switch = None

    async def from_host(host: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))
        writers.append(w)
        return r, w

    try:
        held = [await from_host("127.0.0.2") for _ in range(2)]
        for r, w in held:  # ASP Up, then nothing: ASP-INACTIVE
            w.write(M.encode(M.make(M.MessageType.ASPUP)))
            assert (await asyncio.wait_for(r.readexactly(8), WAIT))[2:4] == b"\x03\x04"
        r3, _w3 = await from_host("127.0.0.2")
        assert await closed_by_node(r3)  # its per-address limit
        r4, _w4 = await from_host("127.0.0.3")
        assert await closed_by_node(r4)  # the places left are kept for the binding
        assert len(node.association_ids) == 2
        switch = await connect_peer(port, tmp_path / "switch.pcap")
        await switch.wait(lambda: switch.active)
        did = idp_begin(switch, AC_CAP_V2_GSMSSF_SCF)
        await switch.wait(lambda: bool(answers(switch, did)))
        (end,) = answers(switch, did)
        assert isinstance(end, TcEnd), end
        assert len(node.association_ids) == 3
    finally:
        for w in writers:
            w.close()
        if switch is not None:
            switch.close()
        await node.stop()
        if switch is not None:
            switch.finish()


BOUND_CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[[m3ua.binding]]
address = "127.0.0.1"
point_codes = [200]
"""


@pytest.mark.tshark
async def test_an_impostor_with_the_switchs_opc_is_refused_and_steals_no_answers(
    tmp_path: Path,
) -> None:
    """PC 200 is bound to 127.0.0.1. An impostor connects first from 127.0.0.2, becomes active
    and sends an InitialDP with OPC 200: ERR "invalid parameter value", no dialogue. The switch
    then connects from 127.0.0.1 with the same OPC: each of its calls is answered to it, and
    not one DATA goes to the impostor, active all along."""
    node = Node(parse_config(BOUND_CONFIG), capture=tmp_path / "node.pcap")
    await node.start()
    port = node.transport.listening[0][1]
    impostor = await connect_peer(port, tmp_path / "impostor.pcap", source="127.0.0.2")
    switch = None
    try:
        await impostor.wait(lambda: impostor.active)
        tried = [idp_begin(impostor, AC_CAP_V2_GSMSSF_SCF) for _ in range(3)]

        def errs() -> list[M.M3uaMessage]:
            return [M.decode(m) for m in impostor.received if m[2:4] == b"\x00\x00"]

        await impostor.wait(lambda: len(errs()) == 3)
        datas = [m for m in impostor.sent if m[2:4] == b"\x01\x01"]
        assert [(e.error_code, e.diagnostic_information) for e in errs()] == [
            (M.ErrorCode.INVALID_PARAMETER_VALUE, d[:40]) for d in datas
        ]
        assert node.stats.signalling.dialogues_opened == {}
        assert node.stats.screening.refused == {("m3ua", "DATA", "opc_binding"): 3}
        switch = await connect_peer(port, tmp_path / "switch.pcap")
        await switch.wait(lambda: switch.active)
        assert impostor.active  # both ASPs active, loadsharing by SLS
        dids = [idp_begin(switch, AC_CAP_V2_GSMSSF_SCF) for _ in range(8)]
        for d in dids:
            await switch.wait(lambda d=d: bool(answers(switch, d)))
            (end,) = answers(switch, d)
            assert isinstance(end, TcEnd), end
        assert not [m for m in impostor.received if m[2:4] == b"\x01\x01"]  # no DATA at all
        assert all(answers(impostor, d) == [] for d in tried)
        assert node.stats.screening.refused == {("m3ua", "DATA", "opc_binding"): 3}
    finally:
        impostor.close()
        if switch is not None:
            switch.close()
        await node.stop()
        impostor.finish()
        if switch is not None:
            switch.finish()
    for name in ("node.pcap", "impostor.pcap", "switch.pcap"):
        tshark.assert_clean(tmp_path / name)
