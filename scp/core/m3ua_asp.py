"""M3UA layer management: the ASP and AS state machines of RFC 4666 §4.3, sans-I/O.

One :class:`M3uaLayer` serves every association of the node, in one of two roles:

* ``client``: we are an ASP toward an SGP or IPSP server (an STP). On association up we send
  ASP Up (§3.5.1), on its Ack ASP Active (§3.7.1) with our Routing Context and Traffic Mode
  Type, retrying each with the T(ack) timer and exponential backoff (§4.3.4.1, §4.3.4.3).
  :meth:`M3uaLayer.shutdown` sends ASP Inactive then ASP Down (§4.3.4.4, §4.3.4.2).
* ``server``: we accept ASPs (as an SGP/IPSP would). Each association has an ASP state
  (ASP-DOWN / ASP-INACTIVE / ASP-ACTIVE, §4.3.1) and the one Application Server we serve has an
  AS state (AS-DOWN / AS-INACTIVE / AS-ACTIVE / AS-PENDING with the recovery timer T(r),
  §4.3.2) under the traffic mode override, loadshare or broadcast (§4.3.4.3). AS state changes
  are announced with Notify (§4.3.4.5); an override take-over tells the old ASP "Alternate ASP
  Active". Routing keys may be registered dynamically (REG REQ, §4.4.1).

In both roles: BEAT is answered with BEAT Ack echoing the Heartbeat Data and we send our own
BEATs when ``beat_interval`` > 0, closing the association if no Ack comes within
``beat_timeout`` (§3.5.5, §4.3.4.6); DAUD is answered with DAVA for our own point code and DUNA
for the rest (§3.4.3, §4.5); a message we cannot accept gets an Error (§3.8.1, §4.5) with the
first octets of the offending message as Diagnostic Information, and the association stays up.

Answers to a point code (MTP-TRANSFER requests) leave over an association that reaches it. With
no ``pc_bindings`` that is the association the point code was first seen on as OPC, while it
stays up. ``pc_bindings`` ties point codes to peer addresses (``[[m3ua.binding]]``, the host the
transport reports for each association): DATA whose OPC is bound, from an association whose
peer is not one of its addresses, is refused with ERR and never delivered, and answers to a
bound point code go only over active associations from its addresses. Point codes no binding
names are learned as without bindings.

The ASP state machine is a transition table per role (:data:`SERVER_ASP_FSM`,
:data:`CLIENT_ASP_FSM`, in the style of :mod:`scp.core.fsm`): (ASP state, event) -> the action
and the next state of §4.3.1 figure 3, the events being the messages received (named as §3
names them) and the local events of §4.3.1 (association lost, M-ASP_DOWN request, another ASP
taking over). A message with no row for the ASP's state is illegal there and answered with ERR
"Unexpected Message" (§4.5).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from scp.codecs.errors import CodecError
from scp.codecs.m3ua import (
    AffectedPointCode,
    AsStateChange,
    DeregistrationResult,
    DeregistrationStatus,
    ErrorCode,
    M3uaDecodeError,
    M3uaMessage,
    MessageType,
    OtherStatus,
    RegistrationResult,
    RegistrationStatus,
    StatusType,
    TrafficMode,
    decode,
    decode_data,
    encode,
    encode_data,
    make,
)
from scp.core.fsm import IllegalEvent, Transition, TransitionTable
from scp.core.timers import Timers
from scp.primitives import MtpTransfer

__all__ = [
    "M3uaLayer",
    "AspState",
    "AspEvent",
    "AsState",
    "SERVER_ASP_FSM",
    "CLIENT_ASP_FSM",
    "Transmit",
    "Deliver",
    "CloseAssociation",
    "AspStateChanged",
    "AsStateChanged",
    "Dropped",
    "OpcRefused",
    "MtpStatus",
    "PeerNotify",
    "M3uaEvent",
    "M3uaOutput",
    "DATA_STREAMS",
    "canonical_address",
]

DATA_STREAMS = 16
"""SCTP streams 1..16 carry DATA, chosen by SLS so one signalling relation stays in order."""

DIAGNOSTIC_OCTETS = 40
"""How much of an offending message an ERR echoes as Diagnostic Information (§3.8.1)."""

MAX_PENDING_QUEUE = 1024
"""DATA buffered while the AS is AS-PENDING (§4.3.2); beyond this it is dropped."""

MAX_BACKOFF = 30.0


class AspState(enum.StrEnum):
    """ASP state as seen by this side (RFC 4666 §4.3.1)."""

    DOWN = "ASP-DOWN"
    INACTIVE = "ASP-INACTIVE"
    ACTIVE = "ASP-ACTIVE"


class AsState(enum.StrEnum):
    """Application Server state (RFC 4666 §4.3.2)."""

    DOWN = "AS-DOWN"
    INACTIVE = "AS-INACTIVE"
    ACTIVE = "AS-ACTIVE"
    PENDING = "AS-PENDING"


class AspEvent(enum.StrEnum):
    """What an ASP's state machine reacts to (RFC 4666 §4.3.1): a message received, by its §3
    name, or a local event."""

    # ASPSM / ASPTM requests, received by the server (§3.5, §3.7)
    ASP_UP = "ASP Up"
    ASP_DOWN = "ASP Down"
    ASP_ACTIVE = "ASP Active"
    ASP_INACTIVE = "ASP Inactive"
    # their acknowledgements, received by the client
    ASP_UP_ACK = "ASP Up Ack"
    ASP_DOWN_ACK = "ASP Down Ack"
    ASP_ACTIVE_ACK = "ASP Active Ack"
    ASP_INACTIVE_ACK = "ASP Inactive Ack"
    # transfer (§3.3), management (§3.8), ASPSM heartbeat (§3.5.5), SSNM (§3.4), RKM (§3.6)
    DATA = "DATA"
    ERR = "ERR"
    NTFY = "NTFY"
    BEAT = "BEAT"
    BEAT_ACK = "BEAT Ack"
    DAUD = "DAUD"
    DUNA = "DUNA"
    DAVA = "DAVA"
    SCON = "SCON"
    DUPU = "DUPU"
    DRST = "DRST"
    REG_REQ = "REG REQ"
    DEREG_REQ = "DEREG REQ"
    REG_RSP = "REG RSP"
    DEREG_RSP = "DEREG RSP"
    # local events (§4.3.1 figure 3, §4.3.4.3, §1.6.2 layer management)
    ASSOCIATION_LOST = "SCTP CDI"  # the association went (communication lost / restart)
    M_ASP_DOWN_REQ = "M-ASP_DOWN.req"  # we take the ASP down (shutdown, unanswered ASP Down)
    ALTERNATE_ASP_ACTIVE = "Alternate ASP Active"  # override: another ASP took the traffic


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    """Bytes to send on an association; stream 0 for management, 1.. for DATA (SCTP only)."""

    assoc_id: int
    stream: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    """MTP-TRANSFER indication for the user part (SCCP), and the association it came on."""

    xfer: MtpTransfer
    assoc_id: int


@dataclass(frozen=True, slots=True)
class CloseAssociation:
    """The adapter must close this association (e.g. heartbeat timeout)."""

    assoc_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class AspStateChanged:
    """The ASP state of an association changed."""

    assoc_id: int
    old: AspState
    new: AspState


@dataclass(frozen=True, slots=True)
class AsStateChanged:
    """The state of the Application Server we serve changed (server role)."""

    routing_context: int | None
    old: AsState
    new: AsState


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message we could not send or did not accept; for the log."""

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OpcRefused:
    """DATA refused with ERR: its OPC is bound to other addresses than its peer's."""

    assoc_id: int
    peer: str | None
    opc: int


