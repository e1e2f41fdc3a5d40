"""MAP for the missed-call service: the MAP operation codec (``CODEC``).

Spec: 3GPP TS 29.002 (MAP v3 ASN.1, §17, codes as :class:`~scp.codecs.opcodes.MapOpcode`; the
operations used here are specified in §12.3
sendRoutingInfoForSM, §12.4 ReportSM-DeliveryStatus, §12.7 ReadyForSM, §12.5
alertServiceCentre (v2 op 64; v1 op 49 alertServiceCentreWithoutResult, GSM 09.02 phase 1),
§8.11.2 NoteMM-Event and §8.11.1 AnyTimeInterrogation; errors §17.6 (absentSubscriberSM 6)).
The ASN.1 is pycrate's compiled ``pycrate_asn1dir.TCAP_MAPv2v3`` (v3 with extension markers,
so the v1/v2 forms of these arguments decode through it).

Every other MAP operation decodes to a lossless ``GenericOperation`` (parameter kept). A
v1/v2 application context is read with the v2 ASN.1 where it differs (e.g. forwardSM,
sendIdentification). Application-context negotiation lives in :mod:`scp.codecs.appctx`
(``map_ac_decision``).
"""

from __future__ import annotations

from typing import Any

from pycrate_asn1dir import TCAP_MAPv2v3 as _M

from scp.codecs import ops
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import AddressString, decode_tbcd, encode_tbcd
from scp.codecs.opcodec import (
    Conversion,
    Enumerated,
    OperationCodec,
    component,
    opt,
    put,
    rest,
)
from scp.codecs.opcodes import MapErrorCode, MapOpcode, spec_names
from scp.primitives import Opcode

__all__ = ["CODEC", "MapCodec"]


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


def _enum_of(t: Any, *path: str) -> Enumerated:
    return Enumerated(component(t, *path)._cont, layer="map")


# ---- typed conversions ----------------------------------------------------------------------


