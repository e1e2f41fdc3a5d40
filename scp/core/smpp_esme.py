"""SMPP 3.4 ESME session toward an SMSC, sans-I/O: received bytes, user requests and ``now`` in;
bytes to send and typed events out.

Specs: SMPP 3.4 (SMPP Developers Forum, 1999): §2.2 session states (OPEN, BOUND_TX, BOUND_RX,
BOUND_TRX, CLOSED), §2.3 which PDU is allowed in which state, §2.5 sequence numbers and
"asynchronous" windowing with outstanding requests, §2.7-2.9 (the ESME keeps the link alive and
times its requests out), §3.2 PDU format, §4.1 bind, §4.2 unbind, §4.3 generic_nack, §4.4
submit_sm, §4.6 deliver_sm, §4.11 enquire_link, §5.1.3 command_status, §5.2.12 esm_class,
§5.2.17 registered_delivery, Appendix B receipts (:mod:`scp.core.smpp_deliver`). PDU octets:
:mod:`scp.codecs.smpp_pdu`; texts and concatenation: :mod:`scp.codecs.sms`.

:class:`EsmeSession` is the ESME side of one SMSC, across connections: the asyncio adapter
(:mod:`scp.adapters.smpp`) tells it :meth:`~EsmeSession.connection_made`,
:meth:`~EsmeSession.receive_data`, :meth:`~EsmeSession.connection_lost` and
:meth:`~EsmeSession.handle_timer`, and calls :meth:`~EsmeSession.submit`,
:meth:`~EsmeSession.unbind` and :meth:`~EsmeSession.answer_deliver`; it pulls
:meth:`~EsmeSession.data_to_send` and :meth:`~EsmeSession.next_event`, and runs the session
again at :meth:`~EsmeSession.next_deadline`. Tests do the same with bytes alone.

What the session does (what an SMSC operator expects of an ESME):

* The session state machine is a transition table (:data:`SESSION_FSM`, in the style of
  :mod:`scp.core.fsm`): (state, event) -> action and next state, the events being the
  transport's, the bind and unbind responses (§2.2) and the requests the SMSC may send (§2.3).
  On connection it sends the bind of its mode (transceiver by default) and is OPEN until
  bind_*_resp; a refused or unanswered bind ends the connection. A request of the SMSC with no
  row in the state is answered with ESME_RINVBNDSTS; an unknown command_id with generic_nack
  ESME_RINVCMDID, a command_length out of range with generic_nack ESME_RINVCMDLEN and the
  connection closed (the framing is lost). A user call illegal in the state raises
  :class:`LocalProtocolError`.
* At most ``window`` submit_sm outstanding, matched to their responses by sequence_number; a
  request unanswered for ``response_timeout`` s, bind and enquire_link included, ends the
  connection. enquire_link after ``enquire_link_interval`` s without a received PDU.
* ESME_RTHROTTLED (0x58) and ESME_RMSGQFUL (0x14): the segment goes back to the head of the
  queue and every submit pauses, doubling from ``throttle_min`` to ``throttle_max`` s while the
  SMSC keeps refusing; the first accepted submit resets it.
* Other refusals fail the message: permanent ones (:data:`PERMANENT_STATUSES`: the message
  itself is wrong) or temporary; a lost link fails what was in flight as ``LINK`` (the SMSC may
  or may not have accepted it) while queued messages wait for the next bind, up to
  ``submit_timeout`` s after they were submitted.
* deliver_sm: a receipt or an MO is handed over as an event carrying the tokens of the
  deliver_sm it came in; :meth:`~EsmeSession.answer_deliver` answers them ESME_ROK once what they
  carry is committed, or ESME_RX_T_APPN (0x64: the SMSC delivers again later). One left
  unanswered ``deliver_timeout`` s is answered ESME_RX_T_APPN by the session; a late answer is
  ignored, and :meth:`~EsmeSession.deliver_pending` lets the adapter skip a handler whose
  deliver_sm was answered already. deliver_sm unanswered when the link is lost are forgotten
  (the SMSC delivers them again).
* Receipts (esm_class 0x04; 0x20 intermediate ones are answered and ignored) are matched by the
  receipted_message_id TLV, else the ``id:`` of the text. A multipart SMS is reported under its
  first segment's id once every segment has a receipt, with the worst status; the receipts of
  the other segments are answered at once and kept in memory, and if the completing one's
  commit fails the set is restored so its redelivery completes it again.
* MO: text decoded; parts of a concatenated MO (UDH with 8- or 16-bit reference, or the SAR
  TLVs) are all held unanswered until the whole message is there, then handed over as one
  event with every part's token. A message still incomplete ``deliver_timeout`` s after its
  first part has its parts answered ESME_RX_T_APPN (the SMSC delivers them again); so is the
  oldest one when more than 10,000 are open. An SMSC that never has more than one deliver_sm
  outstanding cannot complete a concatenated MO this way; such SMSCs normally deliver MO
  reassembled or in message_payload.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from scp.codecs.errors import CodecError
from scp.codecs.smpp_pdu import (
    ALERT_NOTIFICATION,
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DATA_SM,
    DELIVER_SM,
    ENQUIRE_LINK,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RTHROTTLED,
    ESME_RX_T_APPN,
    GENERIC_NACK,
    HEADER,
    MAX_COMMAND_LENGTH,
    RESPONSE,
    SUBMIT_SM,
    UNBIND,
    Declined,
    DeliverSm,
    SmppDecodeError,
    encode_bind,
    encode_pdu,
    encode_response,
    encode_submit_sm,
    read_bind_resp,
    read_deliver_sm,
    read_submit_sm_resp,
)
from scp.codecs.sms import ConcatInfo, SmsSegment, decode_short_message, encode_sms
from scp.core.fsm import IllegalEvent, Transition, TransitionTable
from scp.core.smpp_deliver import (
    MESSAGE_STATES,
    MoReassembler,
    ReceiptMatcher,
    ReceiptSet,
    done_date,
    parse_receipt,
    worst_stat,
)
from scp.core.timers import Timers

__all__ = [
    "PERMANENT_STATUSES",
    "THROTTLE_STATUSES",
    "BindFailed",
    "Bound",
    "ConnectionMustClose",
    "DeliverTimedOut",
    "Dropped",
    "EsmeConfig",
    "EsmeOutput",
    "EsmeSession",
    "FailureKind",
    "LocalProtocolError",
    "MessageFailed",
    "MessageSubmitted",
    "MoReceived",
    "ReceiptReceived",
    "SESSION_FSM",
    "SessionEvent",
    "SessionState",
    "Throttled",
    "Unbound",
    "UnsendableMessage",
]

THROTTLE_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
# §5.1.3 errors about the message itself: sending it again cannot succeed.
PERMANENT_STATUSES = frozenset(
    {
        0x01,  # ESME_RINVMSGLEN
        0x02,  # ESME_RINVCMDLEN
        0x03,  # ESME_RINVCMDID
        0x0A,  # ESME_RINVSRCADR
        0x0B,  # ESME_RINVDSTADR
        0x0C,  # ESME_RINVMSGID
        0x33,  # ESME_RINVNUMDESTS
        0x34,  # ESME_RINVDLNAME
        0x40,  # ESME_RINVDESTFLAG
        0x42,  # ESME_RINVSUBREP
        0x43,  # ESME_RINVESMCLASS
        0x48,  # ESME_RINVSRCTON
        0x49,  # ESME_RINVSRCNPI
        0x50,  # ESME_RINVDSTTON
        0x51,  # ESME_RINVDSTNPI
        0x53,  # ESME_RINVSYSTYP
        0x61,  # ESME_RINVSCHED
        0x62,  # ESME_RINVEXPIRY
        0x63,  # ESME_RINVDFTMSGID
        0x65,  # ESME_RX_P_APPN (permanent application error)
        0x66,  # ESME_RX_R_APPN (rejected by the application)
        0xC0,
        0xC1,
        0xC2,
        0xC3,
        0xC4,  # optional parameter errors
    }
)

ESM_CLASS_TYPE_MASK = 0x3C  # §5.2.12 bits 5-2: message type
ESM_CLASS_RECEIPT = 0x04  # MC delivery receipt
ESM_CLASS_INTERMEDIATE = 0x20  # intermediate delivery notification

_MAX_SEQUENCE = 0x7FFFFFFF  # §5.1.4: 1..0x7FFFFFFF
_ESME_RSYSERR = 0x08
_MO_OPEN_MAX = 10_000


class SessionState(enum.StrEnum):
    """The ESME's session state (SMPP 3.4 §2.2)."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    BOUND_TX = "BOUND_TX"
    BOUND_RX = "BOUND_RX"
    BOUND_TRX = "BOUND_TRX"


