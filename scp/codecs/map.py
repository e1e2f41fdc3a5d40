"""MAP operation codecs for the missed-call service: TCAP component parameters <-> ops values.

Spec: 3GPP TS 29.002 (MAP v3 ASN.1, §17; the operations used here are specified in §12.3
sendRoutingInfoForSM, §12.4 ReportSM-DeliveryStatus, §12.7 ReadyForSM, §12.5
alertServiceCentre (v2 op 64; v1 op 49 alertServiceCentreWithoutResult, GSM 09.02 phase 1),
§8.11.2 NoteMM-Event and §8.11.1 AnyTimeInterrogation; errors §17.6 (absentSubscriberSM 6)).
The ASN.1 is pycrate's compiled ``pycrate_asn1dir.TCAP_MAPv2v3`` (v3 with extension markers,
so the v1/v2 forms of these arguments decode through it).

Every other MAP operation decodes to a lossless ``GenericOperation`` (parameter kept).
Application-context negotiation lives in :mod:`scp.codecs.appctx` (``map_ac_decision``).
"""

from __future__ import annotations

from typing import Any

from pycrate_asn1dir import TCAP_MAPv2v3 as _M

from scp.codecs import ops
from scp.codecs.cap import OperationCodec, _Enum, _opt, _put, _rest
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import AddressString, decode_tbcd, encode_tbcd

__all__ = [
    "decode_arg",
    "encode_arg",
    "decode_result",
    "encode_result",
    "decode_error",
    "encode_error",
    "OPCODES",
    "ERRORS",
]


def _addr(b: bytes) -> AddressString:
    return AddressString.decode(b)


def _enc(x: Any) -> bytes:
    return x.encode()  # type: ignore[no-any-return]


def _collect(prefer: str) -> tuple[dict[int, tuple[str, Any]], dict[int, tuple[str, Any]]]:
    args: dict[int, tuple[str, Any]] = {}
    results: dict[int, tuple[str, Any]] = {}
    names: dict[int, str] = {}
    for mname in dir(_M):
        if not mname.startswith(("MAP_", "MAPv2_")) or not mname.endswith("Operations"):
            continue
        mod = getattr(_M, mname)
        for n in getattr(mod, "_obj_", ()):
            o = getattr(mod, n.replace("-", "_"), None)
            if o is None or getattr(o, "TYPE", None) != "CLASS" or not isinstance(o._val, dict):
                continue
            code = o._val.get("operationCode")
            if not code or code[0] != "local":
                continue
            c = code[1]
            # ``prefer`` ("MAP_" v3 or "MAPv2_") wins for an opcode both define.
            first = c not in names or mname.startswith(prefer)
            if first:
                names[c] = n
                args[c] = (n, o._val.get("ArgumentType"))
                if "ResultType" in o._val:
                    results[c] = (n, o._val["ResultType"])
    return args, results


def _collect_errors() -> dict[int, tuple[str, Any]]:
    out: dict[int, tuple[str, Any]] = {}
    for mod in (_M.MAP_Errors, _M.MAPv2_Errors):
        for n in mod._obj_:
            o = getattr(mod, n.replace("-", "_"), None)
            if o is None or getattr(o, "TYPE", None) != "CLASS" or not isinstance(o._val, dict):
                continue
            code = o._val.get("errorCode")
            if code and code[0] == "local" and code[1] not in out:
                out[code[1]] = (n, o._val.get("ParameterType"))
    return out


_ARGS, _RESULTS = _collect("MAP_")
_ARGS_V2, _RESULTS_V2 = _collect("MAPv2_")
_ERRS = _collect_errors()
OPCODES = {k: v[0] for k, v in _ARGS.items()}
ERRORS = {k: v[0] for k, v in _ERRS.items()}


def _enum_of(t: Any, *path: str) -> _Enum:
    for p in path:
        t = t._cont[p]
    return _Enum(t._cont, layer="map")