def dec_asc(c: OperationCodec, d: Any, v: int) -> ops.AlertServiceCentre:
    return ops.AlertServiceCentre(
        _addr(d["msisdn"]),
        _addr(d["serviceCentreAddress"]),
        False,
        rest(d, ("msisdn", "serviceCentreAddress")),
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
        rest(d, ("serviceKey", "eventMet", "imsi", "msisdn")),
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
        rest(d, ("imsi", "alertReason", "alertReasonIndicator")),
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
        rest(d, ("msisdn", "serviceCentreAddress", "sm-RP-PRI")),
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
    extra = rest(d, ("imsi", "locationInfoWithLMSI"))
    loc_rest = rest(loc, ("networkNode-Number", "lmsi"))
    if loc_rest:
        extra["locationInfoWithLMSI"] = loc_rest
    return ops.RoutingInfoForSM(
        decode_tbcd(d["imsi"]), opt(loc, "networkNode-Number", _addr), loc.get("lmsi"), extra
    )


def enc_sri_sm_res(c: OperationCodec, o: ops.RoutingInfoForSM, v: int) -> dict[str, Any]:
    extra = dict(o.extra)
    loc: dict[str, Any] = dict(extra.pop("locationInfoWithLMSI", {}))
    if o.network_node_number is None:
        raise EncodeError("map", "RoutingInfoForSM-Res needs networkNode-Number")
    loc["networkNode-Number"] = o.network_node_number.encode()
    put(loc, "lmsi", o.lmsi)
    d: dict[str, Any] = {"imsi": encode_tbcd(o.imsi), "locationInfoWithLMSI": loc}
    d.update(extra)
    return d


def dec_rsmds(c: OperationCodec, d: Any, v: int) -> ops.ReportSMDeliveryStatus:
    return ops.ReportSMDeliveryStatus(
        _addr(d["msisdn"]),
        _addr(d["serviceCentreAddress"]),
        c.enums["SM-DeliveryOutcome"].dec(d["sm-DeliveryOutcome"]),
        rest(d, ("msisdn", "serviceCentreAddress", "sm-DeliveryOutcome")),
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
        opt(d, "storedMSISDN", _addr), rest(d, ("storedMSISDN",))
    )


def enc_rsmds_res(c: OperationCodec, o: ops.ReportSMDeliveryStatusResult, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    put(d, "storedMSISDN", o.stored_msisdn, _enc)
    d.update(o.extra)
    return d


def dec_ati(c: OperationCodec, d: Any, v: int) -> ops.AnyTimeInterrogation:
    kind, ident = d["subscriberIdentity"]
    ri = d["requestedInfo"]
    extra = rest(d, ("subscriberIdentity", "requestedInfo", "gsmSCF-Address"))
    ri_rest = rest(ri, ("locationInformation", "subscriberState"))
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


_NRR = Enumerated(
    {"msPurged": 0, "imsiDetached": 1, "restrictedArea": 2, "notRegistered": 3}, layer="map"
)


def dec_ati_res(c: OperationCodec, d: Any, v: int) -> ops.AnyTimeInterrogationResult:
    si = dict(d["subscriberInfo"])
    extra = rest(d, ("subscriberInfo",))
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
        rest(p, ("absentSubscriberDiagnosticSM", "additionalAbsentSubscriberDiagnosticSM")),
    )


def enc_absent_sm(o: ops.AbsentSubscriberSM) -> dict[str, Any]:
    d: dict[str, Any] = {}
    put(d, "absentSubscriberDiagnosticSM", o.diagnostic)
    put(d, "additionalAbsentSubscriberDiagnosticSM", o.additional_diagnostic)
    d.update(o.extra)
    return d


def _map_version(ac: tuple[int, ...] | None) -> int:
    return ac[-1] if ac else 3


def _v2(ac: tuple[int, ...] | None) -> bool:
    """A MAP v1 or v2 application context (0.4.0.0.1.0.<ac>.<version>)."""
    return ac is not None and len(ac) == 8 and ac[7] <= 2


class MapCodec(OperationCodec):
    """The MAP v3 codec, with ``v2`` for v1/v2 application contexts (the v2 ASN.1 where it
    differs), v1 alertServiceCentreWithoutResult and the absentSubscriberSM error typed."""

    def __init__(self, *, v2: OperationCodec, **tables: Any) -> None:
        super().__init__("map", **tables)
        self.v2 = v2

    def syntax_of(self, ac: tuple[int, ...] | None) -> OperationCodec:
        """The codec whose ASN.1 tables read a dialogue in ``ac``: ``v2`` or this one."""
        return self.v2 if _v2(ac) else self

    def decode_arg(
        self, opcode: Opcode, parameter: bytes | None, *, ac: tuple[int, ...] | None = None
    ) -> ops.Operation:
        if _v2(ac):
            return self.v2.decode_arg(opcode, parameter, ac=ac)
        return super().decode_arg(opcode, parameter, ac=ac)

    def encode_arg(
        self, op: ops.Operation, *, ac: tuple[int, ...] | None = None
    ) -> tuple[Opcode, bytes | None]:
        if isinstance(op, ops.AlertServiceCentre) and op.without_result:
            t = self.args[MapOpcode.ALERT_SERVICE_CENTRE][1]
            return _ASC_V1, self.fast_or_ber_encode(t, enc_asc(self, op, 1))
        if _v2(ac):
            return self.v2.encode_arg(op, ac=ac)
        return super().encode_arg(op, ac=ac)

    def decode_result(
        self, opcode: Opcode, parameter: bytes | None, *, ac: tuple[int, ...] | None = None
    ) -> ops.Operation:
        if _v2(ac):
            return self.v2.decode_result(opcode, parameter, ac=ac)
        return super().decode_result(opcode, parameter, ac=ac)

    def encode_result(
        self, opcode: Opcode, result: ops.Operation | None, *, ac: tuple[int, ...] | None = None
    ) -> bytes | None:
        if _v2(ac):
            return self.v2.encode_result(opcode, result, ac=ac)
        return super().encode_result(opcode, result, ac=ac)

    def decode_error(
        self, errcode: Opcode, parameter: bytes | None, *, ac: tuple[int, ...] | None = None
    ) -> ops.OperationError:
        """TC-U-ERROR -> OperationError; absentSubscriberSM's parameter is AbsentSubscriberSM."""
        err = super().decode_error(errcode, parameter, ac=ac)  # v2 and v3 share the errors
        if err.code == MapErrorCode.ABSENT_SUBSCRIBER_SM and isinstance(err.parameter, dict):
            try:
                return ops.OperationError(err.code, err.name, dec_absent_sm(err.parameter))
            except (KeyError, TypeError) as exc:
                raise DecodeError("map", 0, f"absentSubscriberSM: {exc!r}") from None
        return err

    def encode_error(
        self, err: ops.OperationError, *, ac: tuple[int, ...] | None = None
    ) -> tuple[Opcode, bytes | None]:
        if isinstance(err.parameter, ops.AbsentSubscriberSM):
            err = ops.OperationError(err.code, err.name, enc_absent_sm(err.parameter))
        return super().encode_error(err, ac=ac)


_ASC_V1 = int(MapOpcode.ALERT_SERVICE_CENTRE_WITHOUT_RESULT)


def _build() -> MapCodec:
    args, results = _collect("MAP_")
    args_v2, results_v2 = _collect("MAPv2_")
    # alertServiceCentreWithoutResult (v1) has the AlertServiceCentreArg layout.
    args[_ASC_V1] = args_v2[_ASC_V1] = (
        MapOpcode.ALERT_SERVICE_CENTRE_WITHOUT_RESULT.spec_name,
        args[MapOpcode.ALERT_SERVICE_CENTRE][1],
    )
    enums = {
        "AlertReason": _enum_of(args[MapOpcode.READY_FOR_SM][1], "alertReason"),
        "SM-DeliveryOutcome": _enum_of(
            args[MapOpcode.REPORT_SM_DELIVERY_STATUS][1], "sm-DeliveryOutcome"
        ),
    }
    typed = {
        # v1 decodes to AlertServiceCentre(without_result=True); MapCodec.encode_arg sends
        # such a value as 49, so this conversion only decodes.
        MapOpcode.ALERT_SERVICE_CENTRE_WITHOUT_RESULT: Conversion(
            ops.AlertServiceCentre, dec_asc_v1, None
        ),
        MapOpcode.ALERT_SERVICE_CENTRE: Conversion(ops.AlertServiceCentre, dec_asc, enc_asc),
        MapOpcode.NOTE_MM_EVENT: Conversion(ops.NoteMMEvent, dec_note_mm, enc_note_mm),
        MapOpcode.READY_FOR_SM: Conversion(ops.ReadyForSM, dec_rfsm, enc_rfsm),
        MapOpcode.SEND_ROUTING_INFO_FOR_SM: Conversion(
            ops.SendRoutingInfoForSM, dec_sri_sm, enc_sri_sm
        ),
        MapOpcode.REPORT_SM_DELIVERY_STATUS: Conversion(
            ops.ReportSMDeliveryStatus, dec_rsmds, enc_rsmds
        ),
        MapOpcode.ANY_TIME_INTERROGATION: Conversion(ops.AnyTimeInterrogation, dec_ati, enc_ati),
    }
    typed_results = {
        MapOpcode.SEND_ROUTING_INFO_FOR_SM: Conversion(
            ops.RoutingInfoForSM, dec_sri_sm_res, enc_sri_sm_res
        ),
        MapOpcode.REPORT_SM_DELIVERY_STATUS: Conversion(
            ops.ReportSMDeliveryStatusResult, dec_rsmds_res, enc_rsmds_res
        ),
        MapOpcode.ANY_TIME_INTERROGATION: Conversion(
            ops.AnyTimeInterrogationResult, dec_ati_res, enc_ati_res
        ),
    }
    # The hot operations through scp.codecs.fastber first: alertServiceCentre (v2 and v1),
    # NoteMM-Event.
    hot = (_ASC_V1, MapOpcode.ALERT_SERVICE_CENTRE, MapOpcode.NOTE_MM_EVENT)
    common: dict[str, Any] = {
        "errors": _collect_errors(),
        "typed": typed,
        "typed_results": typed_results,
        "enums": enums,
        "version_of": _map_version,
        "opcode_names": spec_names(MapOpcode),
        "error_names": spec_names(MapErrorCode),
        "fast_decode": hot,
        "fast_encode": hot,
    }
    v2 = OperationCodec("map", args=args_v2, results=results_v2, **common)
    return MapCodec(v2=v2, args=args, results=results, **common)


CODEC = _build()
"""The MAP codec: ``CODEC.decode_arg(opcode, parameter, ac=...)`` and the other five."""
