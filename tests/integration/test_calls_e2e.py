"""Call handling end to end: a simulated switch and media server over M3UA/TCP.

The node runs :mod:`scp.flows.calls` on a real PostgreSQL; the peer ASP plays the MSC/SSP (CAP v2,
v3, v4 and INAP CS-1 dialogues) and the media server (its own assist dialogue in ``etc`` mode).
Every frame the node emitted and received is read back by tshark, which must flag nothing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from scp.app import Node
from scp.codecs import cap, inap, ops
from scp.codecs.numbers import (
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    NatureOfAddress,
)
from scp.codecs.opcodec import OperationCodec
from scp.codecs.opcodes import CapOpcode
from scp.config import parse_config
from scp.flows import provisioning as P
from scp.flows.calls import build_call_user
from scp.primitives import (
    GlobalTitle,
    Invoke,
    ReturnResult,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcContinue,
    TcEnd,
    TcUAbort,
)
from scp.service.dialogue import (
    AC_CAP_V2_GSMSSF_SCF,
    AC_CAP_V3_GSMSSF_SCF,
    AC_CAP_V4_GSMSSF_SCF,
    AC_INAP_CS1_SSF_SCF,
)
from tests import tshark
from tests.dates import today
from tests.integration.peer import PeerAsp, connect_peer

pytestmark = [pytest.mark.tshark, pytest.mark.usefixtures("any_day")]

SCP = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000"))
MSC = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613900000"))
SCP_INAP = SccpAddress(ri=RoutingIndicator.GT, ssn=241, gt=GlobalTitle("8613800000"))
MSC_INAP = SccpAddress(ri=RoutingIndicator.GT, ssn=241, gt=GlobalTitle("8613900000"))
AC_INAP_ASSIST = (0, 4, 0, 1, 1, 1, 1, 0)
AC_CAP_V2_SRF = (0, 4, 0, 0, 1, 0, 52, 1)

CALLEE = "8613912345678"
CALLER = "8613700001111"
ADMIN = P.Actor("cli", "test")

NODE_CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
[tcap]
idle_timeout = {idle}
[ivr]
mode = "{mode}"
[rating]
local_prefixes = ["86139"]
"""


def _codec(ac: tuple[int, ...]) -> OperationCodec:
    return inap.CODEC if ac[:5] == (0, 4, 0, 1, 1) else cap.CODEC


# EventReportBCSM and SpecializedResourceReport expect no answer (TS 29.078 §8: class 4).
_CLASS_4 = (CapOpcode.EVENT_REPORT_BCSM, CapOpcode.SPECIALIZED_RESOURCE_REPORT)


class Switch:
    """The peer ASP as a switch / media server: sends typed operations, reads typed answers."""

    def __init__(self, peer: PeerAsp) -> None:
        self.peer = peer
        self.acs: dict[int, tuple[int, ...]] = {}
        self.iid = 0

    def _invokes(
        self, ac: tuple[int, ...], operations: tuple[ops.Operation, ...]
    ) -> tuple[Invoke, ...]:
        out = []
        for o in operations:
            self.iid += 1
            opcode, param = _codec(ac).encode_arg(o, ac=ac)
            out.append(Invoke(self.iid, opcode, param, op_class=4 if opcode in _CLASS_4 else 2))
        return tuple(out)

    def begin(self, ac: tuple[int, ...], *operations: ops.Operation) -> int:
        did = self.peer.stack.tcap.new_dialogue_id()
        self.acs[did] = ac
        called, calling = (SCP_INAP, MSC_INAP) if _codec(ac) is inap.CODEC else (SCP, MSC)
        self.peer.request(
            TcBegin(did, called, calling, ac, components=self._invokes(ac, operations))
        )
        return did

    def cont(self, did: int, *operations: ops.Operation, end: bool = False) -> None:
        comps = self._invokes(self.acs[did], operations)
        self.peer.request(
            TcEnd(did, components=comps) if end else TcContinue(did, components=comps)
        )

    def result(self, did: int, invoke_id: int, digits: str) -> None:
        ac = self.acs[did]
        pacui = CapOpcode.PROMPT_AND_COLLECT_USER_INFORMATION
        param = _codec(ac).encode_result(
            pacui, ops.ReceivedInformation(GenericDigits(digits)), ac=ac
        )
        self.peer.request(TcContinue(did, components=(ReturnResult(invoke_id, pacui, param),)))

    async def next(self, did: int, n: int = 1) -> list[object]:
        """Wait for the ``n``-th message on ``did``; return all received on it so far."""
        await self.peer.wait(lambda: len(self.got(did)) >= n, timeout=5)
        return self.got(did)

    def got(self, did: int) -> list[object]:
        return [i for i in self.peer.indications if getattr(i, "dialogue_id", None) == did]

    def ops_of(self, ind: object) -> list[tuple[int, ops.Operation]]:
        ac = self.acs[ind.dialogue_id]  # type: ignore[attr-defined]
        return [
            (c.invoke_id, _codec(ac).decode_arg(c.opcode, c.parameter, ac=ac))
            for c in getattr(ind, "components", ())
            if type(c) is Invoke
        ]


