"""CAMEL Application Part, phases 2, 3 and 4: the CAP operation codec (``CODEC``).

Spec: 3GPP TS 29.078 §6 (operations: gsmSSF/gsmSCF §6.1, gsmSCF/gsmSRF §6.2), §7 (ASN.1 data
types, error types §7.7) and the codes of the CAP-operationcodes / CAP-errorcodes modules
(:class:`~scp.codecs.opcodes.CapOpcode`); phase 2 is CAP v2, 0.4.0.0.1.0.50.1. The ASN.1 is
pycrate's compiled CAP v4 (``pycrate_asn1dir.TCAP_CAP``): v4 is a BER superset of v2/v3
(extension markers), except where the earlier phases differ on the wire, handled here by
application context (:func:`cap_version`):

* SpecializedResourceReportArg is a NULL in v2/v3, a CHOICE of two tagged NULLs in v4.
* CAMEL-AChBillingChargingCharacteristics: releaseIfdurationExceeded is a SEQUENCE {tone} in
  v2, a BOOLEAN in v3/v4; the warning tone is ``tone [3] BOOLEAN`` in v3 and
  ``audibleIndicator [3] CHOICE`` in v4. This octet string, and CAMEL-CallResult, are coded
  by hand (TS 29.078 §7.6) with :mod:`scp.codecs.ber`.

The conversions CAMEL inherited from INAP (Q.1218 names and tags) are
:mod:`scp.codecs.callcontrol`'s; this module adds what only CAP has (ContinueWithArgument,
the charging octet strings, ReleaseCall's CHOICE) and binds them to the CAP schema.
TCAP hands us ``parameter`` as the complete BER TLV of the argument; we hand back the same.
Nothing from pycrate escapes: bad input raises ``DecodeError``.
"""

from __future__ import annotations

from typing import Any

from pycrate_asn1dir import TCAP_CAP as _T

from scp.codecs import ops
from scp.codecs.ber import (
    children,
    decode_boolean,
    decode_integer,
    encode_integer,
    read_tlv,
    tlv,
)
from scp.codecs.callcontrol import (
    HOT,
    HOT_RESULTS,
    RESULT_CONVERSIONS,
    call_gap_conversion,
    shared_conversions,
)
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.fast_cap import dec_acr_fast
from scp.codecs.numbers import Cause, GenericNumber
from scp.codecs.opcodec import (
    Conversion,
    Enumerated,
    OperationCodec,
    component,
    put,
    rest,
)
from scp.codecs.opcodes import CapErrorCode, CapOpcode, spec_names

__all__ = ["CODEC", "cap_version"]

# --------------------------------------------------------------------------------------------
# Conversions only CAP has
# --------------------------------------------------------------------------------------------


def dec_cwa(c: OperationCodec, d: Any, v: int) -> ops.ContinueWithArgument:
    return ops.ContinueWithArgument(
        alerting_pattern=d.get("alertingPattern"),
        generic_numbers=tuple(GenericNumber.decode(b) for b in d.get("genericNumbers", ())),
        extra=rest(d, ("alertingPattern", "genericNumbers")),
    )


def enc_cwa(c: OperationCodec, o: ops.ContinueWithArgument, v: int) -> dict[str, Any]:
    if v and v < 3:
        raise EncodeError(c.layer, "ContinueWithArgument needs CAP v3 or later")
    d: dict[str, Any] = {}
    put(d, "alertingPattern", o.alerting_pattern)
    if o.generic_numbers:
        d["genericNumbers"] = [g.encode() for g in o.generic_numbers]
    d.update(o.extra)
    return d


def dec_release_cap(c: OperationCodec, d: Any, v: int) -> ops.ReleaseCall:
    name, body = d
    if isinstance(body, dict):  # v4 allCallSegmentsWithExtension
        return ops.ReleaseCall(
            Cause.decode(body["allCallSegments"]),
            {"__alt": name, **rest(body, ("allCallSegments",))},
        )
    return ops.ReleaseCall(Cause.decode(body))


def enc_release_cap(c: OperationCodec, o: ops.ReleaseCall, v: int) -> Any:
    extra = dict(o.extra)
    alt = extra.pop("__alt", None)
    if alt is not None:
        return (alt, {"allCallSegments": o.cause.encode(), **extra})
    return ("allCallSegments", o.cause.encode())