class SessionEvent(enum.StrEnum):
    """What the session reacts to: the transport, the responses of §4.1-4.2, the requests an
    SMSC may send (§2.3)."""

    CONNECTION_MADE = "connection made"
    BIND_TRANSMITTER_RESP = "bind_transmitter_resp"
    BIND_RECEIVER_RESP = "bind_receiver_resp"
    BIND_TRANSCEIVER_RESP = "bind_transceiver_resp"
    UNBIND = "unbind"  # from the SMSC, answered with unbind_resp
    UNBIND_RESP = "unbind_resp"  # to our unbind
    CONNECTION_LOST = "connection lost"  # the transport went, or we close it
    ENQUIRE_LINK = "enquire_link"
    DELIVER_SM = "deliver_sm"
    DATA_SM = "data_sm"
    ALERT_NOTIFICATION = "alert_notification"


class FailureKind(enum.Enum):
    """Why a submitted message failed, which decides what its sender does next."""

    PERMANENT = "permanent"  # the SMSC refused the message itself: never again
    TEMPORARY = "temporary"  # the SMSC refused for now: later, counting an attempt
    LINK = "link"  # no bound link (outage, lost connection, no response): not the message's fault


_C, _O = SessionState.CLOSED, SessionState.OPEN
_TX, _RX, _TRX = SessionState.BOUND_TX, SessionState.BOUND_RX, SessionState.BOUND_TRX
_BOUND = frozenset({_TX, _RX, _TRX})
_RECEIVING = frozenset({_RX, _TRX})
_SENDING = frozenset({_TX, _TRX})
_E = SessionEvent

# The requests an SMSC may send an ESME (§2.3 table 2-1); any other is answered with
# generic_nack ESME_RINVCMDID (outbind included: we always open the connection).
_REQUEST_EVENT: dict[int, SessionEvent] = {
    ENQUIRE_LINK: _E.ENQUIRE_LINK,
    UNBIND: _E.UNBIND,
    DELIVER_SM: _E.DELIVER_SM,
    DATA_SM: _E.DATA_SM,
    ALERT_NOTIFICATION: _E.ALERT_NOTIFICATION,
}
_NO_RESPONSE = frozenset({ALERT_NOTIFICATION})  # §4.12: alert_notification is not answered

