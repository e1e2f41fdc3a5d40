"""CallGap's CAP encoding (golden bytes, both ways) and the overload decision with hysteresis
(:class:`scp.service.overload.OverloadControl`), with ``now`` and the measures passed in."""

from __future__ import annotations

import pytest

from scp.codecs import cap
from scp.codecs import ops as O
from scp.codecs.appctx import CAP_V2_GSMSSF_SCF, CAP_V3_GSMSSF_SCF, CAP_V4_GSMSSF_SCF
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
    assert ctl.gaps_sent == 4
