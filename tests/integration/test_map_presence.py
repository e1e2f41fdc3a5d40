"""MAP end to end over M3UA/TCP: an HLR / VLR peer ASP against the node's MAP user.

* HLR -> AlertServiceCentre v2 (result) and v1 alertServiceCentreWithoutResult (no result)
* VLR -> NoteMM-Event v3 (IMSI attach: present; detach: absent)
* an unsupported MAP version is refused in the AARE naming the one we serve (fallback)
* after a not-reachable missed call, the node sends SRI-SM then ReportSM-DeliveryStatus with
  our SC address to the simulated HLR, falling back from v3 to v2 when the HLR refuses v3

Presence is recorded in the real PostgreSQL and the waiting notifications are queued; every
frame both sides saw is read back by tshark.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import asyncpg
import pytest

from scp.adapters.clock import utcnow
from scp.app import Node, build_stack
from scp.codecs import map as mapc
from scp.codecs import ops
from scp.codecs.numbers import AddressString
from scp.config import Config, parse_config
from scp.flows import notify as notifications
from scp.flows import provisioning as prov
from scp.flows.presence import MapUser, alert_once, build_map_user
from scp.primitives import (
    DialogueDiagnostic,
    DialogueResult,
    GlobalTitle,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcEnd,
    TcUAbort,
)
from tests import tshark
from tests.dates import today
from tests.integration.peer import PeerAsp

# The node runs on the process's wall clock, and so do the rows written here: on any day.
pytestmark = [pytest.mark.integration, pytest.mark.tshark, pytest.mark.usefixtures("any_day")]

NODE_CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0.0
[sccp]
default_dpc = 200
[notify]
hlr_gt = "8613900006"
alert_timeout = 2.0
busy_window = 0.0
"""

# The far end as an HLR/VLR: SSN 6 (HLR) and 7 (VLR) are its subsystems.
HLR_CONFIG = """
[node]
name = "peer-hlr"
worker_id = 9
[m3ua]
role = "client"
peers = ["127.0.0.1:1"]
local_pc = 200
beat_interval = 0.0
[sccp]
global_title = "8613900000"
default_dpc = 100
[sccp.ssn]
map = 6
sc = 7
"""

AC_ALERT_V2 = (0, 4, 0, 0, 1, 0, 23, 2)
AC_ALERT_V1 = (0, 4, 0, 0, 1, 0, 23, 1)
AC_ALERT_V3 = (0, 4, 0, 0, 1, 0, 23, 3)  # does not exist in 29.002: we must refuse, naming v2
AC_MM_EVENT_V3 = (0, 4, 0, 0, 1, 0, 42, 3)
AC_GATEWAY_V3 = (0, 4, 0, 0, 1, 0, 20, 3)
AC_GATEWAY_V2 = (0, 4, 0, 0, 1, 0, 20, 2)

CALLEE = "8613912345678"
CALLER = "8613700000001"
IMSI = "460001234567890"

SC = SccpAddress(ri=RoutingIndicator.GT, ssn=8, gt=GlobalTitle("8613800000"))
GSMSCF = SccpAddress(ri=RoutingIndicator.GT, ssn=147, gt=GlobalTitle("8613800000"))
HLR = SccpAddress(ri=RoutingIndicator.GT, ssn=6, gt=GlobalTitle("8613900006"))
VLR = SccpAddress(ri=RoutingIndicator.GT, ssn=7, gt=GlobalTitle("8613900007"))

# AlertServiceCentreArg (TS 29.002 §12.5):
#   30 12                          SEQUENCE
#      04 08 91 68 31 19 32 54 76 f8   msisdn: international/E.164, TBCD 8613912345678
#      04 06 91 68 31 08 00 00         serviceCentreAddress: 8613800000
ASC_ARG = bytes.fromhex("30120408916831193254 76f8".replace(" ", "") + "0406916831080000")
# NoteMM-Event-Arg (TS 29.002 §8.11.2):
#   30 1a  02 01 64 serviceKey 100 | 80 01 02 eventMet imsi-Attach |
#          81 08 64 00 10 32 54 76 98 f0 imsi 460001234567890 | 82 08 91 ... msisdn
NOTE_MM_ATTACH = bytes.fromhex(
    "301a02016480010281086400103254769 8f0".replace(" ", "")
    + "82089168311932 5476f8".replace(" ", "")
)


