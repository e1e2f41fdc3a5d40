"""Call handling decisions for a terminating call to a subscriber (ARCHITECTURE §4).

Pure: one :class:`CallSession` per call (the switch's CAP or INAP dialogue, plus the media
server's assist dialogue in ``etc`` mode). It takes decoded operations (``scp.codecs.ops``),
the subscriber data the executor loaded, ``now`` (monotonic seconds, for its one timer) and
``at`` (wall-clock time, for records), and returns actions: operations to send on a dialogue
with how the dialogue continues, rows to write, a correlation ID to expect, the end of the
session. It never does I/O; :mod:`scp.flows.calls` carries the actions out. CAMEL and INAP drive
the same logic: the only protocol difference here is charging (ApplyCharging / -Report in CAP,
TS 29.078 §6.1.2; CallInformationRequest / -Report in INAP CS-1, ETS 300 374-1 §6.1, whose
ApplyCharging is network specific).

Specs: TS 29.078 §6 (gsmSCF procedures, the BCSM detection points of TS 23.078 §4.4: DP12
termAttemptAuthorized, DP13 tBusy, DP14 tNoAnswer, DP15 tAnswer, DP18 tAbandon; the SRF
procedures: ConnectToResource, EstablishTemporaryConnection + AssistRequestInstructions,
PlayAnnouncement, PromptAndCollectUserInformation, SpecializedResourceReport,
DisconnectForwardConnection); Q.850 cause values (17 user busy; 18, 19, 20, 27, 31 by default
"not reachable", ``[call].not_reachable_causes``).

The session is a transition table (:data:`CALL_FSM`, in the style of :mod:`scp.core.fsm`):
(phase, event) -> action and next phase, the events named after the operations of TS 29.078 §6
that drive the gsmSCF (EventReportBCSM, AssistRequestInstructions, SpecializedResourceReport,
ApplyChargingReport, the ReceivedInformation of our PromptAndCollectUserInformation...) and the
dialogue events around them. An event with no row for the current phase is illegal there and
gets the protocol's answer (:class:`Refuse`, which the executor turns into a ReturnError
unexpectedComponentSequence for operations that have an error outcome), never an exception.
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, TypeVar, assert_never

from scp.codecs import ops
from scp.codecs.numbers import (
    CHINA,
    CalledPartyNumber,
    Cause,
    GenericDigits,
    GenericNumber,
    NatureOfAddress,
    RedirectingNumber,
    encode_bcd,
)
from scp.config import Config
from scp.core.fsm import Transition, TransitionTable
from scp.service.rating import RateTable

__all__ = [
    "CallSettings",
    "Callee",
    "CallSession",
    "Phase",
    "CallEvent",
    "OpReceived",
    "DigitsCollected",
    "OpFailed",
    "LegClosed",
    "TimerExpired",
    "ServiceAnswer",
    "Event",
    "Send",
    "Refuse",
    "RecordMissedCall",
    "RecordCallback",
    "RecordVoicemail",
    "WriteCdr",
    "ExpectAssist",
    "ServiceRequest",
    "Finished",
    "Action",
    "MENU_SERVICES",
    "PRODUCT_OF_REASON",
    "callback_record",
    "classify_busy",
    "voicemail_record",
    "CALL",
    "ASSIST",
    "CALL_FSM",
    "e164",
    "called_number",
    "information",
    "prompt",
]

CALL = "call"
ASSIST = "assist"

# Services that put a subscriber's missed calls through the menu (provisioning.SERVICES).
MENU_SERVICES = frozenset({"missed-call", "busy"})

# The product that serves a missed call of each reason: 来话提示 (missed-call: the callee could
# not be reached or did not answer) and 遇忙提示 (busy). They are sold, switched and billed
# apart, so a call is treated (recorded, the caller's menu, the SMS) only under its own.
PRODUCT_OF_REASON = {"busy": "busy", "not-reachable": "missed-call", "no-answer": "missed-call"}

# EventTypeBCSM values (TS 29.078 §7.6).
ET = ops.EventTypeBCSM
_CALLER_GONE = frozenset({ET.T_ABANDON, ET.O_ABANDON, ET.T_DISCONNECT, ET.O_DISCONNECT})

# RequestedInformationType callConnectedElapsedTime (ETS 300 374-1 §6.3).
RIT_CALL_CONNECTED_ELAPSED_TIME = 2


# --------------------------------------------------------------------------------------------
# Configuration as the logic needs it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallSettings:
    """The ``[ivr]``, ``[service]`` and ``[call]`` keys the call logic reads, flattened once."""

    ivr_mode: str = "connect"
    ivr_number: str = "8613800999"
    operator: str = "8613800100"
    voicemail_deposit: str = "8613800200"
    voicemail_retrieval: str = "8613800201"
    terminating_service_key: int = 100
    selfcare_service_key: int = 200
    no_answer_timer: int = 20
    not_reachable_causes: frozenset[int] = frozenset({18, 19, 20, 27, 31})
    ivr_called_party: str = "original-called"
    forwarding: bool = True
    forward_no_answer: bool = False
    charging_period: int = 300
    menu_retries: int = 3
    first_digit_timeout: int = 10
    inter_digit_timeout: int = 5
    digit_callback: str = "1"
    digit_voicemail: str = "2"
    digit_other_number: str = "3"
    digit_operator: str = "0"
    assist_timeout: float = 10.0
    announcement_timeout: float = 60.0
    release_cause: int = 31
    callback_fee: Decimal = Decimal("0.10")  # charged when the callback SMS goes out, not here
    callback_hours: int = 24
    timezone: str = "Asia/Shanghai"  # [notify] timezone: the calendar day tariffs are valid by
    scf_id: bytes = b"\x68\x31\x08\x00\x00"
    ann: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: Config) -> CallSettings:
        """Build from a :class:`scp.config.Config`."""
        c = cfg.call
        ivr = cfg.ivr
        svc = cfg.service
        gt = cfg.sccp.global_title
        return cls(
            ivr_mode=ivr.mode,
            ivr_number=ivr.number,
            operator=ivr.operator,
            voicemail_deposit=ivr.voicemail_deposit,
            voicemail_retrieval=c.voicemail_retrieval,
            terminating_service_key=svc.terminating_service_key,
            selfcare_service_key=svc.selfcare_service_key,
            no_answer_timer=c.no_answer_timer,
            not_reachable_causes=frozenset(c.not_reachable_causes),
            ivr_called_party=c.ivr_called_party,
            forwarding=c.forwarding,
            forward_no_answer=c.forward_no_answer,
            charging_period=c.charging_period,
            menu_retries=c.menu_retries,
            first_digit_timeout=c.first_digit_timeout,
            inter_digit_timeout=c.inter_digit_timeout,
            digit_callback=c.digit_callback,
            digit_voicemail=c.digit_voicemail,
            digit_other_number=c.digit_other_number,
            digit_operator=c.digit_operator,
            assist_timeout=c.assist_timeout,
            announcement_timeout=c.announcement_timeout,
            release_cause=c.release_cause,
            callback_fee=Decimal(c.callback_fee),
            callback_hours=c.callback_hours,
            timezone=cfg.notify.timezone,
            # ScfID (TS 29.078 §7.6): network specific; our GT in BCD identifies this SCF.
            scf_id=encode_bcd(gt)[:10],
            ann=asdict(c.announcements),
        )


@dataclass(frozen=True, slots=True)
class Callee:
    """The called party as loaded for one call; ``None`` in its place: not a subscriber."""

    msisdn: str
    active: bool = True
    services: frozenset[str] = frozenset()
    forward_to: str | None = None
    blacklisted: bool = False  # the caller is on this subscriber's blacklist (exact or prefix)


# --------------------------------------------------------------------------------------------
# Events (inputs) and actions (outputs)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpReceived:
    """An operation invoked by the peer on ``leg`` ("call": the switch, "assist": the SRF)."""

    op: ops.Operation
    leg: str = CALL


@dataclass(frozen=True, slots=True)
class DigitsCollected:
    """The ReceivedInformation result of our PromptAndCollectUserInformation."""

    digits: str
    leg: str = CALL


@dataclass(frozen=True, slots=True)
class OpFailed:
    """Our operation failed: ReturnError ``error`` name, a Reject, or no answer in time."""

    error: str
    leg: str = CALL


@dataclass(frozen=True, slots=True)
class LegClosed:
    """The peer closed ``leg``: TC-END, TC-U-ABORT, TC-P-ABORT or our TCAP idle timer."""

    leg: str = CALL
    aborted: bool = False


@dataclass(frozen=True, slots=True)
class TimerExpired:
    """The session's guard timer ran out: no AssistRequestInstructions, or no
    SpecializedResourceReport, in time."""


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """The outcome of a ServiceRequest: ``ok`` and a value (PinCheck outcome, numbers...)."""

    op: str
    ok: bool
    value: Any = None


Event = OpReceived | DigitsCollected | OpFailed | LegClosed | TimerExpired | ServiceAnswer
"""The session inputs (ServiceAnswer only for the self-service session)."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``ops`` on ``leg``, then ``close``: "continue" the dialogue, "end" it, or "abort"."""

    ops: tuple[ops.Operation, ...]
    leg: str = CALL
    close: str = "continue"


