"""The IN call-control operations CAP and INAP share: typed conversions to ``ops`` values.

Spec: ITU-T Q.1218 §6 / ETSI ETS 300 374-1 §6 (Core INAP CS-1 operations, arguments and
data types), whose component names, tags and operation codes 3GPP TS 29.078 §6 keeps for
CAMEL: InitialDP, EventReportBCSM, RequestReportBCSMEvent, Connect, ConnectToResource,
EstablishTemporaryConnection, AssistRequestInstructions, PlayAnnouncement,
PromptAndCollectUserInformation (and its ReceivedInformation result),
SpecializedResourceReport, CallInformationRequest / Report, FurnishChargingInformation,
SendChargingInformation, ResetTimer, Cancel, InitiateCallAttempt, Continue,
DisconnectForwardConnection, ActivityTest and CallGap. Each conversion reads and writes pycrate's value
notation, so it runs unchanged on the fast path's output (:mod:`scp.codecs.fastber`); where
the two protocols name a component differently the codec's ``name()`` says which
(``requestAnnouncementComplete`` in INAP), where a DEFAULT differs ``default()`` reads the
schema. What only CAP has (ContinueWithArgument, the CAMEL charging octet strings, ReleaseCall's
CHOICE) is in :mod:`scp.codecs.cap`; INAP's ReleaseCall in :mod:`scp.codecs.inap`.
"""

from __future__ import annotations

from typing import Any

from scp.codecs import ops
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    GenericNumber,
    RedirectingNumber,
    TimeAndTimezone,
    decode_tbcd,
    encode_tbcd,
)
from scp.codecs.opcodec import Conversion, OperationCodec, opt, put, rest
from scp.codecs.opcodes import InapOpcode as Op

__all__ = [
    "HOT",
    "HOT_DECODE",
    "HOT_ENCODE",
    "RESULT_CONVERSIONS",
    "call_gap_conversion",
    "shared_conversions",
    "leg_from",
    "leg_to",
]


def leg_from(v: tuple[str, bytes]) -> ops.LegID:
    """LegID (TS 29.078 §7.6, Q.1218) from pycrate's CHOICE (sendingSideID / receivingSideID)."""
    name, octets = v
    if len(octets) != 1:
        raise DecodeError("cap", 0, f"LegType is one octet, got {len(octets)}")
    return ops.LegID(octets[0], sending=name == "sendingSideID")


def leg_to(leg: ops.LegID) -> tuple[str, bytes]:
    """pycrate's LegID CHOICE for ``leg``."""
    return ("sendingSideID" if leg.sending else "receivingSideID", bytes((leg.leg,)))


def _cpn(b: bytes) -> CalledPartyNumber:
    return CalledPartyNumber.decode(b)


def _enc(x: Any) -> bytes:
    return x.encode()  # type: ignore[no-any-return]


_IDP_KNOWN = frozenset(
    (
        "serviceKey",
        "calledPartyNumber",
        "callingPartyNumber",
        "callingPartysCategory",
        "locationNumber",
        "originalCalledPartyID",
        "eventTypeBCSM",
        "redirectingPartyID",
        "redirectionInformation",
        "iMSI",
        "callReferenceNumber",
        "mscAddress",
        "calledPartyBCDNumber",
        "timeAndTimezone",
        "cause",
        "dialledDigits",
    )
)


def dec_initial_dp(c: OperationCodec, d: Any, v: int) -> ops.InitialDP:
    g = d.get
    cat = g("callingPartysCategory")
    et = g("eventTypeBCSM")
    x = g("calledPartyNumber")
    called = None if x is None else CalledPartyNumber.decode(x)
    x = g("callingPartyNumber")
    calling = None if x is None else CallingPartyNumber.decode(x)
    x = g("iMSI")
    imsi = None if x is None else decode_tbcd(x)
    return ops.InitialDP(
        service_key=d["serviceKey"],
        called_party_number=called,
        calling_party_number=calling,
        calling_partys_category=None if cat is None else (cat[0] if cat else 0),
        location_number=opt(d, "locationNumber", CallingPartyNumber.decode),
        original_called_party_id=opt(d, "originalCalledPartyID", RedirectingNumber.decode),
        event_type_bcsm=None if et is None else c.enums["EventTypeBCSM"].dec(et),
        redirecting_party_id=opt(d, "redirectingPartyID", RedirectingNumber.decode),
        redirection_information=g("redirectionInformation"),
        imsi=imsi,
        call_reference_number=g("callReferenceNumber"),
        msc_address=opt(d, "mscAddress", AddressString.decode),
        called_party_bcd_number=opt(d, "calledPartyBCDNumber", AddressString.decode),
        time_and_timezone=opt(d, "timeAndTimezone", TimeAndTimezone.decode),
        cause=opt(d, "cause", Cause.decode),
        dialled_digits=opt(d, "dialledDigits", _cpn),
        extra=rest(d, _IDP_KNOWN),
    )


