"""Benchmark: typed CAP/INAP/MAP codecs (scp.codecs) against raw pycrate, in the same run.

Prints one JSON object: for each operation the decode and encode time in microseconds through
the typed layer as the SCP uses it (bytes <-> ops dataclasses, the hand-written BER fast path
of ``scp.codecs.fastber`` first), through raw pycrate (bytes <-> pycrate value notation,
``from_ber`` + ``get_val`` / ``set_val`` + ``to_ber``) and the typed/raw ``ratio`` (target:
<= 1.15); for reference also the typed layer with the fast path switched off
(``typed_pycrate_only_us``, ``ratio_pycrate_only``). Times are the best of ``--repeat``
rounds of ``--number`` calls (the machine's quietest moment), interleaved so that
concurrent load shifts every column alike.

    python bench/codecs.py [--number 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import timeit
from collections.abc import Callable
from typing import Any

from scp.codecs import appctx, cap, fastber, inap, ops
from scp.codecs import map as m
from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    TimeAndTimezone,
)

V2 = appctx.CAP_V2_GSMSSF_SCF

# A terminating-call InitialDP as a GMSC sends it (T-CSI, CAP v2).
IDP = ops.InitialDP(
    service_key=100,
    called_party_number=CalledPartyNumber("8613912345678"),
    calling_party_number=CallingPartyNumber("8613700000001"),
    calling_partys_category=10,
    event_type_bcsm=12,
    imsi="460001234567890",
    call_reference_number=b"\x01\x02\x03\x04\x05",
    msc_address=AddressString("8613800001"),
    time_and_timezone=TimeAndTimezone(dt.datetime(2026, 11, 25, 18, 5, 9), 32),
    extra={"locationInformation": {"vlr-number": AddressString("8613800002").encode()}},
)
ERB = ops.EventReportBCSM(
    13, ops.EventSpecificInfo("tBusySpecificInfo", Cause(20, 4)), ops.LegID(2), 0
)
RRBE = ops.RequestReportBCSMEvent(
    (
        ops.BCSMEvent(13, 0, ops.LegID(2, True)),
        ops.BCSMEvent(14, 0, ops.LegID(2, True), application_timer=30),
        ops.BCSMEvent(15, 1, ops.LegID(2, True)),
        ops.BCSMEvent(18, 1, ops.LegID(1, True)),
    )
)
CONNECT = ops.Connect((CalledPartyNumber("8613800999"),))
PACUI = ops.PromptAndCollectUserInformation(
    ops.CollectedDigits(1, end_of_reply_digit=b"#", first_digit_timeout=10),
    ops.InformationToSend(message_ids=(10,)),
)
ASC = ops.AlertServiceCentre(AddressString("8613912345678"), AddressString("8613800000"))
NOTE_MM = ops.NoteMMEvent(11, 2, "460001234567890", AddressString("8613912345678"))
ARI = ops.AssistRequestInstructions(GenericDigits("1234"), b"\x01")
ACR = ops.ApplyChargingReport(ops.LegID(1), ops.TimeInformation(time_if_no_tariff_switch=260))
RELEASE = ops.ReleaseCall(Cause(16))
PA = ops.PlayAnnouncement(ops.InformationToSend(message_ids=(10,)))
INAP_IDP = ops.InitialDP(
    service_key=100,
    called_party_number=CalledPartyNumber("1062345678", nai=3),
    calling_party_number=CallingPartyNumber("02087654321", nai=3),
    calling_partys_category=10,
    event_type_bcsm=12,
)
INAP_AC = appctx.INAP_CS1_SSP_SCP


def best(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def _pycrate_only(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        fastber.ENABLED = False
        try:
            return fn()
        finally:
            fastber.ENABLED = True

    return run


def _measure(
    typed_fn: Callable[[], Any], raw_fn: Callable[[], Any], number: int, repeat: int
) -> dict[str, Any]:
    """Best-of-rounds of the typed layer (fast path on / off) and raw pycrate, interleaved."""
    slow_fn = _pycrate_only(typed_fn)
    ty = rw = sl = float("inf")
    for _ in range(repeat):
        ty = min(ty, best(typed_fn, number, 1))
        rw = min(rw, best(raw_fn, number, 1))
        sl = min(sl, best(slow_fn, number, 1))
    return {
        "typed_us": round(ty, 2),
        "raw_pycrate_us": round(rw, 2),
        "ratio": round(ty / rw, 3) if rw else None,
        "typed_pycrate_only_us": round(sl, 2),
        "ratio_pycrate_only": round(sl / rw, 3) if rw else None,
    }


def case(
    name: str,
    items: list[tuple[Any, ops.Operation, tuple[int, ...] | None]],
    number: int,
    repeat: int,
) -> dict[str, Any]:
    """Decode and encode every operation of ``items`` (codec module, op, AC) as one unit."""
    wires = []
    raw = []
    for mod, op, ac in items:
        code, param = mod.CODEC.encode_arg(op, ac=ac)
        wires.append((mod, code, param, ac))
        t = mod.CODEC.args[code][1] if hasattr(mod, "CODEC") else None
        if param is not None and t is not None:
            t.from_ber(param)
            raw.append((t, param, t.get_val()))

    def typed_decode() -> None:
        for mod, code, param, ac in wires:
            mod.CODEC.decode_arg(code, param, ac=ac)

    def typed_encode() -> None:
        for mod, op, ac in items:
            mod.CODEC.encode_arg(op, ac=ac)

    def raw_decode() -> None:
        for t, param, _v in raw:
            t.from_ber(param)
            t.get_val()

    def raw_encode() -> None:
        for t, _param, v in raw:
            t.set_val(v)
            t.to_ber()

    out: dict[str, Any] = {}
    for what, typed_fn, raw_fn in (
        ("decode", typed_decode, raw_decode),
        ("encode", typed_encode, raw_encode),
    ):
        out[what] = _measure(typed_fn, raw_fn, number, repeat)
    out["bytes"] = sum(len(p or b"") for _m, _c, p, _a in wires)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    res = {
        "InitialDP": case("InitialDP", [(cap, IDP, V2)], a.number, a.repeat),
        "EventReportBCSM": case("EventReportBCSM", [(cap, ERB, V2)], a.number, a.repeat),
        "RequestReportBCSMEvent+Continue": case(
            "RRBE+CUE", [(cap, RRBE, V2), (cap, ops.Continue(), V2)], a.number, a.repeat
        ),
        "Connect": case("Connect", [(cap, CONNECT, V2)], a.number, a.repeat),
        "PromptAndCollectUserInformation": case(
            "PACUI", [(cap, PACUI, appctx.CAP_V2_GSMSRF_SCF)], a.number, a.repeat
        ),
        "PACUI ReceivedInformation result": _result_case(a.number, a.repeat),
        "AlertServiceCentre": case(
            "ASC", [(m, ASC, appctx.MAP_SHORT_MSG_ALERT_V2)], a.number, a.repeat
        ),
        "NoteMM-Event": case(
            "NoteMM", [(m, NOTE_MM, appctx.MAP_MM_EVENT_REPORTING_V3)], a.number, a.repeat
        ),
        "AssistRequestInstructions": case(
            "ARI", [(cap, ARI, appctx.CAP_V2_GSMSRF_SCF)], a.number, a.repeat
        ),
        "ApplyChargingReport": case("ACR", [(cap, ACR, V2)], a.number, a.repeat),
        "ReleaseCall": case("RC", [(cap, RELEASE, V2)], a.number, a.repeat),
        "PlayAnnouncement": case("PA", [(cap, PA, appctx.CAP_V2_GSMSRF_SCF)], a.number, a.repeat),
        "INAP InitialDP": case("INAP IDP", [(inap, INAP_IDP, INAP_AC)], a.number, a.repeat),
        "INAP RequestReportBCSMEvent+Connect": case(
            "INAP RRBE+CON",
            [
                (inap, RRBE, INAP_AC),
                (inap, ops.Connect((CalledPartyNumber("1062345678", 3),)), INAP_AC),
            ],
            a.number,
            a.repeat,
        ),
    }
    print(json.dumps({"unit": "microseconds per message (best round)", "results": res}, indent=2))


def _result_case(number: int, repeat: int) -> dict[str, Any]:
    ri = ops.ReceivedInformation(GenericDigits("1"))
    wire = cap.CODEC.encode_result(48, ri)
    t = cap.CODEC.results[48][1]
    t.from_ber(wire)
    v = t.get_val()

    def raw_decode() -> None:
        t.from_ber(wire)
        t.get_val()

    def raw_encode() -> None:
        t.set_val(v)
        t.to_ber()

    out = {}
    for what, tf, rf in (
        ("decode", lambda: cap.CODEC.decode_result(48, wire), raw_decode),
        ("encode", lambda: cap.CODEC.encode_result(48, ri), raw_encode),
    ):
        out[what] = _measure(tf, rf, number, repeat)
    return out


if __name__ == "__main__":
    main()
