"""SS7 screening through the simulator: the HLR side sends AlertServiceCentre from a point code
that is not on ``[screening.map.alert_service_centre]``. It gets a TC-U-ABORT (an ABORT with
an AARE reject-permanent, read back by tshark and the strict oracle), nothing is recorded, no
SMS is queued, and the refusal is counted; the same subscriber's NoteMM-Event from an allowed
VLR point code is served as usual (the control: screening refuses only what it should).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scp.app import Node, build_users
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.scenarios import Numbers
from scp.tools.simulate.transports import connect_tcp
from tests import tshark
from tests.dates import today

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tshark,
    pytest.mark.asyncio(loop_scope="session"),
]

N = Numbers()
CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[notify]
busy_window = 0
alert_via_hlr = false
[screening]
log_interval = 3600
[screening.map.alert_service_centre]
allowed_opc = ["300-399"]
[screening.map.note_mm_event]
allowed_opc = [200]  # the simulator's point code (scp.tools.simulate.peer)
"""


async def _state(pool) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    sms = await pool.fetchval("SELECT count(*) FROM sms_outbox")
    presence = await pool.fetchval("SELECT count(*) FROM presence")
    return sms, presence


async def test_alert_from_a_point_code_not_allowed_is_refused(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = parse_config(CONFIG)
    await prov.add_subscriber(
        clean_pool,
        prov.Actor("cli", "test"),
        N.subscriber,
        today=today(),
        services=("missed-call", "busy"),
    )
    users = build_users(clean_pool, cfg)
    node = Node(cfg, users=users, capture=tmp_path / "node.pcap")
    await node.start()
    try:
        conn = await connect_tcp("127.0.0.1", node.transport.listening[0][1])
        sim = Simulator(conn.peer, cfg, numbers=N, timeout=10.0)
        # a missed call while the subscriber is absent: its SMS waits for presence
        call = await sim.call("not-reachable-then-present")
        assert call.ok, call.outcome
        await asyncio.sleep(0.3)
        before = await _state(clean_pool)
        for _ in range(2):
            outcome = await sim.alert_service_centre(N.subscriber)
            assert outcome == "alertServiceCentre: aborted (TcUAbort)", outcome
        assert await _state(clean_pool) == before  # nothing recorded, no SMS queued
        refused = users.stats.screening.refused
        assert refused == {("map", "alertServiceCentre", "opc"): 2}
        assert users.stats.signalling.aborts["out", "no_reason_given"] == 2
        # the VLR's point code is allowed for NoteMM-Event: served, and the waiting SMS queued
        outcome = await sim.note_mm_event(N.subscriber)
        assert outcome == "noteMM-Event: acknowledged", outcome
        await asyncio.sleep(0.3)
        sms, presence = await _state(clean_pool)
        assert presence == before[1] + 1 and sms > before[0]
        assert refused == {("map", "alertServiceCentre", "opc"): 2}
        await conn.close()
    finally:
        await node.stop()
    pcap = tmp_path / "node.pcap"
    tshark.assert_clean(pcap)
    # Wireshark's reading: each refused alert answered by an ABORT whose dialogue portion is
    # an AARE with result reject-permanent (1), diagnostic dialogue-service-user 1
    # (no-reason-given); from the SCP (OPC 100) to the simulator
    rows = tshark.fields(
        pcap,
        ["m3ua.protocol_data_opc", "tcap.result", "tcap.dialogue_service_user"],
        display_filter="tcap.abort_element",
    )
    aborts = [r for r in rows if r[0] == "100"]
    assert len(aborts) == 2, rows
    assert all(r[1] == "1" and r[2] == "1" for r in aborts), aborts