# ---- ApplyCharging: CAMEL-AChBillingChargingCharacteristics coded by hand (see docstring) ----


def _members(buf: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]:
    """(identifier, contents) of each TLV in ``buf[start:end]`` (the whole of ``buf``)."""
    return [
        (tag, buf[vs:ve])
        for tag, vs, ve, _ in children(buf, start, len(buf) if end is None else end)
    ]


def _int(b: bytes) -> int:
    return decode_integer(b, 0, len(b))


def _bool(b: bytes) -> bool:
    return decode_boolean(b, 0, len(b))


def dec_apply_charging(c: OperationCodec, parameter: bytes, v: int) -> ops.ApplyCharging:
    L = c.layer
    tag, s, e, nxt = read_tlv(parameter, 0, len(parameter))
    if tag != 0x30 or nxt != len(parameter):
        raise DecodeError(L, 0, "ApplyChargingArg is a SEQUENCE")
    ach = None
    leg = None
    extra: dict[str, Any] = {}
    for t, val in _members(parameter, s, e):
        if t == 0x80:
            ach = val
        elif t == 0xA2:
            inner = _members(val)
            if len(inner) != 1 or inner[0][0] != 0x80 or len(inner[0][1]) != 1:
                raise DecodeError(L, 0, "partyToCharge is sendingSideID")
            leg = ops.LegID(inner[0][1][0], sending=True)
        else:
            extra.setdefault("__raw", []).append(tlv(t, val))
    if ach is None:
        raise DecodeError(L, 0, "aChBillingChargingCharacteristics missing")
    tag, s, e, nxt = read_tlv(ach, 0, len(ach))
    if tag != 0xA0 or nxt != len(ach):
        raise DecodeError(L, 0, "only timeDurationCharging is supported")
    mcpd = None
    rel = False
    tsi = None
    tone = None
    for t, val in _members(ach, s, e):
        if t == 0x80:
            mcpd = _int(val)
        elif t == 0x81:  # v3/v4 BOOLEAN
            rel = _bool(val)
        elif t == 0xA1:  # v2 ReleaseIfDurationExceeded SEQUENCE { tone BOOLEAN DEFAULT FALSE }
            rel = True
            for t2, v2 in _members(val):
                if t2 in (0x01, 0x80):
                    tone = _bool(v2)
        elif t == 0x82:
            tsi = _int(val)
        elif t == 0x83:  # v3 tone [3] BOOLEAN
            tone = _bool(val)
        elif t == 0xA3:  # v4 audibleIndicator [3] CHOICE { tone BOOLEAN, burstList [1] }
            inner = _members(val)
            if inner and inner[0][0] == 0x01:
                tone = _bool(inner[0][1])
            else:
                extra["__audible"] = val
    if mcpd is None:
        raise DecodeError(L, 0, "maxCallPeriodDuration missing")
    return ops.ApplyCharging(mcpd, rel, tsi, tone, leg, extra)


def enc_apply_charging(c: OperationCodec, o: ops.ApplyCharging, v: int) -> bytes:
    if not 1 <= o.max_call_period_duration <= 864000:
        raise EncodeError(c.layer, "maxCallPeriodDuration is 1..864000 (100 ms units)")
    body = tlv(0x80, encode_integer(o.max_call_period_duration))
    if v == 2:
        if o.release_if_duration_exceeded:
            inner = tlv(0x01, b"\xff") if o.tone else b""
            body += tlv(0xA1, inner)
        elif o.tone:
            raise EncodeError(c.layer, "CAP v2 has a warning tone only with release")
    elif o.release_if_duration_exceeded:
        body += tlv(0x81, b"\xff")
    if o.tariff_switch_interval is not None:
        body += tlv(0x82, encode_integer(o.tariff_switch_interval))
    if v == 3 and o.tone:
        body += tlv(0x83, b"\xff")
    elif v >= 4:
        if "__audible" in o.extra:
            body += tlv(0xA3, o.extra["__audible"])
        elif o.tone is not None:
            body += tlv(0xA3, tlv(0x01, b"\xff" if o.tone else b"\x00"))
    arg = tlv(0x80, tlv(0xA0, body))
    leg = o.party_to_charge or ops.LegID(1, sending=True)
    arg += tlv(0xA2, tlv(0x80, bytes((leg.leg,))))
    for raw in o.extra.get("__raw", ()):
        arg += raw
    return tlv(0x30, arg)