_BIND_COMMANDS: dict[str, tuple[int, SessionEvent]] = {
    "transceiver": (BIND_TRANSCEIVER, _E.BIND_TRANSCEIVER_RESP),
    "transmitter": (BIND_TRANSMITTER, _E.BIND_TRANSMITTER_RESP),
    "receiver": (BIND_RECEIVER, _E.BIND_RECEIVER_RESP),
}


class LocalProtocolError(Exception):
    """A call the session cannot take in its state (our side's error, never the SMSC's)."""


class UnsendableMessage(LocalProtocolError):
    """A message no SMSC could accept as given (destination, text): never worth a retry."""


# ---------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class EsmeConfig:
    """The ESME's identity, addressing and timers; checked once, here."""

    system_id: str = "mcn"
    password: str = "secret"
    source_addr: str = "12599"
    window: int = 10
    system_type: str = ""
    bind_mode: Literal["transceiver", "transmitter", "receiver"] = "transceiver"
    source_addr_ton: int = 3  # network specific (short code); §5.2.5
    source_addr_npi: int = 0
    dest_addr_ton: int = 1  # international; §5.2.5
    dest_addr_npi: int = 1  # E.164; §5.2.6
    registered_delivery: int = 1  # §5.2.17: SMSC delivery receipt requested
    enquire_link_interval: float = 30.0
    response_timeout: float = 30.0
    unbind_timeout: float = 2.0
    throttle_min: float = 0.1
    throttle_max: float = 5.0
    submit_timeout: float = 60.0  # a message still queued (never sent) after this fails
    deliver_timeout: float = 20.0  # a deliver_sm not answered by then: ESME_RX_T_APPN
    receipt_agg_max: int = 10_000  # open multipart receipt sets
    receipt_agg_age: float = 600.0  # s a multipart receipt set waits for its other segments

    def __post_init__(self) -> None:
        # §5.2.1-5.2.3, §5.2.8: what fits its field; smpplib would cut a longer value silently
        for name, size in (
            ("system_id", 16),
            ("password", 9),
            ("system_type", 13),
            ("source_addr", 21),
        ):
            value = getattr(self, name)
            if len(value) >= size or not value.isascii():
                raise ValueError(f"smpp.{name}: at most {size - 1} ASCII characters")
        for name in (
            "source_addr_ton",
            "source_addr_npi",
            "dest_addr_ton",
            "dest_addr_npi",
            "registered_delivery",
        ):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"smpp.{name}: one octet (0-255)")
        if self.bind_mode not in _BIND_COMMANDS:
            raise ValueError(f"smpp.bind_mode: one of {', '.join(_BIND_COMMANDS)}")
        if self.window < 1:
            raise ValueError("smpp.window: at least 1")


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class Bound:
    """bind_*_resp ESME_ROK: the session is bound (§4.1.2)."""

    state: SessionState
    smsc_system_id: str


@dataclass(frozen=True, slots=True)
class BindFailed:
    """The SMSC refused or nacked our bind; the connection is closing."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class MessageSubmitted:
    """Every segment of message ``ref`` accepted; the SMSC's message_id of each, in order."""

    ref: int
    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MessageFailed:
    """Message ``ref`` will not be sent by this session: why, and the command_status if any."""

    ref: int
    kind: FailureKind
    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Throttled:
    """The SMSC answered ESME_RTHROTTLED / ESME_RMSGQFUL: submits pause ``pause`` s."""

    status: int
    pause: float


@dataclass(frozen=True, slots=True)
class ReceiptReceived:
    """A delivery receipt of ``message_id`` (a multipart SMS's first segment id once all its
    segments reported, or ``segments_reported`` of ``segments`` when its set was settled
    incomplete, then with no tokens); ``matched`` if it is one of the messages we submitted.
    Answer ``tokens`` with :meth:`EsmeSession.answer_deliver` once it is recorded."""

    tokens: tuple[int, ...]
    message_id: str
    stat: str
    done_date: datetime | None  # Appendix B "done date", None if the text has none
    received_at: float  # ``now`` when (the first of) its receipt(s) arrived
    matched: bool
    source_addr: str  # the SMS's recipient (§2.11: a receipt travels back)
    destination_addr: str  # the SMS's sender
    segments_reported: int = 1
    segments: int = 1


@dataclass(frozen=True, slots=True)
class MoReceived:
    """A mobile-originated message, reassembled if it came in parts; answer ``tokens`` (one
    per part) with :meth:`EsmeSession.answer_deliver` once it is stored."""

    tokens: tuple[int, ...]
    source_addr: str
    destination_addr: str
    text: str
    received_at: float


@dataclass(frozen=True, slots=True)
class DeliverTimedOut:
    """A deliver_sm unanswered for ``deliver_timeout`` s was answered ESME_RX_T_APPN."""

    sequence: int


@dataclass(frozen=True, slots=True)
class Unbound:
    """The session was unbound (§4.2): by the SMSC's unbind or by our own; closing follows."""

    by_peer: bool