def enc_initial_dp(c: OperationCodec, o: ops.InitialDP, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"serviceKey": o.service_key}
    put(d, "dialledDigits", o.dialled_digits, _enc)
    put(d, "calledPartyNumber", o.called_party_number, _enc)
    put(d, "callingPartyNumber", o.calling_party_number, _enc)
    put(d, "callingPartysCategory", o.calling_partys_category, lambda x: bytes((x,)))
    put(d, "locationNumber", o.location_number, _enc)
    put(d, "originalCalledPartyID", o.original_called_party_id, _enc)
    put(d, "eventTypeBCSM", o.event_type_bcsm, c.enums["EventTypeBCSM"].enc)
    put(d, "redirectingPartyID", o.redirecting_party_id, _enc)
    put(d, "redirectionInformation", o.redirection_information)
    put(d, "iMSI", o.imsi, encode_tbcd)
    put(d, "callReferenceNumber", o.call_reference_number)
    put(d, "mscAddress", o.msc_address, _enc)
    put(d, "calledPartyBCDNumber", o.called_party_bcd_number, _enc)
    put(d, "timeAndTimezone", o.time_and_timezone, _enc)
    put(d, "cause", o.cause, _enc)
    d.update(o.extra)
    return d


# The cause component name follows the CHOICE alternative (Q.1218 / TS 29.078 §7.6).
_CAUSE_KEY_OF = {
    "routeSelectFailureSpecificInfo": "failureCause",
    "oCalledPartyBusySpecificInfo": "busyCause",
    "tBusySpecificInfo": "busyCause",
    "tCalledPartyBusySpecificInfo": "busyCause",
    "oDisconnectSpecificInfo": "releaseCause",
    "tDisconnectSpecificInfo": "releaseCause",
}


def dec_event_report(c: OperationCodec, d: Any, v: int) -> ops.EventReportBCSM:
    info = None
    esi = d.get("eventSpecificInformationBCSM")
    if esi is not None:
        kind, body = esi
        cause = None
        others: dict[str, Any] = {}
        ckey = _CAUSE_KEY_OF.get(kind)
        if isinstance(body, dict):
            for k, val in body.items():
                if k == ckey:
                    cause = Cause.decode(val)
                else:
                    others[k] = val
        else:
            others = {"": body}
        info = ops.EventSpecificInfo(kind, cause, others)
    misc = d.get("miscCallInfo")
    rest_d = rest(d, ("eventTypeBCSM", "eventSpecificInformationBCSM", "legID", "miscCallInfo"))
    if misc is not None and len(misc) > 1:
        rest_d["miscCallInfo"] = misc
    return ops.EventReportBCSM(
        event_type_bcsm=c.enums["EventTypeBCSM"].dec(d["eventTypeBCSM"]),
        event_specific_information=info,
        leg_id=opt(d, "legID", leg_from),
        # MiscCallInfo DEFAULT {messageType request} (TS 29.078 §6.1.2.x, Q.1218 §6.3)
        message_type=0 if misc is None or misc.get("messageType") == "request" else 1,
        extra=rest_d,
    )


def enc_event_report(c: OperationCodec, o: ops.EventReportBCSM, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"eventTypeBCSM": c.enums["EventTypeBCSM"].enc(o.event_type_bcsm)}
    i = o.event_specific_information
    if i is not None:
        extra = dict(i.extra)
        if "" in extra:
            d["eventSpecificInformationBCSM"] = (i.kind, extra[""])
        else:
            body: dict[str, Any] = {}
            if i.cause is not None:
                key = _CAUSE_KEY_OF.get(i.kind)
                if key is None:
                    raise EncodeError(c.layer, f"{i.kind} carries no cause")
                body[key] = i.cause.encode()
            body.update(extra)
            d["eventSpecificInformationBCSM"] = (i.kind, body)
    put(d, "legID", o.leg_id, leg_to)
    extra_d = dict(o.extra)
    if "miscCallInfo" not in extra_d:
        extra_d["miscCallInfo"] = {
            "messageType": "request" if o.message_type == 0 else "notification"
        }
    d.update(extra_d)
    return d