_ENUMS = {
    "AlertReason": _enum_of(_ARGS[66][1], "alertReason"),
    "SM-DeliveryOutcome": _enum_of(_ARGS[47][1], "sm-DeliveryOutcome"),
}


# ---- typed conversions ----------------------------------------------------------------------


def dec_asc(c: OperationCodec, d: Any, v: int) -> ops.AlertServiceCentre:
    return ops.AlertServiceCentre(
        _addr(d["msisdn"]),
        _addr(d["serviceCentreAddress"]),
        False,
        _rest(d, ("msisdn", "serviceCentreAddress")),
    )


def dec_asc_v1(c: OperationCodec, d: Any, v: int) -> ops.AlertServiceCentre:
    o = dec_asc(c, d, v)
    return ops.AlertServiceCentre(o.msisdn, o.service_centre_address, True, o.extra)


def enc_asc(c: OperationCodec, o: ops.AlertServiceCentre, v: int) -> dict[str, Any]:
    d = {"msisdn": o.msisdn.encode(), "serviceCentreAddress": o.service_centre_address.encode()}
    d.update(o.extra)
    return d


def dec_note_mm(c: OperationCodec, d: Any, v: int) -> ops.NoteMMEvent:
    em = d["eventMet"]
    if len(em) != 1:
        raise DecodeError("map", 0, "eventMet (MM-Code) is one octet")
    return ops.NoteMMEvent(
        d["serviceKey"],
        em[0],
        decode_tbcd(d["imsi"]),
        _addr(d["msisdn"]),
        _rest(d, ("serviceKey", "eventMet", "imsi", "msisdn")),
    )


def enc_note_mm(c: OperationCodec, o: ops.NoteMMEvent, v: int) -> dict[str, Any]:
    if not 0 <= o.event_met <= 255:
        raise EncodeError("map", "eventMet is one octet")
    d = {
        "serviceKey": o.service_key,
        "eventMet": bytes((o.event_met,)),
        "imsi": encode_tbcd(o.imsi),
        "msisdn": o.msisdn.encode(),
    }
    d.update(o.extra)
    return d


def dec_rfsm(c: OperationCodec, d: Any, v: int) -> ops.ReadyForSM:
    return ops.ReadyForSM(
        decode_tbcd(d["imsi"]),
        c.enums["AlertReason"].dec(d["alertReason"]),
        "alertReasonIndicator" in d,
        _rest(d, ("imsi", "alertReason", "alertReasonIndicator")),
    )


def enc_rfsm(c: OperationCodec, o: ops.ReadyForSM, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "imsi": encode_tbcd(o.imsi),
        "alertReason": c.enums["AlertReason"].enc(o.alert_reason),
    }
    if o.alert_reason_indicator:
        d["alertReasonIndicator"] = 0
    d.update(o.extra)
    return d


def dec_sri_sm(c: OperationCodec, d: Any, v: int) -> ops.SendRoutingInfoForSM:
    return ops.SendRoutingInfoForSM(
        _addr(d["msisdn"]),
        _addr(d["serviceCentreAddress"]),
        d["sm-RP-PRI"],
        _rest(d, ("msisdn", "serviceCentreAddress", "sm-RP-PRI")),
    )


def enc_sri_sm(c: OperationCodec, o: ops.SendRoutingInfoForSM, v: int) -> dict[str, Any]:
    d = {
        "msisdn": o.msisdn.encode(),
        "sm-RP-PRI": o.sm_rp_pri,
        "serviceCentreAddress": o.service_centre_address.encode(),
    }
    d.update(o.extra)
    return d


def dec_sri_sm_res(c: OperationCodec, d: Any, v: int) -> ops.RoutingInfoForSM:
    loc = d.get("locationInfoWithLMSI") or {}
    extra = _rest(d, ("imsi", "locationInfoWithLMSI"))
    loc_rest = _rest(loc, ("networkNode-Number", "lmsi"))
    if loc_rest:
        extra["locationInfoWithLMSI"] = loc_rest
    return ops.RoutingInfoForSM(
        decode_tbcd(d["imsi"]), _opt(loc, "networkNode-Number", _addr), loc.get("lmsi"), extra
    )