@dataclass(frozen=True, slots=True)
class ConnectionMustClose:
    """The adapter must close the connection (after sending what is pending)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """Input we could not use, or nothing to do with; for the log."""

    reason: str
    detail: str = ""


EsmeOutput = (
    Bound
    | BindFailed
    | MessageSubmitted
    | MessageFailed
    | Throttled
    | ReceiptReceived
    | MoReceived
    | DeliverTimedOut
    | Unbound
    | ConnectionMustClose
    | Dropped
)
"""Everything the session hands its owner (:meth:`EsmeSession.next_event`): a closed union."""

Tap = Callable[[str, bytes], None]


# ---------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Message:
    """One submitted message: its segments, their ids so far, when it was submitted."""

    ref: int
    destination: str
    segments: tuple[SmsSegment, ...]
    queued_at: float
    message_ids: list[str]
    remaining: int
    done: bool = False


# A deliver_sm answered later: its sequence_number, its answer deadline, and the receipt set to
# restore if its commit fails.
_Restore = tuple[str, ReceiptSet, list[str]]
_Deferred = tuple[int, float, _Restore | None]


class EsmeSession:
    """The ESME side of one SMSC, across connections (see module doc)."""

    def __init__(
        self, *, config: EsmeConfig, deliver_mo: bool = True, tap: Tap | None = None
    ) -> None:
        """``deliver_mo`` False: MO messages are answered ESME_ROK and dropped (no handler).
        ``tap(direction, pdu)`` sees every PDU, "out" and "in", for captures."""
        self.config = config
        self.deliver_mo = deliver_mo
        self._tap = tap
        self._bind_command, self._bind_event = _BIND_COMMANDS[config.bind_mode]
        self.state = SessionState.CLOSED
        self._timers = Timers()
        self._rx = bytearray()
        self._out: list[bytes] = []
        self._events: collections.deque[EsmeOutput] = collections.deque()
        self._seq = 0
        self._bind_seq: int | None = None
        self._enquire_seq: int | None = None
        self._unbind_seq: int | None = None
        self._last_rx = 0.0
        # submit side
        self._next_ref = 0
        self._messages: dict[int, _Message] = {}
        self._queue: collections.deque[tuple[_Message, int]] = collections.deque()
        self._inflight: dict[int, tuple[_Message, int, float]] = {}  # seq -> (msg, segment, sent)
        self._paused_until = 0.0
        self._throttle_delay = 0.0
        self.max_inflight = 0
        # receive side
        self._next_token = 0
        self._deferred: dict[int, _Deferred] = {}  # insertion order = deadline order
        self.receipts = ReceiptMatcher(
            sets_max=config.receipt_agg_max, set_age=config.receipt_agg_age
        )
        self.mo = MoReassembler(timeout=config.deliver_timeout, sets_max=_MO_OPEN_MAX)
        self.stats: collections.Counter[str] = collections.Counter()

    # -- queries --------------------------------------------------------------------------------

    @property
    def can_submit(self) -> bool:
        """Bound in a state that sends submit_sm, and not unbinding."""
        return self.state in _SENDING and self._unbind_seq is None

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def deliver_pending(self, token: int) -> bool:
        """Whether the deliver_sm of ``token`` still awaits its answer on this connection."""
        return token in self._deferred

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next, or None."""
        cfg = self.config
        best = self._timers.next_deadline()
        cands: list[float | None] = [self.receipts.next_deadline()]
        if self.state is not _C:
            cands.append(self.mo.next_deadline())
            if self._inflight:
                cands.append(next(iter(self._inflight.values()))[2] + cfg.response_timeout)
            if self._deferred:
                cands.append(next(iter(self._deferred.values()))[1])
            if self.state in _BOUND and self._enquire_seq is None and self._unbind_seq is None:
                cands.append(self._last_rx + cfg.enquire_link_interval)
        if self._queue:
            cands.append(self._queue[0][0].queued_at + cfg.submit_timeout)
        for c in cands:
            if c is not None and (best is None or c < best):
                best = c
        return best

    # -- outputs --------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Every PDU queued for the SMSC since the last call, in order."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def next_event(self) -> EsmeOutput | None:
        return self._events.popleft() if self._events else None

    def _send(self, pdu: bytes) -> None:
        self._out.append(pdu)
        if self._tap is not None:
            self._tap("out", pdu)

    def _next_sequence(self) -> int:
        self._seq = self._seq + 1 if self._seq < _MAX_SEQUENCE else 1
        return self._seq

    def _transition(self, event: SessionEvent) -> None:
        """Move to where ``event`` leads from the current state (the row's ``next``)."""
        try:
            row = SESSION_FSM.lookup(self.state, event)
        except IllegalEvent as e:
            raise LocalProtocolError(str(e)) from None
        if row.next is not None:
            self.state = row.next

    # -- transport ------------------------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """A connection to the SMSC is up: bind (§4.1)."""
        self._transition(_E.CONNECTION_MADE)
        self._rx.clear()
        self._last_rx = now
        self._bind_seq = self._next_sequence()
        cfg = self.config
        self._send(
            encode_bind(
                self._bind_command,
                self._bind_seq,
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
            )
        )
        self._timers.start("bind_resp", now, cfg.response_timeout)

    def connection_lost(self, now: float, cause: str = "link lost") -> None:
        """The connection is gone (or closed by the adapter); ``cause`` names it in failures."""
        if self.state is not _C:
            self._end(_E.CONNECTION_LOST, cause)

    def _close(self, reason: str) -> None:
        """The session gives the connection up: the adapter closes it."""
        if self.state is _C:
            return
        self._end(_E.CONNECTION_LOST, "link lost")
        self._events.append(ConnectionMustClose(reason))

    def _end(self, event: SessionEvent, cause: str) -> None:
        """Leave the connection: in-flight messages fail (the SMSC may have accepted them:
        the at-most-one-duplicate window), unanswered deliver_sm are forgotten (the SMSC
        delivers them again), queued messages wait for the next bind."""
        self._transition(event)
        inflight = list(self._inflight.values())
        self._inflight.clear()
        for msg, _i, _sent in inflight:
            self._fail(msg, FailureKind.LINK, f"{cause} with submit_sm outstanding")
        for name in ("bind_resp", "enquire_link_resp", "unbind_resp", "throttle"):
            self._timers.cancel(name)
        self._bind_seq = self._enquire_seq = self._unbind_seq = None
        self._paused_until = 0.0
        self._throttle_delay = 0.0
        self._deferred.clear()
        self.mo.clear()  # every part of an incomplete MO is unanswered: it comes again
        self._rx.clear()

    # -- user requests --------------------------------------------------------------------------

    def submit(self, destination: str, text: str, *, concat_ref: int, now: float) -> int:
        """Queue one message (all its segments); its reference for the events. Sent as soon as
        the window and the session allow. UnsendableMessage if no SMSC could take it."""
        # §5.2.9 destination_addr: C-Octet String of at most 21 octets with its NUL
        if not (0 < len(destination) <= 20 and destination.isascii() and destination.isprintable()):
            raise UnsendableMessage(
                f"destination_addr {destination!r} is not 1-20 ASCII characters"
            )
        try:
            encoded = encode_sms(text, concat_ref=concat_ref)
        except CodecError as e:
            raise UnsendableMessage(f"cannot encode: {e}") from None
        self._next_ref += 1
        n = len(encoded.segments)
        msg = _Message(self._next_ref, destination, encoded.segments, now, [""] * n, n)
        self._messages[msg.ref] = msg
        self._queue.extend((msg, i) for i in range(n))
        self._fill_window(now)
        return msg.ref

    def cancel(self, ref: int) -> None:
        """Forget message ``ref``: its queued segments are not sent, and no event comes for it."""
        msg = self._messages.pop(ref, None)
        if msg is not None:
            msg.done = True

    def fail_queued(self, reason: str) -> None:
        """Fail every message not settled yet (the adapter stops, its connection closed)."""
        for msg in list(self._messages.values()):
            self._fail(msg, FailureKind.LINK, reason)
        self._queue.clear()

    def unbind(self, now: float) -> None:
        """Unbind (§4.2): no more submits; Unbound and ConnectionMustClose follow unbind_resp,
        or ``unbind_timeout`` s without it. Before the bind completed, just close."""
        if self.state is _O:
            self._close("unbind before the bind completed")
        elif self.state in _BOUND and self._unbind_seq is None:
            self._unbind_seq = self._next_sequence()
            self._send(encode_pdu(UNBIND, self._unbind_seq))
            self._timers.start("unbind_resp", now, self.config.unbind_timeout)

    def answer_deliver(self, tokens: tuple[int, ...] | list[int], ok: bool, now: float) -> None:
        """deliver_sm_resp for the deliver_sm of ``tokens`` (§4.6.2; responses may go in any
        order, §2.5): ESME_ROK, or ESME_RX_T_APPN when what they carry could not be stored.
        Tokens already answered (timeout) or of a lost connection are ignored."""
        status = ESME_ROK if ok else ESME_RX_T_APPN
        for t in tokens:
            entry = self._deferred.pop(t, None)
            if entry is None:
                continue
            seq, _deadline, restore = entry
            self._send(encode_response(DELIVER_SM | RESPONSE, seq, status))
            if ok:
                self.stats["deliver_sm_ok"] += 1
            else:
                self.stats["deliver_sm_temp_error"] += 1
                if restore is not None:
                    self._settled(self.receipts.restore(*restore))

    # -- timers ---------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now``."""
        cfg = self.config
        for name in self._timers.expired(now):
            if name == "bind_resp":
                self._close("no bind_resp within response_timeout")
            elif name == "enquire_link_resp":
                self._close("enquire_link unanswered")
            elif name == "unbind_resp":
                self._close("no unbind_resp within unbind_timeout")
        if self._inflight and now >= next(iter(self._inflight.values()))[2] + cfg.response_timeout:
            self._close("submit_sm_resp not received in time")
        if (
            self.state in _BOUND
            and self._enquire_seq is None
            and self._unbind_seq is None
            and now >= self._last_rx + cfg.enquire_link_interval
        ):
            self._enquire_seq = self._next_sequence()
            self._send(encode_pdu(ENQUIRE_LINK, self._enquire_seq))
            self._timers.start("enquire_link_resp", now, cfg.response_timeout)
        self._expire_queued(now)
        self._expire_receive_side(now)
        self._fill_window(now)

    def _expire_queued(self, now: float) -> None:
        """Messages waiting longer than ``submit_timeout`` for a link (outage) fail; the queue
        is in submission order, a throttled segment going back to its head being older still."""
        q = self._queue
        limit = self.config.submit_timeout
        while q:
            msg = q[0][0]
            if not msg.done and now - msg.queued_at < limit:
                break
            q.popleft()
            self._fail(msg, FailureKind.LINK, "no SMSC link within submit_timeout")

    def _expire_receive_side(self, now: float) -> None:
        for tokens in self.mo.expire(now):
            self.stats["mo_incomplete"] += 1
            self._answer_now(tokens)
        while self._deferred:
            token, (seq, deadline, restore) = next(iter(self._deferred.items()))
            if deadline > now:
                break
            del self._deferred[token]
            self._send(encode_response(DELIVER_SM | RESPONSE, seq, ESME_RX_T_APPN))
            self.stats["deliver_sm_timeout"] += 1
            self._events.append(DeliverTimedOut(seq))
            if restore is not None:
                self._settled(self.receipts.restore(*restore))
        self._settled(self.receipts.expire(now))

    def _answer_now(self, tokens: tuple[int, ...] | list[int]) -> None:
        """ESME_RX_T_APPN for parts of an MO that will not be completed here."""
        for t in tokens:
            entry = self._deferred.pop(t, None)
            if entry is not None:
                self._send(encode_response(DELIVER_SM | RESPONSE, entry[0], ESME_RX_T_APPN))
                self.stats["deliver_sm_temp_error"] += 1

    # -- submit side ----------------------------------------------------------------------------

    def _fill_window(self, now: float) -> None:
        if not self._queue or not self.can_submit or now < self._paused_until:
            return
        cfg = self.config
        q = self._queue
        inflight = self._inflight
        sent = 0
        while q and len(inflight) < cfg.window:
            msg, i = q.popleft()
            if msg.done:
                continue
            seg = msg.segments[i]
            seq = self._next_sequence()
            raw = encode_submit_sm(
                seq,
                source_addr_ton=cfg.source_addr_ton,
                source_addr_npi=cfg.source_addr_npi,
                source_addr=cfg.source_addr,
                dest_addr_ton=cfg.dest_addr_ton,
                dest_addr_npi=cfg.dest_addr_npi,
                destination_addr=msg.destination,
                esm_class=seg.esm_class,
                data_coding=int(seg.data_coding),
                registered_delivery=cfg.registered_delivery,
                short_message=seg.short_message,
            )
            if isinstance(raw, Declined):  # unreachable after submit()'s and EsmeConfig's checks
                self._fail(msg, FailureKind.PERMANENT, "cannot build submit_sm")
                continue
            inflight[seq] = (msg, i, now)
            self._send(raw)
            sent += 1
        if sent:
            self.stats["submit_sm"] += sent
            if len(inflight) > self.max_inflight:
                self.max_inflight = len(inflight)

    def _fail(
        self, msg: _Message, kind: FailureKind, reason: str, status: int | None = None
    ) -> None:
        if msg.done:
            return
        msg.done = True
        self._messages.pop(msg.ref, None)
        self._events.append(MessageFailed(msg.ref, kind, reason, status))

    def _on_submit_resp(self, raw: bytes, status: int, seq: int, now: float) -> None:
        entry = self._inflight.pop(seq, None)
        if entry is None:
            self.stats["stray_resp"] += 1
            return
        msg, i, _sent = entry
        if status == ESME_ROK:
            self._throttle_delay = 0.0
            msg.message_ids[i] = read_submit_sm_resp(raw)
            msg.remaining -= 1
            if msg.remaining == 0 and not msg.done:
                msg.done = True
                del self._messages[msg.ref]
                self.receipts.remember(msg.message_ids)
                self.stats["sms_submitted"] += 1
                self._events.append(MessageSubmitted(msg.ref, tuple(msg.message_ids)))
            return
        if status in THROTTLE_STATUSES:
            # §5.1.3: the SMSC is overloaded; the same segment goes again after a pause
            cfg = self.config
            self.stats["throttled"] += 1
            self._throttle_delay = min(
                max(self._throttle_delay * 2, cfg.throttle_min), cfg.throttle_max
            )
            self._paused_until = now + self._throttle_delay
            self._timers.start("throttle", now, self._throttle_delay)
            self._queue.appendleft((msg, i))
            self._events.append(Throttled(status, self._throttle_delay))
            return
        self.stats["submit_errors"] += 1
        if status in PERMANENT_STATUSES:
            self._fail(msg, FailureKind.PERMANENT, "submit_sm refused", status)
        else:
            self._fail(msg, FailureKind.TEMPORARY, "submit_sm failed", status)

    # -- received PDUs --------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the SMSC: whole PDUs are handled, a partial one waits for the rest."""
        if self.state is _C:
            return
        self._last_rx = now
        buf = self._rx
        buf += data
        n = len(buf)
        pos = 0
        while n - pos >= 16:
            length, command_id, status, seq = HEADER.unpack_from(buf, pos)
            if length < 16 or length > MAX_COMMAND_LENGTH:
                # §4.3: generic_nack ESME_RINVCMDLEN; the stream can no longer be split
                self._send(encode_pdu(GENERIC_NACK, seq, ESME_RINVCMDLEN))
                self._close(f"bad command_length {length}")
                return
            if n - pos < length:
                break
            raw = bytes(buf[pos : pos + length])
            pos += length
            if self._tap is not None:
                self._tap("in", raw)
            try:
                self._on_pdu(raw, command_id, status, seq, now)
            except Exception as e:  # noqa: BLE001 - the SMSC's bytes must never end the session
                self._events.append(
                    Dropped(
                        "internal error handling a PDU",
                        f"command_id=0x{command_id:08X} {type(e).__name__}: {e}",
                    )
                )
            if self.state is _C:
                return  # closed meanwhile: the buffer went with the connection
        del buf[:pos]
        self._fill_window(now)

    def _on_pdu(self, raw: bytes, command_id: int, status: int, seq: int, now: float) -> None:
        if command_id == SUBMIT_SM | RESPONSE:  # most of what an SMSC sends
            self._on_submit_resp(raw, status, seq, now)
            return
        if command_id & RESPONSE:
            self._on_response(raw, command_id, status, seq, now)
            return
        event = _REQUEST_EVENT.get(command_id)
        if event is None:
            self._send(encode_pdu(GENERIC_NACK, seq, ESME_RINVCMDID))
            self._events.append(
                Dropped("unknown or unsupported request", f"command_id=0x{command_id:08X}")
            )
            return
        row = SESSION_FSM.get(self.state, event)
        if row is None or row.action is None:  # §2.3: not allowed in this state
            if command_id not in _NO_RESPONSE:
                self._send(encode_response(command_id | RESPONSE, seq, ESME_RINVBNDSTS))
            self._events.append(
                Dropped(f"request not allowed in {self.state}", f"command_id=0x{command_id:08X}")
            )
            return
        row.action(self, raw, seq, now)

    def _on_enquire_link(self, raw: bytes, seq: int, now: float) -> None:
        self._send(encode_response(ENQUIRE_LINK | RESPONSE, seq))

    def _on_unbind(self, raw: bytes, seq: int, now: float) -> None:
        self._send(encode_response(UNBIND | RESPONSE, seq))
        self._end(_E.UNBIND, "link lost")
        self._events.append(Unbound(by_peer=True))
        self._events.append(ConnectionMustClose("SMSC unbound"))

    def _on_data_sm(self, raw: bytes, seq: int, now: float) -> None:
        self._send(encode_response(DATA_SM | RESPONSE, seq, ESME_RINVCMDID))  # not served

    def _on_alert_notification(self, raw: bytes, seq: int, now: float) -> None:
        """§4.12: nothing to do, and nothing to answer."""

    def _on_response(self, raw: bytes, command_id: int, status: int, seq: int, now: float) -> None:
        """A response, matched to our outstanding request by sequence_number (§2.5); a
        generic_nack (§4.3) answers whichever request carried its sequence_number."""
        nack = command_id == GENERIC_NACK
        if seq == self._enquire_seq and (nack or command_id == ENQUIRE_LINK | RESPONSE):
            self._enquire_seq = None
            self._timers.cancel("enquire_link_resp")
        elif nack and seq in self._inflight:
            # a nack always refuses; one claiming ESME_ROK is read as ESME_RSYSERR (temporary)
            self._on_submit_resp(raw, status or _ESME_RSYSERR, seq, now)
        elif seq == self._bind_seq and (nack or command_id == self._bind_command | RESPONSE):
            self._on_bind_resp(raw, command_id, status)
        elif seq == self._unbind_seq and (nack or command_id == UNBIND | RESPONSE):
            self._end(_E.UNBIND_RESP, "unbound")
            self._events.append(Unbound(by_peer=False))
            self._events.append(ConnectionMustClose("unbound"))
        else:
            self.stats["stray_resp"] += 1

    def _on_bind_resp(self, raw: bytes, command_id: int, status: int) -> None:
        self._bind_seq = None
        self._timers.cancel("bind_resp")
        if command_id == GENERIC_NACK or status != ESME_ROK:
            what = "nacked" if command_id == GENERIC_NACK else "refused"
            reason = f"bind_{self.config.bind_mode} {what}"
            self._events.append(BindFailed(status, reason))
            self._close(reason)
            return
        self._transition(self._bind_event)
        self.stats["binds"] += 1
        self._events.append(Bound(self.state, read_bind_resp(raw).system_id))

    # -- deliver_sm -----------------------------------------------------------------------------

    def _defer(self, sequence: int, now: float, restore: _Restore | None = None) -> int:
        """A deliver_sm answered later (answer_deliver, or RX_T_APPN at its deadline)."""
        self._next_token += 1
        self._deferred[self._next_token] = (sequence, now + self.config.deliver_timeout, restore)
        return self._next_token

    def _on_deliver(self, raw: bytes, seq: int, now: float) -> None:
        try:
            pdu = read_deliver_sm(raw)
        except SmppDecodeError as e:
            self._send(encode_response(DELIVER_SM | RESPONSE, seq, e.command_status))
            self._events.append(Dropped("unreadable deliver_sm", str(e)))
            return
        sm = pdu.short_message or pdu.message_payload or b""
        mtype = pdu.esm_class & ESM_CLASS_TYPE_MASK
        if mtype in (ESM_CLASS_RECEIPT, ESM_CLASS_INTERMEDIATE):
            self._on_receipt(pdu, sm, mtype, now)
        else:
            self._on_mo(pdu, sm, now)

    def _on_receipt(self, pdu: DeliverSm, sm: bytes, mtype: int, now: float) -> None:
        self.stats["receipts"] += 1
        seq = pdu.sequence
        text = sm.decode("latin-1")
        fields = parse_receipt(text)
        rid = pdu.receipted_message_id
        mid = ((rid.decode("ascii", "replace") if rid else "") or fields.get("id") or "").strip()
        if not mid or mtype == ESM_CLASS_INTERMEDIATE:
            if not mid:
                self._events.append(Dropped("receipt without id", text[:80]))
            self._send(encode_response(DELIVER_SM | RESPONSE, seq))  # nothing to record
            return
        stat = (fields.get("stat") or MESSAGE_STATES.get(pdu.message_state or 0, "UNKNOWN")).upper()
        done = done_date(fields.get("done date"))
        received_at = now
        hit = self.receipts.lookup(mid)
        primary, total = hit if hit is not None else (mid, 1)
        restore: _Restore | None = None
        if total > 1:
            rs, settled = self.receipts.add(primary, total, stat, done, now)
            self._settled(settled)
            if rs is None:
                # kept in memory; the last segment's receipt commits the whole set
                self._send(encode_response(DELIVER_SM | RESPONSE, seq))
                return
            stat = worst_stat(rs.stats)
            done, received_at = rs.done_date, rs.first
            restore = (primary, rs, rs.stats[:-1])
        token = self._defer(seq, now, restore)
        self._events.append(
            ReceiptReceived(
                (token,),
                primary,
                stat,
                done,
                received_at,
                hit is not None,
                pdu.source_addr.decode("ascii", "replace"),
                pdu.destination_addr.decode("ascii", "replace"),
                total,
                total,
            )
        )

    def _settled(self, sets: list[tuple[str, ReceiptSet]]) -> None:
        """Multipart receipt sets given up on (age, overflow): reported with what arrived."""
        for primary, rs in sets:
            self.stats["receipt_sets_expired"] += 1
            self._events.append(
                ReceiptReceived(
                    (),
                    primary,
                    worst_stat(rs.stats),
                    rs.done_date,
                    rs.first,
                    True,
                    "",
                    "",
                    len(rs.stats),
                    rs.total,
                )
            )

    def _on_mo(self, pdu: DeliverSm, sm: bytes, now: float) -> None:
        seq = pdu.sequence
        try:
            msg = decode_short_message(sm, pdu.data_coding, pdu.esm_class)
        except CodecError as e:
            # accepted: refusing would make the SMSC redeliver a message we cannot read
            self._send(encode_response(DELIVER_SM | RESPONSE, seq))
            self._events.append(Dropped("undecodable MO", str(e)))
            return
        self.stats["mo"] += 1
        if not self.deliver_mo:
            self._send(encode_response(DELIVER_SM | RESPONSE, seq))
            return
        source = pdu.source_addr.decode("ascii", "replace")
        dest = pdu.destination_addr.decode("ascii", "replace")
        concat = msg.concat
        if (
            concat is None
            and pdu.sar_msg_ref_num is not None
            and pdu.sar_total_segments is not None
            and pdu.sar_segment_seqnum is not None
        ):
            # §5.3.2.22-24: the SAR TLVs carry what a UDH would
            concat = ConcatInfo(pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum)
        token = self._defer(seq, now)
        if concat is None or concat.total < 2 or not 1 <= concat.seq <= concat.total:
            self._events.append(MoReceived((token,), source, dest, msg.text, now))
            return
        whole, replaced, evicted = self.mo.add(
            (source, dest, concat.ref, concat.total), concat.seq, msg.text, token, now
        )
        if replaced is not None:
            # the SMSC delivered that part again: only the new copy is answered
            self._deferred.pop(replaced, None)
        self._answer_now(evicted)
        if whole is not None:
            text, tokens = whole
            self._events.append(MoReceived(tokens, source, dest, text, now))