@dataclass(frozen=True, slots=True)
class Refuse:
    """An operation out of sequence: answer ReturnError unexpectedComponentSequence if it can."""

    op: ops.Operation
    leg: str = CALL


@dataclass(frozen=True, slots=True)
class RecordMissedCall:
    """Insert a ``missed_call`` row (and tell the notifications in the same transaction)."""

    caller: str | None
    callee: str
    reason: str
    cause: int | None
    call_ref: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class RecordCallback:
    """Insert a ``callback_request``: SMS ``caller`` when ``callee`` is reachable (menu 1)."""

    caller: str
    callee: str
    at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RecordVoicemail:
    """Insert a ``voicemail`` row for the deposit platform to complete (menu 2)."""

    callee: str
    caller: str | None
    at: dt.datetime
    media_uri: str


@dataclass(frozen=True, slots=True)
class WriteCdr:
    """Insert a charging data record."""

    record_type: str
    msisdn: str
    caller: str | None
    callee: str | None
    service: str
    call_category: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: int | None
    charge: Decimal
    call_ref: str


@dataclass(frozen=True, slots=True)
class ExpectAssist:
    """Route the assist dialogue whose AssistRequestInstructions carries this ID to the call."""

    correlation_id: str


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """Ask the provisioning layer: ``op`` for ``msisdn`` with ``arg``; answer with ServiceAnswer.

    ops: verify_pin(pin), missed_calls(), voicemail_count() (answered with (new, total)),
    enable_service(service), disable_service(service), blacklist_add(number),
    blacklist_del(number), set_pin(pin), set_notify_mode(mode).
    """

    op: str
    msisdn: str
    arg: str | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    """The session is over; every dialogue it owned is closed."""

    outcome: str