def enc_sri_sm_res(c: OperationCodec, o: ops.RoutingInfoForSM, v: int) -> dict[str, Any]:
    extra = dict(o.extra)
    loc: dict[str, Any] = dict(extra.pop("locationInfoWithLMSI", {}))
    if o.network_node_number is None:
        raise EncodeError("map", "RoutingInfoForSM-Res needs networkNode-Number")
    loc["networkNode-Number"] = o.network_node_number.encode()
    _put(loc, "lmsi", o.lmsi)
    d: dict[str, Any] = {"imsi": encode_tbcd(o.imsi), "locationInfoWithLMSI": loc}
    d.update(extra)
    return d


def dec_rsmds(c: OperationCodec, d: Any, v: int) -> ops.ReportSMDeliveryStatus:
    return ops.ReportSMDeliveryStatus(
        _addr(d["msisdn"]),
        _addr(d["serviceCentreAddress"]),
        c.enums["SM-DeliveryOutcome"].dec(d["sm-DeliveryOutcome"]),
        _rest(d, ("msisdn", "serviceCentreAddress", "sm-DeliveryOutcome")),
    )


def enc_rsmds(c: OperationCodec, o: ops.ReportSMDeliveryStatus, v: int) -> dict[str, Any]:
    d = {
        "msisdn": o.msisdn.encode(),
        "serviceCentreAddress": o.service_centre_address.encode(),
        "sm-DeliveryOutcome": c.enums["SM-DeliveryOutcome"].enc(o.sm_delivery_outcome),
    }
    d.update(o.extra)
    return d


def dec_rsmds_res(c: OperationCodec, d: Any, v: int) -> ops.ReportSMDeliveryStatusResult:
    return ops.ReportSMDeliveryStatusResult(
        _opt(d, "storedMSISDN", _addr), _rest(d, ("storedMSISDN",))
    )