def dec_acr(c: OperationCodec, d: Any, v: int) -> ops.ApplyChargingReport:
    # CAMEL-CallResult (TS 29.078 §7.6) is parameterised in the ASN.1, coded by hand here:
    # [0] timeDurationChargingResult { [0] partyToCharge ReceivingSideID, [1] timeInformation,
    # [2] legActive BOOLEAN DEFAULT TRUE, [3] callLegReleasedAtTcpExpiry NULL, [4] ext, ... }
    L = c.layer
    tag, s, e, nxt = read_tlv(d, 0, len(d))
    if tag != 0xA0 or nxt != len(d):
        raise DecodeError(L, 0, "CAMEL-CallResult: only timeDurationChargingResult is supported")
    leg = None
    ti = None
    active = True
    expiry = False
    raw: list[bytes] = []
    for t, val in _members(d, s, e):
        if t == 0xA0:
            inner = _members(val)
            if len(inner) != 1 or inner[0][0] != 0x81 or len(inner[0][1]) != 1:
                raise DecodeError(L, 0, "partyToCharge is receivingSideID")
            leg = ops.LegID(inner[0][1][0])
        elif t == 0xA1:
            inner = _members(val)
            if len(inner) != 1:
                raise DecodeError(L, 0, "timeInformation is one CHOICE")
            it, iv = inner[0]
            if it == 0x80:
                ti = ops.TimeInformation(time_if_no_tariff_switch=_int(iv))
            elif it == 0xA1:
                since = None
                tsi = None
                for t2, v2 in _members(iv):
                    if t2 == 0x80:
                        since = _int(v2)
                    elif t2 == 0x81:
                        tsi = _int(v2)
                if since is None:
                    raise DecodeError(L, 0, "timeSinceTariffSwitch missing")
                ti = ops.TimeInformation(time_since_tariff_switch=since, tariff_switch_interval=tsi)
            else:
                raise DecodeError(L, 0, f"timeInformation tag 0x{it:02x}")
        elif t == 0x82:
            active = _bool(val)
        elif t == 0x83:
            expiry = True
        else:
            raw.append(tlv(t, val))
    if leg is None or ti is None:
        raise DecodeError(L, 0, "CAMEL-CallResult: partyToCharge and timeInformation needed")
    return ops.ApplyChargingReport(leg, ti, active, expiry, {"__raw": raw} if raw else {})


def enc_acr(c: OperationCodec, o: ops.ApplyChargingReport, v: int) -> bytes:
    ti = o.time_information
    if ti.time_if_no_tariff_switch is not None:
        tinfo = tlv(0x80, encode_integer(ti.time_if_no_tariff_switch))
    else:
        inner = tlv(0x80, encode_integer(ti.time_since_tariff_switch or 0))
        if ti.tariff_switch_interval is not None:
            inner += tlv(0x81, encode_integer(ti.tariff_switch_interval))
        tinfo = tlv(0xA1, inner)
    body = tlv(0xA0, tlv(0x81, bytes((o.party_to_charge.leg,)))) + tlv(0xA1, tinfo)
    if not o.call_active:
        body += tlv(0x82, b"\x00")
    if o.call_released_at_tcp_expiry:
        body += tlv(0x83, b"")
    for raw in o.extra.get("__raw", ()):
        body += raw
    return tlv(0xA0, body)


# --------------------------------------------------------------------------------------------
# The CAP schema
# --------------------------------------------------------------------------------------------

_P = _T.CAP_gsmSSF_gsmSCF_pkgs_contracts_acs
_Q = _T.CAP_gsmSCF_gsmSRF_pkgs_contracts_acs


def _op_names() -> dict[int, str]:
    out = {}
    for name in _T.CAP_operationcodes._obj_:
        code = getattr(_T.CAP_operationcodes, name.replace("-", "_"))._val
        out[code[1]] = name.removeprefix("opcode-")
    return out