def idp(callee: str = CALLEE, caller: str = CALLER, key: int = 100) -> ops.InitialDP:
    return ops.InitialDP(
        service_key=key,
        called_party_number=CalledPartyNumber(callee, nai=NatureOfAddress.INTERNATIONAL),
        calling_party_number=CallingPartyNumber(caller, nai=NatureOfAddress.INTERNATIONAL),
        event_type_bcsm=ops.EventTypeBCSM.TERM_ATTEMPT_AUTHORIZED,
    )


def erb(et: int, cause: int | None = None) -> ops.EventReportBCSM:
    info = None
    if et == ops.EventTypeBCSM.T_BUSY:
        info = ops.EventSpecificInfo(
            "tBusySpecificInfo", Cause(cause) if cause is not None else None
        )
    return ops.EventReportBCSM(et, info, ops.LegID(2), message_type=0)


async def provision(
    pool: Any,
    *,
    services: tuple[str, ...] = ("missed-call", "busy", "voicemail"),
    forward_to: str | None = None,
) -> None:
    await P.add_subscriber(pool, ADMIN, CALLEE, today=today(), services=services)
    if forward_to:
        await P.update_subscriber(pool, ADMIN, CALLEE, forward_to=forward_to)


class Rig:
    def __init__(self, node: Node, peer: PeerAsp, tmp: Path) -> None:
        self.node, self.peer, self.tmp = node, peer, tmp
        self.sw = Switch(peer)


async def start(tmp: Path, pool: Any, mode: str, *, idle: float = 20.0) -> Rig:
    cfg = parse_config(NODE_CONFIG.format(mode=mode, idle=idle))
    node = Node(cfg, users=lambda n: [build_call_user(n, pool, cfg)], capture=tmp / "node.pcap")
    await node.start()
    peer = await connect_peer(node.transport.listening[0][1], tmp / "peer.pcap")
    await peer.wait(lambda: peer.active)
    return Rig(node, peer, tmp)


async def stop(rig: Rig) -> None:
    rig.peer.close()
    await rig.node.stop()
    await rig.node.user.users[0].aclose()  # type: ignore[attr-defined]
    rig.peer.finish()
    tshark.assert_clean(rig.tmp / "node.pcap")
    tshark.assert_clean(rig.tmp / "peer.pcap")


def names(sw: Switch, ind: object) -> list[str]:
    return [type(o).__name__ for _, o in sw.ops_of(ind)]


