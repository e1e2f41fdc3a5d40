"""Overload shed the IN way, through the simulator: the node (its outbox on the real PostgreSQL,
an SMSC that never answers) finds its oldest due SMS older than ``[overload] max_outbox_age``
and adds CallGap (CAP v3, opcode 41, gapOnService, sCPOverloaded) to its answer to the next
InitialDP; the same switch is not asked again while its gap runs, a CAP v2 switch (CAMEL phase
2 has no CallGap) is answered as usual, an INAP CS-1 switch (its own point code and
association) gets INAP's CallGap (ETS 300 374-1 §6.1), and once the backlog is gone the node
stops. Every frame goes through tshark and the strict ASN.1 oracle.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from pathlib import Path

import pytest

from scp.app import Services
from scp.codecs.appctx import CAP_V3_GSMSSF_SCF, INAP_CS1_SSP_SCP
from scp.config import parse_config
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.transports import connect_tcp
from tests import tshark

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tshark,
    pytest.mark.asyncio(loop_scope="session"),
]

WAIT = 10.0  # s: a bound on what must happen, never a measured duration


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(smsc_port: int) -> str:
    return f"""
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[smpp]
host = "127.0.0.1"
port = {smsc_port}
[overload]
max_outbox_age = 60.0
check_interval = 0.1
gap_interval = 2000
gap_duration = 30
"""


async def until(cond, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(WAIT):
        while not cond():
            await asyncio.sleep(0.02)


async def test_call_gap_while_the_outbox_lags(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = parse_config(config(_closed_port()))
    pcap = tmp_path / "node.pcap"
    services = Services(cfg, clean_pool, capture=str(pcap))
    await services.start()
    overload = services.node.overload
    try:
        port = services.node.transport.listening[0][1]
        conn = await connect_tcp("127.0.0.1", port)
        v3 = Simulator(conn.peer, cfg, timeout=WAIT, cap_ac=CAP_V3_GSMSSF_SCF)
        v2 = Simulator(conn.peer, cfg, timeout=WAIT)
        # an INAP SSP: another switch (point code 201), on its own association
        conn_inap = await connect_tcp("127.0.0.1", port, local_pc=201)
        ssp = Simulator(conn_inap.peer, cfg, timeout=WAIT, cap_ac=INAP_CS1_SSP_SCP)
        # not overloaded: the ordinary answer
        first = await v3.call("busy")
        assert first.ok and "callGap" not in first.received, first.received
        inap_first = await ssp.call("busy")
        assert inap_first.ok and "callGap" not in inap_first.received, inap_first.received
        # an SMS due an hour ago that the SMSC never takes: the outbox lags
        await services.outbox.enqueue(
            "8613912345678",
            "lagging",
            idempotency_key="overload-test",
            now=services.wall_now() - dt.timedelta(hours=1),
        )
        await until(lambda: overload.outbox_age > 60, "the outbox age read")
        gapped = await v3.call("busy")
        assert gapped.ok, gapped.outcome
        assert gapped.received[0] == "callGap", gapped.received
        assert overload.overloaded and overload.gaps_sent == 1
        again = await v3.call("busy")  # the same switch, its gap still running
        assert again.ok and "callGap" not in again.received, again.received
        phase2 = await v2.call("busy")  # CAP v2: no CallGap in CAMEL phase 2
        assert phase2.ok and "callGap" not in phase2.received, phase2.received
        inap_gapped = await ssp.call("busy")  # INAP CS-1: its CallGap, once
        assert inap_gapped.ok, inap_gapped.outcome
        assert inap_gapped.received[0] == "callGap", inap_gapped.received
        assert overload.gaps_sent == 2
        inap_again = await ssp.call("busy")
        assert inap_again.ok and "callGap" not in inap_again.received, inap_again.received
        # the backlog goes: the next InitialDP finds the load below the resume ratio
        await clean_pool.execute("UPDATE sms_outbox SET status = 'failed'")
        await until(lambda: overload.outbox_age == 0, "the outbox age read")
        after = await v3.call("busy")
        assert after.ok and "callGap" not in after.received, after.received
        inap_after = await ssp.call("busy")
        assert inap_after.ok and "callGap" not in inap_after.received, inap_after.received
        assert not overload.overloaded and overload.gaps_sent == 2 and overload.episodes == 1
        await conn_inap.close()
        await conn.close()
    finally:
        await services.stop()
    tshark.assert_clean(pcap)
    # Wireshark's reading: one CallGap, from the SCP (OPC 100), first in its component
    # portion: gapOnService on the terminating service key, the configured indicators, and
    # controlType sCPOverloaded
    rows = tshark.fields(
        pcap,
        [
            "m3ua.protocol_data_opc",
            "camel.local",
            "camel.serviceKey",
            "camel.gapInterval",
            "camel.controlType",
        ],
        display_filter="camel.local == 41",
    )
    assert rows == [["100", "41,31", "100", "2000", "0"]], rows
    # and under INAP: one CallGap, to the INAP switch (DPC 201), the same fields
    rows = tshark.fields(
        pcap,
        [
            "m3ua.protocol_data_dpc",
            "inap.code.local",
            "inap.serviceKey",
            "inap.duration",
            "inap.gapInterval",
            "inap.controlType",
        ],
        display_filter="inap.code.local == 41",
    )
    assert rows == [["201", "41,31", "100", "30", "2000", "0"]], rows