def _collect() -> tuple[dict[int, tuple[str, Any]], dict[int, tuple[str, Any]]]:
    """Opcode -> (name, argument type) and -> (name, result type) of the call operations."""
    names = _op_names()
    args: dict[int, tuple[str, Any]] = {}
    results: dict[int, tuple[str, Any]] = {}
    for mod, sets in (
        (
            _P,
            (
                "SsfToScfGenericInvokable",
                "SsfToScfGenericReturnable",
                "AssistHandoffssfToScfInvokable",
                "ScfToSsfGenericInvokable",
            ),
        ),
        (_Q, ("GsmSRFgsmSCFInvokable",)),
    ):
        for s in sets:
            for op in getattr(mod, s)._val.root:
                code = op["operationCode"][1]
                name = names.get(code, str(code))
                args.setdefault(code, (name, op.get("ArgumentType")))
                if "ResultType" in op:
                    results.setdefault(code, (name, op["ResultType"]))
    return args, results


def _collect_errors() -> dict[int, tuple[str, Any]]:
    """Errcode -> (name, parameter type)."""
    out = {}
    for name in _T.CAP_errortypes._obj_:
        e = getattr(_T.CAP_errortypes, name)
        val = e._val
        if val is None:
            continue
        out[val["errorCode"][1]] = (name, val.get("ParameterType"))
    return out


def cap_version(ac: tuple[int, ...] | None) -> int:
    """CAP phase of an application context name: v2 0.4.0.0.1.0.5x.1, v3 .21/.20, v4 .23/.22.

    No AC (or an unknown one) means "latest": v4 tags are then used where phases differ.
    """
    if ac is None or len(ac) < 7:
        return 4
    if ac[5] == 0:
        return 2
    return {21: 3, 20: 3, 23: 4, 22: 4}.get(ac[5], 4)


def _build() -> OperationCodec:
    args, results = _collect()
    a = {code: t for code, (_name, t) in args.items()}
    enums = {
        "EventTypeBCSM": Enumerated(
            component(a[CapOpcode.INITIAL_DP], "eventTypeBCSM")._cont, ops.EventTypeBCSM
        ),
        "MonitorMode": Enumerated(
            component(a[CapOpcode.REQUEST_REPORT_BCSM_EVENT], "bcsmEvents", "monitorMode")._cont,
            ops.MonitorMode,
        ),
        "ErrorTreatment": Enumerated(
            component(
                a[CapOpcode.PROMPT_AND_COLLECT_USER_INFORMATION],
                "collectedInfo",
                "collectedDigits",
                "errorTreatment",
            )._cont
        ),
        "RequestedInformationType": Enumerated(
            component(
                a[CapOpcode.CALL_INFORMATION_REQUEST], "requestedInformationTypeList"
            )._cont._cont
        ),
        "TimerID": Enumerated(component(a[CapOpcode.RESET_TIMER], "timerID")._cont),
    }
    typed = shared_conversions(Conversion(ops.ReleaseCall, dec_release_cap, enc_release_cap))
    typed[CapOpcode.APPLY_CHARGING] = Conversion(
        ops.ApplyCharging, dec_apply_charging, enc_apply_charging, raw=True
    )
    typed[CapOpcode.APPLY_CHARGING_REPORT] = Conversion(
        ops.ApplyChargingReport, dec_acr, enc_acr, fast=dec_acr_fast
    )
    typed[CapOpcode.CONTINUE_WITH_ARGUMENT] = Conversion(ops.ContinueWithArgument, dec_cwa, enc_cwa)
    typed[CapOpcode.CALL_GAP] = call_gap_conversion(basic=True)
    return OperationCodec(
        "cap",
        args=args,
        results=results,
        errors=_collect_errors(),
        typed=typed,
        typed_results=RESULT_CONVERSIONS,
        enums=enums,
        version_of=cap_version,
        opcode_names=spec_names(CapOpcode),
        error_names=spec_names(CapErrorCode),
        fast_decode=HOT,
        fast_encode=HOT,
        fast_results=HOT_RESULTS,
    )


CODEC = _build()
"""The CAP codec: ``CODEC.decode_arg(opcode, parameter, ac=...)`` and the other five."""