def enc_rsmds_res(c: OperationCodec, o: ops.ReportSMDeliveryStatusResult, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    _put(d, "storedMSISDN", o.stored_msisdn, _enc)
    d.update(o.extra)
    return d


def dec_ati(c: OperationCodec, d: Any, v: int) -> ops.AnyTimeInterrogation:
    kind, ident = d["subscriberIdentity"]
    ri = d["requestedInfo"]
    extra = _rest(d, ("subscriberIdentity", "requestedInfo", "gsmSCF-Address"))
    ri_rest = _rest(ri, ("locationInformation", "subscriberState"))
    if ri_rest:
        extra["requestedInfo"] = ri_rest
    return ops.AnyTimeInterrogation(
        gsm_scf_address=_addr(d["gsmSCF-Address"]),
        msisdn=_addr(ident) if kind == "msisdn" else None,
        imsi=decode_tbcd(ident) if kind == "imsi" else None,
        location_information="locationInformation" in ri,
        subscriber_state="subscriberState" in ri,
        extra=extra,
    )


def enc_ati(c: OperationCodec, o: ops.AnyTimeInterrogation, v: int) -> dict[str, Any]:
    extra = dict(o.extra)
    ri: dict[str, Any] = dict(extra.pop("requestedInfo", {}))
    if o.location_information:
        ri["locationInformation"] = 0
    if o.subscriber_state:
        ri["subscriberState"] = 0
    if o.imsi is not None:
        ident: tuple[str, bytes] = ("imsi", encode_tbcd(o.imsi))
    elif o.msisdn is not None:
        ident = ("msisdn", o.msisdn.encode())
    else:
        raise EncodeError("map", "AnyTimeInterrogation needs imsi or msisdn")
    d: dict[str, Any] = {
        "subscriberIdentity": ident,
        "requestedInfo": ri,
        "gsmSCF-Address": o.gsm_scf_address.encode(),
    }
    d.update(extra)
    return d


_NRR = _Enum(
    {"msPurged": 0, "imsiDetached": 1, "restrictedArea": 2, "notRegistered": 3}, layer="map"
)


def dec_ati_res(c: OperationCodec, d: Any, v: int) -> ops.AnyTimeInterrogationResult:
    si = dict(d["subscriberInfo"])
    extra = _rest(d, ("subscriberInfo",))
    state = si.pop("subscriberState", None)
    kind = reason = None
    if state is not None:
        kind, val = state
        if kind == "netDetNotReachable":
            reason = _NRR.to_int.get(val)
            if reason is None:
                raise DecodeError("map", 0, f"NotReachableReason {val}")
    vlr = None
    li = si.get("locationInformation")
    if li is not None and "vlr-number" in li:
        li = dict(li)
        vlr = _addr(li.pop("vlr-number"))
        if li:
            si["locationInformation"] = li
        else:
            del si["locationInformation"]
    if si:
        extra["subscriberInfo"] = si
    return ops.AnyTimeInterrogationResult(kind, reason, vlr, extra)


def enc_ati_res(c: OperationCodec, o: ops.AnyTimeInterrogationResult, v: int) -> dict[str, Any]:
    extra = dict(o.extra)
    si: dict[str, Any] = dict(extra.pop("subscriberInfo", {}))
    if o.vlr_number is not None:
        li = dict(si.get("locationInformation", {}))
        li["vlr-number"] = o.vlr_number.encode()
        si["locationInformation"] = li
    if o.subscriber_state is not None:
        if o.subscriber_state == "netDetNotReachable":
            si["subscriberState"] = (
                "netDetNotReachable",
                _NRR.to_name[o.not_reachable_reason or 0],
            )
        else:
            si["subscriberState"] = (o.subscriber_state, 0)
    d: dict[str, Any] = {"subscriberInfo": si}
    d.update(extra)
    return d


def dec_absent_sm(p: Any) -> ops.AbsentSubscriberSM:
    return ops.AbsentSubscriberSM(
        p.get("absentSubscriberDiagnosticSM"),
        p.get("additionalAbsentSubscriberDiagnosticSM"),
        _rest(p, ("absentSubscriberDiagnosticSM", "additionalAbsentSubscriberDiagnosticSM")),
    )


def enc_absent_sm(o: ops.AbsentSubscriberSM) -> dict[str, Any]:
    d: dict[str, Any] = {}
    _put(d, "absentSubscriberDiagnosticSM", o.diagnostic)
    _put(d, "additionalAbsentSubscriberDiagnosticSM", o.additional_diagnostic)
    d.update(o.extra)
    return d


def _map_version(ac: tuple[int, ...] | None) -> int:
    return ac[-1] if ac else 3


# alertServiceCentreWithoutResult (v1) has the AlertServiceCentreArg layout.
_ARGS[49] = ("alertServiceCentreWithoutResult", _ARGS[64][1])
OPCODES[49] = "alertServiceCentreWithoutResult"

_TYPED: dict[int, tuple[type, Any, Any]] = {
    # v1 op 49 decodes to AlertServiceCentre(without_result=True); encode_arg() routes it, so
    # its class here is a private placeholder that keeps 64 the encoder for the ops class.
    49: (type("_AscV1", (), {}), dec_asc_v1, enc_asc),
    64: (ops.AlertServiceCentre, dec_asc, enc_asc),
    89: (ops.NoteMMEvent, dec_note_mm, enc_note_mm),
    66: (ops.ReadyForSM, dec_rfsm, enc_rfsm),
    45: (ops.SendRoutingInfoForSM, dec_sri_sm, enc_sri_sm),
    47: (ops.ReportSMDeliveryStatus, dec_rsmds, enc_rsmds),
    71: (ops.AnyTimeInterrogation, dec_ati, enc_ati),
}
_TYPED_RESULTS: dict[int, tuple[type, Any, Any]] = {
    45: (ops.RoutingInfoForSM, dec_sri_sm_res, enc_sri_sm_res),
    47: (ops.ReportSMDeliveryStatusResult, dec_rsmds_res, enc_rsmds_res),
    71: (ops.AnyTimeInterrogationResult, dec_ati_res, enc_ati_res),
}
CODEC = OperationCodec("map", _ARGS, _RESULTS, _ERRS, _TYPED, _TYPED_RESULTS, _ENUMS, _map_version)
# MAP v1/v2 application contexts: the v2 ASN.1 where it differs (e.g. sendIdentification).
CODEC_V2 = OperationCodec(
    "map",
    _ARGS_V2 | {49: _ARGS[49]},
    _RESULTS_V2,
    _ERRS,
    _TYPED,
    _TYPED_RESULTS,
    _ENUMS,
    _map_version,
)


# Hot operations through scp.codecs.fastber first: alertServiceCentre (v2 and v1), NoteMM-Event.
for _c in (CODEC, CODEC_V2):
    _c.fast_decode = frozenset((49, 64, 89))
    _c.fast_encode = frozenset((49, 64, 89))


def _codec(ac: tuple[int, ...] | None) -> OperationCodec:
    return CODEC_V2 if ac is not None and len(ac) == 8 and ac[7] <= 2 else CODEC


def decode_arg(
    opcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.Operation:
    """TC-INVOKE parameter (complete TLV) -> typed ops value or GenericOperation."""
    return _codec(ac).decode_arg(opcode, parameter, ac)


def encode_arg(
    op: ops.Operation, *, ac: tuple[int, ...] | None = None
) -> tuple[int | tuple[int, ...], bytes | None]:
    """Typed ops value -> (opcode, parameter TLV)."""
    if isinstance(op, ops.AlertServiceCentre) and op.without_result:
        return 49, CODEC.fast_or_ber_encode(_ARGS[64][1], enc_asc(CODEC, op, 1))
    return _codec(ac).encode_arg(op, ac)


def decode_result(
    opcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.Operation:
    """TC-RESULT-L parameter -> RoutingInfoForSM / ReportSMDeliveryStatusResult / ATI result."""
    return _codec(ac).decode_result(opcode, parameter, ac)


def encode_result(
    opcode: int | tuple[int, ...],
    result: ops.Operation | None,
    *,
    ac: tuple[int, ...] | None = None,
) -> bytes | None:
    """Result value -> parameter TLV (None: no parameter, e.g. AlertServiceCentre v2)."""
    return _codec(ac).encode_result(opcode, result, ac)


def decode_error(
    errcode: int | tuple[int, ...], parameter: bytes | None, *, ac: tuple[int, ...] | None = None
) -> ops.OperationError:
    """TC-U-ERROR -> OperationError; absentSubscriberSM's parameter is AbsentSubscriberSM."""
    err = _codec(ac).decode_error(errcode, parameter, ac)
    assert isinstance(err, ops.OperationError)
    if err.code == 6 and isinstance(err.parameter, dict):
        try:
            return ops.OperationError(6, err.name, dec_absent_sm(err.parameter))
        except (KeyError, TypeError) as exc:
            raise DecodeError("map", 0, f"absentSubscriberSM: {exc!r}") from None
    return err


def encode_error(
    err: ops.OperationError, *, ac: tuple[int, ...] | None = None
) -> tuple[int | tuple[int, ...], bytes | None]:
    """OperationError -> (errcode, parameter TLV or None)."""
    if isinstance(err.parameter, ops.AbsentSubscriberSM):
        err = ops.OperationError(err.code, err.name, enc_absent_sm(err.parameter))
    return _codec(ac).encode_error(err, ac)