Action = (
    Send
    | Refuse
    | RecordMissedCall
    | RecordCallback
    | RecordVoicemail
    | WriteCdr
    | ExpectAssist
    | ServiceRequest
    | Finished
)
"""The session outputs (ServiceRequest only from the self-service session)."""


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def classify_busy(cause: int | None, not_reachable: frozenset[int]) -> str:
    """tBusy's busyCause -> 'busy' (17 or none) or 'not-reachable' (configured causes)."""
    if cause is not None and cause in not_reachable:
        return "not-reachable"
    return "busy"


def callback_record(caller: str, callee: str, at: dt.datetime, s: CallSettings) -> RecordCallback:
    """What the caller's "SMS me when reachable" choice writes (menu digit 1, or the media
    server's report in connect mode): the callback request. Its per-use fee is charged to the
    caller once per request, when its SMS goes out (scp.flows.billing.charge_callbacks)."""
    return RecordCallback(caller, callee, at, at + dt.timedelta(hours=s.callback_hours))


def voicemail_record(
    callee: str, caller: str | None, at: dt.datetime, s: CallSettings, *, call_ref: str
) -> RecordVoicemail:
    """What the "leave a voice message" choice writes (menu digit 2, or the media server's
    report): the message expected from the deposit platform, completed by its deposit."""
    return RecordVoicemail(callee, caller, at, f"vm://{s.voicemail_deposit}/{call_ref}")


def e164(digits: str | None, nai: int = NatureOfAddress.UNKNOWN) -> str | None:
    """Signalling digits (Q.763 with its NAI) as E.164, or None when they are not a number."""
    if not digits:
        return None
    n = CHINA.to_e164(digits, nai)
    return n if n.isdigit() and 3 <= len(n) <= 15 else None


def called_number(digits: str) -> CalledPartyNumber:
    """An E.164 destination as an international Q.763 called party number."""
    return CalledPartyNumber(digits, nai=NatureOfAddress.INTERNATIONAL)


def information(*ids: int) -> ops.InformationToSend:
    """An in-band announcement of one or more recorded messages."""
    return ops.InformationToSend(message_ids=tuple(ids))


def prompt(
    ids: tuple[int, ...],
    *,
    min_digits: int = 1,
    max_digits: int = 1,
    end: bool = False,
    s: CallSettings,
) -> ops.PromptAndCollectUserInformation:
    """PromptAndCollectUserInformation playing ``ids`` and collecting digits."""
    return ops.PromptAndCollectUserInformation(
        collected_digits=ops.CollectedDigits(
            maximum_nb_of_digits=max_digits,
            minimum_nb_of_digits=min_digits,
            end_of_reply_digit=b"#" if end else None,
            first_digit_timeout=s.first_digit_timeout,
            inter_digit_timeout=s.inter_digit_timeout,
            # errorTreatment and interruptableAnnInd left at their DEFAULTs (TS 29.078 §7.6):
            # reportErrorToScf (we count the retries ourselves) and barge-in allowed.
        ),
        information_to_send=information(*ids),
    )


