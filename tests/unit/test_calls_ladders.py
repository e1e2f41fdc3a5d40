"""Message ladders against the pure call service: every path, no database, no sockets.

Each test feeds a :class:`CallSession` the operations a switch / media server would send and
checks the actions in order (what is sent on which dialogue, how it closes, what is written).
A seeded random walk at the end checks that no event sequence raises.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from decimal import Decimal
from typing import Any

import pytest

from scp.codecs import ops
from scp.codecs.numbers import CalledPartyNumber, CallingPartyNumber, Cause, GenericDigits
from scp.service.calls import (
    ASSIST,
    CALL,
    CALL_FSM,
    Callee,
    CallEvent,
    CallSession,
    CallSettings,
    DigitsCollected,
    ExpectAssist,
    Finished,
    LegClosed,
    OpFailed,
    OpReceived,
    Phase,
    RecordCallback,
    RecordMissedCall,
    RecordVoicemail,
    Refuse,
    Send,
    TimerExpired,
    WriteCdr,
    classify_busy,
    event_of,
)
from scp.service.rating import PairTariff, RateTable, RatingRules, Tariff
from scp.service.selfcare import SELFCARE_FSM, SelfcareSession, ServiceAnswer, ServiceRequest

# Fixed times only: the same on any day and in any time zone (tests/dates.py).
pytestmark = pytest.mark.usefixtures("any_day")

AT = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
CALLEE = "8613912345678"
CALLER = "8613700001111"
ANN = dict(
    menu=1001,
    invalid=1002,
    goodbye=1003,
    enter_number=1004,
    callback_ok=1005,
    pin=2001,
    pin_wrong=2002,
    pin_locked=2003,
    selfcare_menu=2004,
    missed_calls=2005,
    done=2006,
    not_subscribed=2007,
    on_off=2008,
    add_remove=2009,
    new_pin=2010,
    notify_mode=2011,
    voicemail_new=2012,
    service_choice=2013,
    enter_msisdn=2014,
)
SUB = Callee(CALLEE, True, frozenset({"missed-call", "busy", "voicemail"}))
BUSY_ONLY = Callee(CALLEE, True, frozenset({"busy"}))
MISSED_ONLY = Callee(CALLEE, True, frozenset({"missed-call"}))
RATES = RateTable(
    RatingRules(local_prefixes=("86139",)),
    (
        Tariff("local", "", Decimal("0.10"), per_use=Decimal("0")),
        Tariff("national", "", Decimal("0.30")),
    ),
)


def settings(**kw: object) -> CallSettings:
    return CallSettings(ann=ANN, **kw)  # type: ignore[arg-type]


def idp(key: int = 100, caller: str = CALLER, presentation: int = 0) -> ops.InitialDP:
    return ops.InitialDP(
        key,
        CalledPartyNumber(CALLEE),
        CallingPartyNumber(caller, presentation=presentation),
        event_type_bcsm=12,
    )


def erb(et: int, cause: int | None = None) -> OpReceived:
    info = ops.EventSpecificInfo("tBusySpecificInfo", Cause(cause) if cause else None)
    return OpReceived(ops.EventReportBCSM(et, info if et == 13 else None, message_type=0))


def names(a: object) -> list[str]:
    assert isinstance(a, Send)
    return [type(o).__name__ for o in a.ops]


def armed(
    mode: str = "connect",
    callee: Callee = SUB,
    protocol: str = "cap2",
    rates: RateTable = RATES,
    **kw: object,
) -> CallSession:
    s = CallSession(
        settings(ivr_mode=mode, **kw),
        call_ref="scp-1:1",
        protocol=protocol,
        rates=rates,
        correlation_id="0000000001",
    )
    out = s.start(idp(), callee, 0.0, AT)
    (send,) = out
    assert names(send) == ["RequestReportBCSMEvent", "Continue"] and send.close == "continue"
    return s


# -- InitialDP ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "callee",
    [
        None,
        Callee(CALLEE, active=False, services=frozenset({"missed-call"})),
        Callee(CALLEE, services=frozenset()),
        Callee(CALLEE, services=frozenset({"missed-call"}), blacklisted=True),
    ],
    ids=["not-subscriber", "suspended", "service-off", "blacklisted"],
)
def test_initialdp_not_served_continue_nothing_armed(callee: Callee | None) -> None:
    s = CallSession(settings(), call_ref="r", protocol="cap2")
    out = s.start(idp(), callee, 0.0, AT)
    assert names(out[0]) == ["Continue"] and out[0].close == "end"  # type: ignore[union-attr]
    assert isinstance(out[1], Finished) and len(out) == 2


def test_rrbe_arms_busy_no_answer_interrupted_answer_abandon_notify() -> None:
    s = CallSession(settings(no_answer_timer=25), call_ref="r", protocol="cap4")
    (send,) = s.start(idp(), SUB, 0.0, AT)
    rrbe = send.ops[0]  # type: ignore[union-attr]
    assert isinstance(rrbe, ops.RequestReportBCSMEvent)
    assert [(e.event_type_bcsm, e.monitor_mode, e.application_timer) for e in rrbe.bcsm_events] == [
        (13, 0, None),
        (14, 0, 25),
        (15, 1, None),
        (18, 1, None),
    ]


@pytest.mark.parametrize(
    "cause,reason",
    [
        (None, "busy"),
        (17, "busy"),
        (18, "not-reachable"),
        (20, "not-reachable"),
        (27, "not-reachable"),
        (21, "busy"),
    ],
)
def test_classify_busy(cause: int | None, reason: str) -> None:
    assert classify_busy(cause, frozenset({18, 19, 20, 27, 31})) == reason


@pytest.mark.parametrize("et,outcome", [(15, "answered"), (18, "abandoned")])
def test_answered_or_abandoned_closes_cleanly(et: int, outcome: str) -> None:
    s = armed()
    out = s.handle(erb(et), 1.0, AT)
    assert out[0] == Send((), CALL, "end") and out[1] == Finished(outcome)


# -- connect mode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("carry", ["original-called", "redirecting", "prefix"])
def test_busy_connect_mode_records_then_connects_ivr(carry: str) -> None:
    s = armed(ivr_called_party=carry)
    out = s.handle(erb(13, 17), 1.0, AT)
    assert out[0] == RecordMissedCall(CALLER, CALLEE, "busy", 17, "scp-1:1", AT)
    assert isinstance(out[1], Send) and out[1].close == "end"
    (c,) = out[1].ops
    assert isinstance(c, ops.Connect)
    if carry == "prefix":
        assert c.destination_routing_address[0].digits == "8613800999" + CALLEE
    else:
        assert c.destination_routing_address[0].digits == "8613800999"
        rn = c.original_called_party_id if carry == "original-called" else c.redirecting_party_id
        assert rn is not None and rn.digits == CALLEE
    assert out[2] == Finished("ivr-connect")


def test_no_answer_records_no_answer_and_restricted_caller_is_not_stored() -> None:
    s = CallSession(settings(), call_ref="r", protocol="cap2")
    s.start(idp(presentation=1), SUB, 0.0, AT)
    out = s.handle(erb(14), 1.0, AT)
    assert out[0] == RecordMissedCall(None, CALLEE, "no-answer", None, "r", AT)


# -- two products: missed-call (not reachable, no answer) and busy --------------------------------


@pytest.mark.parametrize(
    "callee,et,cause,served",
    [
        (BUSY_ONLY, 13, 17, True),
        (BUSY_ONLY, 13, 20, False),
        (MISSED_ONLY, 13, 17, False),
        (MISSED_ONLY, 13, 20, True),
        (MISSED_ONLY, 14, None, True),
    ],
    ids=[
        "busy-only-busy",
        "busy-only-unreachable",
        "missed-only-busy",
        "missed-only-unreachable",
        "missed-only-no-answer",
    ],
)
def test_each_reason_is_treated_under_its_own_product(
    callee: Callee, et: int, cause: int | None, served: bool
) -> None:
    s = armed(callee=callee)
    out = s.handle(erb(et, cause), 1.0, AT)
    if served:
        assert isinstance(out[0], RecordMissedCall)
        assert out[-1] == Finished("ivr-connect")
    else:  # the other product's call: untouched, nothing recorded, no menu
        assert out == [Send((ops.Continue(),), CALL, "end"), Finished("not-served")]


def test_busy_only_subscriber_is_not_armed_for_no_answer() -> None:
    s = CallSession(settings(), call_ref="r", protocol="cap2")
    (send,) = s.start(idp(), BUSY_ONLY, 0.0, AT)
    rrbe = send.ops[0]  # type: ignore[union-attr]
    assert isinstance(rrbe, ops.RequestReportBCSMEvent)
    assert [e.event_type_bcsm for e in rrbe.bcsm_events] == [13, 15, 18]


# -- ctr mode: the caller's menu ------------------------------------------------------------------


def menu_session(mode: str = "ctr", **kw: object) -> CallSession:
    s = armed(mode, **kw)
    out = s.handle(erb(13, 20), 1.0, AT)
    assert isinstance(out[0], RecordMissedCall) and out[0].reason == "not-reachable"
    if mode == "ctr":
        assert names(out[1]) == ["ConnectToResource", "PromptAndCollectUserInformation"]
    else:
        assert isinstance(out[1], ExpectAssist) and out[1].correlation_id == "0000000001"
        assert names(out[2]) == ["EstablishTemporaryConnection"]
        etc = out[2].ops[0]  # type: ignore[union-attr]
        assert etc.correlation_id.digits == "0000000001" and etc.scf_id  # type: ignore[attr-defined]
        assert s.next_deadline() == pytest.approx(11.0)
        out = s.handle(
            OpReceived(ops.AssistRequestInstructions(etc.correlation_id), ASSIST), 2.0, AT
        )  # type: ignore[attr-defined]
        assert out[0].leg == ASSIST and names(out[0]) == ["PromptAndCollectUserInformation"]  # type: ignore[union-attr]
    assert s.phase is Phase.MENU
    return s


def test_menu_1_callback_request_then_announcement_then_release_no_fee_yet() -> None:
    s = menu_session()
    out = s.handle(DigitsCollected("1"), 2.0, AT)
    assert isinstance(out[0], RecordCallback) and out[0].caller == CALLER
    assert out[0].expires_at == AT + dt.timedelta(hours=24)
    # the fee is the SMS's, charged when it goes out (scp.flows.billing): nothing at the digit
    assert not any(isinstance(a, WriteCdr) for a in out)
    assert names(out[1]) == ["PlayAnnouncement"]
    assert s.next_deadline() == pytest.approx(62.0)
    out = s.handle(OpReceived(ops.SpecializedResourceReport()), 3.0, AT)
    assert names(out[0]) == ["ReleaseCall"] and out[0].close == "end"  # type: ignore[union-attr]
    assert isinstance(out[-1], Finished)


def test_menu_announcement_lost_releases_on_timer() -> None:
    s = menu_session()
    s.handle(DigitsCollected("1"), 2.0, AT)
    assert s.handle_timer(10.0, AT) == []
    out = s.handle_timer(62.0, AT)
    assert names(out[0]) == ["ReleaseCall"]


def test_menu_2_voicemail_connects_deposit_after_dfc() -> None:
    s = menu_session()
    out = s.handle(DigitsCollected("2"), 2.0, AT)
    assert isinstance(out[0], RecordVoicemail) and out[0].callee == CALLEE
    assert names(out[1]) == ["DisconnectForwardConnection", "Connect"]
    assert out[1].ops[1].destination_routing_address[0].digits == "8613800200"  # type: ignore[union-attr,attr-defined]
    assert out[2] == Finished("voicemail")


def test_menu_0_operator() -> None:
    s = menu_session()
    out = s.handle(DigitsCollected("0"), 2.0, AT)
    assert out[0].ops[1].destination_routing_address[0].digits == "8613800100"  # type: ignore[union-attr,attr-defined]


def test_menu_wrong_input_repeats_then_goodbye() -> None:
    s = menu_session(menu_retries=2)
    out = s.handle(DigitsCollected("9"), 2.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (1002, 1001)  # type: ignore[union-attr,attr-defined]
    out = s.handle(OpFailed("improperCallerResponse"), 3.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (1003,)  # type: ignore[union-attr,attr-defined]
    assert s.phase is Phase.ANNOUNCING


def test_menu_3_other_number_charged_with_apply_charging() -> None:
    s = menu_session()
    out = s.handle(DigitsCollected("3"), 2.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (1004,)  # type: ignore[union-attr,attr-defined]
    out = s.handle(DigitsCollected("0108888777"), 3.0, AT)
    assert names(out[0]) == ["DisconnectForwardConnection", "ApplyCharging", "Connect"]
    assert out[0].ops[2].destination_routing_address[0].digits == "86108888777"  # type: ignore[union-attr,attr-defined]
    acr = ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(3000), call_active=True)
    out = s.handle(OpReceived(acr), 300.0, AT)
    assert names(out[0]) == ["ApplyCharging"]
    end = AT + dt.timedelta(minutes=6)
    acr = ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(3601), call_active=False)
    out = s.handle(OpReceived(acr), 360.0, end)
    cdr = out[0]
    assert isinstance(cdr, WriteCdr)
    assert (cdr.msisdn, cdr.callee, cdr.call_category, cdr.duration_s, cdr.charge) == (
        CALLER,
        "86108888777",
        "national",
        361,
        Decimal("2.10"),
    )
    assert out[1] == Send((), CALL, "end") and isinstance(out[2], Finished)


def test_menu_3_bad_number_reprompts() -> None:
    s = menu_session()
    s.handle(DigitsCollected("3"), 2.0, AT)
    out = s.handle(DigitsCollected("12"), 3.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (1002, 1004)  # type: ignore[union-attr,attr-defined]


def test_caller_hangs_up_in_menu() -> None:
    s = menu_session("etc")
    out = s.handle(erb(18), 3.0, AT)
    assert out[0] == Send((), ASSIST, "abort")
    assert out[1] == Send((), CALL, "end") and isinstance(out[2], Finished)


def test_switch_aborts_during_menu() -> None:
    s = menu_session("etc")
    out = s.handle(LegClosed(CALL, aborted=True), 3.0, AT)
    assert out == [Send((), ASSIST, "abort"), Finished("aborted")]


# -- etc mode -------------------------------------------------------------------------------------


def test_etc_menu_then_dfc_then_operator() -> None:
    s = menu_session("etc")
    out = s.handle(DigitsCollected("0", ASSIST), 3.0, AT)
    assert out[0] == Send((), ASSIST, "end")
    assert names(out[1]) == ["DisconnectForwardConnection", "Connect"] and out[1].leg == CALL  # type: ignore[union-attr]


def test_etc_no_assist_in_time_releases() -> None:
    s = armed("etc")
    s.handle(erb(14), 1.0, AT)
    out = s.handle_timer(11.0, AT)
    assert names(out[0]) == ["ReleaseCall"] and out[-1] == Finished("assist-timeout")


def test_media_server_gone_releases_call() -> None:
    s = menu_session("etc")
    out = s.handle(LegClosed(ASSIST, aborted=True), 3.0, AT)
    assert names(out[0]) == ["ReleaseCall"]


# -- forwarding and INAP charging -----------------------------------------------------------------


def test_forwarding_busy_is_connected_with_charging_not_recorded() -> None:
    sub = Callee(CALLEE, True, frozenset({"missed-call", "forwarding"}), "8613955556666")
    s = armed(callee=sub)
    out = s.handle(erb(13, 17), 1.0, AT)
    assert names(out[0]) == ["ApplyCharging", "Connect"]
    assert not any(isinstance(a, RecordMissedCall) for a in out)
    # No answer is not forwarded by default: the menu path (connect mode) instead.
    s2 = armed(callee=sub)
    out = s2.handle(erb(14), 1.0, AT)
    assert isinstance(out[0], RecordMissedCall)


def test_inap_charging_uses_call_information_request() -> None:
    sub = Callee(CALLEE, True, frozenset({"forwarding"}), "8613955556666")
    s = armed(callee=sub, protocol="inap")
    out = s.handle(erb(13), 1.0, AT)
    assert names(out[0]) == ["CallInformationRequest", "Connect"]
    rep = ops.CallInformationReport((ops.RequestedInformation(2, 600),))
    out = s.handle(OpReceived(rep), 61.0, AT)
    assert isinstance(out[0], WriteCdr) and out[0].duration_s == 60
    assert out[0].call_category == "local" and out[0].charge == Decimal("0.10")


def test_tariff_day_is_the_networks_not_utcs() -> None:
    # 2026-11-30 16:30 UTC is already 1 December in Shanghai ([notify] timezone): the
    # December tariff applies, whatever UTC's date or the machine's zone says.
    at = dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC)
    rates = RateTable(
        RatingRules(local_prefixes=("86139",)),
        (
            Tariff("local", "", Decimal("0.10")),
            Tariff("local", "", Decimal("0.50"), valid_from=dt.date(2026, 12, 1)),
        ),
    )
    sub = Callee(CALLEE, True, frozenset({"forwarding"}), "8613955556666")
    for tz, charge in (("Asia/Shanghai", "0.50"), ("UTC", "0.10")):
        s = CallSession(
            settings(timezone=tz),
            call_ref="scp-1:1",
            protocol="inap",
            rates=rates,
            correlation_id="0000000001",
        )
        s.start(idp(), sub, 0.0, at)
        s.handle(erb(13), 1.0, at)
        rep = ops.CallInformationReport((ops.RequestedInformation(2, 600),))
        (cdr, *_) = s.handle(OpReceived(rep), 61.0, at + dt.timedelta(minutes=1))
        assert isinstance(cdr, WriteCdr) and cdr.charge == Decimal(charge), tz


# Pair tariffs (rate_pair) over RATES: each would be wrong if the call path rated by another
# number than the paying subscriber's (the forwarding subscriber; the caller for menu 3).
PAIR_RATES = RateTable(
    RATES.rules,
    RATES.tariffs,
    pairs=(
        PairTariff("861391234", "86139555", "on-net", per_minute=Decimal("0.05")),
        PairTariff("8613700", "8610", "local", Decimal("0.20"), per_use=Decimal("0.50")),
        # the other party's number: never the payer in these calls
        PairTariff("8613700", "86139555", "international", Decimal("9.00")),
        PairTariff("861391234", "8610", "international", Decimal("9.00")),
    ),
)


def test_forwarded_call_is_rated_by_the_forwarding_subscribers_pair() -> None:
    sub = Callee(CALLEE, True, frozenset({"forwarding"}), "8613955556666")
    s = armed(callee=sub, protocol="inap", rates=PAIR_RATES)
    s.handle(erb(13), 1.0, AT)
    rep = ops.CallInformationReport((ops.RequestedInformation(2, 600),))
    (cdr, *_) = s.handle(OpReceived(rep), 61.0, AT + dt.timedelta(minutes=1))
    assert isinstance(cdr, WriteCdr) and cdr.service == "forwarding"
    # by the category table it would be local at 0.10
    assert (cdr.msisdn, cdr.call_category, cdr.charge) == (CALLEE, "on-net", Decimal("0.05"))


def test_menu_3_call_is_rated_by_the_callers_pair() -> None:
    s = menu_session(rates=PAIR_RATES)
    s.handle(DigitsCollected("3"), 2.0, AT)
    s.handle(DigitsCollected("0108888777"), 3.0, AT)
    acr = ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(3601), call_active=False)
    (cdr, *_) = s.handle(OpReceived(acr), 360.0, AT + dt.timedelta(minutes=6))
    assert isinstance(cdr, WriteCdr) and cdr.service == "other-number"
    # 0.50 a use + 7 started minutes at 0.20 (the category table: national, 2.10)
    assert (cdr.msisdn, cdr.call_category, cdr.charge) == (CALLER, "local", Decimal("1.90"))


def test_out_of_sequence_operation_is_refused() -> None:
    s = armed()
    acr = ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(10))
    assert s.handle(OpReceived(acr), 1.0, AT) == [Refuse(acr, CALL)]


# -- self-service ---------------------------------------------------------------------------------


def selfcare(known: bool = True) -> tuple[SelfcareSession, list[object]]:
    s = SelfcareSession(settings(ivr_mode="ctr"), call_ref="r", protocol="cap2")
    callee = Callee(CALLER, True, frozenset({"missed-call"})) if known else None
    return s, s.start(idp(key=200), callee, 0.0, AT)  # type: ignore[return-value]


def test_selfcare_pin_menu_blacklist_and_mode() -> None:
    s, out = selfcare()
    assert names(out[0]) == ["ConnectToResource", "PromptAndCollectUserInformation"]
    assert s.handle(DigitsCollected("123456"), 1.0, AT) == [
        ServiceRequest("verify_pin", CALLER, "123456")
    ]
    out = s.handle(ServiceAnswer("verify_pin", False, "wrong"), 1.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2002, 2001)  # type: ignore[union-attr,attr-defined]
    s.handle(DigitsCollected("654321"), 2.0, AT)
    out = s.handle(ServiceAnswer("verify_pin", True, "ok"), 2.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2004,)  # type: ignore[union-attr,attr-defined]
    s.handle(DigitsCollected("4"), 3.0, AT)
    s.handle(DigitsCollected("2"), 3.0, AT)
    assert s.handle(DigitsCollected("13600001111"), 3.0, AT) == [
        ServiceRequest("blacklist_del", CALLER, "8613600001111")
    ]
    out = s.handle(ServiceAnswer("blacklist_del", True), 3.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2006, 2004)  # type: ignore[union-attr,attr-defined]
    s.handle(DigitsCollected("6"), 4.0, AT)
    assert s.handle(DigitsCollected("2"), 4.0, AT) == [
        ServiceRequest("set_notify_mode", CALLER, "digest")
    ]
    s.handle(ServiceAnswer("set_notify_mode", True), 4.0, AT)
    # menu 3: which service (announcement 2013), then on / off (2008)
    out = s.handle(DigitsCollected("3"), 5.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2013,)  # type: ignore[union-attr,attr-defined]
    out = s.handle(DigitsCollected("2"), 5.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2008,)  # type: ignore[union-attr,attr-defined]
    assert s.handle(DigitsCollected("1"), 5.0, AT) == [
        ServiceRequest("enable_service", CALLER, "busy")
    ]
    s.handle(ServiceAnswer("enable_service", True), 5.0, AT)
    s.handle(DigitsCollected("3"), 5.5, AT)
    s.handle(DigitsCollected("1"), 5.5, AT)
    assert s.handle(DigitsCollected("2"), 5.5, AT) == [
        ServiceRequest("disable_service", CALLER, "missed-call")
    ]
    s.handle(ServiceAnswer("disable_service", True), 5.5, AT)
    s.handle(DigitsCollected("5"), 6.0, AT)
    assert s.handle(DigitsCollected("11223344"), 6.0, AT) == [
        ServiceRequest("set_pin", CALLER, "11223344")
    ]
    s.handle(ServiceAnswer("set_pin", True), 6.0, AT)
    assert s.handle(DigitsCollected("1"), 7.0, AT) == [ServiceRequest("missed_calls", CALLER)]
    out = s.handle(ServiceAnswer("missed_calls", True, ["8613700001111", "8613700002222"]), 7.0, AT)
    pa = out[0].ops[0]  # type: ignore[union-attr]
    parts = pa.information_to_send.extra["messageID"][1]["variableParts"]  # type: ignore[attr-defined]
    assert parts[0] == ("integer", 2) and len(parts) == 3
    # A caller with presentation restricted counts in the number of calls but is not read out.
    assert s.handle(DigitsCollected("1"), 7.5, AT) == [ServiceRequest("missed_calls", CALLER)]
    out = s.handle(ServiceAnswer("missed_calls", True, ["8613700001111", ""]), 7.5, AT)
    pa = out[0].ops[0]  # type: ignore[union-attr]
    parts = pa.information_to_send.extra["messageID"][1]["variableParts"]  # type: ignore[attr-defined]
    assert parts[0] == ("integer", 2) and len(parts) == 2
    # 2: how many voice messages are new (a variable announcement), then the retrieval platform
    assert s.handle(DigitsCollected("2"), 8.0, AT) == [ServiceRequest("voicemail_count", CALLER)]
    out = s.handle(ServiceAnswer("voicemail_count", True, (2, 5)), 8.0, AT)
    assert names(out[0]) == ["PlayAnnouncement"]
    msg = out[0].ops[0].information_to_send.extra["messageID"][1]  # type: ignore[union-attr,attr-defined]
    assert msg == {"elementaryMessageID": 2012, "variableParts": [("integer", 2)]}
    out = s.handle(OpReceived(ops.SpecializedResourceReport()), 8.5, AT)
    assert names(out[0]) == ["DisconnectForwardConnection", "Connect"]
    assert out[0].ops[1].destination_routing_address[0].digits == "8613800201"  # type: ignore[union-attr]


def test_selfcare_locked_and_unknown() -> None:
    s, _ = selfcare()
    s.handle(DigitsCollected("123456"), 1.0, AT)
    out = s.handle(ServiceAnswer("verify_pin", False, "locked"), 1.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2003,)  # type: ignore[union-attr,attr-defined]


def test_selfcare_from_another_phone_asks_for_the_mobile_number() -> None:
    # 系统提示用户输入移动号码和密码: a caller that is no subscriber gives the number, then the PIN
    s, out = selfcare(known=False)
    assert names(out[0]) == ["ConnectToResource", "PromptAndCollectUserInformation"]
    assert out[0].ops[1].information_to_send.message_ids == (2014,)  # type: ignore[union-attr,attr-defined]
    out = s.handle(DigitsCollected("013800001111#"), 1.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2001,)  # type: ignore[union-attr,attr-defined]
    assert s.handle(DigitsCollected("123456"), 1.0, AT) == [
        ServiceRequest("verify_pin", "8613800001111", "123456")
    ]
    # a wrong PIN (or a number that is no subscriber's) asks for both again
    out = s.handle(ServiceAnswer("verify_pin", False, "wrong"), 1.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2002, 2014)  # type: ignore[union-attr,attr-defined]
    s.handle(DigitsCollected("13800002222"), 2.0, AT)
    assert s.handle(DigitsCollected("654321"), 2.0, AT) == [
        ServiceRequest("verify_pin", "8613800002222", "654321")
    ]
    out = s.handle(ServiceAnswer("verify_pin", True, "ok"), 2.0, AT)
    assert out[0].ops[0].information_to_send.message_ids == (2004,)  # type: ignore[union-attr,attr-defined]
    assert s.handle(DigitsCollected("1"), 3.0, AT) == [
        ServiceRequest("missed_calls", "8613800002222")
    ]


# -- the transition tables ----------------------------------------------------------------------

FORWARDED = Callee(CALLEE, True, frozenset({"missed-call", "forwarding"}), "8613955556666")

# One input per table event, on the leg the ctr-mode SRF uses (the assist leg for the ARI).
INPUTS: dict[
    CallEvent, OpReceived | DigitsCollected | OpFailed | LegClosed | TimerExpired | ServiceAnswer
] = {
    CallEvent.EVENT_REPORT_BCSM: erb(13, 17),
    CallEvent.ABANDON_OR_DISCONNECT: erb(18),
    CallEvent.ASSIST_REQUEST_INSTRUCTIONS: OpReceived(
        ops.AssistRequestInstructions(GenericDigits("0000000001")), ASSIST
    ),
    CallEvent.SPECIALIZED_RESOURCE_REPORT: OpReceived(ops.SpecializedResourceReport()),
    CallEvent.APPLY_CHARGING_REPORT: OpReceived(
        ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(10), call_active=False)
    ),
    CallEvent.CALL_INFORMATION_REPORT: OpReceived(
        ops.CallInformationReport((ops.RequestedInformation(2, 50),))
    ),
    CallEvent.RECEIVED_INFORMATION: DigitsCollected("3"),
    CallEvent.OPERATION_FAILED: OpFailed("systemFailure"),
    CallEvent.DIALOGUE_CLOSED: LegClosed(CALL),
    CallEvent.GUARD_TIMER_EXPIRY: TimerExpired(),
    CallEvent.SERVICE_ANSWER: ServiceAnswer("verify_pin", True, "ok"),
}


def _call_in(phase: Phase) -> CallSession | None:
    """A call session brought to ``phase`` the way a call gets there (None: no call does)."""
    if phase is Phase.IDLE:
        return CallSession(settings(), call_ref="r", protocol="cap2")
    if phase is Phase.ARMED:
        return armed("ctr")
    if phase is Phase.WAIT_ASSIST:
        s = armed("etc")
        s.handle(erb(13, 17), 1.0, AT)
        return s
    if phase is Phase.CHARGING:
        s = armed(callee=FORWARDED)
        s.handle(erb(13, 17), 1.0, AT)
        return s
    if phase is Phase.DONE:
        s = armed()
        s.handle(erb(15), 1.0, AT)
        return s
    digits = {Phase.MENU: None, Phase.NUMBER: "3", Phase.ANNOUNCING: "1"}
    if phase not in digits:
        return None  # the self-service phases
    s = menu_session()
    d = digits[phase]
    if d is not None:
        s.handle(DigitsCollected(d), 2.0, AT)
    return s


def _selfcare_in(phase: Phase) -> SelfcareSession | None:
    path: dict[Phase, tuple[object, ...]] = {
        Phase.PIN: (),
        Phase.SC_WAIT: (DigitsCollected("123456"),),
        Phase.SC_MENU: (DigitsCollected("123456"), ServiceAnswer("verify_pin", True, "ok")),
        Phase.ANNOUNCING: (DigitsCollected("1"),) * 4,  # three tries, then goodbye
    }
    path[Phase.SC_CHOICE] = (*path[Phase.SC_MENU], DigitsCollected("3"))
    path[Phase.SC_NEW_PIN] = (*path[Phase.SC_MENU], DigitsCollected("5"))
    path[Phase.SC_NUMBER] = (*path[Phase.SC_MENU], DigitsCollected("4"), DigitsCollected("1"))
    path[Phase.DONE] = (LegClosed(CALL),)
    if phase is Phase.IDLE:
        return SelfcareSession(settings(ivr_mode="ctr"), call_ref="r", protocol="cap2")
    if phase is Phase.WAIT_ASSIST:
        s = SelfcareSession(settings(ivr_mode="etc"), call_ref="r", protocol="cap2")
        s.start(idp(key=200), Callee(CALLER, True, frozenset({"missed-call"})), 0.0, AT)
        return s
    if phase is Phase.SC_LOGIN:  # a caller from another phone: the mobile number first
        s, _ = selfcare(known=False)
        return s
    if phase not in path:
        return None
    s, _ = selfcare()
    for ev in path[phase]:
        s.handle(ev, 1.0, AT)  # type: ignore[arg-type]
    return s


@pytest.mark.parametrize(
    ("make", "table"),
    [(_call_in, CALL_FSM), (_selfcare_in, SELFCARE_FSM)],
    ids=["call", "self-service"],
)
def test_every_event_in_every_phase_follows_the_table(make: Any, table: Any) -> None:
    """A pair with no row is refused (an operation: Refuse, so ReturnError
    unexpectedComponentSequence) and changes nothing; a row with a ``next`` leads there."""
    reached = set()
    for phase, event in itertools.product(Phase, CallEvent):
        s = make(phase)
        if s is None:
            continue
        assert s.phase is phase
        reached.add(phase)
        ev = INPUTS[event]
        out = s.handle(ev, 100.0, AT)
        row = table.get(phase, event)
        where = f"{event} in {phase}"
        if phase is Phase.DONE:
            assert out == [] and s.phase is phase, where  # final: nothing more happens
        elif row is None:
            assert out == ([Refuse(ev.op, ev.leg)] if isinstance(ev, OpReceived) else []), where
            assert s.phase is phase, where
        elif row.next is not None:
            assert s.phase is row.next, where
    assert {p for p, _, _ in table.rows()} <= reached


def test_an_operation_no_phase_takes_is_refused() -> None:
    s = armed()
    op = ops.Continue()
    assert event_of(OpReceived(op)) is None
    assert s.handle(OpReceived(op), 1.0, AT) == [Refuse(op, CALL)] and s.phase is Phase.ARMED


# -- nothing raises -------------------------------------------------------------------------------


def _random_event(rng: random.Random) -> object:
    leg = rng.choice((CALL, ASSIST))
    return rng.choice(
        [
            erb(rng.choice((13, 14, 15, 17, 18, 7)), rng.choice((None, 17, 20, 99))),
            DigitsCollected(
                rng.choice(("", "1", "2", "3", "0", "9", "#", "0108888777", "123456")), leg
            ),
            OpFailed(rng.choice(("improperCallerResponse", "timeout", "rejected")), leg),
            LegClosed(leg, rng.random() < 0.5),
            OpReceived(ops.SpecializedResourceReport(), leg),
            OpReceived(
                ops.ApplyChargingReport(
                    ops.LegID(1),
                    ops.TimeInformation(rng.randrange(9999)),
                    call_active=rng.random() < 0.5,
                )
            ),
            OpReceived(ops.CallInformationReport((ops.RequestedInformation(2, 50),))),
            OpReceived(ops.AssistRequestInstructions(ops.GenericDigits("0000000001")), ASSIST)
            if hasattr(ops, "GenericDigits")
            else OpReceived(ops.Continue()),
            ServiceAnswer(
                rng.choice(("verify_pin", "missed_calls", "set_pin")),
                rng.random() < 0.5,
                rng.choice(("ok", "wrong", "locked", None)),
            ),
        ]
    )


def test_random_walks_never_raise() -> None:
    from scp.codecs.numbers import GenericDigits

    ops.GenericDigits = GenericDigits  # type: ignore[attr-defined]
    rng = random.Random(5)
    for i in range(3000):
        mode = rng.choice(("connect", "ctr", "etc"))
        cls = SelfcareSession if i % 3 == 0 else CallSession
        s = cls(
            settings(ivr_mode=mode),
            call_ref="r",
            protocol=rng.choice(("cap2", "inap")),
            rates=RATES,
            correlation_id="0000000001",
        )
        callee = rng.choice(
            (None, SUB, Callee(CALLEE, True, frozenset({"forwarding", "busy"}), "8613955556666"))
        )
        s.start(idp(key=200 if cls is SelfcareSession else 100), callee, 0.0, AT)
        now = 0.0
        for _ in range(rng.randrange(1, 12)):
            now += rng.random() * 20
            s.handle(_random_event(rng), now, AT)  # type: ignore[arg-type]
            s.handle_timer(now, AT)
    del ops.GenericDigits  # type: ignore[attr-defined]


def test_selfcare_over_etc_prompts_pin_on_the_assist_dialogue() -> None:
    s = SelfcareSession(
        settings(ivr_mode="etc"), call_ref="r", protocol="inap", correlation_id="0000000042"
    )
    out = s.start(idp(key=200), Callee(CALLER, True, frozenset({"missed-call"})), 0.0, AT)
    assert isinstance(out[0], ExpectAssist) and names(out[1]) == ["EstablishTemporaryConnection"]
    ari = ops.AssistRequestInstructions(out[1].ops[0].correlation_id)  # type: ignore[union-attr,attr-defined]
    out = s.handle(OpReceived(ari, ASSIST), 1.0, AT)
    assert out[0].leg == ASSIST and s.phase is Phase.PIN  # type: ignore[union-attr]
    out = s.handle(DigitsCollected("1", ASSIST), 2.0, AT)  # too short: wrong PIN, asked again
    assert out[0].ops[0].information_to_send.message_ids == (2002, 2001)  # type: ignore[union-attr,attr-defined]
    s.handle(DigitsCollected("123456", ASSIST), 3.0, AT)
    s.handle(ServiceAnswer("verify_pin", True, "ok"), 3.0, AT)
    out = s.handle(DigitsCollected("0", ASSIST), 4.0, AT)
    assert out[0] == Send((), ASSIST, "end")
    assert names(out[1]) == ["DisconnectForwardConnection", "Connect"] and out[-1] == Finished(
        "operator"
    )