class HlrPeer(PeerAsp):
    """PeerAsp with the HLR's subsystems (6, 7) instead of a switch's."""

    def __init__(self, pcap: Path | None = None) -> None:
        super().__init__(pcap)
        self.cfg = parse_config(HLR_CONFIG)
        self.stack = build_stack(self.cfg)


async def connect_hlr(port: int, pcap: Path) -> HlrPeer:
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_connection(lambda: HlrPeer(pcap), "127.0.0.1", port)
    return peer


def answers(peer: PeerAsp, did: int) -> list[object]:
    return [i for i in peer.indications if getattr(i, "dialogue_id", None) == did]


async def _setup(tmp_path: Path, pool: asyncpg.Pool) -> tuple[Node, HlrPeer, MapUser, Config]:
    cfg = parse_config(NODE_CONFIG)
    users: list[MapUser] = []

    def make(node: Node) -> list[MapUser]:
        users.append(build_map_user(node, pool, cfg))
        return users

    node = Node(cfg, capture=tmp_path / "node.pcap", users=make)  # type: ignore[arg-type]
    await node.start()
    peer = await connect_hlr(node.transport.listening[0][1], tmp_path / "peer.pcap")
    await peer.wait(lambda: peer.active)
    return node, peer, users[0], cfg


async def _teardown(node: Node, peer: HlrPeer, tmp_path: Path) -> None:
    peer.close()
    await node.stop()
    peer.finish()
    for name in ("node.pcap", "peer.pcap"):
        tshark.assert_clean(tmp_path / name)


async def _subscriber(pool: asyncpg.Pool, **kw: object) -> None:
    await prov.add_subscriber(
        pool,
        prov.Actor("cli", "test"),
        CALLEE,
        today=today(parse_config(NODE_CONFIG)),
        services=["missed-call"],
        imsi=IMSI,
        **kw,
    )  # type: ignore[arg-type]


async def _missed(
    pool: asyncpg.Pool,
    cfg: Config,
    reason: str = "not-reachable",
    caller: str = CALLER,
    at: dt.datetime | None = None,
) -> int:
    at = at or utcnow()
    async with pool.acquire() as conn, conn.transaction():
        mc = await conn.fetchval(
            "INSERT INTO missed_call (caller, callee, occurred_at, reason)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            caller,
            CALLEE,
            at,
            reason,
        )
        await notifications.on_missed_call(
            conn, missed_call_id=mc, caller=caller, callee=CALLEE, reason=reason, at=at, cfg=cfg
        )
    return int(mc)


def test_golden_args_both_ways() -> None:
    asc = ops.AlertServiceCentre(AddressString(CALLEE), AddressString("8613800000"))
    assert mapc.CODEC.encode_arg(asc, ac=AC_ALERT_V2) == (64, ASC_ARG)
    assert mapc.CODEC.decode_arg(64, ASC_ARG, ac=AC_ALERT_V2) == asc
    note = ops.NoteMMEvent(100, 2, IMSI, AddressString(CALLEE))
    assert mapc.CODEC.encode_arg(note, ac=AC_MM_EVENT_V3) == (89, NOTE_MM_ATTACH)
    assert mapc.CODEC.decode_arg(89, NOTE_MM_ATTACH, ac=AC_MM_EVENT_V3) == note


async def test_alert_service_centre_v2_and_v1(tmp_path: Path, clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    node, peer, user, cfg = await _setup(tmp_path, pool)
    try:
        await _subscriber(pool)
        await _missed(pool, cfg)
        await pool.execute(
            "INSERT INTO callback_request (caller, callee, requested_at) VALUES ($1, $2, $3)",
            CALLER,
            CALLEE,
            utcnow(),
        )
        # v2: AlertServiceCentre, answered with an empty ReturnResult in TC-END
        did = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did,
                called=SC,
                calling=HLR,
                application_context=AC_ALERT_V2,
                components=(Invoke(invoke_id=1, opcode=64, parameter=ASC_ARG),),
            )
        )
        await peer.wait(lambda: answers(peer, did))
        (end,) = answers(peer, did)
        assert isinstance(end, TcEnd) and end.application_context == AC_ALERT_V2
        assert [type(c) for c in end.components] == [ReturnResult]
        assert end.components[0].invoke_id == 1
        rows = await pool.fetch("SELECT destination, text FROM sms_outbox ORDER BY id")
        assert [(r["destination"], r["text"]) for r in rows][0][0] == CALLEE
        assert "13700000001" in rows[0]["text"] and "1次" in rows[0]["text"]
        assert rows[1]["destination"] == CALLER
        assert rows[1]["text"] == "您好,用户13912345678已可达,请及时联系。"
        p = await pool.fetchrow("SELECT present, source FROM presence WHERE msisdn = $1", CALLEE)
        assert (p["present"], p["source"]) == (True, "alert-sc")

        # v1: alertServiceCentreWithoutResult, a TC-END with no component; nothing resent
        did1 = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did1,
                called=SC,
                calling=HLR,
                application_context=AC_ALERT_V1,
                components=(Invoke(invoke_id=5, opcode=49, parameter=ASC_ARG, op_class=4),),
            )
        )
        await peer.wait(lambda: answers(peer, did1))
        (end1,) = answers(peer, did1)
        assert isinstance(end1, TcEnd) and end1.components == ()
        assert await pool.fetchval("SELECT count(*) FROM sms_outbox") == 2
    finally:
        await _teardown(node, peer, tmp_path)