async def test_cap_v2_busy_connects_to_the_ivr_and_records_the_missed_call(
    tmp_path: Path, clean_pool: Any
) -> None:
    await provision(clean_pool)
    rig = await start(tmp_path, clean_pool, "connect")
    sw = rig.sw
    try:
        did = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp())
        (armed,) = await sw.next(did)
        assert isinstance(armed, TcContinue) and armed.application_context == AC_CAP_V2_GSMSSF_SCF
        assert names(sw, armed) == ["RequestReportBCSMEvent", "Continue"]
        rrbe = sw.ops_of(armed)[0][1]
        assert [e.event_type_bcsm for e in rrbe.bcsm_events] == [13, 14, 15, 18]
        assert rrbe.bcsm_events[1].application_timer == 20
        sw.cont(did, erb(13, 17))
        _, end = await sw.next(did, 2)
        assert isinstance(end, TcEnd)
        ((_, connect),) = sw.ops_of(end)
        assert connect.destination_routing_address[0].digits == "8613800999"
        assert connect.original_called_party_id.digits == CALLEE
        # Not a subscriber / blacklisted caller: Continue, nothing armed, nothing recorded.
        other = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp(callee="8613911112222"))
        (e2,) = await sw.next(other)
        assert isinstance(e2, TcEnd) and names(sw, e2) == ["Continue"]
        await P.blacklist_add(clean_pool, ADMIN, CALLEE, "86137", prefix=True)
        bl = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp())
        (e3,) = await sw.next(bl)
        assert isinstance(e3, TcEnd) and names(sw, e3) == ["Continue"]
        # A trigger for another service (serviceKey 555) routed here: untouched, not recorded.
        await P.blacklist_del(clean_pool, ADMIN, CALLEE, "86137", prefix=True)
        foreign = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp(key=555))
        (e4,) = await sw.next(foreign)
        assert isinstance(e4, TcEnd) and names(sw, e4) == ["Continue"]
    finally:
        await stop(rig)
    rows = await clean_pool.fetch("SELECT caller, callee, reason, cause FROM missed_call")
    assert [tuple(r) for r in rows] == [(CALLER, CALLEE, "busy", 17)]


async def test_cap_v4_not_reachable_ctr_menu_callback(tmp_path: Path, clean_pool: Any) -> None:
    await provision(clean_pool)
    rig = await start(tmp_path, clean_pool, "ctr")
    sw = rig.sw
    try:
        did = sw.begin(AC_CAP_V4_GSMSSF_SCF, idp())
        await sw.next(did)
        sw.cont(did, erb(13, 20))
        msgs = await sw.next(did, 2)
        assert names(sw, msgs[1]) == ["ConnectToResource", "PromptAndCollectUserInformation"]
        pacui_id = sw.ops_of(msgs[1])[1][0]
        sw.result(did, pacui_id, "7")  # wrong digit: the menu again, with "invalid"
        msgs = await sw.next(did, 3)
        ((iid, again),) = sw.ops_of(msgs[2])
        assert again.information_to_send.message_ids == (1002, 1001)
        sw.result(did, iid, "1")
        msgs = await sw.next(did, 4)
        assert names(sw, msgs[3]) == ["PlayAnnouncement"]
        sw.cont(did, ops.SpecializedResourceReport())
        msgs = await sw.next(did, 5)
        assert isinstance(msgs[4], TcEnd) and names(sw, msgs[4]) == ["ReleaseCall"]
    finally:
        await stop(rig)
    assert await clean_pool.fetchval("SELECT reason FROM missed_call") == "not-reachable"
    cb = await clean_pool.fetchrow("SELECT caller, callee, missed_call_id FROM callback_request")
    assert (cb["caller"], cb["callee"]) == (CALLER, CALLEE) and cb["missed_call_id"] is not None
    # the caller's fee comes with the callback SMS once it is submitted (tests/integration/
    # test_callback_fee.py), never with the digit
    assert await clean_pool.fetchval("SELECT count(*) FROM cdr") == 0