@dataclass(frozen=True, slots=True)
class MtpStatus:
    """MTP-PAUSE / MTP-RESUME / MTP-STATUS indication from SSNM (RFC 4666 §1.4.2.2, §3.4)."""

    kind: Literal["pause", "resume", "status"]
    affected: tuple[int, ...]
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class PeerNotify:
    """A Notify received from the peer (§3.8.2): Status Type and Status Information."""

    assoc_id: int
    status_type: int
    status_info: int
    asp_identifier: int | None = None


M3uaEvent = (
    CloseAssociation
    | AspStateChanged
    | AsStateChanged
    | Dropped
    | OpcRefused
    | MtpStatus
    | PeerNotify
)
"""What the layer reports besides the messages it carries: for the transport and the log."""

M3uaOutput = Transmit | Deliver | M3uaEvent
"""Everything :class:`M3uaLayer` returns: a closed union, dispatched with ``match``."""

_MT = MessageType

# The event each received message type is (RFC 4666 §3.1.2 message classes and types).
_EVENT_OF: dict[int, AspEvent] = {
    _MT.ASPUP: AspEvent.ASP_UP,
    _MT.ASPDN: AspEvent.ASP_DOWN,
    _MT.ASPAC: AspEvent.ASP_ACTIVE,
    _MT.ASPIA: AspEvent.ASP_INACTIVE,
    _MT.ASPUP_ACK: AspEvent.ASP_UP_ACK,
    _MT.ASPDN_ACK: AspEvent.ASP_DOWN_ACK,
    _MT.ASPAC_ACK: AspEvent.ASP_ACTIVE_ACK,
    _MT.ASPIA_ACK: AspEvent.ASP_INACTIVE_ACK,
    _MT.DATA: AspEvent.DATA,
    _MT.ERR: AspEvent.ERR,
    _MT.NTFY: AspEvent.NTFY,
    _MT.BEAT: AspEvent.BEAT,
    _MT.BEAT_ACK: AspEvent.BEAT_ACK,
    _MT.DAUD: AspEvent.DAUD,
    _MT.DUNA: AspEvent.DUNA,
    _MT.DAVA: AspEvent.DAVA,
    _MT.SCON: AspEvent.SCON,
    _MT.DUPU: AspEvent.DUPU,
    _MT.DRST: AspEvent.DRST,
    _MT.REG_REQ: AspEvent.REG_REQ,
    _MT.DEREG_REQ: AspEvent.DEREG_REQ,
    _MT.REG_RSP: AspEvent.REG_RSP,
    _MT.DEREG_RSP: AspEvent.DEREG_RSP,
}

_TRAFFIC_MODES = {
    "override": TrafficMode.OVERRIDE,
    "loadshare": TrafficMode.LOADSHARE,
    "broadcast": TrafficMode.BROADCAST,
}
_AS_NOTIFY = {
    AsState.INACTIVE: AsStateChange.AS_INACTIVE,
    AsState.ACTIVE: AsStateChange.AS_ACTIVE,
    AsState.PENDING: AsStateChange.AS_PENDING,
}


@dataclass(slots=True)
class _Asp:
    """What we know about the ASP at the far end of one association (or, client role, us)."""

    assoc_id: int
    peer: str | None = None  # the peer's address as the transport reported it (canonical)
    state: AspState = AspState.DOWN
    asp_identifier: int | None = None
    activated: int = 0  # order of activation, for override (the newest wins)
    pending: MessageType | None = None  # client: the ASPSM/ASPTM request awaiting its Ack
    retries: int = 0
    beat_data: bytes | None = None  # our outstanding BEAT
    last_rx: float = 0.0  # when the peer last sent anything: BEAT only once it has gone quiet
    learned: int = 0  # point codes whose answers this association carries (bounded)
    unavailable: list[AffectedPointCode] = field(default_factory=list)  # DUNA'd destinations


