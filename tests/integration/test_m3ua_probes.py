"""The node probed from outside over real TCP sockets: idle connections that never bring an ASP
up, more connections than ``[m3ua] max_connections``, an accept loop out of descriptors, and an
impostor sending DATA with a switch's bound point code. The real ASP must still get in and be
served.
"""

from __future__ import annotations

import asyncio
import errno
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
        # a fourth while three are open: closed at once, never an association
        r4, w4 = await asyncio.open_connection("127.0.0.1", port)
        writers.append(w4)
        assert await closed_by_node(r4)
        assert len(node.association_ids) == 3
        # none of the three sends ASP Up: each is closed by the ASPUP timer
        assert all([await closed_by_node(r) for r, _w in idle])
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


async def test_accept_out_of_descriptors_is_logged_once_per_interval() -> None:
    """asyncio reports accept() failing with EMFILE through the loop's exception handler, with
    a traceback, at each retry: the node logs one line per interval and counts the rest;
    anything else still reaches the handler that was there before."""
    node = Node(parse_config(CONFIG))
    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    before = loop.get_exception_handler()

    def mine(_loop: asyncio.AbstractEventLoop, ctx: dict[str, object]) -> None:
        seen.append(ctx)

    loop.set_exception_handler(mine)
    try:
        await node.start()
        handler = loop.get_exception_handler()
        assert handler is not None
        emfile = {
            "message": "socket.accept() out of system resource",
            "exception": OSError(errno.EMFILE, "Too many open files"),
        }
        lines: list[tuple[str, dict[str, object]]] = []

        class Recorder:
            def warning(self, event: str, **fields: object) -> None:
                lines.append((event, fields))

        node.transport.rationed.logger = Recorder()
        for _ in range(1000):
            handler(loop, emfile)
        handler(loop, {"message": "something else"})
        assert [e for e, _f in lines] == ["m3ua accept failed: out of resources"]
        assert lines[0][1]["not_logged_since"] == 0
        assert seen == [{"message": "something else"}]
        assert node.transport.rationed._last["m3ua accept failed: out of resources"][1] == 999
    finally:
        await node.stop()
        assert loop.get_exception_handler() is mine  # the node gave it back at stop
        loop.set_exception_handler(before)


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
