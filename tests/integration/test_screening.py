"""SS7 screening through the simulator: the HLR side sends AlertServiceCentre from a point code
that is not on ``[screening.map.alert_service_centre]``. It gets a TC-U-ABORT (an ABORT with
an AARE reject-permanent, read back by tshark and the strict oracle), nothing is recorded, no
SMS is queued, and the refusal is counted. The same holds for the forms that reach the same
presence event by other doors: the v1 alertServiceCentreWithoutResult in a TC-BEGIN without a
dialogue portion (no application context to screen by) and ReadyForSM (held to the HLRs' list
when it has none of its own). The same subscriber's NoteMM-Event from an allowed VLR point code
is served as usual (the control: screening refuses only what it should).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from scp.app import Node, Services, build_users
from scp.codecs import map as mapc
from scp.codecs import ops
from scp.codecs.numbers import AddressString
from scp.codecs.opcodes import MapOpcode
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.primitives import ApplicationContext, Invoke
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


MWD_MNGT_V3 = (0, 4, 0, 0, 1, 0, 24, 3)


async def _map_begin(
    sim: Simulator,
    ac: ApplicationContext | None,
    opcode: int,
    parameter: bytes,
    *,
    called_ssn: int,
    what: str,
) -> str:
    """A MAP TC-BEGIN from the simulator's point code as given (``ac`` None: no dialogue
    portion, MAP v1), its outcome in words."""
    did = sim.peer.begin(
        called_ssn=called_ssn,
        calling_ssn=6,  # the HLR's
        ac=ac,
        components=(Invoke(1, opcode, parameter, op_class=4 if ac is None else 1),),
    )
    return await sim._map_outcome(did, what)


async def test_alert_from_a_point_code_not_allowed_is_refused(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = parse_config(CONFIG)
    await prov.add_subscriber(
        clean_pool,
        prov.Actor("cli", "test"),
        N.subscriber,
        imsi=N.imsi,  # ReadyForSM names the subscriber by IMSI
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
        # MAP v1: alertServiceCentreWithoutResult, no dialogue portion, to the SC's SSN
        arg = ops.AlertServiceCentre(
            msisdn=AddressString(N.subscriber),
            service_centre_address=AddressString(cfg.sccp.global_title),
        )
        _code, param = mapc.CODEC.encode_arg(arg, ac=None)
        v1 = MapOpcode.ALERT_SERVICE_CENTRE_WITHOUT_RESULT
        outcome = await _map_begin(sim, None, v1, param, called_ssn=cfg.sccp.ssn.sc, what="v1")
        assert outcome == "v1: aborted (TcUAbort)", outcome
        # ReadyForSM (mwdMngt v3) by the subscriber's IMSI: the same presence event
        code, param = mapc.CODEC.encode_arg(
            ops.ReadyForSM(imsi=N.imsi, alert_reason=0), ac=MWD_MNGT_V3
        )
        outcome = await _map_begin(
            sim, MWD_MNGT_V3, code, param, called_ssn=cfg.sccp.ssn.sc, what="readyForSM"
        )
        assert outcome == "readyForSM: aborted (TcUAbort)", outcome
        await asyncio.sleep(0.3)
        assert await _state(clean_pool) == before  # nothing recorded, no SMS queued
        refused = users.stats.screening.refused
        assert refused == {
            ("map", "alertServiceCentre", "opc"): 2,
            ("map", "alertServiceCentreWithoutResult", "opc"): 1,
            ("map", "readyForSM", "opc"): 1,
        }
        assert users.stats.signalling.aborts["out", "no_reason_given"] == 3
        # the VLR's point code is allowed for NoteMM-Event: served, and the waiting SMS queued
        outcome = await sim.note_mm_event(N.subscriber)
        assert outcome == "noteMM-Event: acknowledged", outcome
        await asyncio.sleep(0.3)
        sms, presence = await _state(clean_pool)
        assert presence == before[1] + 1 and sms > before[0]
        assert sum(refused.values()) == 4
        await conn.close()
    finally:
        await node.stop()
    pcap = tmp_path / "node.pcap"
    tshark.assert_clean(pcap)
    # Wireshark's reading: each refused dialogue answered by an ABORT whose dialogue portion is
    # an AARE with result reject-permanent (1), diagnostic dialogue-service-user 1
    # (no-reason-given); from the SCP (OPC 100) to the simulator
    rows = tshark.fields(
        pcap,
        ["m3ua.protocol_data_opc", "tcap.result", "tcap.dialogue_service_user"],
        display_filter="tcap.abort_element",
    )
    # (the v1 alert's ABORT has no dialogue portion: its BEGIN had none, Q.774 §3.2.2.1)
    aborts = [r for r in rows if r[0] == "100"]
    assert sorted(aborts) == [["100", "", ""]] + [["100", "1", "1"]] * 3, rows


class _LogRecorder:
    """A stand-in for the node's bound logger: each call kept as capture_logs would keep it."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def bind(self, **kw: Any) -> _LogRecorder:
        return self

    def __getattr__(self, level: str) -> Any:
        def log(event: str, **kw: Any) -> None:
            self.lines.append({"event": event, "log_level": level, **kw})

        return log


async def test_the_node_names_the_map_operations_left_open_at_start_up(clean_pool) -> None:  # type: ignore[no-untyped-def]
    """Only the alert list set: NoteMM-Event is open to every sender (ReadyForSM follows the
    alert list); the live node says so once at start-up, naming it and CAP's and INAP's."""
    cfg = parse_config(
        CONFIG.replace("[screening.map.note_mm_event]\nallowed_opc = [200]", "")
        + '[smpp]\nbackend = "console"\n'
    )
    services = Services(cfg, clean_pool)
    # the node's log lines recorded as they are made: structlog.testing.capture_logs would miss
    # them once an earlier test of the session has configured the CLI's logging in-process
    # (it caches each logger at first use with the processors of then)
    logs = _LogRecorder()
    services.node.log = logs  # type: ignore[assignment]
    await services.start()
    await services.stop()
    warnings = [e for e in logs.lines if e["event"] == "screening allows every sender"]
    assert [w["sections"] for w in warnings] == [
        ["screening.map.note_mm_event", "screening.cap", "screening.inap"]
    ]