async def test_note_mm_event_and_fallback_refusal(tmp_path: Path, clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    node, peer, user, cfg = await _setup(tmp_path, pool)
    try:
        await _subscriber(pool)
        await _missed(pool, cfg)
        did = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did,
                called=GSMSCF,
                calling=VLR,
                application_context=AC_MM_EVENT_V3,
                components=(Invoke(invoke_id=2, opcode=89, parameter=NOTE_MM_ATTACH),),
            )
        )
        await peer.wait(lambda: answers(peer, did))
        (end,) = answers(peer, did)
        assert isinstance(end, TcEnd) and end.application_context == AC_MM_EVENT_V3
        assert isinstance(end.components[0], ReturnResult)
        assert (
            await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE destination = $1", CALLEE)
            == 1
        )
        assert await pool.fetchval("SELECT source FROM presence") == "note-mm-event"

        # a detach: absent, answered, nothing queued
        detach = mapc.CODEC.encode_arg(
            ops.NoteMMEvent(100, 3, IMSI, AddressString(CALLEE)), ac=AC_MM_EVENT_V3
        )[1]
        did2 = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did2,
                called=GSMSCF,
                calling=VLR,
                application_context=AC_MM_EVENT_V3,
                components=(Invoke(invoke_id=1, opcode=89, parameter=detach),),
            )
        )
        await peer.wait(lambda: answers(peer, did2))
        assert await pool.fetchval("SELECT present FROM presence") is False

        # shortMsgAlert v3 does not exist: refused in the AARE, naming v2 for the fallback
        did3 = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did3,
                called=SC,
                calling=HLR,
                application_context=AC_ALERT_V3,
                components=(Invoke(invoke_id=1, opcode=64, parameter=ASC_ARG),),
            )
        )
        await peer.wait(lambda: answers(peer, did3))
        (ab,) = answers(peer, did3)
        assert isinstance(ab, TcUAbort)
        assert ab.result == DialogueResult.REJECT_PERMANENT
        assert ab.diagnostic == DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
        assert ab.application_context == AC_ALERT_V2

        # an operation the context does not carry: rejected, dialogue ended. UpdateLocationArg
        # {imsi, msc-Number 8613800000, vlr-Number 8613800000}: a valid value of another
        # context, so the strict oracle reads the HLR's frame too.
        update_location = bytes.fromhex(
            "301a0408640010325476 98f0".replace(" ", "") + "81069168310800000406916831080000"
        )
        did4 = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did4,
                called=SC,
                calling=HLR,
                application_context=AC_ALERT_V2,
                components=(Invoke(invoke_id=3, opcode=2, parameter=update_location),),
            )
        )
        await peer.wait(lambda: answers(peer, did4))
        (end4,) = answers(peer, did4)
        assert isinstance(end4, TcEnd) and isinstance(end4.components[0], Reject)
    finally:
        await _teardown(node, peer, tmp_path)


