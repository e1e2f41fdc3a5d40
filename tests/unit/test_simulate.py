"""The simulator's network elements against an in-process SCP with no database
(scp/tools/simulate/): the stack alone and a node that serves nothing.

The scenarios against the node's own TC-users on a real PostgreSQL, and the demo captures in
pcaps/ regenerated and compared with the committed ones, are
tests/integration/test_simulate_inprocess.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.config import parse_config
from scp.service.dialogue import ContinueUser
from scp.tools.simulate.network import Simulator, run_scenario
from scp.tools.simulate.transports import connect_in_process
from tests import tshark

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.tshark
async def test_the_stack_alone_continues_and_refuses_map(tmp_path: Path) -> None:
    cfg = parse_config("")
    w = SctpPcapWriter.open(str(tmp_path / "sim.pcap"))
    conn, _ = await connect_in_process(cfg, users=lambda node: [ContinueUser()], capture=w)
    try:
        sim = Simulator(conn.peer, cfg, timeout=2.0)
        res = await run_scenario(sim, "not-reachable-then-present", settle=0.01)
    finally:
        await conn.close()
        w.close()
    assert res.outcome == "continue" and res.received == ["continue"]
    # No MAP user: the dialogue is refused (AARE application-context-name-not-supported).
    assert not res.ok and res.map_outcome and "aborted" in res.map_outcome
    # the Continue and the refusal as Wireshark and the strict ASN.1 decoder read them
    tshark.assert_clean(tmp_path / "sim.pcap")


async def test_timeout_is_reported_not_raised() -> None:
    cfg = parse_config("")
    conn, scp = await connect_in_process(cfg, users=lambda node: [])
    scp.on_send = None
    try:
        sim = Simulator(conn.peer, cfg, timeout=0.2)
        # Nobody serves CAP: the SCP refuses the dialogue, the simulator says so.
        res = await sim.call("busy")
    finally:
        await conn.close()
    assert not res.ok and res.outcome
