"""Golden wire forms of the operations the call service emits (CAP v2 / INAP CS-1), both ways.

Each case: the value the pure service builds and its parameter bytes, commented by tag
(TS 29.078 §6 ASN.1; the INAP forms are identical for these operations, ETS 300 374-1 §6).
"""

from __future__ import annotations

import datetime as dt

import pytest

from scp.codecs import cap, inap, ops
from scp.codecs.numbers import CalledPartyNumber, CallingPartyNumber
from scp.codecs.opcodec import OperationCodec
from scp.service.calls import Callee, CallSession, CallSettings, prompt
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF, AC_INAP_CS1_SSF_SCF

AT = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def _rrbe() -> ops.Operation:
    s = CallSession(CallSettings(), call_ref="r", protocol="cap2")
    (send,) = s.start(
        ops.InitialDP(
            100,
            CalledPartyNumber("8613912345678"),
            CallingPartyNumber("8613700001111"),
            event_type_bcsm=12,
        ),
        Callee("8613912345678", True, frozenset({"missed-call"})),
        0.0,
        AT,
    )
    return send.ops[0]  # type: ignore[union-attr]


def _ivr_connect() -> ops.Operation:
    s = CallSession(CallSettings(), call_ref="r", protocol="cap2")
    s.callee = "8613912345678"
    return s._ivr_connect()


CASES = {
    "rrbe-busy-noanswer-answer-abandon": (
        _rrbe,
        23,
        (
            "303b a039"  # RRBE-Arg, bcsmEvents [0]
            "300b 80010d 810100 a203800102"  # tBusy(13) interrupted, leg 2
            "3010 80010e 810100 a203800102 be03810114"  # tNoAnswer(14) interrupted, leg 2, timer 20 s
            "300b 80010f 810101 a203800102"  # tAnswer(15) notifyAndContinue, leg 2
            "300b 800112 810101 a203800101"
        ),
    ),  # tAbandon(18) notifyAndContinue, leg 1
    "connect-ivr-original-called": (
        _ivr_connect,
        20,
        (
            "3016 a009 0407 0410 6831089099"  # destinationRoutingAddress: intl 8613800999
            "8609 8410 6831193254 7608"
        ),
    ),  # originalCalledPartyID [6]: 8613912345678
    "pacui-menu-one-digit": (
        lambda: prompt((1001,), s=CallSettings()),
        48,
        (
            "3017 a00b a009"  # collectedInfo, collectedDigits
            "810101 85010a 860105"  # max 1 digit, first 10 s, inter-digit 5 s
            "a208 a006 a004 800203e9"
        ),
    ),  # informationToSend inbandInfo msg 1001
}


@pytest.mark.parametrize(
    "ac,codec",
    [(AC_CAP_V2_GSMSSF_SCF, cap.CODEC), (AC_INAP_CS1_SSF_SCF, inap.CODEC)],
    ids=["cap2", "inap"],
)
@pytest.mark.parametrize("name", list(CASES))
def test_golden_both_ways(name: str, ac: tuple[int, ...], codec: OperationCodec) -> None:
    build, opcode, hexa = CASES[name]
    value = build()
    wire = bytes.fromhex(hexa.replace(" ", ""))
    assert codec.encode_arg(value, ac=ac) == (opcode, wire)
    back = codec.decode_arg(opcode, wire, ac=ac)
    assert codec.encode_arg(back, ac=ac) == (opcode, wire)