class Phase(enum.Enum):
    """Where a call session is (TS 29.078 gsmSCF view of the call)."""

    IDLE = "idle"  # nothing received yet
    ARMED = "armed"  # RRBE + Continue sent: waiting for an EventReportBCSM
    WAIT_ASSIST = "wait-assist"  # ETC sent: waiting for the media server's ARI
    MENU = "menu"  # PACUI for the caller's menu outstanding
    NUMBER = "number"  # PACUI for "another number" outstanding
    ANNOUNCING = "announcing"  # final PlayAnnouncement: waiting for SpecializedResourceReport
    CHARGING = "charging"  # Connect + ApplyCharging / CallInformationRequest sent
    # Self-service IVR (scp.service.selfcare)
    SC_LOGIN = "sc-login"  # PACUI for the mobile number (self-service from another phone)
    PIN = "pin"  # PACUI for the PIN outstanding
    SC_MENU = "sc-menu"  # PACUI for the owner's menu
    SC_CHOICE = "sc-choice"  # PACUI for a sub-menu choice (on/off, add/remove, mode)
    SC_NUMBER = "sc-number"  # PACUI for a blacklist number
    SC_NEW_PIN = "sc-new-pin"  # PACUI for the new PIN
    SC_WAIT = "sc-wait"  # a provisioning request is being carried out
    DONE = "done"  # final: whatever still arrives is dropped


class CallEvent(enum.StrEnum):
    """What moves a call session after its InitialDP: the operations of TS 29.078 §6 that
    reach the gsmSCF, the outcomes of ours, the dialogues closing, the guard timer."""

    EVENT_REPORT_BCSM = "EventReportBCSM"
    ABANDON_OR_DISCONNECT = "EventReportBCSM (abandon / disconnect)"  # DP9, 10, 17, 18
    ASSIST_REQUEST_INSTRUCTIONS = "AssistRequestInstructions"
    SPECIALIZED_RESOURCE_REPORT = "SpecializedResourceReport"
    APPLY_CHARGING_REPORT = "ApplyChargingReport"
    CALL_INFORMATION_REPORT = "CallInformationReport"
    RECEIVED_INFORMATION = "ReceivedInformation"  # the result of our PACUI: digits
    OPERATION_FAILED = "operation failed"  # ReturnError, Reject or no answer to ours
    DIALOGUE_CLOSED = "dialogue closed"  # TC-END, TC-U-ABORT, TC-P-ABORT of a leg
    GUARD_TIMER_EXPIRY = "guard timer expiry"
    SERVICE_ANSWER = "provisioning answer"  # self-service: the outcome of a ServiceRequest


# The operations that are events of the session; any other is illegal in every phase.
_OP_EVENT: dict[type, CallEvent] = {
    ops.EventReportBCSM: CallEvent.EVENT_REPORT_BCSM,
    ops.AssistRequestInstructions: CallEvent.ASSIST_REQUEST_INSTRUCTIONS,
    ops.SpecializedResourceReport: CallEvent.SPECIALIZED_RESOURCE_REPORT,
    ops.ApplyChargingReport: CallEvent.APPLY_CHARGING_REPORT,
    ops.CallInformationReport: CallEvent.CALL_INFORMATION_REPORT,
}


def event_of(ev: Event) -> CallEvent | None:
    """The table event an input is; None for an operation no phase takes."""
    match ev:
        case OpReceived(op=op):
            if isinstance(op, ops.EventReportBCSM) and op.event_type_bcsm in _CALLER_GONE:
                return CallEvent.ABANDON_OR_DISCONNECT
            return _OP_EVENT.get(type(op))
        case DigitsCollected():
            return CallEvent.RECEIVED_INFORMATION
        case OpFailed():
            return CallEvent.OPERATION_FAILED
        case LegClosed():
            return CallEvent.DIALOGUE_CLOSED
        case TimerExpired():
            return CallEvent.GUARD_TIMER_EXPIRY
        case ServiceAnswer():
            return CallEvent.SERVICE_ANSWER
        case _:
            assert_never(ev)


_SRF_PHASES = frozenset(
    {
        Phase.MENU,
        Phase.NUMBER,
        Phase.ANNOUNCING,
        Phase.WAIT_ASSIST,
        Phase.SC_LOGIN,
        Phase.PIN,
        Phase.SC_MENU,
        Phase.SC_CHOICE,
        Phase.SC_NUMBER,
        Phase.SC_NEW_PIN,
        Phase.SC_WAIT,
    }
)


@dataclass(slots=True)
class _Charge:
    msisdn: str
    destination: str
    service: str
    started_at: dt.datetime
    duration_100ms: int = 0


# --------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------