async def test_inap_no_answer_etc_menu_other_number_is_charged(
    tmp_path: Path, clean_pool: Any
) -> None:
    await provision(clean_pool)
    await P.add_rate(
        clean_pool, ADMIN, "local", "86139", today=today(), per_minute="0.20", per_use="0.05"
    )
    rig = await start(tmp_path, clean_pool, "etc")
    sw = rig.sw
    try:
        did = sw.begin(AC_INAP_CS1_SSF_SCF, idp())
        await sw.next(did)
        sw.cont(did, erb(14))
        msgs = await sw.next(did, 2)
        ((_, etc),) = sw.ops_of(msgs[1])
        assert isinstance(etc, ops.EstablishTemporaryConnection)
        # The media server opens its own dialogue naming the correlation ID.
        ms = sw.begin(AC_INAP_ASSIST, ops.AssistRequestInstructions(etc.correlation_id, b"\x00"))
        (first,) = await sw.next(ms)
        assert isinstance(first, TcContinue)
        ((iid, _),) = sw.ops_of(first)
        sw.result(ms, iid, "3")
        got = await sw.next(ms, 2)
        ((iid, ask),) = sw.ops_of(got[1])
        assert ask.information_to_send.message_ids == (1004,)
        sw.result(ms, iid, "13912340000")
        got = await sw.next(ms, 3)
        assert isinstance(got[2], TcEnd)
        msgs = await sw.next(did, 3)
        assert names(sw, msgs[2]) == [
            "DisconnectForwardConnection",
            "CallInformationRequest",
            "Connect",
        ]
        assert sw.ops_of(msgs[2])[2][1].destination_routing_address[0].digits == "8613912340000"
        rep = ops.CallInformationReport((ops.RequestedInformation(2, 1234),))  # 123.4 s
        sw.cont(did, rep, end=True)
        await rig.peer.wait(lambda: rig.node.user.open_dialogues == 0)
        await asyncio.sleep(0.1)
    finally:
        await stop(rig)
    assert await clean_pool.fetchval("SELECT reason FROM missed_call") == "no-answer"
    cdr = await clean_pool.fetchrow(
        "SELECT record_type, msisdn, callee, call_category, duration_s, charge FROM cdr"
    )
    # 124 s: 3 started minutes at 0.20 plus 0.05 per use.
    assert tuple(cdr) == ("call", CALLER, "8613912340000", "local", 124, Decimal("0.65"))


async def test_cap_v3_forwarding_with_apply_charging(tmp_path: Path, clean_pool: Any) -> None:
    await provision(clean_pool, services=("missed-call", "forwarding"), forward_to="8613855556666")
    await P.add_rate(clean_pool, ADMIN, "national", "", today=today(), per_minute="0.30")
    # A short idle timer: the forwarded call talks for longer than it before the switch's first
    # report, and the dialogue must survive (our ApplyCharging is still running).
    rig = await start(tmp_path, clean_pool, "connect", idle=0.5)
    sw = rig.sw
    try:
        did = sw.begin(AC_CAP_V3_GSMSSF_SCF, idp())
        await sw.next(did)
        sw.cont(did, erb(13, 17))
        msgs = await sw.next(did, 2)
        assert names(sw, msgs[1]) == ["ApplyCharging", "Connect"]
        await asyncio.sleep(1.5)
        assert len(sw.got(did)) == 2, sw.got(did)  # no TC-U-ABORT meanwhile
        acr = ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(3000), call_active=True)
        sw.cont(did, acr)
        msgs = await sw.next(did, 3)
        assert names(sw, msgs[2]) == ["ApplyCharging"]
        sw.cont(
            did, ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(4200), call_active=False)
        )
        msgs = await sw.next(did, 4)
        assert isinstance(msgs[3], TcEnd)
    finally:
        await stop(rig)
    assert await clean_pool.fetchval("SELECT count(*) FROM missed_call") == 0
    cdr = await clean_pool.fetchrow(
        "SELECT msisdn, callee, service, call_category, duration_s, charge FROM cdr"
    )
    assert tuple(cdr) == (CALLEE, "8613855556666", "forwarding", "national", 420, Decimal("2.10"))


async def selfcare_call(sw: Any, caller: str) -> tuple[int, Any]:
    """``caller`` dials the self-care number (service key 200): the dialogue and its first
    answer, the IVR's prompt for the PIN (ConnectToResource + PromptAndCollect)."""
    did = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp(callee="8613800888", caller=caller, key=200))
    (m1,) = await sw.next(did)
    assert names(sw, m1) == ["ConnectToResource", "PromptAndCollectUserInformation"]
    return did, m1