def dec_rrbe(c: OperationCodec, d: Any, v: int) -> ops.RequestReportBCSMEvent:
    evs = []
    et, mm = c.enums["EventTypeBCSM"], c.enums["MonitorMode"]
    for e in d["bcsmEvents"]:
        dpsc = c.name("dpSpecificCriteria")
        crit = e.get(dpsc)
        others = rest(e, ("eventTypeBCSM", "monitorMode", "legID", "automaticRearm"))
        timer = None
        if crit is not None and crit[0] == "applicationTimer":
            timer = crit[1]
            del others[dpsc]
        evs.append(
            ops.BCSMEvent(
                event_type_bcsm=et.dec(e["eventTypeBCSM"]),
                monitor_mode=mm.dec(e["monitorMode"]),
                leg_id=opt(e, "legID", leg_from),
                application_timer=timer,
                automatic_rearm="automaticRearm" in e,
                extra=others,
            )
        )
    return ops.RequestReportBCSMEvent(tuple(evs), rest(d, ("bcsmEvents",)))


def enc_rrbe(c: OperationCodec, o: ops.RequestReportBCSMEvent, v: int) -> dict[str, Any]:
    et, mm = c.enums["EventTypeBCSM"], c.enums["MonitorMode"]
    evs = []
    for e in o.bcsm_events:
        x: dict[str, Any] = {
            "eventTypeBCSM": et.enc(e.event_type_bcsm),
            "monitorMode": mm.enc(e.monitor_mode),
        }
        put(x, "legID", e.leg_id, leg_to)
        if e.application_timer is not None:
            x[c.name("dpSpecificCriteria")] = ("applicationTimer", e.application_timer)
        if e.automatic_rearm:
            x["automaticRearm"] = 0
        x.update(e.extra)
        evs.append(x)
    d: dict[str, Any] = {"bcsmEvents": evs}
    d.update(o.extra)
    return d


def _no_argument(cls: type) -> Conversion:
    """An operation without an argument (Continue, DisconnectForwardConnection, ActivityTest)."""
    return Conversion(cls, lambda c, d, v: cls(), lambda c, o, v: None)


_CONNECT_KNOWN = (
    "destinationRoutingAddress",
    "originalCalledPartyID",
    "redirectingPartyID",
    "redirectionInformation",
    "callingPartysCategory",
    "genericNumbers",
    "suppressionOfAnnouncement",
    "oCSIApplicable",
)


def dec_connect(c: OperationCodec, d: Any, v: int) -> ops.Connect:
    return ops.Connect(
        destination_routing_address=tuple(_cpn(b) for b in d["destinationRoutingAddress"]),
        original_called_party_id=opt(d, "originalCalledPartyID", RedirectingNumber.decode),
        redirecting_party_id=opt(d, "redirectingPartyID", RedirectingNumber.decode),
        redirection_information=d.get("redirectionInformation"),
        calling_partys_category=opt(d, "callingPartysCategory", lambda b: b[0] if b else 0),
        generic_numbers=tuple(GenericNumber.decode(b) for b in d.get("genericNumbers", ())),
        suppression_of_announcement="suppressionOfAnnouncement" in d,
        ocsi_applicable="oCSIApplicable" in d,
        extra=rest(d, _CONNECT_KNOWN),
    )


def enc_connect(c: OperationCodec, o: ops.Connect, v: int) -> dict[str, Any]:
    if not o.destination_routing_address:
        raise EncodeError(c.layer, "Connect needs a destinationRoutingAddress")
    d: dict[str, Any] = {
        "destinationRoutingAddress": [a.encode() for a in o.destination_routing_address]
    }
    put(d, "originalCalledPartyID", o.original_called_party_id, _enc)
    put(d, "redirectingPartyID", o.redirecting_party_id, _enc)
    put(d, "redirectionInformation", o.redirection_information)
    put(d, "callingPartysCategory", o.calling_partys_category, lambda x: bytes((x,)))
    if o.generic_numbers:
        d["genericNumbers"] = [g.encode() for g in o.generic_numbers]
    if o.suppression_of_announcement:
        d["suppressionOfAnnouncement"] = 0
    if o.ocsi_applicable:
        d["oCSIApplicable"] = 0
    d.update(o.extra)
    return d


