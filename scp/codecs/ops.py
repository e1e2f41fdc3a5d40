"""Protocol-neutral operation values that the service layer works with.

CAMEL (3GPP TS 29.078 §6, CAP phases 2-4) descends from ETSI Core INAP CS-1 (ETS 300 374-1 /
ITU-T Q.1218), so one dataclass serves both: ``cap.py`` and ``inap.py`` decode their wire forms
into these values and encode them back, and the service never asks which protocol it speaks.
MAP values (3GPP TS 29.002 §10.2, §12.1, §12.3, §12.4, §12.7, §8.11.2) live here too.

Field names follow the ASN.1 component names in snake case. A value has the fields the
service uses typed (numbers through :mod:`scp.codecs.numbers`); the components it does not
model are kept in ``extra`` in pycrate's plain value notation (dicts, tuples, bytes), so a
decoded operation re-encodes to the same components. ``extra`` is protocol-specific: build
fresh values for the other protocol. Enumerations are ints (IntEnum members where named).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scp.codecs.numbers import (
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    GenericNumber,
    RedirectingNumber,
    TimeAndTimezone,
)

Extra = Mapping[str, Any]


class _NoExtra(dict[str, Any]):
    """The empty ``extra`` of an operation built by the service: immutable and hashable, so an
    operation with nothing in ``extra`` is hashable as a whole (the call path caches encodings
    by operation). A ``dict`` underneath, not a ``Mapping`` written in Python: the encoders
    ask every operation's ``extra`` for keys (``in``, ``get``, ``update``) and a Python-level
    mapping answered each miss by raising KeyError, a third of a small operation's encode
    time (``bench/codecs.py``)."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return 0

    def _immutable(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("an operation's empty extra is immutable")

    __setitem__ = __delitem__ = __ior__ = _immutable
    clear = pop = popitem = setdefault = update = _immutable


NO_EXTRA: Extra = _NoExtra()


def _extra() -> Extra:
    return NO_EXTRA


class EventTypeBCSM(enum.IntEnum):
    """EventTypeBCSM (TS 29.078 §7.6; Q.1218 names tBusy tCalledPartyBusy)."""

    COLLECTED_INFO = 2
    ANALYSED_INFORMATION = 3
    ROUTE_SELECT_FAILURE = 4
    O_CALLED_PARTY_BUSY = 5
    O_NO_ANSWER = 6
    O_ANSWER = 7
    O_MID_CALL = 8
    O_DISCONNECT = 9
    O_ABANDON = 10
    TERM_ATTEMPT_AUTHORIZED = 12
    T_BUSY = 13
    T_NO_ANSWER = 14
    T_ANSWER = 15
    T_MID_CALL = 16
    T_DISCONNECT = 17
    T_ABANDON = 18
    O_TERM_SEIZED = 19
    CALL_ACCEPTED = 27
    O_CHANGE_OF_POSITION = 50
    T_CHANGE_OF_POSITION = 51
    O_SERVICE_CHANGE = 52
    T_SERVICE_CHANGE = 53


class MonitorMode(enum.IntEnum):
    """MonitorMode (TS 29.078 §7.6)."""

    INTERRUPTED = 0
    NOTIFY_AND_CONTINUE = 1
    TRANSPARENT = 2


class Operation:
    """Base of every typed operation argument, result and error value."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class LegID:
    """LegID (TS 29.078 §7.6): leg 1 calling, 2 called; ``sending`` picks sendingSideID."""

    leg: int
    sending: bool = False


@dataclass(frozen=True, slots=True)
class GenericOperation(Operation):
    """An operation we do not type: ``value`` is pycrate's value notation, or raw ``parameter``.

    ``parameter`` holds the exact TLV received, so re-encoding is byte-identical.
    """

    opcode: int | tuple[int, ...]
    name: str
    value: Any = None
    parameter: bytes | None = None


# --------------------------------------------------------------------------------------------
# gsmSSF / SSF -> gsmSCF / SCF
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InitialDP(Operation):
    """InitialDP (TS 29.078 §6.1.2.x; Q.1218 §6.1.1.x): the switch asks for instructions."""

    service_key: int
    called_party_number: CalledPartyNumber | None = None
    calling_party_number: CallingPartyNumber | None = None
    calling_partys_category: int | None = None
    location_number: CallingPartyNumber | None = None
    original_called_party_id: RedirectingNumber | None = None
    event_type_bcsm: int | None = None
    redirecting_party_id: RedirectingNumber | None = None
    redirection_information: bytes | None = None
    imsi: str | None = None
    call_reference_number: bytes | None = None
    msc_address: AddressString | None = None
    called_party_bcd_number: AddressString | None = None
    time_and_timezone: TimeAndTimezone | None = None
    cause: Cause | None = None
    dialled_digits: CalledPartyNumber | None = None  # INAP only
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class EventSpecificInfo:
    """EventSpecificInformationBCSM: ``kind`` is the CHOICE name, ``cause`` its cause if any.

    busyCause (tBusy / oCalledPartyBusy), releaseCause (disconnect), failureCause (route
    select failure) all land in ``cause``; other components stay in ``extra``.
    """

    kind: str
    cause: Cause | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class EventReportBCSM(Operation):
    """EventReportBCSM: an armed detection point was met (tBusy, tNoAnswer, ...)."""

    event_type_bcsm: int
    event_specific_information: EventSpecificInfo | None = None
    leg_id: LegID | None = None
    message_type: int = 0  # miscCallInfo: 0 request (interrupted, the DEFAULT), 1 notification
    extra: Extra = field(default_factory=_extra)

    @property
    def cause(self) -> Cause | None:
        i = self.event_specific_information
        return None if i is None else i.cause


@dataclass(frozen=True, slots=True)
class AssistRequestInstructions(Operation):
    """AssistRequestInstructions: the SRF/assisting SSF opens its dialogue (correlationID)."""

    correlation_id: GenericDigits
    ip_ssp_capabilities: bytes | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class TimeInformation:
    """TimeInformation: seconds if no tariff switch, else since-switch and the interval."""

    time_if_no_tariff_switch: int | None = None
    time_since_tariff_switch: int | None = None
    tariff_switch_interval: int | None = None


@dataclass(frozen=True, slots=True)
class ApplyChargingReport(Operation):
    """ApplyChargingReport with its CAMEL-CallResult decoded (timeDurationChargingResult)."""

    party_to_charge: LegID
    time_information: TimeInformation
    call_active: bool = True  # legActive in CAP v4
    call_released_at_tcp_expiry: bool = False
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class RequestedInformation:
    """One item of CallInformationReport: ``type`` and its value (int seconds, bytes, Cause)."""

    type: int  # 0 callAttemptElapsedTime, 1 callStopTime, 2 callConnectedElapsedTime, 30 cause
    value: int | bytes | Cause


@dataclass(frozen=True, slots=True)
class CallInformationReport(Operation):
    """CallInformationReport: the values CallInformationRequest asked for."""

    requested_information: tuple[RequestedInformation, ...]
    leg_id: LegID | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class SpecializedResourceReport(Operation):
    """SpecializedResourceReport: announcement complete (or, CAP v4, first started)."""

    first_announcement_started: bool = False


# --------------------------------------------------------------------------------------------
# gsmSCF / SCF -> gsmSSF / SSF / SRF
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BCSMEvent:
    """One BCSMEvent of RequestReportBCSMEvent."""

    event_type_bcsm: int
    monitor_mode: int = MonitorMode.NOTIFY_AND_CONTINUE
    leg_id: LegID | None = None
    application_timer: int | None = None  # dpSpecificCriteria applicationTimer (tNoAnswer)
    automatic_rearm: bool = False
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class RequestReportBCSMEvent(Operation):
    """RequestReportBCSMEvent: arm detection points."""

    bcsm_events: tuple[BCSMEvent, ...]
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class Continue(Operation):
    """Continue: resume call processing, no argument."""


@dataclass(frozen=True, slots=True)
class ContinueWithArgument(Operation):
    """ContinueWithArgument (CAP v3+)."""

    alerting_pattern: bytes | None = None
    generic_numbers: tuple[GenericNumber, ...] = ()
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class Connect(Operation):
    """Connect: route the call to ``destination_routing_address``."""

    destination_routing_address: tuple[CalledPartyNumber, ...]
    original_called_party_id: RedirectingNumber | None = None
    redirecting_party_id: RedirectingNumber | None = None
    redirection_information: bytes | None = None
    calling_partys_category: int | None = None
    generic_numbers: tuple[GenericNumber, ...] = ()
    suppression_of_announcement: bool = False
    ocsi_applicable: bool = False
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ReleaseCall(Operation):
    """ReleaseCall with its Q.850 cause."""

    cause: Cause
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ConnectToResource(Operation):
    """ConnectToResource: connect to an SRF (``ip_routing_address`` None: resourceAddress none)."""

    ip_routing_address: CalledPartyNumber | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class EstablishTemporaryConnection(Operation):
    """EstablishTemporaryConnection to an assisting SSF / IP with correlationID and scfID."""

    assisting_ssp_ip_routing_address: GenericNumber | CalledPartyNumber
    correlation_id: GenericDigits | None = None
    scf_id: bytes | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class DisconnectForwardConnection(Operation):
    """DisconnectForwardConnection: drop the temporary connection to the SRF, no argument."""


@dataclass(frozen=True, slots=True)
class InformationToSend:
    """InformationToSend: an in-band announcement (message ids or text) or a tone."""

    message_ids: tuple[int, ...] = ()  # one id: elementaryMessageID; more: elementaryMessageIDs
    text: str | None = None
    number_of_repetitions: int | None = None
    duration: int | None = None
    interval: int | None = None
    tone_id: int | None = None  # tone CHOICE when set
    tone_duration: int | None = None
    extra: Extra = field(default_factory=_extra)  # e.g. variableMessage


@dataclass(frozen=True, slots=True)
class PlayAnnouncement(Operation):
    """PlayAnnouncement (SCF -> SRF)."""

    information_to_send: InformationToSend
    disconnect_from_ip_forbidden: bool = True
    request_announcement_complete: bool = True
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class CollectedDigits:
    """CollectedDigits of PromptAndCollectUserInformation."""

    maximum_nb_of_digits: int
    minimum_nb_of_digits: int = 1
    end_of_reply_digit: bytes | None = None
    cancel_digit: bytes | None = None
    start_digit: bytes | None = None
    first_digit_timeout: int | None = None
    inter_digit_timeout: int | None = None
    error_treatment: int | None = None  # 0 reportErrorToScf, 1 help, 2 repeatPrompt
    interruptable_ann_ind: bool | None = None
    voice_information: bool | None = None
    voice_back: bool | None = None


@dataclass(frozen=True, slots=True)
class PromptAndCollectUserInformation(Operation):
    """PromptAndCollectUserInformation (SCF -> SRF); the result is ReceivedInformation."""

    collected_digits: CollectedDigits
    information_to_send: InformationToSend | None = None
    disconnect_from_ip_forbidden: bool = True
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ReceivedInformation(Operation):
    """Result of PromptAndCollectUserInformation: digitsResponse."""

    digits: GenericDigits


@dataclass(frozen=True, slots=True)
class ApplyCharging(Operation):
    """ApplyCharging with CAMEL-AChBillingChargingCharacteristics timeDurationCharging."""

    max_call_period_duration: int
    release_if_duration_exceeded: bool = False
    tariff_switch_interval: int | None = None
    tone: bool | None = None  # audibleIndicator tone / v2 warning tone
    party_to_charge: LegID | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class CallInformationRequest(Operation):
    """CallInformationRequest: which RequestedInformationTypes to report at call end."""

    requested_information_types: tuple[int, ...]
    leg_id: LegID | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class FurnishChargingInformation(Operation):
    """FurnishChargingInformation: the FCIBillingChargingCharacteristics octets."""

    fci_billing_charging_characteristics: bytes


@dataclass(frozen=True, slots=True)
class SendChargingInformation(Operation):
    """SendChargingInformation: SCIBillingChargingCharacteristics octets (AoC) to a leg."""

    sci_billing_charging_characteristics: bytes
    party_to_charge: LegID = LegID(2, sending=True)
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ResetTimer(Operation):
    """ResetTimer: restart the SSF's Tssf with ``timer_value`` seconds."""

    timer_value: int
    timer_id: int = 0  # tssf
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class CallGap(Operation):
    """CallGap (TS 29.078 §8.4, CAP v3/v4; Q.1218 §6 in INAP): the SSF lets at most one call
    per ``gap_interval`` ms through to the SCF for the calls of ``service_key`` (gapOnService),
    for ``duration`` s; ``control_type`` 0 sCPOverloaded, 1 manuallyInitiated."""

    service_key: int | None  # None: other gapCriteria, kept in ``extra``
    duration: int
    gap_interval: int
    control_type: int | None = 0
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class Cancel(Operation):
    """Cancel an invoke (``invoke_id``) or all pending requests."""

    invoke_id: int | None = None
    all_requests: bool = False
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ActivityTest(Operation):
    """ActivityTest: is the dialogue still alive; result without parameter."""


@dataclass(frozen=True, slots=True)
class InitiateCallAttempt(Operation):
    """InitiateCallAttempt (CAP v4): the SCF originates a call leg."""

    destination_routing_address: tuple[CalledPartyNumber, ...]
    calling_party_number: CallingPartyNumber | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class EmptyResult(Operation):
    """A TC-RESULT with no parameter (ActivityTest, MAP results without data)."""


@dataclass(frozen=True, slots=True)
class OperationError(Operation):
    """A TC-U-ERROR: ``code`` and ``name`` from the spec, parameter as a plain value.

    ``parameter`` is an int for ENUMERATED parameters (systemFailure, taskRefused...), a
    mapping for SEQUENCEs, None when the error has none.
    """

    code: int | tuple[int, ...]
    name: str
    parameter: Any = None


# --------------------------------------------------------------------------------------------
# MAP (TS 29.002)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertServiceCentre(Operation):
    """AlertServiceCentre (op 64, v2) / alertServiceCentreWithoutResult (op 49, v1)."""

    msisdn: AddressString
    service_centre_address: AddressString
    without_result: bool = False
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class NoteMMEvent(Operation):
    """NoteMM-Event (op 89, TS 29.002 §8.11.2): M-CSI mobility event from the VLR."""

    service_key: int
    event_met: int  # MM-Code: 0 LU same VLR, 1 LU other VLR, 2 IMSI attach, 3/4 detach...
    imsi: str
    msisdn: AddressString
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ReadyForSM(Operation):
    """ReadyForSM (op 66): the MS is present again or has memory."""

    imsi: str
    alert_reason: int  # 0 ms-Present, 1 memoryAvailable
    alert_reason_indicator: bool = False
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class SendRoutingInfoForSM(Operation):
    """SendRoutingInfoForSM (op 45)."""

    msisdn: AddressString
    service_centre_address: AddressString
    sm_rp_pri: bool = True
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class RoutingInfoForSM(Operation):
    """Result of SendRoutingInfoForSM: IMSI and the serving node number."""

    imsi: str
    network_node_number: AddressString | None = None
    lmsi: bytes | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class AbsentSubscriberSM(Operation):
    """absentSubscriberSM error (6) parameter: the absent subscriber diagnostics."""

    diagnostic: int | None = None
    additional_diagnostic: int | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ReportSMDeliveryStatus(Operation):
    """ReportSM-DeliveryStatus (op 47): put our SC address in the message waiting data."""

    msisdn: AddressString
    service_centre_address: AddressString
    sm_delivery_outcome: int = 1  # 0 memoryCapacityExceeded, 1 absentSubscriber, 2 successful
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class ReportSMDeliveryStatusResult(Operation):
    """Result of ReportSM-DeliveryStatus."""

    stored_msisdn: AddressString | None = None
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class AnyTimeInterrogation(Operation):
    """AnyTimeInterrogation (op 71): ask the HLR for subscriber state / location."""

    gsm_scf_address: AddressString
    msisdn: AddressString | None = None
    imsi: str | None = None
    location_information: bool = False
    subscriber_state: bool = True
    extra: Extra = field(default_factory=_extra)


@dataclass(frozen=True, slots=True)
class AnyTimeInterrogationResult(Operation):
    """Result of AnyTimeInterrogation: ``subscriber_state`` is the CHOICE name.

    assumedIdle, camelBusy, netDetNotReachable (``not_reachable_reason`` set) or
    notProvidedFromVLR.
    """

    subscriber_state: str | None = None
    not_reachable_reason: int | None = None
    vlr_number: AddressString | None = None
    extra: Extra = field(default_factory=_extra)
