"""CallGap's CAP and INAP CS-1 encodings (golden bytes, both ways) and the overload decision
with hysteresis (:class:`scp.service.overload.OverloadControl`), with ``now`` and the measures
passed in."""

from __future__ import annotations

import pytest

from scp.codecs import cap, inap
from scp.codecs import ops as O
from scp.codecs.appctx import (
    CAP_V2_GSMSSF_SCF,
    CAP_V3_GSMSSF_SCF,
    CAP_V4_GSMSSF_SCF,
    INAP_CS1_SSP_SCP,
)
from scp.codecs.errors import EncodeError
from scp.config import parse_config
from scp.primitives import Invoke, TcContinue, TcEnd, TcUAbort
from scp.service.overload import CALL_GAP_INVOKE_ID, Measures, OverloadControl

# CallGapArg (TS 29.078 §8.4): gapOnService serviceKey 100, 30 s, 1000 ms, sCPOverloaded
CALL_GAP = bytes.fromhex(
    "3013"  # CallGapArg SEQUENCE
    "a005 a203 800164"  # gapCriteria [0] -> basicGapCriteria gapOnService [2] {serviceKey [0] 100}
    "a107 80011e 810203e8"  # gapIndicators [1] {duration [0] 30, gapInterval [1] 1000}
    "820100".replace(" ", "")  # controlType [2] sCPOverloaded (0)
)


@pytest.mark.parametrize("ac", [CAP_V3_GSMSSF_SCF, CAP_V4_GSMSSF_SCF])
def test_call_gap_golden(ac: tuple[int, ...]) -> None:
    assert cap.CODEC.encode_arg(O.CallGap(100, 30, 1000, 0), ac=ac) == (41, CALL_GAP)
    assert cap.CODEC.decode_arg(41, CALL_GAP, ac=ac) == O.CallGap(100, 30, 1000, 0)


# INAP CS-1 CallGapArg (ETS 300 374-1 §6.1 callGap): the same octets, since gapCriteria [0] is
# the criteria CHOICE itself where CAP's untagged basicGapCriteria adds no octet
INAP_CALL_GAP = CALL_GAP

# gapCriteria calledAddressValue [0] Digits: not typed, kept as it came
INAP_CALL_GAP_ON_ADDRESS = bytes.fromhex(
    "3012"  # CallGapArg SEQUENCE
    "a004 8002 0101"  # gapCriteria [0] -> calledAddressValue [0] Digits 01 01
    "a107 80011e 810203e8"  # gapIndicators [1] {duration [0] 30, gapInterval [1] 1000}
    "820101".replace(" ", "")  # controlType [2] manuallyInitiated (1)
)


def test_inap_call_gap_golden() -> None:
    ac = INAP_CS1_SSP_SCP
    assert inap.CODEC.encode_arg(O.CallGap(100, 30, 1000, 0), ac=ac) == (41, INAP_CALL_GAP)
    assert inap.CODEC.decode_arg(41, INAP_CALL_GAP, ac=ac) == O.CallGap(100, 30, 1000, 0)
    g = inap.CODEC.decode_arg(41, INAP_CALL_GAP_ON_ADDRESS, ac=ac)
    assert g == O.CallGap(None, 30, 1000, 1, {"gapCriteria": ("calledAddressValue", b"\x01\x01")})
    assert inap.CODEC.encode_arg(g, ac=ac) == (41, INAP_CALL_GAP_ON_ADDRESS)


def test_inap_call_gap_refuses_what_cs1_does_not_allow() -> None:
    with pytest.raises(EncodeError):  # Interval is -1..60000 ms (ETS 300 374-1 §6.3)
        inap.CODEC.encode_arg(O.CallGap(100, 30, 60001, 0), ac=INAP_CS1_SSP_SCP)
    with pytest.raises(EncodeError):
        inap.CODEC.encode_arg(O.CallGap(None, 30, 1000, 0), ac=INAP_CS1_SSP_SCP)


def test_call_gap_is_not_camel_phase_2() -> None:
    with pytest.raises(EncodeError):
        cap.CODEC.encode_arg(O.CallGap(100, 30, 1000), ac=CAP_V2_GSMSSF_SCF)


CFG = parse_config(
    "[overload]\nmax_dialogues = 100\nmax_answer_latency = 0.5\nresume_ratio = 0.8\n"
    "gap_interval = 1000\ngap_duration = 30\n"
).overload
ANSWER = TcContinue(7, None, None, (Invoke(1, 23),))


def gap(
    ctl: OverloadControl,
    answer: object = ANSWER,
    *,
    switch: int = 201,
    now: float = 0.0,
    ac: tuple[int, ...] = CAP_V3_GSMSSF_SCF,
) -> object:
    return ctl.call_gap(answer, ac=ac, service_key=100, switch=switch, now=now)  # type: ignore[arg-type]


def test_hysteresis() -> None:
    ctl = OverloadControl(CFG)
    assert ctl.update(Measures(100, 0.1, 0)) is None  # at the limit: not above it
    assert ctl.update(Measures(101, 0.1, 0)) is True and ctl.overloaded
    assert ctl.update(Measures(90, 0.1, 0)) is None and ctl.overloaded  # above 80 %: still on
    assert ctl.update(Measures(79, 0.41, 0)) is None and ctl.overloaded  # latency above 80 %
    assert ctl.update(Measures(79, 0.39, 0)) is False and not ctl.overloaded
    assert ctl.update(Measures(10, 0.6, 0)) is True and ctl.episodes == 2
    assert OverloadControl(parse_config("").overload).update(Measures(10**6, 9, 9)) is None


def test_call_gap_added_once_per_switch_per_half_duration() -> None:
    ctl = OverloadControl(CFG)
    assert gap(ctl) is ANSWER  # not overloaded
    ctl.update(Measures(101, 0, 0))
    out = gap(ctl, now=0.0)
    assert isinstance(out, TcContinue)
    assert out.components == (
        Invoke(CALL_GAP_INVOKE_ID, 41, CALL_GAP, op_class=4),
        Invoke(1, 23),
    )
    assert gap(ctl, now=14.9) is ANSWER  # the switch's gap still runs
    assert gap(ctl, switch=202, now=1.0) is not ANSWER  # another switch is asked
    assert gap(ctl, now=15.0) is not ANSWER  # half the duration: asked again
    end = TcEnd(8, None, None, (Invoke(1, 31),))
    assert gap(ctl, end, switch=203) is not end  # TC-END Continue carries it too
    assert gap(ctl, TcUAbort(9), switch=204) == TcUAbort(9)
    assert gap(ctl, switch=205, ac=CAP_V2_GSMSSF_SCF) is ANSWER  # phase 2: no CallGap
    inap_answer = gap(ctl, switch=206, ac=INAP_CS1_SSP_SCP)  # INAP CS-1: its own CallGap
    assert isinstance(inap_answer, TcContinue)
    assert inap_answer.components[0] == Invoke(CALL_GAP_INVOKE_ID, 41, INAP_CALL_GAP, op_class=4)
    assert gap(ctl, switch=207, ac=(1, 2, 826, 0, 1249, 51, 1, 1)) is ANSWER  # not ETSI's
    assert ctl.gaps_sent == 5