class M3uaLayer:
    """The M3UA layer of the node: ASP/AS state machines, DATA in and out, per association."""

    def __init__(
        self,
        *,
        role: Literal["client", "server"],
        local_pc: int,
        routing_context: int | None,
        network_indicator: int = 2,
        traffic_mode: Literal["override", "loadshare", "broadcast"] = "loadshare",
        asp_identifier: int | None = None,
        beat_interval: float = 30.0,
        beat_timeout: float = 10.0,
        ack_timeout: float = 2.0,
        recovery_timeout: float = 2.0,
        max_pc: int = 0xFFFFFF,
        aspup_timeout: float = 0.0,
        max_pcs_per_association: int = 64,
        pc_bindings: Iterable[tuple[str, Iterable[tuple[int, int]]]] = (),
    ) -> None:
        if role not in ("client", "server"):
            raise ValueError(f"role must be 'client' or 'server', not {role!r}")
        if traffic_mode not in _TRAFFIC_MODES:
            raise ValueError(f"unknown traffic mode {traffic_mode!r}")
        self.role = role
        self.local_pc = local_pc
        self.routing_context = routing_context
        self.network_indicator = network_indicator
        self.traffic_mode = traffic_mode
        self._tmt = _TRAFFIC_MODES[traffic_mode]
        self.asp_identifier = asp_identifier
        self.beat_interval = beat_interval
        self.beat_timeout = beat_timeout
        self.ack_timeout = ack_timeout
        self.recovery_timeout = recovery_timeout
        # DATA from an OPC above this (the network's point-code format) is refused
        self.max_pc = max_pc
        # server role: close an association whose peer sends no ASP Up within this (0: never)
        self.aspup_timeout = aspup_timeout
        self.max_pcs_per_association = max_pcs_per_association
        self._asps: dict[int, _Asp] = {}
        # Point code -> the associations its answers go back over: answers to a switch go back
        # over an association that reaches it, not to whichever ASP the SLS picks (several
        # switches, with different point codes, may be ASPs of our AS at once). A point code
        # belongs to the association it was first seen on while that one stays up: a peer that
        # sends one DATA with another's OPC learns nothing and steals no answers. Bound point
        # codes are never learned: their addresses come from ``pc_bindings``.
        self._reaches: dict[int, set[int]] = {}
        # (low, high, peer address): the point codes DATA may come from, and answers go to,
        # only over associations from that address
        self._bindings: tuple[tuple[int, int, str], ...] = tuple(
            (lo, hi, canonical_address(address))
            for address, ranges in pc_bindings
            for lo, hi in ranges
        )
        self._bound_addresses = frozenset(a for _lo, _hi, a in self._bindings)
        self._timers = Timers()
        self._as_state = AsState.DOWN
        self._registered: set[int] = set()  # RCs handed out by REG REQ (server)
        self._next_rc = 1
        self._activations = 0
        self._beat_seq = 0
        self._pending_queue: list[MtpTransfer] = []
        self._stopping = False
        self._fsm = SERVER_ASP_FSM if role == "server" else CLIENT_ASP_FSM
        self._data_states = self._fsm.states(AspEvent.DATA)  # DATA's row, on its fast path

    # -- queries -----------------------------------------------------------------------------

    def asp_state(self, assoc_id: int) -> AspState:
        asp = self._asps.get(assoc_id)
        return asp.state if asp is not None else AspState.DOWN

    @property
    def as_state(self) -> AsState:
        """State of the Application Server we serve (server role; client role tracks none)."""
        return self._as_state

    @property
    def is_active(self) -> bool:
        """Whether any ASP is active for our routing context, i.e. DATA can leave."""
        return any(a.state is AspState.ACTIVE for a in self._asps.values())

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    # -- transport events --------------------------------------------------------------------

    def association_up(
        self, assoc_id: int, now: float, peer: str | None = None
    ) -> list[M3uaOutput]:
        """The transport connected, to the host ``peer`` (an IP address; None: unknown, an
        in-process peer); the client starts the ASP Up procedure (§4.3.4.1)."""
        out: list[M3uaOutput] = []
        if assoc_id in self._asps:
            out += self._drop_asp(assoc_id, now)
        asp = _Asp(
            assoc_id, peer=canonical_address(peer) if peer is not None else None, last_rx=now
        )
        self._asps[assoc_id] = asp
        if self.beat_interval > 0:
            self._timers.start(("beat", assoc_id), now, self.beat_interval)
        if self.role == "server" and self.aspup_timeout > 0:
            self._timers.start(("aspup", assoc_id), now, self.aspup_timeout)
        if self.role == "client" and not self._stopping:
            self._client_request(asp, _MT.ASPUP, now, out)
        return out

    def association_down(self, assoc_id: int, now: float) -> list[M3uaOutput]:
        """The transport was lost or closed: the ASP is ASP-DOWN (§4.3.1, SCTP CDI)."""
        return self._drop_asp(assoc_id, now)

    # -- received messages -------------------------------------------------------------------

    def receive(self, assoc_id: int, data: bytes, now: float, stream: int = 0) -> list[M3uaOutput]:
        """One whole M3UA message received on ``assoc_id``."""
        asp = self._asps.get(assoc_id)
        if asp is None:
            return [Dropped("message on an unknown association", f"assoc={assoc_id}")]
        asp.last_rx = now
        out: list[M3uaOutput] = []
        try:
            if data[2:4] == b"\x01\x01":  # DATA: the hot path skips the generic decoder
                self._on_data(asp, data, out)
                return out
            if stream != 0 and len(data) >= 4 and data[2] != 1:
                # RFC 4666 §3.8.1 / §4.3.4: management and ASP maintenance travel on stream 0.
                raise M3uaDecodeError(
                    2,
                    f"class {data[2]} message on stream {stream}",
                    ErrorCode.INVALID_STREAM_IDENTIFIER,
                )
            msg = decode(data)
            event = _EVENT_OF.get(msg.msg_type)
            if event is None:
                raise M3uaDecodeError(
                    3, f"message type {msg.msg_type:#06x}", ErrorCode.UNSUPPORTED_MESSAGE_TYPE
                )
            action = self._fsm.lookup(asp.state, event).action
            if action is None:  # DATA, whose fast path is above, and the local events
                raise IllegalEvent(self._fsm.name, asp.state, event)
            action(self, asp, msg, data, now, out)
        except IllegalEvent as e:  # §4.5: no row for this message in the ASP's state
            out += self._error(asp, data, ErrorCode.UNEXPECTED_MESSAGE, str(e))
        except M3uaDecodeError as e:
            out += self._error(asp, data, e.error_code, e.reason)
        except CodecError as e:
            out += self._error(asp, data, ErrorCode.PROTOCOL_ERROR, str(e))
        except Exception as e:  # noqa: BLE001 - the peer's bytes must never crash the node
            out.append(Dropped("internal error handling message", f"{type(e).__name__}: {e}"))
        return out

    def _error(
        self,
        asp: _Asp,
        data: bytes,
        code: ErrorCode,
        reason: str,
        routing_context: int | None = None,
        report: M3uaEvent | None = None,
    ) -> list[M3uaOutput]:
        """ERR for a message we refuse (§3.8.1); an ERR itself is never answered (no loops).
        ``report``: the event that says so, instead of a :class:`Dropped` naming the code."""
        dropped = report or Dropped(f"refused: {code.name}", f"assoc={asp.assoc_id} {reason}")
        if data[2:4] == b"\x00\x00":
            return [dropped]
        err = make(
            _MT.ERR,
            error_code=code,
            routing_context=routing_context,
            diagnostic_information=bytes(data[:DIAGNOSTIC_OCTETS]),
        )
        return [Transmit(asp.assoc_id, 0, encode(err)), dropped]

    def _send(self, asp: _Asp, msg: M3uaMessage, out: list[M3uaOutput]) -> None:
        out.append(Transmit(asp.assoc_id, 0, encode(msg)))

    def _rc_ok(self, rc: int) -> bool:
        return rc == self.routing_context or rc in self._registered

    @property
    def _our_rc(self) -> int | None:
        if self.routing_context is not None:
            return self.routing_context
        return min(self._registered) if self._registered else None

    def _bound_to(self, pc: int) -> frozenset[str]:
        """The peer addresses ``pc`` is bound to (empty: none binds it)."""
        return frozenset(a for lo, hi, a in self._bindings if lo <= pc <= hi)

    def _on_data(self, asp: _Asp, data: bytes, out: list[M3uaOutput]) -> None:
        d = decode_data(data)
        if asp.state not in self._data_states:
            raise IllegalEvent(self._fsm.name, asp.state, AspEvent.DATA)
        rc = d.routing_context
        if rc is not None and not self._rc_ok(rc):
            out += self._error(
                asp,
                data,
                ErrorCode.INVALID_ROUTING_CONTEXT,
                f"DATA for routing context {rc}",
                routing_context=rc,
            )
            return
        opc = d.xfer.opc
        if opc > self.max_pc or opc == self.local_pc:
            out += self._error(
                asp,
                data,
                ErrorCode.INVALID_PARAMETER_VALUE,
                f"OPC {opc} is {'ours' if opc == self.local_pc else 'out of range'}",
            )
            return
        if self._bindings and (bound := self._bound_to(opc)):
            if asp.peer not in bound:
                # §3.8.1 "Invalid Parameter Value": the DATA is well formed and legal in
                # ASP-ACTIVE (not "Unexpected Message"), and "Refused - Management Blocking" is
                # defined for ASP Up / ASP Active only; what we refuse is the value of the OPC
                # field from this association, as for an OPC out of range or our own above.
                out += self._error(
                    asp,
                    data,
                    ErrorCode.INVALID_PARAMETER_VALUE,
                    f"OPC {opc} is bound to other peers",
                    report=OpcRefused(asp.assoc_id, asp.peer, opc),
                )
                return
        elif opc not in self._reaches and asp.learned < self.max_pcs_per_association:
            self._reaches[opc] = {asp.assoc_id}
            asp.learned += 1
        out.append(Deliver(d.xfer, asp.assoc_id))

    # -- ASPSM / ASPTM, server role (§4.3.4) ---------------------------------------------------

    def _transit(self, asp: _Asp, event: AspEvent, out: list[M3uaOutput]) -> None:
        """Move ``asp`` to where ``event`` leads from its state (the row's ``next``)."""
        old = asp.state
        new = self._fsm.lookup(old, event).next
        if new is not None and new is not old:
            asp.state = new
            if new is AspState.ACTIVE:
                self._activations += 1
                asp.activated = self._activations
            out.append(AspStateChanged(asp.assoc_id, old, new))

    def _on_aspup(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        was_active = asp.state is AspState.ACTIVE
        if msg.asp_identifier is not None:
            asp.asp_identifier = msg.asp_identifier
        self._send(asp, make(_MT.ASPUP_ACK, asp_identifier=self.asp_identifier), out)
        if was_active:
            # §4.3.4.1: ASP Up from an active ASP is acknowledged, flagged, and deactivates it.
            out += self._error(asp, data, ErrorCode.UNEXPECTED_MESSAGE, "ASPUP in ASP-ACTIVE")
        self._transit(asp, AspEvent.ASP_UP, out)
        if not self._update_as(now, out) and self._as_state in _AS_NOTIFY:
            self._notify(asp, StatusType.AS_STATE_CHANGE, _AS_NOTIFY[self._as_state], out)

    def _on_aspdn(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        self._send(asp, make(_MT.ASPDN_ACK), out)
        self._transit(asp, AspEvent.ASP_DOWN, out)
        self._update_as(now, out)

    def _on_aspac(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        tmt = msg.traffic_mode
        if tmt is not None and tmt != self._tmt:
            raise M3uaDecodeError(
                8,
                f"traffic mode {tmt}, the AS uses {self._tmt.name}",
                ErrorCode.UNSUPPORTED_TRAFFIC_MODE_TYPE,
            )
        rcs = msg.routing_contexts
        for rc in rcs or ():
            if not self._rc_ok(rc):
                out += self._error(
                    asp,
                    data,
                    ErrorCode.INVALID_ROUTING_CONTEXT,
                    f"ASPAC for routing context {rc}",
                    routing_context=rc,
                )
                return
        self._send(
            asp,
            make(
                _MT.ASPAC_ACK, traffic_mode=self._tmt, routing_context=rcs if rcs else self._our_rc
            ),
            out,
        )
        if asp.state is AspState.ACTIVE:
            return
        if self._tmt is TrafficMode.OVERRIDE:
            # §4.3.4.3: in override the newcomer takes over; the old active ASP is told so.
            for other in self._asps.values():
                if other is not asp and other.state is AspState.ACTIVE:
                    self._transit(other, AspEvent.ALTERNATE_ASP_ACTIVE, out)
                    self._notify(
                        other,
                        StatusType.OTHER,
                        OtherStatus.ALTERNATE_ASP_ACTIVE,
                        out,
                        asp_identifier=asp.asp_identifier,
                    )
        self._transit(asp, AspEvent.ASP_ACTIVE, out)
        self._update_as(now, out)

    def _on_aspia(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        for rc in msg.routing_contexts or ():
            if not self._rc_ok(rc):
                out += self._error(
                    asp,
                    data,
                    ErrorCode.INVALID_ROUTING_CONTEXT,
                    f"ASPIA for routing context {rc}",
                    routing_context=rc,
                )
                return
        self._send(
            asp, make(_MT.ASPIA_ACK, routing_context=msg.routing_contexts or self._our_rc), out
        )
        self._transit(asp, AspEvent.ASP_INACTIVE, out)
        self._update_as(now, out)

    # -- ASPSM / ASPTM acknowledgements, client role -----------------------------------------

    def _client_request(
        self, asp: _Asp, what: MessageType, now: float, out: list[M3uaOutput]
    ) -> None:
        """Send ASPUP/ASPAC/ASPIA/ASPDN and arm T(ack) for its acknowledgement."""
        if asp.pending != what:
            asp.retries = 0
        asp.pending = what
        if what == _MT.ASPUP:
            msg = make(_MT.ASPUP, asp_identifier=self.asp_identifier)
        elif what == _MT.ASPAC:
            msg = make(_MT.ASPAC, traffic_mode=self._tmt, routing_context=self.routing_context)
        elif what == _MT.ASPIA:
            msg = make(_MT.ASPIA, routing_context=self.routing_context)
        else:
            msg = make(_MT.ASPDN)
        self._send(asp, msg, out)
        backoff = min(
            max(self.ack_timeout, MAX_BACKOFF), self.ack_timeout * (2 ** min(asp.retries, 10))
        )
        self._timers.start(("ack", asp.assoc_id), now, backoff)

    def _client_done(self, asp: _Asp) -> None:
        asp.pending = None
        asp.retries = 0
        self._timers.cancel(("ack", asp.assoc_id))

    def _on_aspup_ack(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        if asp.pending != _MT.ASPUP:
            return  # a duplicate or late Ack changes nothing (§4.3.4.1)
        self._client_done(asp)
        self._transit(asp, AspEvent.ASP_UP_ACK, out)
        if self._stopping:
            self._client_request(asp, _MT.ASPDN, now, out)
        else:
            self._client_request(asp, _MT.ASPAC, now, out)

    def _on_aspac_ack(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        if asp.pending != _MT.ASPAC:
            return
        self._client_done(asp)
        self._transit(asp, AspEvent.ASP_ACTIVE_ACK, out)

    def _on_aspia_ack(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        if asp.pending != _MT.ASPIA:
            return
        self._client_done(asp)
        self._transit(asp, AspEvent.ASP_INACTIVE_ACK, out)
        if self._stopping:
            self._client_request(asp, _MT.ASPDN, now, out)

    def _on_aspdn_ack(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        solicited = asp.pending == _MT.ASPDN
        self._client_done(asp)
        self._transit(asp, AspEvent.ASP_DOWN_ACK, out)
        if not solicited and not self._stopping:
            # §4.3.4.2: an unsolicited ASP Down Ack (e.g. management lockout): try again later.
            asp.pending = _MT.ASPUP
            asp.retries = 1
            self._timers.start(("ack", asp.assoc_id), now, self.ack_timeout)

    def _on_ack_timer(self, assoc_id: int, now: float, out: list[M3uaOutput]) -> None:
        asp = self._asps.get(assoc_id)
        if asp is None or asp.pending is None:
            return
        what = asp.pending
        if self._stopping and what in (_MT.ASPIA, _MT.ASPDN):
            if what == _MT.ASPIA:
                self._client_request(asp, _MT.ASPDN, now, out)
            else:  # no answer to our ASP Down: consider ourselves down anyway
                self._client_done(asp)
                self._transit(asp, AspEvent.M_ASP_DOWN_REQ, out)
            return
        out.append(Dropped(f"no acknowledgement of {what.name}, retrying", f"assoc={assoc_id}"))
        asp.retries += 1
        self._client_request(asp, what, now, out)

    # -- management, both roles ----------------------------------------------------------------

    def _on_beat(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        self._send(asp, make(_MT.BEAT_ACK, heartbeat_data=msg.heartbeat_data), out)

    def _on_beat_ack(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        if asp.beat_data is not None and msg.heartbeat_data == asp.beat_data:
            asp.beat_data = None
            self._timers.cancel(("beat_ack", asp.assoc_id))
        else:
            out.append(Dropped("BEAT Ack with unexpected Heartbeat Data", f"assoc={asp.assoc_id}"))

    def _on_beat_timer(self, assoc_id: int, now: float, out: list[M3uaOutput]) -> None:
        asp = self._asps.get(assoc_id)
        if asp is None:
            return
        quiet_since = asp.last_rx
        if now - quiet_since < self.beat_interval:
            # traffic proves the peer alive: BEAT only an idle association (README)
            self._timers.start(("beat", assoc_id), now, quiet_since + self.beat_interval - now)
            return
        self._beat_seq = (self._beat_seq + 1) & 0xFFFFFFFF
        asp.beat_data = struct.pack("!II", assoc_id & 0xFFFFFFFF, self._beat_seq)
        self._send(asp, make(_MT.BEAT, heartbeat_data=asp.beat_data), out)
        if not self._timers.running(("beat_ack", assoc_id)):
            self._timers.start(("beat_ack", assoc_id), now, self.beat_timeout)
        self._timers.start(("beat", assoc_id), now, self.beat_interval)

    def _on_err(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        code = msg.error_code
        try:
            name = ErrorCode(code).name if code is not None else "?"
        except ValueError:
            name = f"0x{code:02x}"
        out.append(
            Dropped(
                f"ERR from peer: {name}",
                f"assoc={asp.assoc_id} diagnostic={(msg.diagnostic_information or b'').hex()}",
            )
        )

    def _on_ntfy(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        st = msg.status or (0, 0)
        out.append(PeerNotify(asp.assoc_id, st[0], st[1], msg.asp_identifier))
        if self.role != "client":
            return
        if (
            st == (StatusType.OTHER, OtherStatus.ALTERNATE_ASP_ACTIVE)
            and asp.state is AspState.ACTIVE
        ):
            # §4.3.4.3 override: another ASP took over the traffic; we are standby now.
            self._transit(asp, AspEvent.ALTERNATE_ASP_ACTIVE, out)
        elif (
            st == (StatusType.AS_STATE_CHANGE, AsStateChange.AS_PENDING)
            and asp.state is AspState.INACTIVE
            and asp.pending is None
            and not self._stopping
        ):
            # §4.3.4.5: the active ASP failed and T(r) runs; a standby ASP steps in.
            self._client_request(asp, _MT.ASPAC, now, out)

    def _notify(
        self,
        asp: _Asp,
        status_type: int,
        info: int,
        out: list[M3uaOutput],
        asp_identifier: int | None = None,
    ) -> None:
        self._send(
            asp,
            make(
                _MT.NTFY,
                status=(status_type, info),
                asp_identifier=asp_identifier,
                routing_context=self._our_rc,
            ),
            out,
        )

    # -- SSNM (§3.4, §4.5) ---------------------------------------------------------------------

    def _on_daud(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        rcs = msg.routing_contexts
        for rc in rcs or ():
            if not self._rc_ok(rc):
                out += self._error(
                    asp,
                    data,
                    ErrorCode.INVALID_ROUTING_CONTEXT,
                    f"DAUD for routing context {rc}",
                    routing_context=rc,
                )
                return
        apcs = msg.affected_point_codes
        ours = any(a.covers(self.local_pc) for a in apcs)
        others = [a for a in apcs if not a.covers(self.local_pc)]
        answer_rc = rcs[0] if rcs else self._our_rc
        if ours:
            self._send(
                asp,
                make(_MT.DAVA, routing_context=answer_rc, affected_point_codes=[self.local_pc]),
                out,
            )
        if others:
            self._send(
                asp, make(_MT.DUNA, routing_context=answer_rc, affected_point_codes=others), out
            )

    def _on_ssnm(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        apcs = msg.affected_point_codes
        pcs = tuple(a.pc for a in apcs)
        mt = msg.msg_type
        if mt == _MT.DUNA:
            asp.unavailable += [a for a in apcs if a not in asp.unavailable]
            out.append(MtpStatus("pause", pcs))
        elif mt == _MT.DAVA:
            asp.unavailable = [u for u in asp.unavailable if not any(a.covers(u.pc) for a in apcs)]
            out.append(MtpStatus("resume", pcs))
        elif mt == _MT.DUPU:
            uc = msg.user_cause or (0, 0)
            out.append(MtpStatus("status", pcs, cause=uc[0]))
        elif mt == _MT.SCON:
            out.append(MtpStatus("status", pcs, cause=msg.u32(0x0205)))
        else:  # DRST: restricted is still available for our purposes (§3.4.6)
            out.append(MtpStatus("status", pcs))

    # -- RKM (§3.6, §4.4) ----------------------------------------------------------------------

    def _on_reg_req(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        results = []
        for rk in msg.routing_keys:
            status = RegistrationStatus.SUCCESSFULLY_REGISTERED
            rc = 0
            if rk.dpc != self.local_pc:
                status = RegistrationStatus.INVALID_DPC
            elif rk.routing_context is not None and not self._rc_ok(rk.routing_context):
                status = RegistrationStatus.ROUTING_KEY_NOT_PROVISIONED
            elif rk.traffic_mode is not None and rk.traffic_mode != self._tmt:
                status = RegistrationStatus.UNSUPPORTED_TRAFFIC_HANDLING_MODE
            elif self.routing_context is not None:
                rc = self.routing_context
            else:
                # A single-AS node without a configured RC hands out one RC for its one AS.
                rc = self._our_rc or self._next_rc
                self._registered.add(rc)
            results.append(RegistrationResult(rk.local_rk_identifier, status, rc))
        self._send(asp, make(_MT.REG_RSP, registration_results=results), out)

    def _on_dereg_req(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        results = []
        for rc in msg.routing_contexts or ():
            if not self._rc_ok(rc):
                status = DeregistrationStatus.INVALID_ROUTING_CONTEXT
            elif asp.state is AspState.ACTIVE:
                status = DeregistrationStatus.ASP_CURRENTLY_ACTIVE
            elif rc in self._registered:
                status = DeregistrationStatus.SUCCESSFULLY_DEREGISTERED
                if not any(a.state is AspState.ACTIVE for a in self._asps.values()):
                    self._registered.discard(rc)
            else:  # statically configured: not ours to remove
                status = DeregistrationStatus.PERMISSION_DENIED
            results.append(DeregistrationResult(rc, status))
        self._send(asp, make(_MT.DEREG_RSP, deregistration_results=results), out)

    def _on_rkm_rsp(
        self, asp: _Asp, msg: M3uaMessage, data: bytes, now: float, out: list[M3uaOutput]
    ) -> None:
        out.append(
            Dropped(f"{msg.name} ignored: we register no routing keys", f"assoc={asp.assoc_id}")
        )

    # -- AS state (server role, §4.3.2) --------------------------------------------------------

    def _update_as(self, now: float, out: list[M3uaOutput], recovery_expired: bool = False) -> bool:
        """Recompute the AS state from the ASP states; announce a change. True if it changed."""
        if self.role != "server":
            return False
        old = self._as_state
        active = any(a.state is AspState.ACTIVE for a in self._asps.values())
        up = any(a.state is not AspState.DOWN for a in self._asps.values())
        if active:
            new = AsState.ACTIVE
        elif (
            old in (AsState.ACTIVE, AsState.PENDING) and not recovery_expired and not self._stopping
        ):
            new = AsState.PENDING  # T(r) gives an alternate ASP the chance to take over
        elif up:
            new = AsState.INACTIVE
        else:
            new = AsState.DOWN
        if new is old:
            return False
        self._as_state = new
        out.append(AsStateChanged(self.routing_context, old, new))
        if new is AsState.PENDING:
            self._timers.start(("T_r",), now, self.recovery_timeout)
        else:
            self._timers.cancel(("T_r",))
        info = _AS_NOTIFY.get(new)
        if info is not None:
            for a in self._asps.values():
                if a.state is not AspState.DOWN:
                    self._notify(a, StatusType.AS_STATE_CHANGE, info, out)
        if new is AsState.ACTIVE and self._pending_queue:
            queued, self._pending_queue = self._pending_queue, []
            for x in queued:
                out += self.send_transfer(x, now)
        elif new in (AsState.INACTIVE, AsState.DOWN) and self._pending_queue:
            out.append(
                Dropped(
                    "AS not recovered within T(r)",
                    f"{len(self._pending_queue)} queued DATA discarded",
                )
            )
            self._pending_queue = []
        return True

    # -- sending -------------------------------------------------------------------------------

    def send_transfer(self, xfer: MtpTransfer, now: float) -> list[Transmit | Dropped]:
        """MTP-TRANSFER request: DATA to the ASP(s) the traffic mode picks; never raises."""
        active = [a for a in self._asps.values() if a.state is AspState.ACTIVE]
        if self.role == "client":
            active = [a for a in active if not any(u.covers(xfer.dpc) for u in a.unavailable)]
        bound = self._bound_to(xfer.dpc) if self._bindings else frozenset()
        if bound:
            active = [a for a in active if a.peer in bound]
        if not active:
            if self._as_state is AsState.PENDING and len(self._pending_queue) < MAX_PENDING_QUEUE:
                self._pending_queue.append(xfer)
                return []
            return [
                Dropped(
                    "no ASP active" + (" from the addresses bound to the DPC" if bound else ""),
                    f"dpc={xfer.dpc} sls={xfer.sls}",
                )
            ]
        try:
            data = encode_data(xfer, self._our_rc)
        except CodecError as e:
            return [Dropped("cannot encode DATA", str(e))]
        stream = 1 + xfer.sls % DATA_STREAMS
        via = self._reaches.get(xfer.dpc)
        if via:
            reaching = [a for a in active if a.assoc_id in via]
            if reaching:
                active = reaching
        if self._tmt is TrafficMode.BROADCAST:
            return [Transmit(a.assoc_id, stream, data) for a in active]
        if self._tmt is TrafficMode.OVERRIDE:
            target = max(active, key=lambda a: a.activated)
        else:
            active.sort(key=lambda a: a.assoc_id)
            target = active[xfer.sls % len(active)]
        return [Transmit(target.assoc_id, stream, data)]

    def shutdown(self, now: float) -> list[M3uaOutput]:
        """Clean stop: ASPIA then ASPDN (client), unsolicited ASPDN Ack to every ASP (server)."""
        out: list[M3uaOutput] = []
        self._stopping = True
        for asp in list(self._asps.values()):
            self._timers.cancel(("beat", asp.assoc_id))
            self._timers.cancel(("beat_ack", asp.assoc_id))
            if self.role == "client":
                if asp.state is AspState.ACTIVE:
                    self._client_request(asp, _MT.ASPIA, now, out)
                elif asp.state is AspState.INACTIVE:
                    self._client_request(asp, _MT.ASPDN, now, out)
                else:
                    self._client_done(asp)
            elif asp.state is not AspState.DOWN:
                # §4.3.4.2: the SGP may send an unsolicited ASP Down Ack; the ASP is down.
                self._send(asp, make(_MT.ASPDN_ACK, info_string="shutdown"), out)
                self._transit(asp, AspEvent.M_ASP_DOWN_REQ, out)
        self._update_as(now, out)
        return out

    # -- timers --------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> list[M3uaOutput]:
        out: list[M3uaOutput] = []
        for name in self._timers.expired(now):
            assert isinstance(name, tuple)
            kind = name[0]
            if kind == "beat":
                self._on_beat_timer(name[1], now, out)
            elif kind == "beat_ack":
                out.append(CloseAssociation(name[1], "M3UA heartbeat timeout (no BEAT Ack)"))
                out += self._drop_asp(name[1], now)
            elif kind == "ack":
                self._on_ack_timer(name[1], now, out)
            elif kind == "T_r":
                self._update_as(now, out, recovery_expired=True)
            elif kind == "aspup":
                self._on_aspup_timer(name[1], now, out)
        return out

    def _on_aspup_timer(self, assoc_id: int, now: float, out: list[M3uaOutput]) -> None:
        """``aspup_timeout`` after the connection: one that has not reached ASP-ACTIVE is
        closed (a host holding connections in ASP-DOWN or ASP-INACTIVE would otherwise keep
        the places of the real ASPs), unless it comes from an address of ``pc_bindings``: a
        configured peer may wait there as the standby of an override AS (§4.3.4.3)."""
        asp = self._asps.get(assoc_id)
        if asp is None or asp.activated:
            return
        if asp.state is AspState.DOWN:
            why = f"no ASP Up within {self.aspup_timeout} s"
        elif asp.peer is not None and asp.peer in self._bound_addresses:
            return
        else:
            why = f"not ASP-ACTIVE within {self.aspup_timeout} s"
        out.append(CloseAssociation(assoc_id, why))
        out += self._drop_asp(assoc_id, now)

    def _drop_asp(self, assoc_id: int, now: float) -> list[M3uaOutput]:
        out: list[M3uaOutput] = []
        asp = self._asps.pop(assoc_id, None)
        if asp is None:
            return out
        for pc in [pc for pc, ids in self._reaches.items() if assoc_id in ids]:
            self._reaches[pc].discard(assoc_id)
            if not self._reaches[pc]:
                del self._reaches[pc]
        names: tuple[Hashable, ...] = (
            ("beat", assoc_id),
            ("beat_ack", assoc_id),
            ("ack", assoc_id),
            ("aspup", assoc_id),
        )
        for n in names:
            self._timers.cancel(n)
        self._transit(asp, AspEvent.ASSOCIATION_LOST, out)
        self._update_as(now, out)
        return out


def canonical_address(host: str) -> str:
    """``host`` as bindings compare it: an IP address in its canonical text, without an IPv6
    zone, and an IPv4-mapped IPv6 address (what a dual-stack listener reports) as the IPv4 one;
    anything else as it is."""
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


_Action = Callable[[M3uaLayer, _Asp, M3uaMessage, bytes, float, list[M3uaOutput]], None]
"""A received message's action: (layer, its ASP, the message decoded, its octets, now, out)."""

_D, _I, _A = AspState.DOWN, AspState.INACTIVE, AspState.ACTIVE
_ANY = (_D, _I, _A)
_UP = (_I, _A)
_L = M3uaLayer
_Row = Transition[AspState, _Action | None]


def _rows(
    states: tuple[AspState, ...], action: _Action, *events: AspEvent
) -> dict[tuple[AspState, AspEvent], _Row]:
    """``events`` legal in ``states``, each handled by ``action``; the ASP state unchanged."""
    return {(s, e): Transition(action) for e in events for s in states}


# Both roles: management, heartbeat, SSNM and RKM messages change no ASP state (§4.3.4.6,
# §4.5, §4.4); DATA only flows to and from an active ASP (§4.3.4.3); the local events.
_COMMON: dict[tuple[AspState, AspEvent], _Row] = {
    **_rows(_ANY, _L._on_err, AspEvent.ERR),
    **_rows(_ANY, _L._on_ntfy, AspEvent.NTFY),
    **_rows(_ANY, _L._on_beat, AspEvent.BEAT),
    **_rows(_ANY, _L._on_beat_ack, AspEvent.BEAT_ACK),
    (_A, AspEvent.DATA): Transition(None),  # receive() takes DATA on its fast path
    **_rows(_UP, _L._on_daud, AspEvent.DAUD),
    **_rows(
        _UP, _L._on_ssnm, AspEvent.DUNA, AspEvent.DAVA, AspEvent.SCON, AspEvent.DUPU, AspEvent.DRST
    ),
    **_rows(_UP, _L._on_reg_req, AspEvent.REG_REQ),
    **_rows(_UP, _L._on_dereg_req, AspEvent.DEREG_REQ),
    **{(s, AspEvent.ASSOCIATION_LOST): Transition(None, _D) for s in _ANY},
    **{(s, AspEvent.M_ASP_DOWN_REQ): Transition(None, _D) for s in _ANY},
    (_A, AspEvent.ALTERNATE_ASP_ACTIVE): Transition(None, _I),
    (_I, AspEvent.ALTERNATE_ASP_ACTIVE): Transition(None, _I),
}

SERVER_ASP_FSM: TransitionTable[AspState, AspEvent, _Action | None] = TransitionTable(
    "M3UA ASP (SGP side)",
    {
        **_COMMON,
        # §4.3.4.1: ASP Up in any state (from ASP-ACTIVE it is flagged, and deactivates)
        **{(s, AspEvent.ASP_UP): Transition(_L._on_aspup, _I) for s in _ANY},
        **{(s, AspEvent.ASP_DOWN): Transition(_L._on_aspdn, _D) for s in _ANY},
        **{(s, AspEvent.ASP_ACTIVE): Transition(_L._on_aspac, _A) for s in _UP},
        **{(s, AspEvent.ASP_INACTIVE): Transition(_L._on_aspia, _I) for s in _UP},
    },
)
"""The ASP state machine as the side that accepts ASPs sees it (RFC 4666 §4.3.1 figure 3)."""

CLIENT_ASP_FSM: TransitionTable[AspState, AspEvent, _Action | None] = TransitionTable(
    "M3UA ASP",
    {
        **_COMMON,
        # The acknowledgements of our requests (§4.3.4.1-4.3.4.4); one we did not ask for
        # changes nothing (the action ignores it), except an unsolicited ASP Down Ack.
        (_D, AspEvent.ASP_UP_ACK): Transition(_L._on_aspup_ack, _I),
        (_I, AspEvent.ASP_UP_ACK): Transition(_L._on_aspup_ack, _I),
        (_A, AspEvent.ASP_UP_ACK): Transition(_L._on_aspup_ack, _A),
        **{(s, AspEvent.ASP_DOWN_ACK): Transition(_L._on_aspdn_ack, _D) for s in _ANY},
        **{(s, AspEvent.ASP_ACTIVE_ACK): Transition(_L._on_aspac_ack, _A) for s in _UP},
        **{(s, AspEvent.ASP_INACTIVE_ACK): Transition(_L._on_aspia_ack, _I) for s in _UP},
        **_rows(_UP, _L._on_rkm_rsp, AspEvent.REG_RSP),
        **_rows(_UP, _L._on_rkm_rsp, AspEvent.DEREG_RSP),
    },
)
"""The ASP state machine as the ASP itself sees it (client role, RFC 4666 §4.3.1)."""