async def test_selfcare_pin_then_blacklist_add(tmp_path: Path, clean_pool: Any) -> None:
    await provision(clean_pool)
    await P.set_pin(clean_pool, ADMIN, CALLEE, "123456")
    rig = await start(tmp_path, clean_pool, "ctr")
    sw = rig.sw
    try:
        did, m1 = await selfcare_call(sw, CALLEE)
        sw.result(did, sw.ops_of(m1)[1][0], "654321")  # wrong PIN
        m = await sw.next(did, 2)
        sw.result(did, sw.ops_of(m[1])[0][0], "123456")
        m = await sw.next(did, 3)
        sw.result(did, sw.ops_of(m[2])[0][0], "4")
        m = await sw.next(did, 4)
        sw.result(did, sw.ops_of(m[3])[0][0], "1")
        m = await sw.next(did, 5)
        sw.result(did, sw.ops_of(m[4])[0][0], "13600001111")
        m = await sw.next(did, 6)
        ((_, menu),) = sw.ops_of(m[5])
        assert menu.information_to_send.message_ids == (2006, 2004)  # done, then the menu
        sw.result(did, sw.ops_of(m[5])[0][0], "1")  # hear missed calls
        m = await sw.next(did, 7)
        assert names(sw, m[6]) == ["PlayAnnouncement", "PromptAndCollectUserInformation"]
        sw.cont(did, end=True)
        await rig.peer.wait(lambda: rig.node.user.open_dialogues == 0)
    finally:
        await stop(rig)
    assert [(e.number, e.kind) for e in await P.blacklist_list(clean_pool, CALLEE)] == [
        ("8613600001111", "exact")
    ]
    assert (
        await clean_pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE channel = 'ivr' AND action = 'create'"
        )
        == 1
    )


async def test_unknown_dialogue_and_abort(tmp_path: Path, clean_pool: Any) -> None:
    await provision(clean_pool)
    rig = await start(tmp_path, clean_pool, "ctr")
    sw = rig.sw
    try:
        did = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp())
        await sw.next(did)
        # The switch aborts: the session is gone, nothing is left open.
        rig.peer.request(TcUAbort(did))
        await asyncio.sleep(0.1)
        user = rig.node.user.users[0]
        assert user.active_calls == 0  # type: ignore[attr-defined]
    finally:
        await stop(rig)


async def test_answered_call_closes_and_caller_hangup_in_etc_menu(
    tmp_path: Path, clean_pool: Any
) -> None:
    await provision(clean_pool)
    rig = await start(tmp_path, clean_pool, "etc")
    sw = rig.sw
    try:
        # Answered: the notification closes our side with an empty TC-END.
        did = sw.begin(AC_CAP_V4_GSMSSF_SCF, idp())
        await sw.next(did)
        sw.cont(did, ops.EventReportBCSM(15, None, ops.LegID(2), message_type=1))
        msgs = await sw.next(did, 2)
        assert isinstance(msgs[1], TcEnd) and not msgs[1].components
        # CAP v2 busy -> ETC; the media server's gsmSRF dialogue; the caller hangs up.
        did = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp())
        await sw.next(did)
        sw.cont(did, erb(13))
        msgs = await sw.next(did, 2)
        ((_, etc),) = sw.ops_of(msgs[1])
        ms = sw.begin(AC_CAP_V2_SRF, ops.AssistRequestInstructions(etc.correlation_id, b"\x00"))
        (first,) = await sw.next(ms)
        assert names(sw, first) == ["PromptAndCollectUserInformation"]
        sw.cont(did, ops.EventReportBCSM(18, None, ops.LegID(1), message_type=1))
        got = await sw.next(ms, 2)
        assert isinstance(got[1], TcUAbort)
        msgs = await sw.next(did, 3)
        assert isinstance(msgs[2], TcEnd)
        # An assist dialogue naming no waiting call is refused.
        stray = sw.begin(
            AC_CAP_V2_SRF, ops.AssistRequestInstructions(GenericDigits("0000000099"), b"\x00")
        )
        (ab,) = await sw.next(stray)
        assert isinstance(ab, TcUAbort)
    finally:
        await stop(rig)
    assert await clean_pool.fetchval("SELECT count(*) FROM missed_call") == 1
