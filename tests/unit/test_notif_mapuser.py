"""The MAP TC-user's decisions (scp.flows.presence.plan_begin) and its answer timing, without a
network.

Golden cases: a TC-BEGIN as the HLR/VLR sends it (parameters as commented wire bytes) and the
exact answer; a fuzz run of 10,000 mutated TC-BEGINs that must all be answered, never raise.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from scp.codecs.tcap import encode_component
from scp.flows.presence import MapUser, PresenceEvent, is_map_context, plan_begin
from scp.primitives import (
    DialogueDiagnostic,
    DialogueResult,
    GlobalTitle,
    Invoke,
    LCancel,
    PAbortCause,
    ProblemType,
    Reject,
    ReturnError,
    ReturnResult,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcComponentEvent,
    TcContinue,
    TcEnd,
    TcNotice,
    TcPAbort,
    TcPrimitive,
    TcUAbort,
)

# Fixed times only: the same on any day and in any time zone (tests/dates.py).
pytestmark = pytest.mark.usefixtures("any_day")

SC = SccpAddress(ri=RoutingIndicator.GT, ssn=8, gt=GlobalTitle("8613800000"))
CAP = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000"))
HLR = SccpAddress(ri=RoutingIndicator.GT, ssn=6, gt=GlobalTitle("8613900006"))

AC_ALERT_V1 = (0, 4, 0, 0, 1, 0, 23, 1)
AC_ALERT_V2 = (0, 4, 0, 0, 1, 0, 23, 2)
AC_MWD_V3 = (0, 4, 0, 0, 1, 0, 24, 3)
AC_MM_V3 = (0, 4, 0, 0, 1, 0, 42, 3)
AC_MM_V2 = (0, 4, 0, 0, 1, 0, 42, 2)  # mm-EventReporting exists only as v3
AC_CAP_V2 = (0, 4, 0, 0, 1, 0, 50, 1)

# AlertServiceCentreArg: 30 12 | 04 08 91 68 31 19 32 54 76 f8 (msisdn 8613912345678)
#                              | 04 06 91 68 31 08 00 00       (SC address 8613800000)
ASC = bytes.fromhex("3012040891683119325476f80406916831080000")
# NoteMM-Event-Arg: 30 1a | 02 01 64 serviceKey 100 | 80 01 02 eventMet imsi-Attach
#   | 81 08 64 00 10 32 54 76 98 f0 imsi 460001234567890 | 82 08 91 68 31 19 32 54 76 f8 msisdn
NOTE_ATTACH = bytes.fromhex("301a020164800102810864001032547698f0820891683119325476f8")
NOTE_DETACH = NOTE_ATTACH[:7] + b"\x03" + NOTE_ATTACH[8:]
# ReadyForSM-Arg: 30 0d | 80 08 64 00 10 32 54 76 98 f0 imsi | 0a 01 00 alertReason ms-Present
READY = bytes.fromhex("300d8008640010325476 98f00a0100".replace(" ", ""))


def begin(ac: tuple[int, ...] | None, *comps: Invoke, called: SccpAddress = SC) -> TcBegin:
    return TcBegin(
        dialogue_id=7, called=called, calling=HLR, application_context=ac, components=comps
    )


def test_alert_service_centre_v2_gets_an_empty_result() -> None:
    p = plan_begin(begin(AC_ALERT_V2, Invoke(1, 64, ASC)))
    assert p.refuse is None
    assert p.events == (
        PresenceEvent(True, "alert-sc", msisdn="8613912345678", detail="sc=8613800000"),
    )
    assert p.ok == (ReturnResult(invoke_id=1, opcode=64),)
    # on the wire: ReturnResultLast with the invoke ID alone (RETURN RESULT TRUE, no value)
    assert encode_component(p.ok[0]).hex() == "a203020101"
    assert p.failed == (ReturnError(invoke_id=1, error_code=34),)
    assert p.end(p.ok) == TcEnd(dialogue_id=7, application_context=AC_ALERT_V2, components=p.ok)


def test_national_msisdn_is_stored_as_e164() -> None:
    """An HLR sending the MSISDN in national form (AddressString nature 2, 0xa1) must still find
    the subscriber: the presence is keyed by the E.164 number the subscriber was provisioned with."""
    # 30 11 | 04 07 a1 31 19 32 54 76 f8 (msisdn 13912345678, national) | 04 06 91 ... (SC)
    national = bytes.fromhex("30110407a1311932547 6f80406916831080000".replace(" ", ""))
    p = plan_begin(begin(AC_ALERT_V2, Invoke(1, 64, national)))
    assert p.events == (
        PresenceEvent(True, "alert-sc", msisdn="8613912345678", detail="sc=8613800000"),
    )


def test_alert_without_result_v1_and_without_dialogue_portion() -> None:
    for ac in (AC_ALERT_V1, None):
        p = plan_begin(begin(ac, Invoke(3, 49, ASC, op_class=4)))
        assert p.events[0].msisdn == "8613912345678"
        assert p.ok == () and p.failed == ()
        assert p.end(p.ok).application_context == ac


def test_note_mm_event_attach_and_detach() -> None:
    p = plan_begin(begin(AC_MM_V3, Invoke(2, 89, NOTE_ATTACH)))
    assert p.events == (
        PresenceEvent(
            True,
            "note-mm-event",
            msisdn="8613912345678",
            imsi="460001234567890",
            detail="mm-code=2",
        ),
    )
    assert p.ok == (ReturnResult(invoke_id=2, opcode=89, parameter=b"\x30\x00"),)
    # ReturnResultLast { invokeID 2, result { opcode 89, NoteMM-Event-Res {} } }
    assert encode_component(p.ok[0]).hex() == "a20a02010230050201593000"
    p = plan_begin(begin(AC_MM_V3, Invoke(2, 89, NOTE_DETACH)))
    assert p.events[0].present is False


def test_ready_for_sm_by_imsi() -> None:
    p = plan_begin(begin(AC_MWD_V3, Invoke(4, 66, READY)))
    assert p.events == (
        PresenceEvent(True, "alert-sc", imsi="460001234567890", detail="ready-for-sm reason=0"),
    )
    assert p.ok == (ReturnResult(invoke_id=4, opcode=66, parameter=b"\x30\x00"),)


def test_unsupported_version_refused_naming_ours() -> None:
    p = plan_begin(begin(AC_MM_V2, Invoke(1, 89, NOTE_ATTACH)))
    assert p.refuse == TcUAbort(
        dialogue_id=7,
        application_context=AC_MM_V3,
        result=DialogueResult.REJECT_PERMANENT,
        diagnostic=DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
    )
    unknown = (0, 4, 0, 0, 1, 0, 1, 3)  # networkLocUp: not ours at all
    p = plan_begin(begin(unknown))
    assert p.refuse is not None and p.refuse.application_context == unknown


def test_bad_operations_rejected() -> None:
    p = plan_begin(
        begin(AC_ALERT_V2, Invoke(1, 2, b"\x30\x00"), Invoke(2, 64, b"\x30\x02\x04\x00"))
    )
    assert p.ok == (Reject(1, ProblemType.INVOKE, 1), Reject(2, ProblemType.INVOKE, 2))
    assert p.events == ()


def test_context_ownership() -> None:
    assert is_map_context(begin(AC_ALERT_V2), (147, 8))
    assert is_map_context(begin(None), (147, 8))
    assert not is_map_context(begin(None, called=CAP), (147, 8))
    assert not is_map_context(begin(AC_CAP_V2), (147, 8))
    assert is_map_context(begin((0, 4, 0, 0, 1, 0, 99, 3)), (147, 8))


def test_fuzz_ten_thousand_begins() -> None:
    rng = random.Random(2026)
    acs = [
        AC_ALERT_V1,
        AC_ALERT_V2,
        AC_MWD_V3,
        AC_MM_V3,
        AC_MM_V2,
        None,
        (0, 4, 0, 0, 1, 0, 20, 3),
        (0, 4, 0, 0, 1, 0, 23, 9),
    ]
    seeds = [(64, ASC), (49, ASC), (89, NOTE_ATTACH), (66, READY), (45, ASC), (7, b"")]

    def mutate(b: bytes) -> bytes:
        data = bytearray(b)
        for _ in range(rng.randrange(0, 4)):
            op = rng.randrange(3)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1 and data:
                del data[rng.randrange(len(data)) :]
            else:
                data[rng.randrange(len(data) + 1) : 0] = bytes([rng.randrange(256)])
        return bytes(data)

    for _ in range(10_000):
        comps = []
        for iid in range(rng.randrange(0, 3)):
            op, param = rng.choice(seeds)
            comps.append(
                Invoke(
                    iid,
                    op if rng.random() < 0.9 else rng.randrange(200),
                    mutate(param) if rng.random() < 0.8 else None,
                )
            )
        p = plan_begin(begin(rng.choice(acs), *comps))
        if p.refuse is None:
            assert len(p.ok) <= len(comps) and len(p.failed) == len(p.ok)


async def test_answer_only_after_the_record_and_system_failure_when_it_fails() -> None:
    sent: list[TcPrimitive] = []
    recorded: list[tuple[PresenceEvent, ...]] = []
    gate = asyncio.Event()

    async def record(events: tuple[PresenceEvent, ...]) -> None:
        await gate.wait()
        if events[0].msisdn is None:
            raise OSError("database down")
        recorded.append(events)

    user = MapUser(send=sent.append, new_dialogue_id=lambda u: 1, record=record)
    assert user.handle(begin(AC_ALERT_V2, Invoke(1, 64, ASC))) == []
    assert sent == []  # nothing before the event is durable
    gate.set()
    await user.drain()
    assert recorded and sent == [
        TcEnd(
            dialogue_id=7,
            application_context=AC_ALERT_V2,
            components=(ReturnResult(invoke_id=1, opcode=64),),
        )
    ]
    sent.clear()
    assert user.handle(begin(AC_MWD_V3, Invoke(4, 66, READY))) == []
    await user.drain()
    assert sent == [
        TcEnd(
            dialogue_id=7,
            application_context=AC_MWD_V3,
            components=(ReturnError(invoke_id=4, error_code=34),),
        )
    ]


@pytest.mark.parametrize("ind", [object(), TcEnd(dialogue_id=99), None])
def test_stray_indications_are_ignored(ind: object) -> None:
    user = MapUser(send=lambda p: None, new_dialogue_id=lambda u: 1, record=None)  # type: ignore[arg-type]
    assert user.handle(ind) == []


_SETTLE_CASES = [
    (TcEnd(5, components=(ReturnResult(1, 45, b"\x30\x00"),)), "result", []),
    (TcContinue(5, components=(ReturnError(1, 6),)), "error", [TcEnd(dialogue_id=5)]),
    (TcEnd(5), "abort", []),
    (
        TcUAbort(5, diagnostic=DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED),
        "refused",
        [],
    ),
    (TcPAbort(5, PAbortCause.RESOURCE_LIMITATION), "abort", []),
    (TcNotice(5, 1), "abort", []),
    (TcComponentEvent(5, LCancel(1)), "timeout", [TcUAbort(dialogue_id=5)]),
]


@pytest.mark.parametrize(
    ("ind", "kind", "closes"), _SETTLE_CASES, ids=[type(c[0]).__name__ for c in _SETTLE_CASES]
)
def test_each_indication_settles_the_request_waiting_on_its_dialogue(
    ind: TcPrimitive, kind: str, closes: list[TcPrimitive]
) -> None:
    """Whatever ends or answers a dialogue we opened toward the HLR gives the request its
    outcome, and the requests that close it on our side."""

    async def run() -> tuple[str, list[TcPrimitive]]:
        user = MapUser(send=lambda p: None, new_dialogue_id=lambda u: 5, record=None)  # type: ignore[arg-type]
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        user._waiters[5] = fut  # type: ignore[assignment]
        out = user.handle(ind)
        return fut.result().kind, out  # type: ignore[attr-defined]

    assert asyncio.run(run()) == (kind, closes)
