"""SCCP connectionless control (SCLC) and the SST answer of SCCP management, sans-I/O.

Follows ITU-T Q.714 (05/2001) for the end node this SCP is (one global title, several local
subsystems, usually behind an STP that has already translated the GT):

* §2.2.2 / §2.3 routing of incoming messages to a local subsystem: the MTP routing label
  already names our point code, so a message routed on GT is accepted for any GT and
  delivered by the SSN in its called address; the hop counter is decremented where a GT is
  translated (§2.3.3) and "hop counter violation" returned when it runs out.
* §4.1.1 connectionless procedures: UDT when the user data fits, XUDT with segmentation
  (§4.1.1.2: class 1 in sequence, one SLS, a 24-bit segmentation local reference and the
  remaining-segments count) when it does not; reassembly of incoming segments keyed by
  (calling address, local reference, OPC) under a reassembly timer (T(reass), §4.1.1.3); each
  reassembly is a small state machine, the transition table :data:`REASSEMBLY_FSM` (a segment
  other than a first one for a reassembly not under way is illegal: "segmentation failure").
* §4.2 return procedure: a message that cannot be delivered comes back as UDTS / XUDTS /
  LUDTS to its calling address only if it asked for it (return option); UDTS / XUDTS / LUDTS
  themselves are never answered. A returned message addressed to us goes up as N-NOTICE; a
  request we cannot route locally is returned to our own user the same way.
* §5.3.4.2 subsystem status test: SST for one of our allowed subsystems (or SCMG itself) is
  answered with SSA; for a prohibited or unknown one no answer is sent.

Inputs are MTP-TRANSFER indications, N-UNITDATA requests and ``handle_timer(now)``; outputs
are MTP-TRANSFER requests (down), N-UNITDATA / N-NOTICE indications (up, to the TC-user of
the called SSN) and :class:`SccpLog` lines. Nothing here reads a clock or raises to the caller.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.sccp import (
    SCMG_SSN,
    Ludt,
    Ludts,
    SccpMessage,
    Scmg,
    ScmgFormat,
    Segmentation,
    Udt,
    Udts,
    Xudt,
    Xudts,
    decode,
    decode_scmg,
    encode,
    encode_address,
    encode_scmg,
    salvage_return_info,
)
from scp.core.fsm import IllegalEvent, Transition, TransitionTable
from scp.core.timers import Timers
from scp.primitives import (
    SI_SCCP,
    GlobalTitle,
    MtpTransfer,
    NNotice,
    NUnitdata,
    PointCodeFormat,
    ReturnCause,
    RoutingIndicator,
    SccpAddress,
)

__all__ = [
    "SccpLayer",
    "SccpLog",
    "SccpOutput",
    "ReassemblyState",
    "ReassemblyEvent",
    "REASSEMBLY_FSM",
    "MAX_REASSEMBLED_DATA",
    "MAX_SEGMENTS",
]

MAX_SEGMENTS = 16
"""The remaining-segments field has 4 bits (Q.713 §3.17), so one message has 16 segments."""

MAX_REASSEMBLED_DATA = 3952
"""Largest user data SCCP carries (Q.713 §3.16 long data, Q.714 §4.1.1.2.1)."""

MAX_PENDING_REASSEMBLIES = 1024
"""Concurrent reassemblies kept before new ones get "destination cannot perform reassembly"."""

_T_REASSEMBLY = "T_reass"


@dataclass(frozen=True, slots=True)
class SccpLog:
    """Something worth a log line: a message dropped, returned or not understood.

    ``event`` is one of ``drop`` (discarded, nothing sent), ``return`` (sent back as
    UDTS/XUDTS/LUDTS, or N-NOTICE to our own user), ``decode_error`` (not SCCP we read),
    ``scmg`` (management message noted or left unanswered) and ``internal_error`` (a bug:
    the core caught its own exception rather than raise into the stack).
    """

    event: str
    detail: str


SccpOutput = MtpTransfer | NUnitdata | NNotice | SccpLog
"""Everything :class:`SccpLayer` returns: MTP-TRANSFER requests down, N-UNITDATA / N-NOTICE
indications up, log lines."""

_DataMessage = Udt | Xudt | Ludt
_ServiceMessage = Udts | Xudts | Ludts

# Which service message returns which data message (Q.714 §4.2).
_RETURN_OF: dict[type, type] = {Udt: Udts, Xudt: Xudts, Ludt: Ludts}


class ReassemblyState(enum.StrEnum):
    """Where the reassembly of one segmented message is (Q.714 §4.1.1.3); idle has no entry."""

    IDLE = "idle"
    REASSEMBLING = "reassembling"


class ReassemblyEvent(enum.StrEnum):
    """A segment of the message (by its first-segment indication), or T(reass) expiring."""

    FIRST_SEGMENT = "first segment"
    NEXT_SEGMENT = "subsequent segment"
    T_REASSEMBLY_EXPIRY = "T(reass) expiry"


_Segmented = Xudt | Xudts | Ludt | Ludts
_Key = tuple[bool, SccpAddress, int, int]  # returned?, calling address, local reference, OPC


@dataclass(slots=True)
class _Reassembly:
    """Segments received so far of one segmented XUDT/XUDTS (Q.714 §4.1.1.3)."""

    first: _Segmented
    parts: list[bytes]
    remaining: int
    size: int
    xfer: MtpTransfer


@dataclass(frozen=True, slots=True)
class _Segment:
    """One received segment: the message, its segmentation parameter, its MTP routing label."""

    msg: _Segmented
    seg: Segmentation
    xfer: MtpTransfer


def _describe(a: SccpAddress) -> str:
    parts = [f"ri={a.ri.name}"]
    if a.pc is not None:
        parts.append(f"pc={a.pc}")
    if a.ssn is not None:
        parts.append(f"ssn={a.ssn}")
    if a.gt is not None:
        parts.append(f"gt={a.gt.digits}")
    return " ".join(parts)


class SccpLayer:
    """SCCP connectionless service of one node: one GT, local PC, several local SSNs."""

    def __init__(
        self,
        *,
        local_pc: int,
        global_title: str,
        local_ssns: Iterable[int],
        ni: int = 2,
        default_dpc: int | None = None,
        max_udt_data: int = 200,
        reassembly_timeout: float = 10.0,
        hop_counter: int = 15,
        pcf: PointCodeFormat = PointCodeFormat.ITU,
    ) -> None:
        self.local_pc = local_pc
        self.pcf = pcf  # point codes in addresses and SCMG: two octets (ITU) or three (China)
        self.global_title = global_title
        self.ni = ni
        self.default_dpc = default_dpc
        self.max_udt_data = max_udt_data
        self.reassembly_timeout = reassembly_timeout
        self.hop_counter = hop_counter
        self.own_gt = GlobalTitle(digits=global_title, gti=4, tt=0, np=1, nai=4)
        # Local subsystem -> allowed? (Q.714 §5.3.2): all start allowed.
        self._ssn_allowed: dict[int, bool] = {ssn: True for ssn in local_ssns}
        self._timers = Timers()
        self._reassembly: dict[Hashable, _Reassembly] = {}
        self._sls = 0  # rolling SLS for class 0 (Q.714 §4.1.2: any SLS will do)
        self._local_reference = 0
        # messages we could not route, by return cause (Q.713 §3.12), whether returned (UDTS)
        # or dropped for want of the return option: the metrics export it
        self.returns: Counter[str] = Counter()

    # -- management ------------------------------------------------------------------------

    def set_subsystem_state(self, ssn: int, allowed: bool) -> None:
        """Mark a local subsystem allowed or prohibited (N-STATE from the local user)."""
        self._ssn_allowed[ssn] = allowed

    def subsystem_allowed(self, ssn: int) -> bool:
        """Whether ``ssn`` is a local subsystem currently allowed (unknown ones are not)."""
        return self._ssn_allowed.get(ssn, False)

    # -- timers ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> list[SccpOutput]:
        """Expire reassembly timers: drop the partial message, return it if it asked for it."""
        out: list[SccpOutput] = []
        for name in self._timers.expired(now):
            assert isinstance(name, tuple)
            key: _Key = name[1]
            if key in self._reassembly:
                row = REASSEMBLY_FSM.lookup(_REASSEMBLING, ReassemblyEvent.T_REASSEMBLY_EXPIRY)
                row.action(self, key, None, now, out)
        return out

    # -- MTP-TRANSFER indication (from M3UA) ------------------------------------------------

    def handle_mtp_transfer(self, xfer: MtpTransfer, now: float) -> list[SccpOutput]:
        """One message from the network: route it to a local subsystem, return or drop it."""
        try:
            return self._receive(xfer, now)
        except Exception as exc:  # last line of defence: a core never raises to the stack
            return [SccpLog("internal_error", f"{type(exc).__name__}: {exc}")]

    def _receive(self, xfer: MtpTransfer, now: float) -> list[SccpOutput]:
        if xfer.si != SI_SCCP:
            return [SccpLog("drop", f"service indicator {xfer.si} is not SCCP")]
        if xfer.dpc != self.local_pc:
            return [SccpLog("drop", f"DPC {xfer.dpc} is not our point code {self.local_pc}")]
        try:
            msg = decode(xfer.data, self.pcf)
        except DecodeError as err:
            return self._undecodable(xfer, err)
        t = type(msg)
        if t is Udt:
            assert isinstance(msg, Udt)
            return self._route_data(msg, xfer, msg.protocol_class)
        if t is Xudt or t is Ludt:
            assert isinstance(msg, (Xudt, Ludt))
            return self._receive_extended(msg, xfer, now)
        assert isinstance(msg, (Udts, Xudts, Ludts))
        return self._receive_return(msg, xfer, now)

    def _undecodable(self, xfer: MtpTransfer, err: DecodeError) -> list[SccpOutput]:
        """Q.714 §4.2: a syntax error is returned ("unqualified") when the return is readable."""
        info = salvage_return_info(xfer.data, self.pcf)
        log = SccpLog("decode_error", f"from OPC {xfer.opc}: {err}")
        if info is None:
            return [log]
        mtype, calling, called, data = info
        kind = {0x09: Udts, 0x11: Xudts, 0x13: Ludts}[mtype]
        back_calling = called or SccpAddress(RoutingIndicator.SSN, pc=self.local_pc, ssn=0)
        return [
            log,
            *self._emit_return(kind, calling, back_calling, data, ReturnCause.UNQUALIFIED, xfer),
        ]

    # -- data messages ---------------------------------------------------------------------

    def _receive_extended(
        self, msg: Xudt | Ludt, xfer: MtpTransfer, now: float
    ) -> list[SccpOutput]:
        # The GT of the called address is translated here (to our own SSNs), which consumes
        # one hop (Q.714 §2.3.3); 0 on arrival is never valid.
        hops = msg.hop_counter - (1 if msg.called.ri == RoutingIndicator.GT else 0)
        if hops <= 0:
            return self._return(msg, xfer, ReturnCause.HOP_COUNTER_VIOLATION)
        seg = msg.segmentation
        if seg is None:
            return self._route_data(msg, xfer, msg.protocol_class)
        if seg.first and seg.remaining == 0:  # a single segment: nothing to reassemble
            return self._route_data(msg, xfer, seg.protocol_class)
        out: list[SccpOutput] = []
        whole = self._reassemble(msg, seg, xfer, now, out)
        if whole is not None:
            assert isinstance(whole, (Xudt, Ludt)) and whole.segmentation is None
            # Every segment came from the same OPC (it is part of the key): answer this one's.
            out += self._route_data(whole, xfer, whole.protocol_class)
        return out

    def _route_data(
        self, msg: _DataMessage, xfer: MtpTransfer, protocol_class: int
    ) -> list[SccpOutput]:
        """Q.714 §2.3: pick the local subsystem of the called address, deliver or return."""
        called = msg.called
        ssn = called.ssn
        if not ssn:  # absent, or 0 "SSN not known"
            if called.ri == RoutingIndicator.GT and called.gt is not None:
                # Our GT translates only to a subsystem; a foreign one not at all here.
                cause = (
                    ReturnCause.NO_TRANSLATION_ADDRESS
                    if called.gt.digits == self.global_title
                    else ReturnCause.NO_TRANSLATION_NATURE
                )
            elif called.ri == RoutingIndicator.GT:
                cause = ReturnCause.NO_TRANSLATION_NATURE
            else:
                cause = ReturnCause.UNQUALIFIED
            return self._return(msg, xfer, cause)
        if ssn == SCMG_SSN:
            return self._scmg(msg, xfer)
        allowed = self._ssn_allowed.get(ssn)
        if allowed is None:
            return self._return(msg, xfer, ReturnCause.UNEQUIPPED_USER)
        if not allowed:
            return self._return(msg, xfer, ReturnCause.SUBSYSTEM_FAILURE)
        return [
            NUnitdata(
                called=called,
                calling=msg.calling,
                data=msg.data,
                protocol_class=protocol_class,
                return_option=msg.return_option,
                sequence_control=xfer.sls if protocol_class == 1 else 0,
                importance=None if isinstance(msg, Udt) else msg.importance,
                opc=xfer.opc,
                dpc=xfer.dpc,
            )
        ]

    # -- segmentation / reassembly (Q.714 §4.1.1.3) ------------------------------------------

    def _reassemble(
        self,
        msg: _Segmented,
        seg: Segmentation,
        xfer: MtpTransfer,
        now: float,
        out: list[SccpOutput],
    ) -> _Segmented | None:
        """Add one segment; the whole message once the last one is in, else None.

        The reassembly of (kind, calling, local reference, OPC) runs :data:`REASSEMBLY_FSM`:
        idle --first--> reassembling(remaining=n) --next with remaining n-1--> ... --0--> idle.
        A segment out of that order abandons the reassembly (segmentation failure).
        """
        returned = type(msg) in (Xudts, Ludts)
        key: _Key = (returned, msg.calling, seg.local_reference, xfer.opc)
        state = _REASSEMBLING if key in self._reassembly else _IDLE
        event = ReassemblyEvent.FIRST_SEGMENT if seg.first else ReassemblyEvent.NEXT_SEGMENT
        try:
            row = REASSEMBLY_FSM.lookup(state, event)
        except IllegalEvent:
            out += self._return(msg, xfer, ReturnCause.SEGMENTATION_FAILURE, "no first segment")
            return None
        return row.action(self, key, _Segment(msg, seg, xfer), now, out)

    def _first_segment(
        self, key: _Key, s: _Segment | None, now: float, out: list[SccpOutput]
    ) -> _Segmented | None:
        assert s is not None
        if len(self._reassembly) >= MAX_PENDING_REASSEMBLIES:
            out += self._return(s.msg, s.xfer, ReturnCause.DESTINATION_CANNOT_REASSEMBLE)
            return None
        data = s.msg.data
        self._reassembly[key] = _Reassembly(s.msg, [data], s.seg.remaining, len(data), s.xfer)
        self._timers.start((_T_REASSEMBLY, key), now, self.reassembly_timeout)
        return None

    def _first_segment_again(
        self, key: _Key, s: _Segment | None, now: float, out: list[SccpOutput]
    ) -> _Segmented | None:
        """A new first segment under the same key: the old reassembly is abandoned."""
        out += self._abandon(self._reassembly.pop(key), "first segment received again")
        return self._first_segment(key, s, now, out)

    def _next_segment(
        self, key: _Key, s: _Segment | None, now: float, out: list[SccpOutput]
    ) -> _Segmented | None:
        assert s is not None
        entry = self._reassembly[key]
        seg = s.seg
        data = s.msg.data
        timer = (_T_REASSEMBLY, key)
        if seg.remaining != entry.remaining - 1 or entry.size + len(data) > MAX_REASSEMBLED_DATA:
            del self._reassembly[key]
            self._timers.cancel(timer)
            out += self._abandon(
                entry, f"segment with {seg.remaining} remaining out of sequence or too long"
            )
            return None
        entry.parts.append(data)
        entry.remaining = seg.remaining
        entry.size += len(data)
        if seg.remaining:
            return None
        del self._reassembly[key]
        self._timers.cancel(timer)
        first = entry.first
        assert first.segmentation is not None
        whole: _Segmented = dataclasses.replace(
            first, data=b"".join(entry.parts), segmentation=None
        )
        if isinstance(whole, (Xudt, Ludt)):
            # The C bit of the segmentation parameter is the class the user asked for.
            whole = dataclasses.replace(whole, protocol_class=first.segmentation.protocol_class)
        return whole

    def _reassembly_expired(
        self, key: _Key, s: _Segment | None, now: float, out: list[SccpOutput]
    ) -> _Segmented | None:
        out += self._abandon(self._reassembly.pop(key), "reassembly timer expired")
        return None

    def _abandon(self, entry: _Reassembly, why: str) -> list[SccpOutput]:
        """Reassembly failed: return the first segment if it asked for it (Q.714 §4.1.1.3)."""
        first = entry.first
        if isinstance(first, (Xudts, Ludts)):
            return [SccpLog("drop", f"returned message from OPC {entry.xfer.opc}: {why}")]
        return self._return(
            dataclasses.replace(first, segmentation=None),
            entry.xfer,
            ReturnCause.SEGMENTATION_FAILURE,
            why,
        )

    # -- returned messages (UDTS / XUDTS / LUDTS) ------------------------------------------

    def _receive_return(
        self, msg: _ServiceMessage, xfer: MtpTransfer, now: float
    ) -> list[SccpOutput]:
        """A message of ours came back: N-NOTICE to the local user; never answered (§4.2)."""
        if type(msg) is not Udts:
            assert isinstance(msg, (Xudts, Ludts))
            seg = msg.segmentation
            if seg is not None and not (seg.first and seg.remaining == 0):
                out: list[SccpOutput] = []
                whole = self._reassemble(msg, seg, xfer, now, out)
                if whole is None:
                    return out
                assert isinstance(whole, (Xudts, Ludts))
                return out + self._notice(whole, xfer)
        return self._notice(msg, xfer)

    def _notice(self, msg: _ServiceMessage, xfer: MtpTransfer) -> list[SccpOutput]:
        ssn = msg.called.ssn
        if not ssn or not self._ssn_allowed.get(ssn, False):
            return [
                SccpLog(
                    "drop",
                    f"{type(msg).__name__} (cause {msg.return_cause}) from OPC {xfer.opc} "
                    f"for no local subsystem: {_describe(msg.called)}",
                )
            ]
        return [
            NNotice(
                called=msg.called,
                calling=msg.calling,
                reason=msg.return_cause,
                data=msg.data,
                importance=None if isinstance(msg, Udts) else msg.importance,
            )
        ]

    # -- SCCP management (Q.714 §5.3) ----------------------------------------------------------

    def _scmg(self, msg: _DataMessage, xfer: MtpTransfer) -> list[SccpOutput]:
        try:
            m = decode_scmg(msg.data, self.pcf)
        except DecodeError as err:
            return [SccpLog("drop", f"SCMG from OPC {xfer.opc}: {err}")]
        if m.format_id != ScmgFormat.SST:
            # Remote subsystem states are the STP's business; we only answer tests.
            name = ScmgFormat(m.format_id).name
            return [
                SccpLog(
                    "scmg",
                    f"{name} from OPC {xfer.opc} for SSN {m.affected_ssn} PC {m.affected_pc}",
                )
            ]
        if m.affected_pc != self.local_pc:
            return [SccpLog("drop", f"SST from OPC {xfer.opc} tests PC {m.affected_pc}, not ours")]
        ssn = m.affected_ssn
        if ssn != SCMG_SSN and not self._ssn_allowed.get(ssn, False):
            # §5.3.4.2: a prohibited or unequipped subsystem is answered by silence.
            return [
                SccpLog("scmg", f"SST from OPC {xfer.opc} for unavailable SSN {ssn}: no answer")
            ]
        ssa = encode_scmg(Scmg(ScmgFormat.SSA, ssn, self.local_pc, m.smi), self.pcf)
        answer = Udt(
            called=SccpAddress(RoutingIndicator.SSN, ssn=SCMG_SSN),
            calling=SccpAddress(RoutingIndicator.SSN, pc=self.local_pc, ssn=SCMG_SSN),
            data=ssa,
        )
        return [self._transfer(xfer.opc, xfer.sls, encode(answer, self.pcf))]

    # -- return procedure (Q.714 §4.2) -----------------------------------------------------

    def _return(
        self, msg: SccpMessage, xfer: MtpTransfer, cause: ReturnCause, why: str = ""
    ) -> list[SccpOutput]:
        """Send ``msg`` back to its calling address with ``cause`` if it asked for it."""
        detail = (
            f"{type(msg).__name__} from OPC {xfer.opc} to {_describe(msg.called)}: "
            f"{cause.name.lower()}{': ' + why if why else ''}"
        )
        self.returns[cause.name.lower()] += 1
        kind = _RETURN_OF.get(type(msg))
        if kind is None or not msg.return_option:  # type: ignore[union-attr]
            return [SccpLog("drop", detail)]
        imp = None if type(msg) is Udt else msg.importance  # type: ignore[union-attr]
        return [
            SccpLog("return", detail),
            *self._emit_return(kind, msg.calling, msg.called, msg.data, cause, xfer, imp),
        ]

    def _emit_return(
        self,
        kind: type,
        called: SccpAddress,
        calling: SccpAddress,
        data: bytes,
        cause: ReturnCause,
        xfer: MtpTransfer,
        importance: int | None = None,
    ) -> list[SccpOutput]:
        # The original calling address is the return's called address and vice versa; it goes
        # back to the OPC it came from with the same SLS.
        try:
            if kind is Udts:
                return [
                    self._transfer(
                        xfer.opc, xfer.sls, encode(Udts(called, calling, data, cause), self.pcf)
                    )
                ]
            if kind is Ludts:
                msg = Ludts(called, calling, data, cause, self.hop_counter, None, importance)
                return [self._transfer(xfer.opc, xfer.sls, encode(msg, self.pcf))]
            return self._segmented(
                called, calling, data, xfer.opc, xfer.sls, 0, False, importance, cause
            )
        except EncodeError as err:
            return [SccpLog("drop", f"return to OPC {xfer.opc} not encodable: {err}")]

    # -- N-UNITDATA request (from TCAP) ----------------------------------------------------

    def handle_n_unitdata(self, req: NUnitdata, now: float) -> list[SccpOutput]:
        """Send one user message: UDT if it fits, else segmented XUDT (Q.714 §4.1.1.2)."""
        try:
            return self._send(req)
        except Exception as exc:  # last line of defence: a core never raises to the stack
            return [SccpLog("internal_error", f"{type(exc).__name__}: {exc}")]

    def _send(self, req: NUnitdata) -> list[SccpOutput]:
        called = req.called
        dpc = req.dpc if req.dpc is not None else called.pc
        if dpc is None:
            dpc = self.default_dpc
        if dpc is None:
            return self._local_return(req, ReturnCause.NO_TRANSLATION_ADDRESS, "no DPC to route to")
        calling = req.calling
        if calling.ri == RoutingIndicator.GT and calling.gt is None:
            calling = dataclasses.replace(calling, gt=self.own_gt)
        if req.protocol_class == 1:
            sls = req.sequence_control & 0x0F  # in sequence: the user picks the SLS
        else:
            sls = self._sls = (self._sls + 1) & 0x0F
        data = req.data
        try:
            if len(data) <= self.max_udt_data:
                if req.importance is None:
                    msg: SccpMessage = Udt(
                        called, calling, data, req.protocol_class, req.return_option
                    )
                else:  # only XUDT carries importance (Q.713 §3.19)
                    msg = Xudt(
                        called,
                        calling,
                        data,
                        req.protocol_class,
                        req.return_option,
                        self.hop_counter,
                        None,
                        req.importance,
                    )
                return [self._transfer(dpc, sls, encode(msg, self.pcf))]
            return self._segmented(
                called,
                calling,
                data,
                dpc,
                sls,
                req.protocol_class,
                req.return_option,
                req.importance,
                None,
            )
        except EncodeError as err:
            return self._local_return(req, ReturnCause.ERROR_IN_LOCAL_PROCESSING, str(err))

    def _local_return(self, req: NUnitdata, cause: ReturnCause, why: str) -> list[SccpOutput]:
        """A request we cannot send goes back to our own user as N-NOTICE (Q.714 §4.2)."""
        log = SccpLog(
            "return" if req.return_option else "drop", f"to {_describe(req.called)}: {why}"
        )
        if not req.return_option:
            return [log]
        return [log, NNotice(req.called, req.calling, cause, req.data, req.importance)]

    def _segmented(
        self,
        called: SccpAddress,
        calling: SccpAddress,
        data: bytes,
        dpc: int,
        sls: int,
        protocol_class: int,
        return_option: bool,
        importance: int | None,
        return_cause: ReturnCause | None,
    ) -> list[SccpOutput]:
        """XUDT (or XUDTS with ``return_cause``), in segments when ``data`` is too long."""
        # The optional-part pointer is one octet: it spans 4 pointer octets, both addresses
        # and the data, each with its length octet, less the 3 pointers it skips (Q.713 §2.3).
        room = 251 - len(encode_address(called, self.pcf)) - len(encode_address(calling, self.pcf))
        size = max(1, min(self.max_udt_data, room))
        if len(data) <= size:
            if return_cause is None:
                one: SccpMessage = Xudt(
                    called,
                    calling,
                    data,
                    protocol_class,
                    return_option,
                    self.hop_counter,
                    None,
                    importance,
                )
            else:
                one = Xudts(called, calling, data, return_cause, self.hop_counter, None, importance)
            return [self._transfer(dpc, sls, encode(one, self.pcf))]
        count = -(-len(data) // size)
        if count > MAX_SEGMENTS or len(data) > MAX_REASSEMBLED_DATA:
            raise EncodeError(
                "sccp", f"{len(data)} octets need {count} segments, more than {MAX_SEGMENTS}"
            )
        self._local_reference = ref = (self._local_reference + 1) & 0xFFFFFF
        out: list[SccpOutput] = []
        for i in range(count):
            seg = Segmentation(
                first=i == 0,
                protocol_class=protocol_class,
                remaining=count - 1 - i,
                local_reference=ref,
            )
            chunk = data[i * size : (i + 1) * size]
            if return_cause is None:
                # Segments travel as class 1 with one SLS so they arrive in order (§4.1.1.2.2).
                part: SccpMessage = Xudt(
                    called, calling, chunk, 1, return_option, self.hop_counter, seg, importance
                )
            else:
                part = Xudts(
                    called, calling, chunk, return_cause, self.hop_counter, seg, importance
                )
            out.append(self._transfer(dpc, sls, encode(part, self.pcf)))
        return out

    def _transfer(self, dpc: int, sls: int, data: bytes) -> MtpTransfer:
        return MtpTransfer(
            opc=self.local_pc, dpc=dpc, si=SI_SCCP, ni=self.ni, mp=0, sls=sls, data=data
        )


_ReassemblyAction = Callable[
    [SccpLayer, _Key, _Segment | None, float, list[SccpOutput]], _Segmented | None
]
_IDLE = ReassemblyState.IDLE
_REASSEMBLING = ReassemblyState.REASSEMBLING

REASSEMBLY_FSM: TransitionTable[ReassemblyState, ReassemblyEvent, _ReassemblyAction] = (
    TransitionTable(
        "SCCP reassembly",
        {
            (_IDLE, ReassemblyEvent.FIRST_SEGMENT): Transition(
                SccpLayer._first_segment, _REASSEMBLING
            ),
            (_REASSEMBLING, ReassemblyEvent.FIRST_SEGMENT): Transition(
                SccpLayer._first_segment_again, _REASSEMBLING
            ),
            # the last segment, or one out of sequence, ends it (idle); another keeps it going
            (_REASSEMBLING, ReassemblyEvent.NEXT_SEGMENT): Transition(SccpLayer._next_segment),
            (_REASSEMBLING, ReassemblyEvent.T_REASSEMBLY_EXPIRY): Transition(
                SccpLayer._reassembly_expired, _IDLE
            ),
        },
    )
)
"""The reassembly of one segmented message (Q.714 §4.1.1.3). No row: a subsequent segment with
no reassembly under way, returned with "segmentation failure"."""