def dec_ctr(c: OperationCodec, d: Any, v: int) -> ops.ConnectToResource:
    name, addr = d["resourceAddress"]
    return ops.ConnectToResource(
        ip_routing_address=_cpn(addr) if name == "ipRoutingAddress" else None,
        extra=rest(d, ("resourceAddress",))
        | (
            {"resourceAddress": d["resourceAddress"]}
            if name not in ("ipRoutingAddress", "none")
            else {}
        ),
    )


def enc_ctr(c: OperationCodec, o: ops.ConnectToResource, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "resourceAddress": ("ipRoutingAddress", o.ip_routing_address.encode())
        if o.ip_routing_address is not None
        else ("none", 0)
    }
    d.update(o.extra)
    return d


def _routing_addr(b: bytes) -> GenericNumber | CalledPartyNumber:
    # TS 29.078 §7.6 codes AssistingSSPIPRoutingAddress as a Generic Number; Q.1218 Digits
    # in INAP are often a called-party-number layout. A generic number has the qualifier first.
    if len(b) >= 3 and b[0] in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A):
        return GenericNumber.decode(b)
    return CalledPartyNumber.decode(b)


def dec_etc(c: OperationCodec, d: Any, v: int) -> ops.EstablishTemporaryConnection:
    return ops.EstablishTemporaryConnection(
        assisting_ssp_ip_routing_address=_routing_addr(d["assistingSSPIPRoutingAddress"]),
        correlation_id=opt(d, "correlationID", GenericDigits.decode),
        scf_id=d.get("scfID"),
        extra=rest(d, ("assistingSSPIPRoutingAddress", "correlationID", "scfID")),
    )