_Request = Callable[[EsmeSession, bytes, int, float], None]
"""The action of a request from the SMSC: (session, the PDU, its sequence_number, now)."""

SESSION_FSM: TransitionTable[SessionState, SessionEvent, _Request | None] = TransitionTable(
    "SMPP ESME session",
    {
        # §2.2 figure 2-1, from the ESME's side: the transport and the responses move it
        (_C, _E.CONNECTION_MADE): Transition(None, _O),
        (_O, _E.BIND_TRANSMITTER_RESP): Transition(None, _TX),
        (_O, _E.BIND_RECEIVER_RESP): Transition(None, _RX),
        (_O, _E.BIND_TRANSCEIVER_RESP): Transition(None, _TRX),
        **{(s, _E.UNBIND_RESP): Transition(None, _C) for s in _BOUND},
        **{(s, _E.CONNECTION_LOST): Transition(None, _C) for s in (_O, *_BOUND)},
        # §2.3 table 2-1: the requests of the SMSC, in the states that allow them
        **{(s, _E.UNBIND): Transition(EsmeSession._on_unbind, _C) for s in _BOUND},
        **{(s, _E.ENQUIRE_LINK): Transition(EsmeSession._on_enquire_link) for s in (_O, *_BOUND)},
        **{(s, _E.DELIVER_SM): Transition(EsmeSession._on_deliver) for s in _RECEIVING},
        **{(s, _E.DATA_SM): Transition(EsmeSession._on_data_sm) for s in _RECEIVING},
        **{
            (s, _E.ALERT_NOTIFICATION): Transition(EsmeSession._on_alert_notification)
            for s in _RECEIVING
        },
    },
)
"""The ESME session (SMPP 3.4 §2.2-2.3). A user call with no row is a LocalProtocolError; a
request of the SMSC with none is answered ESME_RINVBNDSTS (alert_notification: not answered)."""