class CallSession:
    """One terminating call: from InitialDP to the last dialogue closed."""

    def __init__(
        self,
        settings: CallSettings,
        *,
        call_ref: str,
        protocol: str,
        rates: RateTable | None = None,
        correlation_id: str = "",
    ) -> None:
        self.s = settings
        self.call_ref = call_ref
        self.protocol = protocol  # cap2 | cap3 | cap4 | inap
        self.rates = rates or RateTable()
        self.correlation_id = correlation_id or call_ref[-10:].rjust(4, "0")
        self.phase = Phase.IDLE
        self.callee: str = ""
        self.caller: str | None = None  # E.164, known even when presentation is restricted
        self.caller_shown: str | None = None  # None when presentation restricted
        self.reason: str | None = None
        self.tries = 0
        self.srf_leg = CALL
        self.call_open = False
        self.assist_open = False
        self.charge: _Charge | None = None
        self.services: frozenset[str] = frozenset()
        self.forward_to: str | None = None
        self._deadline: float | None = None
        self._now = 0.0  # of the event being handled, for the timers handlers arm

    # -- timers ---------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next (monotonic seconds), if ever."""
        return self._deadline

    def handle_timer(self, now: float, at: dt.datetime) -> list[Action]:
        """Our guard timer expired: no ARI or no SpecializedResourceReport in time."""
        if self._deadline is None or now < self._deadline:
            return []
        self._deadline = None
        return self.handle(TimerExpired(), now, at)

    # -- entry points ---------------------------------------------------------------------------

    def start(
        self, idp: ops.InitialDP, callee: Callee | None, now: float, at: dt.datetime
    ) -> list[Action]:
        """The InitialDP opening the call dialogue, with the callee as loaded (None: unknown)."""
        self.call_open = True
        cpn = idp.calling_party_number
        if cpn is not None:
            self.caller = e164(cpn.digits, cpn.nai)
            self.caller_shown = self.caller if cpn.presentation == 0 else None
        if callee is not None:
            self.callee = callee.msisdn
        if (
            callee is None
            or not callee.active
            or callee.blacklisted
            or idp.event_type_bcsm not in (None, ET.TERM_ATTEMPT_AUTHORIZED)
            or not (callee.services & MENU_SERVICES or self._forwards(callee))
        ):
            # Not ours to treat: the call goes on untouched, nothing armed, nothing recorded.
            return self._end_with((ops.Continue(),), "not-served")
        self.services = callee.services
        self.forward_to = callee.forward_to if self._forwards(callee) else None
        leg2, leg1 = ops.LegID(2, sending=True), ops.LegID(1, sending=True)
        # tBusy carries busy and not reachable alike (busyCause); tNoAnswer only when a no-answer
        # would be treated: the missed-call product, or forwarding of unanswered calls.
        no_answer = "missed-call" in callee.services or (
            self.forward_to is not None and self.s.forward_no_answer
        )
        events = (
            ops.BCSMEvent(ET.T_BUSY, ops.MonitorMode.INTERRUPTED, leg2),
            *(
                (
                    ops.BCSMEvent(
                        ET.T_NO_ANSWER,
                        ops.MonitorMode.INTERRUPTED,
                        leg2,
                        application_timer=self.s.no_answer_timer,
                    ),
                )
                if no_answer
                else ()
            ),
            ops.BCSMEvent(ET.T_ANSWER, ops.MonitorMode.NOTIFY_AND_CONTINUE, leg2),
            ops.BCSMEvent(ET.T_ABANDON, ops.MonitorMode.NOTIFY_AND_CONTINUE, leg1),
        )
        rrbe = ops.RequestReportBCSMEvent(events)
        self.phase = Phase.ARMED
        return [Send((rrbe, ops.Continue()))]

    def handle(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        """Any later event: its row in the table; none means illegal in this phase."""
        if self.phase is Phase.DONE:
            return []
        self._now = now
        event = event_of(ev)
        if event is None:
            return self._illegal(ev)
        return self._fire(event, ev, now, at)

    def _fire(self, event: CallEvent, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        row = CALL_FSM.get(self.phase, event)
        return self._illegal(ev) if row is None else row.action(self, ev, now, at)

    # -- every phase ----------------------------------------------------------------------------

    def _on_dialogue_closed(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, LegClosed)
        return self._leg_closed(ev, at)

    def _on_caller_gone(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        return self._caller_gone(at)

    # -- ARMED ----------------------------------------------------------------------------------

    def _on_event_report(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, OpReceived)
        erb = ev.op
        assert isinstance(erb, ops.EventReportBCSM)
        et = erb.event_type_bcsm
        if et == ET.T_ANSWER:
            # Answered: nothing more for us; close our side cleanly.
            return self._end_with((), "answered")
        if et == ET.T_BUSY:
            cause = erb.cause.value if erb.cause is not None else None
            reason = classify_busy(cause, self.s.not_reachable_causes)
        elif et == ET.T_NO_ANSWER:
            cause, reason = None, "no-answer"
        else:
            return self._end_with((ops.Continue(),) if erb.message_type == 0 else (), "other")
        self.reason = reason
        if self.forward_to and (reason != "no-answer" or self.s.forward_no_answer):
            return self._connect_charged(
                self.forward_to, self.callee, "forwarding", at, leave_srf=False
            )
        if PRODUCT_OF_REASON[reason] not in self.services:
            # the callee has the other product only: this call is none of ours to treat
            return self._end_with((ops.Continue(),), "not-served")
        out: list[Action] = [
            RecordMissedCall(self.caller_shown, self.callee, reason, cause, self.call_ref, at)
        ]
        if self.s.ivr_mode == "connect":
            return out + self._end_with((self._ivr_connect(),), "ivr-connect")
        return out + self._open_srf(now)

    def _open_srf(self, now: float) -> list[Action]:
        """Reach the menu's SRF: ConnectToResource (ctr) or EstablishTemporaryConnection (etc)."""
        if self.s.ivr_mode == "etc":
            etc = ops.EstablishTemporaryConnection(
                GenericNumber(self.s.ivr_number, nqi=1, nai=NatureOfAddress.INTERNATIONAL),
                GenericDigits(self.correlation_id),
                self.s.scf_id,
            )
            self.phase = Phase.WAIT_ASSIST
            self._deadline = now + self.s.assist_timeout
            return [ExpectAssist(self.correlation_id), Send((etc,))]
        self.srf_leg = CALL
        self._now = now
        first = self._srf_ready()
        assert len(first) == 1 and isinstance(first[0], Send)
        return [Send((ops.ConnectToResource(), *first[0].ops))]

    def _srf_ready(self) -> list[Action]:
        """The first message to the SRF once connected: the caller's menu."""
        self.phase = Phase.MENU
        self.tries = 1
        return [Send((self._menu_prompt(),), self.srf_leg)]

    def _ivr_connect(self) -> ops.Connect:
        carry = self.s.ivr_called_party
        callee_rn = RedirectingNumber(self.callee)
        if carry == "prefix":
            return ops.Connect((called_number(self.s.ivr_number + self.callee),))
        if carry == "redirecting":
            return ops.Connect((called_number(self.s.ivr_number),), redirecting_party_id=callee_rn)
        return ops.Connect((called_number(self.s.ivr_number),), original_called_party_id=callee_rn)

    # -- WAIT_ASSIST ----------------------------------------------------------------------------

    def _on_assist(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, OpReceived)
        if ev.leg != ASSIST:
            return self._illegal(ev)
        self.assist_open = True
        self.srf_leg = ASSIST
        self._deadline = None
        return self._srf_ready()

    # -- MENU / NUMBER --------------------------------------------------------------------------

    def _menu_prompt(self, invalid: bool = False) -> ops.PromptAndCollectUserInformation:
        a = self.s.ann
        ids = (a["invalid"], a["menu"]) if invalid else (a["menu"],)
        return prompt(ids, s=self.s)

    def _on_assist_timeout(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        return self._release(at, "assist-timeout")

    def _on_menu_digits(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        d = ev.digits[:1]
        s = self.s
        if d == s.digit_callback and self.caller:
            # No fee here: the caller pays once per request, when its SMS goes out
            # (scp.flows.billing.charge_callbacks); pressing 1 again joins the open request.
            out: list[Action] = [callback_record(self.caller, self.callee, at, s)]
            return out + self._announce(s.ann["callback_ok"])
        if d == s.digit_voicemail and "voicemail" in self.services:
            rec = voicemail_record(self.callee, self.caller_shown, at, s, call_ref=self.call_ref)
            return [rec, *self._leave_srf((self._connect_to(s.voicemail_deposit),), "voicemail")]
        if d == s.digit_other_number and self.caller:
            self.phase = Phase.NUMBER
            self.tries = 1
            return [Send((self._number_prompt(),), self.srf_leg)]
        if d == s.digit_operator:
            return self._leave_srf((self._connect_to(s.operator),), "operator")
        return self._retry(Phase.MENU)

    def _number_prompt(self, invalid: bool = False) -> ops.PromptAndCollectUserInformation:
        a = self.s.ann
        ids = (a["invalid"], a["enter_number"]) if invalid else (a["enter_number"],)
        return prompt(ids, min_digits=3, max_digits=20, end=True, s=self.s)

    def _on_number_digits(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, DigitsCollected)
        digits = ev.digits.rstrip("#C")
        dest = e164(digits) if digits.isdigit() else None
        if dest is None or dest == self.callee:
            return self._retry(Phase.NUMBER)
        assert self.caller is not None
        return self._connect_charged(dest, self.caller, "other-number", at, leave_srf=True)

    def _on_prompt_failed(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, OpFailed)
        # improperCallerResponse: no or bad input (TS 29.078 §6.2.2.2 PACUI error handling).
        if ev.error == "improperCallerResponse":
            return self._retry(self.phase)
        return self._release(at, f"prompt-failed:{ev.error}")

    def _retry(self, phase: Phase) -> list[Action]:
        self.tries += 1
        if self.tries > self.s.menu_retries:
            return self._announce(self.s.ann["goodbye"])
        p = self._menu_prompt(True) if phase is Phase.MENU else self._number_prompt(True)
        return [Send((p,), self.srf_leg)]

    # -- ANNOUNCING -----------------------------------------------------------------------------

    def _announce(self, ann_id: int) -> list[Action]:
        """A last PlayAnnouncement; the call is released on SpecializedResourceReport."""
        self.phase = Phase.ANNOUNCING
        self._deadline = self._now + self.s.announcement_timeout
        return [Send((ops.PlayAnnouncement(information(ann_id)),), self.srf_leg)]

    def _on_srr(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        """SpecializedResourceReport, the announcement failing, or its guard timer."""
        self._deadline = None
        return self._after_announcement(at)

    def _after_announcement(self, at: dt.datetime) -> list[Action]:
        return self._release(at, "menu-done")

    # -- CHARGING -------------------------------------------------------------------------------

    def _charging_ops(self) -> tuple[ops.Operation, ...]:
        if self.protocol == "inap":
            return (ops.CallInformationRequest((RIT_CALL_CONNECTED_ELAPSED_TIME,)),)
        return (
            ops.ApplyCharging(
                self.s.charging_period * 10, party_to_charge=ops.LegID(1, sending=True)
            ),
        )

    def _connect_charged(
        self, dest: str, payer: str, service: str, at: dt.datetime, *, leave_srf: bool
    ) -> list[Action]:
        self.charge = _Charge(payer, dest, service, at)
        connect = self._connect_to(dest)
        both = (*self._charging_ops(), connect)
        self.phase = Phase.CHARGING
        if leave_srf:
            return self._leave_srf(both, None)
        return [Send(both)]

    def _on_acr(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, OpReceived)
        acr = ev.op
        assert isinstance(acr, ops.ApplyChargingReport) and self.charge is not None
        ti = acr.time_information
        t = ti.time_if_no_tariff_switch
        if t is None:
            t = (ti.time_since_tariff_switch or 0) + (ti.tariff_switch_interval or 0)
        # CAMEL reports the time since answer (TS 29.078 §7.6 TimeInformation): cumulative.
        self.charge.duration_100ms = max(self.charge.duration_100ms, t)
        if acr.call_active:
            return [Send(self._charging_ops())]  # next call period
        return self._finish_charge(at, close=True)

    def _on_cirp(self, ev: Event, now: float, at: dt.datetime) -> list[Action]:
        assert isinstance(ev, OpReceived)
        rep = ev.op
        assert isinstance(rep, ops.CallInformationReport) and self.charge is not None
        for item in rep.requested_information:
            if item.type == RIT_CALL_CONNECTED_ELAPSED_TIME and isinstance(item.value, int):
                self.charge.duration_100ms = item.value
        return self._finish_charge(at, close=True)

    def _cdr(self, at: dt.datetime) -> list[Action]:
        """The rated CDR of the charged leg, if one is running (written once)."""
        c = self.charge
        if c is None:
            return []
        self.charge = None
        secs = (c.duration_100ms + 9) // 10
        day = c.started_at.astimezone(zoneinfo.ZoneInfo(self.s.timezone)).date()
        # rated by the pair: the paying subscriber's number and where the leg went
        rated = self.rates.rate_call(c.destination, secs, day, origin=c.msisdn)
        caller = self.caller_shown if c.service == "forwarding" else c.msisdn
        return [
            WriteCdr(
                "call",
                c.msisdn,
                caller,
                c.destination,
                c.service,
                rated.call_category,
                c.started_at,
                at,
                secs,
                rated.charge,
                self.call_ref,
            )
        ]

    def _finish_charge(self, at: dt.datetime, *, close: bool) -> list[Action]:
        out = self._cdr(at)
        if close and self.call_open:
            return out + self._end_with((), "charged")
        return out + self._done("charged")

    # -- endings ----------------------------------------------------------------------------

    def _connect_to(self, dest: str) -> ops.Connect:
        return ops.Connect(
            (called_number(dest),),
            original_called_party_id=RedirectingNumber(self.callee) if self.callee else None,
        )

    def _leave_srf(self, call_ops: tuple[ops.Operation, ...], outcome: str | None) -> list[Action]:
        """Drop the SRF (assist TC-END or DisconnectForwardConnection), then act on the call."""
        out: list[Action] = []
        if self.srf_leg == ASSIST and self.assist_open:
            self.assist_open = False
            out.append(Send((), ASSIST, "end"))
        ops_ = (ops.DisconnectForwardConnection(), *call_ops)
        if outcome is None:
            out.append(Send(ops_))
            return out
        return out + self._end_with(ops_, outcome)

    def _release(self, at: dt.datetime, outcome: str) -> list[Action]:
        out: list[Action] = []
        if self.assist_open:
            self.assist_open = False
            out.append(Send((), ASSIST, "end"))
        out += self._cdr(at)
        if self.call_open:
            out += self._end_with(
                (ops.ReleaseCall(Cause(self.s.release_cause, location=2)),), outcome
            )
        else:
            out += self._done(outcome)
        return out

    def _caller_gone(self, at: dt.datetime) -> list[Action]:
        out: list[Action] = []
        if self.assist_open:
            self.assist_open = False
            out.append(Send((), ASSIST, "abort"))
        out += self._cdr(at)
        return out + self._end_with((), "abandoned")

    def _end_with(self, call_ops: tuple[ops.Operation, ...], outcome: str) -> list[Action]:
        out: list[Action] = []
        if self.call_open:
            self.call_open = False
            out.append(Send(call_ops, CALL, "end"))
        return out + self._done(outcome)

    def _done(self, outcome: str) -> list[Action]:
        out: list[Action] = []
        if self.assist_open:
            self.assist_open = False
            out.append(Send((), ASSIST, "abort"))
        self.phase = Phase.DONE
        self._deadline = None
        return out + [Finished(outcome)]

    def _leg_closed(self, ev: LegClosed, at: dt.datetime) -> list[Action]:
        if self.phase is Phase.DONE:
            return []
        if ev.leg == ASSIST:
            self.assist_open = False
            if self.phase in _SRF_PHASES:
                return self._release(at, "media-server-gone")
            return []
        self.call_open = False
        if self.charge is not None:
            return self._finish_charge(at, close=False)
        return self._done("aborted" if ev.aborted else "switch-ended")

    def _illegal(self, ev: Event) -> list[Action]:
        if isinstance(ev, OpReceived):
            return [Refuse(ev.op, ev.leg)]
        return []

    def _forwards(self, callee: Callee) -> bool:
        return bool(self.s.forwarding and callee.forward_to and "forwarding" in callee.services)


_S = TypeVar("_S", bound=CallSession)
SessionAction = Callable[[_S, Event, float, dt.datetime], list[Action]]
"""A row's action: (session, the event's input, now, at) -> actions."""

_P = Phase
_CE = CallEvent


def common_rows(
    cls: type[_S], phases: tuple[Phase, ...]
) -> dict[tuple[Phase, CallEvent], Transition[Phase, SessionAction[_S]]]:
    """The rows every phase of a session has (``phases``, done excepted): a leg closing, and
    the caller abandoning or hanging up, which ends everything."""
    return {
        **{(p, _CE.DIALOGUE_CLOSED): Transition(cls._on_dialogue_closed) for p in phases},
        **{
            (p, _CE.ABANDON_OR_DISCONNECT): Transition(cls._on_caller_gone, _P.DONE) for p in phases
        },
    }


_CALL_PHASES = (
    _P.IDLE,
    _P.ARMED,
    _P.WAIT_ASSIST,
    _P.MENU,
    _P.NUMBER,
    _P.ANNOUNCING,
    _P.CHARGING,
)

CALL_FSM: TransitionTable[Phase, CallEvent, SessionAction[CallSession]] = TransitionTable(
    "call session",
    {
        **common_rows(CallSession, _CALL_PHASES),
        (_P.ARMED, _CE.EVENT_REPORT_BCSM): Transition(CallSession._on_event_report),
        (_P.WAIT_ASSIST, _CE.ASSIST_REQUEST_INSTRUCTIONS): Transition(
            CallSession._on_assist, _P.MENU
        ),
        (_P.WAIT_ASSIST, _CE.GUARD_TIMER_EXPIRY): Transition(
            CallSession._on_assist_timeout, _P.DONE
        ),
        (_P.MENU, _CE.RECEIVED_INFORMATION): Transition(CallSession._on_menu_digits),
        (_P.MENU, _CE.OPERATION_FAILED): Transition(CallSession._on_prompt_failed),
        (_P.NUMBER, _CE.RECEIVED_INFORMATION): Transition(CallSession._on_number_digits),
        (_P.NUMBER, _CE.OPERATION_FAILED): Transition(CallSession._on_prompt_failed),
        (_P.ANNOUNCING, _CE.SPECIALIZED_RESOURCE_REPORT): Transition(CallSession._on_srr, _P.DONE),
        (_P.ANNOUNCING, _CE.OPERATION_FAILED): Transition(CallSession._on_srr, _P.DONE),
        (_P.ANNOUNCING, _CE.GUARD_TIMER_EXPIRY): Transition(CallSession._on_srr, _P.DONE),
        (_P.CHARGING, _CE.APPLY_CHARGING_REPORT): Transition(CallSession._on_acr),
        (_P.CHARGING, _CE.CALL_INFORMATION_REPORT): Transition(CallSession._on_cirp, _P.DONE),
    },
)
"""The call session (TS 29.078 §6, gsmSCF side). ``next`` None: the caller's digits, the
operation's error or the charging report decide."""