def enc_etc(c: OperationCodec, o: ops.EstablishTemporaryConnection, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {
        "assistingSSPIPRoutingAddress": o.assisting_ssp_ip_routing_address.encode()
    }
    put(d, "correlationID", o.correlation_id, _enc)
    put(d, "scfID", o.scf_id)
    d.update(o.extra)
    return d


def dec_ari(c: OperationCodec, d: Any, v: int) -> ops.AssistRequestInstructions:
    return ops.AssistRequestInstructions(
        correlation_id=GenericDigits.decode(d["correlationID"]),
        ip_ssp_capabilities=d.get("iPSSPCapabilities"),
        extra=rest(d, ("correlationID", "iPSSPCapabilities")),
    )


def enc_ari(c: OperationCodec, o: ops.AssistRequestInstructions, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"correlationID": o.correlation_id.encode()}
    put(d, "iPSSPCapabilities", o.ip_ssp_capabilities)
    d.update(o.extra)
    return d


def dec_its(v: Any) -> ops.InformationToSend:
    kind, body = v
    if kind == "tone":
        return ops.InformationToSend(tone_id=body["toneID"], tone_duration=body.get("duration"))
    if kind != "inbandInfo":
        return ops.InformationToSend(extra={"": v})
    mk, mv = body["messageID"]
    ids: tuple[int, ...] = ()
    text = None
    extra: dict[str, Any] = {}
    if mk == "elementaryMessageID":
        ids = (mv,)
    elif mk == "elementaryMessageIDs":
        ids = tuple(mv)
        if len(ids) == 1:
            extra["messageIDs1"] = True
    elif mk == "text" and "attributes" not in mv:
        text = mv["messageContent"]
    else:
        extra["messageID"] = body["messageID"]
    return ops.InformationToSend(
        message_ids=ids,
        text=text,
        number_of_repetitions=body.get("numberOfRepetitions"),
        duration=body.get("duration"),
        interval=body.get("interval"),
        extra=extra,
    )


def enc_its(o: ops.InformationToSend) -> Any:
    if "" in o.extra:
        return o.extra[""]
    if o.tone_id is not None:
        t: dict[str, Any] = {"toneID": o.tone_id}
        put(t, "duration", o.tone_duration)
        return ("tone", t)
    b: dict[str, Any] = {}
    if "messageID" in o.extra:
        b["messageID"] = o.extra["messageID"]
    elif o.text is not None:
        b["messageID"] = ("text", {"messageContent": o.text})
    elif len(o.message_ids) == 1 and not o.extra.get("messageIDs1"):
        b["messageID"] = ("elementaryMessageID", o.message_ids[0])
    elif o.message_ids:
        b["messageID"] = ("elementaryMessageIDs", list(o.message_ids))
    else:
        raise EncodeError("cap", "InformationToSend needs message ids, text or a tone")
    put(b, "numberOfRepetitions", o.number_of_repetitions)
    put(b, "duration", o.duration)
    put(b, "interval", o.interval)
    return ("inbandInfo", b)


def dec_pa(c: OperationCodec, d: Any, v: int) -> ops.PlayAnnouncement:
    rac = c.name("requestAnnouncementCompleteNotification")
    return ops.PlayAnnouncement(
        information_to_send=dec_its(d["informationToSend"]),
        disconnect_from_ip_forbidden=d.get(
            "disconnectFromIPForbidden", c.default(47, "disconnectFromIPForbidden", True)
        ),
        request_announcement_complete=d.get(rac, c.default(47, rac, True)),
        extra=rest(d, ("informationToSend", "disconnectFromIPForbidden", rac)),
    )


def enc_pa(c: OperationCodec, o: ops.PlayAnnouncement, v: int) -> dict[str, Any]:
    rac = c.name("requestAnnouncementCompleteNotification")
    d: dict[str, Any] = {"informationToSend": enc_its(o.information_to_send)}
    # A value equal to its DEFAULT is left out (X.690 §11.5); the defaults are read from the
    # schema since CAP and the INAP transcription do not agree on every one of them.
    if o.disconnect_from_ip_forbidden != c.default(47, "disconnectFromIPForbidden", True):
        d["disconnectFromIPForbidden"] = o.disconnect_from_ip_forbidden
    if o.request_announcement_complete != c.default(47, rac, True):
        d[rac] = o.request_announcement_complete
    d.update(o.extra)
    return d


_CD = (
    ("maximumNbOfDigits", "maximum_nb_of_digits"),
    ("endOfReplyDigit", "end_of_reply_digit"),
    ("cancelDigit", "cancel_digit"),
    ("startDigit", "start_digit"),
    ("firstDigitTimeOut", "first_digit_timeout"),
    ("interDigitTimeOut", "inter_digit_timeout"),
    ("interruptableAnnInd", "interruptable_ann_ind"),
    ("voiceInformation", "voice_information"),
    ("voiceBack", "voice_back"),
)


def dec_pacui(c: OperationCodec, d: Any, v: int) -> ops.PromptAndCollectUserInformation:
    kind, cd = d["collectedInfo"]
    if kind != "collectedDigits":
        raise DecodeError(c.layer, 0, f"collectedInfo {kind} not supported")
    kw = {py: cd[asn] for asn, py in _CD if asn in cd}
    et = cd.get("errorTreatment")
    return ops.PromptAndCollectUserInformation(
        collected_digits=ops.CollectedDigits(
            minimum_nb_of_digits=cd.get("minimumNbOfDigits", 1),
            error_treatment=None if et is None else c.enums["ErrorTreatment"].dec(et),
            **kw,
        ),
        information_to_send=opt(d, "informationToSend", dec_its),
        disconnect_from_ip_forbidden=d.get("disconnectFromIPForbidden", True),
        extra=rest(d, ("collectedInfo", "informationToSend", "disconnectFromIPForbidden")),
    )


def enc_pacui(c: OperationCodec, o: ops.PromptAndCollectUserInformation, v: int) -> dict[str, Any]:
    cd_o = o.collected_digits
    cd: dict[str, Any] = {}
    if cd_o.minimum_nb_of_digits != 1:
        cd["minimumNbOfDigits"] = cd_o.minimum_nb_of_digits
    for asn, py in _CD:
        put(cd, asn, getattr(cd_o, py))
    put(cd, "errorTreatment", cd_o.error_treatment, c.enums["ErrorTreatment"].enc)
    d: dict[str, Any] = {"collectedInfo": ("collectedDigits", cd)}
    if not o.disconnect_from_ip_forbidden:
        d["disconnectFromIPForbidden"] = False
    put(d, "informationToSend", o.information_to_send, enc_its)
    d.update(o.extra)
    return d


def dec_received_info(c: OperationCodec, d: Any, v: int) -> ops.ReceivedInformation:
    kind, digits = d
    if kind != "digitsResponse":
        raise DecodeError(c.layer, 0, f"ReceivedInformation {kind} not supported")
    return ops.ReceivedInformation(GenericDigits.decode(digits))


def enc_received_info(c: OperationCodec, o: ops.ReceivedInformation, v: int) -> Any:
    return ("digitsResponse", o.digits.encode())


def dec_srr(c: OperationCodec, parameter: bytes, v: int) -> ops.SpecializedResourceReport:
    # v2/v3 and INAP: NULL (05 00); v4: [50] allAnnouncementsComplete / [51] firstAnnouncementStarted.
    if parameter == b"\x05\x00" or parameter == b"\x9f\x32\x00":
        return ops.SpecializedResourceReport()
    if parameter == b"\x9f\x33\x00":
        return ops.SpecializedResourceReport(first_announcement_started=True)
    raise DecodeError(c.layer, 0, f"SpecializedResourceReport argument {parameter.hex()}")


def enc_srr(c: OperationCodec, o: ops.SpecializedResourceReport, v: int) -> bytes:
    if v >= 4:
        return b"\x9f\x33\x00" if o.first_announcement_started else b"\x9f\x32\x00"
    if o.first_announcement_started:
        raise EncodeError(c.layer, "firstAnnouncementStarted needs CAP v4")
    return b"\x05\x00"


def dec_cirq(c: OperationCodec, d: Any, v: int) -> ops.CallInformationRequest:
    ri = c.enums["RequestedInformationType"]
    return ops.CallInformationRequest(
        requested_information_types=tuple(ri.dec(x) for x in d["requestedInformationTypeList"]),
        leg_id=opt(d, "legID", leg_from),
        extra=rest(d, ("requestedInformationTypeList", "legID")),
    )


def enc_cirq(c: OperationCodec, o: ops.CallInformationRequest, v: int) -> dict[str, Any]:
    ri = c.enums["RequestedInformationType"]
    d: dict[str, Any] = {
        "requestedInformationTypeList": [ri.enc(x) for x in o.requested_information_types]
    }
    put(d, "legID", o.leg_id, leg_to)
    d.update(o.extra)
    return d


def dec_cirp(c: OperationCodec, d: Any, v: int) -> ops.CallInformationReport:
    ri = c.enums["RequestedInformationType"]
    items = []
    for it in d["requestedInformationList"]:
        vk, vv = it["requestedInformationValue"]
        val: int | bytes | Cause = Cause.decode(vv) if vk == "releaseCauseValue" else vv
        items.append(ops.RequestedInformation(ri.dec(it["requestedInformationType"]), val))
    return ops.CallInformationReport(
        tuple(items), opt(d, "legID", leg_from), rest(d, ("requestedInformationList", "legID"))
    )


_RI_VALUE = {
    0: "callAttemptElapsedTimeValue",
    1: "callStopTimeValue",
    2: "callConnectedElapsedTimeValue",
    3: "calledAddressValue",
    30: "releaseCauseValue",
}


def enc_cirp(c: OperationCodec, o: ops.CallInformationReport, v: int) -> dict[str, Any]:
    ri = c.enums["RequestedInformationType"]
    lst = []
    for it in o.requested_information:
        val = it.value.encode() if isinstance(it.value, Cause) else it.value
        lst.append(
            {
                "requestedInformationType": ri.enc(it.type),
                "requestedInformationValue": (_RI_VALUE[int(it.type)], val),
            }
        )
    d: dict[str, Any] = {"requestedInformationList": lst}
    put(d, "legID", o.leg_id, leg_to)
    d.update(o.extra)
    return d


def dec_fci(c: OperationCodec, d: Any, v: int) -> ops.FurnishChargingInformation:
    return ops.FurnishChargingInformation(d)


def enc_fci(c: OperationCodec, o: ops.FurnishChargingInformation, v: int) -> bytes:
    return o.fci_billing_charging_characteristics


def dec_sci(c: OperationCodec, d: Any, v: int) -> ops.SendChargingInformation:
    return ops.SendChargingInformation(
        d["sCIBillingChargingCharacteristics"],
        leg_from(d["partyToCharge"]),
        rest(d, ("sCIBillingChargingCharacteristics", "partyToCharge")),
    )


def enc_sci(c: OperationCodec, o: ops.SendChargingInformation, v: int) -> dict[str, Any]:
    d = {
        "sCIBillingChargingCharacteristics": o.sci_billing_charging_characteristics,
        "partyToCharge": leg_to(o.party_to_charge),
    }
    d.update(o.extra)
    return d


def dec_reset_timer(c: OperationCodec, d: Any, v: int) -> ops.ResetTimer:
    return ops.ResetTimer(
        d["timervalue"],
        c.enums["TimerID"].dec(d.get("timerID", "tssf")),
        rest(d, ("timervalue", "timerID")),
    )


def enc_reset_timer(c: OperationCodec, o: ops.ResetTimer, v: int) -> dict[str, Any]:
    d: dict[str, Any] = {"timervalue": o.timer_value}
    if o.timer_id != 0:
        d["timerID"] = c.enums["TimerID"].enc(o.timer_id)
    d.update(o.extra)
    return d


def dec_cancel(c: OperationCodec, d: Any, v: int) -> ops.Cancel:
    k, val = d
    if k == "invokeID":
        return ops.Cancel(invoke_id=val)
    if k == "allRequests":
        return ops.Cancel(all_requests=True)
    return ops.Cancel(extra={"": d})


def enc_cancel(c: OperationCodec, o: ops.Cancel, v: int) -> Any:
    if "" in o.extra:
        return o.extra[""]
    if o.all_requests:
        return ("allRequests", 0)
    if o.invoke_id is None:
        raise EncodeError(c.layer, "Cancel needs invoke_id or all_requests")
    return ("invokeID", o.invoke_id)


def dec_ica(c: OperationCodec, d: Any, v: int) -> ops.InitiateCallAttempt:
    return ops.InitiateCallAttempt(
        tuple(_cpn(b) for b in d["destinationRoutingAddress"]),
        opt(d, "callingPartyNumber", CallingPartyNumber.decode),
        rest(d, ("destinationRoutingAddress", "callingPartyNumber")),
    )


def enc_ica(c: OperationCodec, o: ops.InitiateCallAttempt, v: int) -> dict[str, Any]:
    if v and v < 4:
        raise EncodeError(c.layer, "InitiateCallAttempt needs CAP v4")
    d: dict[str, Any] = {
        "destinationRoutingAddress": [a.encode() for a in o.destination_routing_address]
    }
    put(d, "callingPartyNumber", o.calling_party_number, _enc)
    d.update(o.extra)
    return d


# ControlType (Q.1218 §6 / ETS 300 374-1 §6.3, TS 29.078 §7.6): ops.CallGap.control_type indexes it
_CONTROL_TYPES = ("sCPOverloaded", "manuallyInitiated")


def call_gap_conversion(*, basic: bool) -> Conversion:
    """CallGap (ETS 300 374-1 §6.1 callGap, TS 29.078 §8.4), typed for gapOnService; other
    gapCriteria are kept as they came, in ``extra``.

    The two GapCriteria differ only in nesting: INAP CS-1's is the CHOICE of criteria itself;
    CAP (from CS-2) puts that CHOICE under ``basicGapCriteria`` (``basic``) beside compound
    criteria. The phase check applies to CAP (INAP's version is 0).
    """

    def criteria(d: Any) -> Any:
        crit = d["gapCriteria"]
        if basic:
            return crit[1] if crit[0] == "basicGapCriteria" else None
        return crit

    def dec(c: OperationCodec, d: Any, v: int) -> ops.CallGap:
        crit = criteria(d)
        on_service = crit is not None and crit[0] == "gapOnService"
        ind = d["gapIndicators"]
        ctl = d.get("controlType")
        known = ("gapIndicators", "controlType", *(("gapCriteria",) if on_service else ()))
        return ops.CallGap(
            crit[1]["serviceKey"] if on_service else None,
            ind["duration"],
            ind["gapInterval"],
            None if ctl is None else _CONTROL_TYPES.index(ctl),
            rest(d, known),
        )

    def enc(c: OperationCodec, o: ops.CallGap, v: int) -> dict[str, Any]:
        if v and v < 3:
            raise EncodeError(c.layer, "CallGap needs CAP v3 or v4 (CAMEL phase 2 has none)")
        if o.service_key is None and "gapCriteria" not in o.extra:
            raise EncodeError(c.layer, "CallGap needs service_key or gapCriteria in extra")
        crit: Any = ("gapOnService", {"serviceKey": o.service_key})
        d: dict[str, Any] = {
            "gapCriteria": ("basicGapCriteria", crit) if basic else crit,
            "gapIndicators": {"duration": o.duration, "gapInterval": o.gap_interval},
        }
        if o.control_type is not None:
            d["controlType"] = _CONTROL_TYPES[o.control_type]
        d.update(o.extra)
        return d

    return Conversion(ops.CallGap, dec, enc)


def shared_conversions(release: Conversion) -> dict[int, Conversion]:
    """The argument conversions CAP and INAP share, by opcode (the same codes, Q.1218).

    ``release`` is ReleaseCall's, whose argument differs (a CHOICE in CAP, a bare Cause in
    INAP).
    """
    return {
        Op.INITIAL_DP: Conversion(ops.InitialDP, dec_initial_dp, enc_initial_dp),
        Op.ASSIST_REQUEST_INSTRUCTIONS: Conversion(ops.AssistRequestInstructions, dec_ari, enc_ari),
        Op.ESTABLISH_TEMPORARY_CONNECTION: Conversion(
            ops.EstablishTemporaryConnection, dec_etc, enc_etc
        ),
        Op.DISCONNECT_FORWARD_CONNECTION: _no_argument(ops.DisconnectForwardConnection),
        Op.CONNECT_TO_RESOURCE: Conversion(ops.ConnectToResource, dec_ctr, enc_ctr),
        Op.CONNECT: Conversion(ops.Connect, dec_connect, enc_connect),
        Op.RELEASE_CALL: release,
        Op.REQUEST_REPORT_BCSM_EVENT: Conversion(ops.RequestReportBCSMEvent, dec_rrbe, enc_rrbe),
        Op.EVENT_REPORT_BCSM: Conversion(ops.EventReportBCSM, dec_event_report, enc_event_report),
        Op.CONTINUE: _no_argument(ops.Continue),
        Op.INITIATE_CALL_ATTEMPT: Conversion(ops.InitiateCallAttempt, dec_ica, enc_ica),
        Op.RESET_TIMER: Conversion(ops.ResetTimer, dec_reset_timer, enc_reset_timer),
        Op.FURNISH_CHARGING_INFORMATION: Conversion(
            ops.FurnishChargingInformation, dec_fci, enc_fci
        ),
        Op.CALL_INFORMATION_REPORT: Conversion(ops.CallInformationReport, dec_cirp, enc_cirp),
        Op.CALL_INFORMATION_REQUEST: Conversion(ops.CallInformationRequest, dec_cirq, enc_cirq),
        Op.SEND_CHARGING_INFORMATION: Conversion(ops.SendChargingInformation, dec_sci, enc_sci),
        Op.PLAY_ANNOUNCEMENT: Conversion(ops.PlayAnnouncement, dec_pa, enc_pa),
        Op.PROMPT_AND_COLLECT_USER_INFORMATION: Conversion(
            ops.PromptAndCollectUserInformation, dec_pacui, enc_pacui
        ),
        # v2/v3 and INAP send a NULL, v4 a CHOICE of two NULLs: read as octets; some
        # switches leave the NULL out altogether.
        Op.SPECIALIZED_RESOURCE_REPORT: Conversion(
            ops.SpecializedResourceReport,
            dec_srr,
            enc_srr,
            raw=True,
            when_absent=ops.SpecializedResourceReport(),
        ),
        Op.CANCEL: Conversion(ops.Cancel, dec_cancel, enc_cancel),
        Op.ACTIVITY_TEST: _no_argument(ops.ActivityTest),
    }


RESULT_CONVERSIONS: dict[int, Conversion] = {
    Op.PROMPT_AND_COLLECT_USER_INFORMATION: Conversion(
        ops.ReceivedInformation, dec_received_info, enc_received_info
    ),
}
"""The result conversions CAP and INAP share: PromptAndCollectUserInformation's."""

# The hot operations of a call, tried on the BER fast path first in both directions (the
# peer's side, simulator, test switch and replay, runs the other direction just as often):
# InitialDP, AssistRequestInstructions, EventReportBCSM, ApplyChargingReport come in;
# RequestReportBCSMEvent, Connect, ConnectToResource, PlayAnnouncement,
# PromptAndCollectUserInformation, ReleaseCall, ApplyCharging, EstablishTemporaryConnection
# go out (Continue and DisconnectForwardConnection have no argument). The
# PromptAndCollectUserInformation result (ReceivedInformation) goes there too.
HOT_DECODE = frozenset(
    (
        Op.INITIAL_DP,
        Op.ASSIST_REQUEST_INSTRUCTIONS,
        Op.EVENT_REPORT_BCSM,
        Op.APPLY_CHARGING_REPORT,
    )
)
HOT_ENCODE = frozenset(
    (
        Op.ESTABLISH_TEMPORARY_CONNECTION,
        Op.CONNECT_TO_RESOURCE,
        Op.CONNECT,
        Op.RELEASE_CALL,
        Op.REQUEST_REPORT_BCSM_EVENT,
        Op.APPLY_CHARGING,
        Op.PLAY_ANNOUNCEMENT,
        Op.PROMPT_AND_COLLECT_USER_INFORMATION,
    )
)
HOT = HOT_DECODE | HOT_ENCODE
HOT_RESULTS = frozenset((Op.PROMPT_AND_COLLECT_USER_INFORMATION,))