async def test_sri_sm_then_report_sm_delivery_status(
    tmp_path: Path, clean_pool: asyncpg.Pool
) -> None:
    pool = clean_pool
    node, peer, user, cfg = await _setup(tmp_path, pool)
    seen: list[TcBegin] = []
    answered: set[int] = set()

    async def hlr() -> None:
        """The simulated HLR: refuses v3 (naming v2), then SRI-SM -> absentSubscriberSM,
        ReportSM-DeliveryStatus -> empty result."""
        while True:
            for ind in list(peer.indications):
                if type(ind) is not TcBegin or ind.dialogue_id in answered:
                    continue
                answered.add(ind.dialogue_id)
                seen.append(ind)
                ac = ind.application_context
                if ac == AC_GATEWAY_V3:
                    peer.request(
                        TcUAbort(
                            dialogue_id=ind.dialogue_id,
                            application_context=AC_GATEWAY_V2,
                            result=DialogueResult.REJECT_PERMANENT,
                            diagnostic=DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
                        )
                    )
                    continue
                inv = ind.components[0]
                assert isinstance(inv, Invoke)
                if inv.opcode == 45:
                    code, param = mapc.CODEC.encode_error(
                        ops.OperationError(6, "absentSubscriberSM", ops.AbsentSubscriberSM(1)),
                        ac=ac,
                    )
                    comp: object = ReturnError(
                        invoke_id=inv.invoke_id, error_code=code, parameter=param
                    )
                else:
                    comp = ReturnResult(invoke_id=inv.invoke_id, opcode=47)
                peer.request(
                    TcEnd(dialogue_id=ind.dialogue_id, application_context=ac, components=(comp,))
                )  # type: ignore[arg-type]
            await asyncio.sleep(0.01)

    task = asyncio.create_task(hlr())
    try:
        await _subscriber(pool)
        await _missed(pool, cfg)
        row = await pool.fetchrow("SELECT status FROM hlr_alert WHERE msisdn = $1", CALLEE)
        assert row["status"] == "pending"
        assert await alert_once(user, pool, cfg, clock=utcnow) == 1
        row = await pool.fetchrow("SELECT status, attempts, registered_at FROM hlr_alert")
        assert row["status"] == "registered" and row["registered_at"] is not None
        assert [(b.application_context, b.components[0].opcode) for b in seen] == [  # type: ignore[union-attr]
            (AC_GATEWAY_V3, 45),
            (AC_GATEWAY_V2, 45),
            (AC_GATEWAY_V2, 47),
        ]  # v2 kept once learnt
        sri = mapc.CODEC.decode_arg(45, seen[1].components[0].parameter, ac=AC_GATEWAY_V2)  # type: ignore[union-attr]
        assert isinstance(sri, ops.SendRoutingInfoForSM)
        assert sri.msisdn.digits == CALLEE and sri.service_centre_address.digits == "8613800000"
        rep = mapc.CODEC.decode_arg(47, seen[2].components[0].parameter, ac=AC_GATEWAY_V2)  # type: ignore[union-attr]
        assert isinstance(rep, ops.ReportSMDeliveryStatus) and rep.sm_delivery_outcome == 1
        assert seen[1].called.gt == GlobalTitle("8613900006") and seen[1].called.ssn == 6
        # a second missed call within alert_refresh does not register again
        await _missed(pool, cfg)
        assert await alert_once(user, pool, cfg, clock=utcnow) == 0
    finally:
        task.cancel()
        await _teardown(node, peer, tmp_path)
    # Wireshark's reading of the exchange: SRI-SM twice (v3 refused in an ABORT, then v2),
    # absentSubscriberSM, ReportSM-DeliveryStatus and its result (no value: its RESULT is
    # optional, TS 29.002 §12.3, so the invoke ID alone and no opcode to show)
    info = [
        r[1]
        for r in tshark.fields(
            tmp_path / "node.pcap", ["frame.number", "_ws.col.Info"], display_filter="gsm_map"
        )
    ]
    assert [i.strip() for i in info] == [
        "invoke sendRoutingInfoForSM",
        "invoke sendRoutingInfoForSM",
        "returnError",
        "invoke reportSM-DeliveryStatus",
        "returnResultLast",
    ]


async def test_hlr_silent_is_retried_then_given_up(
    tmp_path: Path, clean_pool: asyncpg.Pool
) -> None:
    pool = clean_pool
    node, peer, user, cfg = await _setup(tmp_path, pool)
    try:
        await _subscriber(pool)
        await _missed(pool, cfg)
        # nobody answers: invoke timer (2 s) -> retry with backoff, row visible as pending
        t0 = utcnow()
        assert await alert_once(user, pool, cfg, clock=utcnow) == 1
        row = await pool.fetchrow(
            "SELECT status, attempts, last_error, next_attempt_at FROM hlr_alert"
        )
        assert row["status"] == "pending" and row["attempts"] == 1
        assert "timeout" in row["last_error"] or "abort" in row["last_error"]
        assert row["next_attempt_at"] > t0
    finally:
        await _teardown(node, peer, tmp_path)
