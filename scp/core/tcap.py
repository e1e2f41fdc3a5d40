"""TCAP transaction and component sub-layers (ITU-T Q.774), sans-I/O, for one SCP worker.

:class:`TcapLayer` sits between SCCP (N-UNITDATA / N-NOTICE, Q.711 §6.2.2) and the TC-user
(TC-* primitives of Q.771 §3). It is both halves of Q.774 in one object:

* TSL, the transaction sub-layer (Q.774 §3.2.1 and the TSM of Annex A): transaction IDs, the
  transaction state machine (idle, initiation received, initiation sent, active) as a transition
  table with one half per input side (:data:`TSM_RECEIVED` for the messages of the peer,
  :data:`TSM_REQUESTED` for the TC-user's requests), P-Abort answers (§3.2.1.1.5) to messages
  that cannot be processed (unrecognized message type, badly formatted transaction portion,
  unrecognized transaction ID: a message with no row in the state of its transaction, resource
  limitation), TC-NOTICE for messages SCCP returned.
* The dialogue handling of §3.2.2.1 (AARQ/AARE/ABRT/AUDT, Q.773 §4.2): the first backward
  message carries an AARE iff the Begin had an AARQ; a refused dialogue is an Abort carrying an
  AARE reject; an AARQ without protocol version 1 is refused with
  ``no-common-dialogue-portion``.
* CSL, the component sub-layer (Q.774 §3.2.2.2, Q.773 §3.2.2): invoke state and the invocation
  timer of our invokes (TC-L-CANCEL on expiry), freeing by operation class (Q.771 §2.3.1.2),
  and Reject components for components that are malformed (General problems), duplicate
  (Invoke duplicateInvokeID) or answer no known invoke (unrecognizedInvokeID).

Local transaction IDs are 4 octets: the first is ``worker_id`` (ARCHITECTURE §5), so a stray
message can be told apart from one of ours; the dialogue ID given to the TC-user *is* that TID as
an integer. A dialogue idle timer guards every dialogue: on expiry the peer gets a TC-U-ABORT
and the TC-user a :class:`~scp.primitives.TcUAbort` indication, so neither the switch nor
the service is left waiting.

Nothing raises out of the public methods: malformed input gets the protocol's answer and a
:class:`TcapLog` output.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import assert_never

from scp.codecs.errors import CodecError
from scp.codecs.tcap import (
    DIAG_SOURCE_PROVIDER,
    DIAG_SOURCE_USER,
    Aare,
    Aarq,
    AbortSource,
    Abrt,
    Audt,
    InvokeProblem,
    MessageType,
    ReturnErrorProblem,
    ReturnResultProblem,
    ServiceProviderDiagnostic,
    TcapDecodeError,
    TcapMessage,
    decode,
    decode_tids,
    encode_components,
    encode_dialogue_portion,
    encode_message,
    p_abort_cause_for,
)
from scp.core.fsm import IllegalEvent, Transition, TransitionTable
from scp.primitives import (
    ApplicationContext,
    Component,
    DialogueDiagnostic,
    DialogueResult,
    Invoke,
    LCancel,
    NNotice,
    NUnitdata,
    Opcode,
    PAbortCause,
    ProblemType,
    Reject,
    ReturnError,
    ReturnResult,
    SccpAddress,
    TcBegin,
    TcComponentEvent,
    TcContinue,
    TcEnd,
    TcNotice,
    TcPAbort,
    TcPrimitive,
    TcUAbort,
    TcUni,
)

__all__ = [
    "TcapLayer",
    "TcapLog",
    "ForwardToWorker",
    "owner_worker",
    "TcapOutput",
    "TcRequest",
    "DialogueState",
    "TsmEvent",
    "TSM_RECEIVED",
    "TSM_REQUESTED",
    "ABNORMAL_DIALOGUE",
    "FifoTimers",
]


@dataclass(frozen=True, slots=True)
class TcapLog:
    """A TCAP event worth a log line: a decoding error, an abort we sent, a stray message."""

    event: str
    detail: str
    dialogue_id: int | None = None
    otid: bytes | None = None
    dtid: bytes | None = None


@dataclass(frozen=True, slots=True)
class ForwardToWorker:
    """A message for a sibling worker's transaction: hand ``ind`` to worker ``worker_id``."""

    worker_id: int
    ind: NUnitdata


def owner_worker(dtid: bytes | None, own: int, siblings: frozenset[int]) -> int | None:
    """The sibling worker that owns the transaction ``dtid`` names, or None.

    Our transaction IDs are 4 octets whose first is the worker ID (ARCHITECTURE §5). A DTID of
    that shape naming a worker of this node other than ``own`` belongs to that worker's dialogue,
    which the STP's loadsharing brought here; anything else (ours, another node's, a malformed
    ID) is not for a sibling.
    """
    if dtid is None or len(dtid) != 4:
        return None
    owner = dtid[0]
    return owner if owner != own and owner in siblings else None


class FifoTimers:
    """Named one-shot timers for a few distinct durations, as TCAP arms them.

    Same contract as :class:`scp.core.timers.Timers` (start / cancel / next_deadline /
    expired). Every dialogue re-arms its idle timer on each message and most invocation
    timers are cancelled by the outcome, so at 20k dialogues/s a heap with lazy deletion keeps
    over a million dead entries alive for a whole idle period. Here each duration has its own
    queue in deadline order (``now`` never goes back, so insertion order is deadline order):
    start, restart and cancel are O(1) and a cancelled timer leaves nothing behind.
    """

    __slots__ = ("_queues", "_duration")

    def __init__(self) -> None:
        self._queues: dict[float, OrderedDict[Hashable, float]] = {}
        self._duration: dict[Hashable, float] = {}

    def start(self, name: Hashable, now: float, duration: float) -> None:
        """Arm (or re-arm) ``name`` to expire ``duration`` seconds after ``now``."""
        old = self._duration.get(name)
        if old is not None and old != duration:
            self.cancel(name)
        q = self._queues.get(duration)
        if q is None:
            q = self._queues[duration] = OrderedDict()
        q[name] = now + duration
        q.move_to_end(name)
        self._duration[name] = duration

    def cancel(self, name: Hashable) -> None:
        """Disarm ``name``; cancelling a timer that is not running is a no-op."""
        duration = self._duration.pop(name, None)
        if duration is not None:
            q = self._queues[duration]
            del q[name]
            if not q:
                del self._queues[duration]

    def running(self, name: Hashable) -> bool:
        return name in self._duration

    def next_deadline(self) -> float | None:
        """The earliest armed deadline, or None when nothing is armed."""
        best: float | None = None
        for q in self._queues.values():
            deadline = q[next(iter(q))]
            if best is None or deadline < best:
                best = deadline
        return best

    def expired(self, now: float) -> list[Hashable]:
        """Pop and return, earliest first, every timer whose deadline is ``<= now``."""
        due: list[tuple[float, Hashable]] = []
        for duration, q in list(self._queues.items()):
            while q:
                name = next(iter(q))
                deadline = q[name]
                if deadline > now:
                    break
                del q[name]
                del self._duration[name]
                due.append((deadline, name))
            if not q:
                del self._queues[duration]
        due.sort(key=lambda item: item[0])
        return [name for _, name in due]

    def __len__(self) -> int:
        return len(self._duration)


class DialogueState(enum.StrEnum):
    """Transaction states of the TSM (Q.774 Annex A, figure A.4); an idle one has no entry."""

    IDLE = "idle"
    INITIATION_RECEIVED = "initiation received"
    INITIATION_SENT = "initiation sent"
    ACTIVE = "active"


class TsmEvent(enum.StrEnum):
    """What moves a transaction (Q.774 Annex A): a message of the peer, or a TC-user request."""

    BEGIN_RECEIVED = "Begin received"
    CONTINUE_RECEIVED = "Continue received"
    END_RECEIVED = "End received"
    ABORT_RECEIVED = "Abort received"
    TC_BEGIN_REQ = "TC-BEGIN.req"
    TC_CONTINUE_REQ = "TC-CONTINUE.req"
    TC_END_REQ = "TC-END.req"
    TC_END_PREARRANGED_REQ = "TC-END.req (prearranged)"  # Q.771 §3.1.2.2.2.3: local only
    TC_U_ABORT_REQ = "TC-U-ABORT.req"


# An ABRT from the dialogue service provider, or a dialogue portion we cannot accept, is
# "abnormal dialogue" in Q.771 §3.1.2.2.2.5: a local-only cause, only ever indicated upward.
ABNORMAL_DIALOGUE = PAbortCause.ABNORMAL_DIALOGUE

_IDLE = DialogueState.IDLE
_IR = DialogueState.INITIATION_RECEIVED
_IS = DialogueState.INITIATION_SENT
_A = DialogueState.ACTIVE

_BEGIN = MessageType.BEGIN
_CONTINUE = MessageType.CONTINUE
_END = MessageType.END
_ABORT = MessageType.ABORT
_UNI = MessageType.UNIDIRECTIONAL

# The dialogue portion of a first answer repeats for every call of an application context.
_AARE_CACHE: dict[ApplicationContext, bytes] = {}


class _Dialogue:
    """Per-dialogue state: one transaction (TSL) plus its invokes (CSL)."""

    __slots__ = (
        "did",
        "ltid",
        "rtid",
        "state",
        "peer",
        "local",
        "dpc",
        "assoc",
        "ac",
        "aarq",
        "invokes",
        "peer_invokes",
        "next_iid",
        "pending",
        "protocol_class",
        "sls",
        "counted",
    )

    def __init__(
        self,
        did: int,
        state: DialogueState,
        peer: SccpAddress,
        local: SccpAddress,
        dpc: int | None,
        ac: ApplicationContext | None,
        aarq: bool,
        protocol_class: int,
    ) -> None:
        self.did = did
        self.ltid = did.to_bytes(4, "big")
        self.rtid: bytes | None = None
        self.state = state
        self.peer = peer
        self.local = local
        self.dpc = dpc
        self.assoc: int | None = None  # the association its BEGIN came on (peer-opened)
        self.counted = False  # in the per-OPC / per-association shares (peer-opened)
        self.ac = ac
        self.aarq = aarq  # an AARQ crossed (either way): dialogue portion in answers/aborts
        # Our pending invokes: invoke ID -> (operation class, opcode).
        self.invokes: dict[int, tuple[int, Opcode]] = {}
        # The peer's invokes we have not answered: invoke ID -> time the ID stops counting as
        # a duplicate (Q.774 keeps it until the outcome; we also let it go after the invoke timer,
        # since class 2/4 operations never get one).
        self.peer_invokes: dict[int, float] = {}
        self.next_iid = 0
        self.pending: list[Component] = []  # Rejects waiting for our next message
        self.protocol_class = protocol_class
        self.sls = did & 0x0F


# The event each received message is; a Unidirectional belongs to no transaction (Q.774 §3.2.1)
# and a Begin opens one, so neither is looked up by its DTID.
_RECEIVED_EVENT = {
    _CONTINUE: TsmEvent.CONTINUE_RECEIVED,
    _END: TsmEvent.END_RECEIVED,
    _ABORT: TsmEvent.ABORT_RECEIVED,
}

TcRequest = TcBegin | TcContinue | TcEnd | TcUAbort
"""The TC-user requests that drive a transaction (TC-UNI needs none)."""

TcapOutput = NUnitdata | TcPrimitive | TcapLog | ForwardToWorker
"""Everything :class:`TcapLayer` returns: N-UNITDATA requests down, TC indications up, logs,
and continuations that belong to a sibling worker."""


def _reject_source(r: Reject) -> str:
    """TC-R-REJECT when the peer's TCAP found the problem, TC-U-REJECT when its TC-user did.

    The wire does not say which; the problems the component sub-layer itself detects
    (Q.774 §3.2.2.2: every General problem, duplicate and unrecognized invoke IDs, an
    unrecognized linked ID) are remote.
    """
    if r.problem_type == ProblemType.GENERAL or r.problem_code == 0:
        return "remote"
    if (
        r.problem_type == ProblemType.INVOKE
        and r.problem_code == InvokeProblem.UNRECOGNIZED_LINKED_ID
    ):
        return "remote"
    return "user"


class TcapLayer:
    """TCAP (Q.774 TSL + CSL) for one worker: N-UNITDATA below, TC primitives above."""

    def __init__(
        self,
        *,
        worker_id: int = 0,
        idle_timeout: float = 60.0,
        invoke_timeout: float = 10.0,
        max_dialogues: int = 100_000,
        max_dialogues_per_peer: int | None = None,
        max_dialogues_per_association: int | None = None,
        siblings: frozenset[int] = frozenset(),
    ) -> None:
        if not 0 <= worker_id <= 0xFF:
            raise ValueError("worker_id must fit the first octet of a transaction ID (0..255)")
        self.worker_id = worker_id
        # the worker IDs of the other processes of this node (`mcn-scp run --workers N`): a
        # continuation for one of them is handed over (ForwardToWorker), not dropped
        self.siblings = siblings
        self.idle_timeout = idle_timeout
        self.invoke_timeout = invoke_timeout
        self.max_dialogues = max_dialogues
        # the share of max_dialogues one peer (by OPC) may hold open at once, so that one peer
        # cannot take the whole table from the others (None: no share, the global limit alone);
        # and the share of one association, which an unbound peer cannot dodge by sending from
        # several point codes (the OPC is only what the peer writes in the routing label)
        self.max_dialogues_per_peer = max_dialogues_per_peer
        self.max_dialogues_per_association = max_dialogues_per_association
        # dialogue the peer opened -> what it counts against: ("opc", pc), ("assoc", id)
        # dialogues open per peer, by OPC and by association, for the shares above (plain int
        # keys, counted on the dialogue: this is on every Begin's path)
        self._per_opc: dict[int, int] = {}
        self._per_assoc: dict[int, int] = {}
        self._dialogues: dict[int, _Dialogue] = {}
        self._timers = FifoTimers()
        self._seq = 0

    # -- introspection -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of open dialogues."""
        return len(self._dialogues)

    def dialogue_state(self, dialogue_id: int) -> DialogueState:
        """The state of the transaction; idle when there is none (Q.774 Annex A)."""
        dlg = self._dialogues.get(dialogue_id)
        return dlg.state if dlg else _IDLE

    def peer_pc(self, dialogue_id: int) -> int | None:
        """The point code the dialogue's peer sent from (the MTP OPC of its BEGIN), if known."""
        dlg = self._dialogues.get(dialogue_id)
        return dlg.dpc if dlg else None

    def peer_association(self, dialogue_id: int) -> int | None:
        """The association the peer's BEGIN of this dialogue came on, if known."""
        dlg = self._dialogues.get(dialogue_id)
        return dlg.assoc if dlg else None

    def open_dialogues(self) -> list[int]:
        """The dialogue IDs still open (e.g. to abort them toward their peers at shutdown)."""
        return list(self._dialogues)

    # -- identifiers ---------------------------------------------------------------------------

    def new_dialogue_id(self) -> int:
        """A free dialogue ID (= our 4-octet TID) for a dialogue the TC-user opens with TcBegin."""
        base = self.worker_id << 24
        for _ in range(0x1000000):
            self._seq = (self._seq + 1) & 0xFFFFFF
            did = base | self._seq
            if did not in self._dialogues:
                return did
        raise RuntimeError("no free transaction ID")  # unreachable below 16M dialogues

    def new_invoke_id(self, dialogue_id: int) -> int:
        """A free invoke ID for our next Invoke on ``dialogue_id`` (Q.774 §3.2.2.2)."""
        dlg = self._dialogues.get(dialogue_id)
        used = dlg.invokes if dlg else {}
        start = dlg.next_iid if dlg else 0
        for k in range(1, 257):
            iid = (start + k + 128) % 256 - 128  # walks 1, 2 ... 127, -128 ... 0
            if iid not in used:
                if dlg:
                    dlg.next_iid = iid
                return iid
        return 0

    # -- timers --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def handle_timer(self, now: float) -> list[TcapOutput]:
        try:
            return self._handle_timer(now)
        except Exception as e:  # see handle_n_unitdata
            return [TcapLog("internal_error", f"{type(e).__name__}: {e}")]

    def _handle_timer(self, now: float) -> list[TcapOutput]:
        out: list[TcapOutput] = []
        for name in self._timers.expired(now):
            assert isinstance(name, tuple)
            kind: str = name[0]
            did: int = name[1]
            dlg = self._dialogues.get(did)
            if dlg is None:
                continue
            if kind == "idle":
                if dlg.invokes:
                    # An operation of ours is still running (e.g. ApplyCharging waiting for the
                    # switch's report at the end of the period): the dialogue is not idle, and
                    # that invocation's own timer bounds the wait.
                    self._timers.start(("idle", did), now, self.idle_timeout)
                    continue
                out += self._idle_expired(dlg)
            else:
                iid: int = name[2]
                inv = dlg.invokes.pop(iid, None)
                if inv is not None:
                    # Q.774 §3.2.1.1.3: invocation timer expiry releases the invoke ID.
                    out.append(TcComponentEvent(did, LCancel(iid, inv[1])))
        return out

    def _idle_expired(self, dlg: _Dialogue) -> list[TcapOutput]:
        out: list[TcapOutput] = [
            TcapLog(
                "idle_timeout",
                f"no activity for {self.idle_timeout:g} s",
                dlg.did,
                dlg.ltid,
                dlg.rtid,
            )
        ]
        if dlg.rtid is not None:
            portion = (
                encode_dialogue_portion(Abrt(AbortSource.DIALOGUE_SERVICE_USER))
                if dlg.aarq
                else b""
            )
            out.append(self._to_peer(dlg, _ABORT, dialogue_portion=portion))
        self._free(dlg)
        out.append(TcUAbort(dlg.did))
        return out

    # -- from SCCP -----------------------------------------------------------------------------

    def handle_n_unitdata(
        self, ind: NUnitdata, now: float, assoc: int | None = None
    ) -> list[TcapOutput]:
        """A TCAP message from the peer (N-UNITDATA indication), arrived on association
        ``assoc`` (None: not known, e.g. handed over by a sibling worker)."""
        try:
            try:
                msg = decode(ind.data)
            except TcapDecodeError as e:
                return self._decode_error(ind, e)
            mtype = msg.message_type
            if mtype is _BEGIN:
                return self._ind_begin(ind, msg, now, assoc)
            if mtype is _UNI:
                return self._ind_uni(ind, msg, now)
            dlg = self._lookup(msg.dtid)
            row = TSM_RECEIVED.get(dlg.state, _RECEIVED_EVENT[mtype]) if dlg else None
            if row is None or dlg is None:  # no row in this state (idle included): illegal
                return self._unknown_transaction(ind, msg)
            return row.action(self, dlg, ind, msg, now)
        except Exception as e:  # a core never lets a bug take the node down with it
            return [TcapLog("internal_error", f"{type(e).__name__}: {e}")]

    def handle_n_notice(self, ind: NNotice, now: float) -> list[TcapOutput]:
        """SCCP returned one of our messages (N-NOTICE): TC-NOTICE to the dialogue's TC-user."""
        _, otid, dtid = decode_tids(ind.data)
        dlg = self._lookup(otid)
        if dlg is None:
            return [
                TcapLog(
                    "returned_message",
                    f"SCCP return cause {ind.reason} for no open dialogue",
                    None,
                    otid,
                    dtid,
                )
            ]
        return [TcNotice(dlg.did, ind.reason)]

    # -- from the TC-user ----------------------------------------------------------------------

    def handle_tc(self, req: TcPrimitive, now: float) -> list[TcapOutput]:
        """A TC request from the TC-user: TcBegin, TcContinue, TcEnd, TcUAbort or TcUni."""
        try:
            event: TsmEvent
            match req:
                case TcUni():
                    return self._req_uni(req)
                case TcBegin():
                    event = TsmEvent.TC_BEGIN_REQ
                case TcContinue():
                    event = TsmEvent.TC_CONTINUE_REQ
                case TcEnd():
                    event = (
                        TsmEvent.TC_END_PREARRANGED_REQ if req.prearranged else TsmEvent.TC_END_REQ
                    )
                case TcUAbort():
                    event = TsmEvent.TC_U_ABORT_REQ
                case TcPAbort() | TcNotice() | TcComponentEvent():
                    return [TcapLog("illegal_request", f"{type(req).__name__} is not a TC request")]
                case _:
                    assert_never(req)
            return self._request(req, event, now)
        except CodecError as e:
            return [TcapLog("encode_error", str(e), getattr(req, "dialogue_id", None))]
        except Exception as e:
            return [
                TcapLog(
                    "internal_error", f"{type(e).__name__}: {e}", getattr(req, "dialogue_id", None)
                )
            ]

    def _request(self, req: TcRequest, event: TsmEvent, now: float) -> list[TcapOutput]:
        did = req.dialogue_id
        dlg = self._dialogues.get(did)
        if dlg is None:
            if type(req) is not TcBegin:
                return [TcapLog("unknown_dialogue", f"{event} for no open dialogue", did)]
            # Q.774 Annex A: a TSM is created, idle, for the TC-user's Begin.
            if not 0 <= did <= 0xFFFFFFFF:
                return [TcapLog("illegal_request", "TC-BEGIN.req with a dialogue ID out of range")]
            if len(self._dialogues) >= self.max_dialogues:
                return [
                    TcapLog("resource_limitation", "TC-BEGIN.req refused", did),
                    TcPAbort(did, PAbortCause.RESOURCE_LIMITATION),
                ]
            ac = req.application_context
            dlg = _Dialogue(
                did, _IDLE, req.called, req.calling, req.called.pc, ac, ac is not None, 1
            )
        try:
            row = TSM_REQUESTED.lookup(dlg.state, event)
        except IllegalEvent as e:
            return [TcapLog("illegal_request", str(e), did, dlg.ltid, dlg.rtid)]
        return row.action(self, dlg, req, now)

    # -- received messages ---------------------------------------------------------------------

    def _lookup(self, tid: bytes | None) -> _Dialogue | None:
        if tid is None or len(tid) != 4:
            return None
        return self._dialogues.get(int.from_bytes(tid, "big"))

    def _ind_begin(
        self, ind: NUnitdata, msg: TcapMessage, now: float, assoc: int | None = None
    ) -> list[TcapOutput]:
        """A Begin: refused as a whole (resource limitation, a dialogue portion we cannot
        accept), or a TSM is created, idle, and the Begin moves it (Q.774 Annex A)."""
        otid = msg.otid
        assert otid is not None
        if len(self._dialogues) >= self.max_dialogues:
            return [
                self._p_abort_to(ind, otid, PAbortCause.RESOURCE_LIMITATION),
                TcapLog(
                    "resource_limitation", f"{len(self._dialogues)} dialogues open", None, otid
                ),
            ]
        opc, share = ind.opc, self.max_dialogues_per_peer
        if share is not None and opc is not None and self._per_opc.get(opc, 0) >= share:
            return self._over_share(ind, otid, f"OPC {opc}", share)
        share = self.max_dialogues_per_association
        if share is not None and assoc is not None and self._per_assoc.get(assoc, 0) >= share:
            return self._over_share(ind, otid, f"association {assoc}", share)
        pdu = msg.dialogue
        if pdu is not None and type(pdu) is not Aarq:
            # Only an AARQ may open a dialogue (Q.774 §3.2.2.1): abort, provider side.
            return [
                self._answer(
                    ind, otid, encode_dialogue_portion(Abrt(AbortSource.DIALOGUE_SERVICE_PROVIDER))
                ),
                TcapLog(
                    "dialogue_portion_error", f"Begin carries {type(pdu).__name__}", None, otid
                ),
            ]
        ac = None
        if pdu is not None:
            assert isinstance(pdu, Aarq)
            v = pdu.protocol_version
            if v is not None and (len(v) < 2 or not v[1] & 0x80):
                # We speak version 1 only (Q.774 §3.2.2.1): refuse with no-common-dialogue-portion.
                aare = Aare(
                    pdu.application_context,
                    DialogueResult.REJECT_PERMANENT,
                    DIAG_SOURCE_PROVIDER,
                    ServiceProviderDiagnostic.NO_COMMON_DIALOGUE_PORTION,
                )
                return [
                    self._answer(ind, otid, encode_dialogue_portion(aare)),
                    TcapLog(
                        "dialogue_portion_error", "protocol-version lacks version1", None, otid
                    ),
                ]
            ac = pdu.application_context
        dlg = _Dialogue(
            self.new_dialogue_id(),
            _IDLE,
            ind.calling,
            ind.called,
            ind.opc,
            ac,
            pdu is not None,
            ind.protocol_class,
        )
        dlg.assoc = assoc
        return TSM_RECEIVED.lookup(_IDLE, TsmEvent.BEGIN_RECEIVED).action(self, dlg, ind, msg, now)

    def _over_share(self, ind: NUnitdata, otid: bytes, who: str, share: int) -> list[TcapOutput]:
        """A Begin from a peer that holds its share of dialogues ([tcap]): refused, aborted."""
        return [
            self._p_abort_to(ind, otid, PAbortCause.RESOURCE_LIMITATION),
            TcapLog("resource_limitation", f"{who} holds {share} dialogues, its share", None, otid),
        ]

    def _begin_received(
        self, dlg: _Dialogue, ind: NUnitdata, msg: TcapMessage, now: float
    ) -> list[TcapOutput]:
        did = dlg.did
        dlg.rtid = msg.otid
        dlg.sls = ind.sequence_control  # answers keep the peer's in-sequence stream
        dlg.state = _IR
        self._dialogues[did] = dlg
        dlg.counted = True
        opc, assoc = ind.opc, dlg.assoc
        if opc is not None:
            self._per_opc[opc] = self._per_opc.get(opc, 0) + 1
        if assoc is not None:
            self._per_assoc[assoc] = self._per_assoc.get(assoc, 0) + 1
        self._timers.start(("idle", did), now, self.idle_timeout)
        comps, events, rejects = self._components_in(dlg, msg, now)
        dlg.pending.extend(rejects)  # sent with the TC-user's first answer
        pdu = msg.dialogue
        user_info = pdu.user_information if type(pdu) is Aarq else None
        out: list[TcapOutput] = [TcBegin(did, ind.called, ind.calling, dlg.ac, user_info, comps)]
        out += events
        return out

    def _ind_uni(self, ind: NUnitdata, msg: TcapMessage, now: float) -> list[TcapOutput]:
        ac = ui = None
        pdu = msg.dialogue
        if pdu is not None:
            if type(pdu) is not Audt:
                return [TcapLog("dialogue_portion_error", "Unidirectional without an AUDT")]
            ac, ui = pdu.application_context, pdu.user_information
        out: list[TcapOutput] = [
            TcUni(self.new_dialogue_id(), ind.called, ind.calling, ac, ui, msg.components or ())
        ]
        # No dialogue to carry a Reject back (Q.774 §3.2.2.2): bad components are only logged.
        for p in msg.bad_components:
            out.append(TcapLog("component_error", f"in Unidirectional: {p.reason}"))
        return out

    def _ind_continue(
        self, dlg: _Dialogue, ind: NUnitdata, msg: TcapMessage, now: float
    ) -> list[TcapOutput]:
        ac = ui = None
        if dlg.state is _IS:
            # First answer to our Begin: it fixes the peer's TID and address (Q.774 §3.2.1.1.2).
            if msg.otid is None:
                return self._unknown_transaction(ind, msg)
            dlg.rtid = msg.otid
            dlg.peer = ind.calling
            if ind.opc is not None:
                dlg.dpc = ind.opc
            pdu = msg.dialogue
            if pdu is not None:
                if type(pdu) is not Aare or not dlg.aarq or pdu.result != 0:
                    return self._provider_abort(dlg, "first Continue without an accepting AARE")
                ac, ui = pdu.application_context, pdu.user_information
                dlg.ac = ac
            else:
                dlg.aarq = False  # peer answered without a dialogue portion (e.g. MAP v1)
            dlg.state = _A
        self._timers.start(("idle", dlg.did), now, self.idle_timeout)
        comps, events, rejects = self._components_in(dlg, msg, now)
        out: list[TcapOutput] = [TcContinue(dlg.did, ac, ui, comps)]
        out += events
        if rejects:
            # The dialogue is open: the Rejects go back at once, in their own Continue.
            out.append(self._to_peer(dlg, _CONTINUE, component_portion=encode_components(rejects)))
        return out

    def _ind_end(
        self, dlg: _Dialogue, ind: NUnitdata, msg: TcapMessage, now: float
    ) -> list[TcapOutput]:
        ac = ui = None
        pdu = msg.dialogue
        if type(pdu) is Aare and dlg.state is _IS:
            ac, ui = pdu.application_context, pdu.user_information
        comps, events, _ = self._components_in(dlg, msg, now)  # no message left for a Reject
        self._free(dlg)
        out: list[TcapOutput] = [TcEnd(dlg.did, ac, ui, comps)]
        out += events
        return out

    def _ind_abort(
        self, dlg: _Dialogue, ind: NUnitdata, msg: TcapMessage, now: float
    ) -> list[TcapOutput]:
        self._free(dlg)
        did = dlg.did
        pdu = msg.dialogue
        if msg.p_abort_cause is not None:
            try:
                cause = PAbortCause(msg.p_abort_cause)
            except ValueError:
                cause = ABNORMAL_DIALOGUE
            return [TcPAbort(did, cause)]
        if pdu is None:
            return [TcUAbort(did)]
        if type(pdu) is Abrt:
            if pdu.abort_source == AbortSource.DIALOGUE_SERVICE_PROVIDER:
                return [TcPAbort(did, ABNORMAL_DIALOGUE)]
            return [TcUAbort(did, dlg.ac, pdu.user_information)]
        if type(pdu) is Aare and dlg.state is _IS:
            if pdu.diagnostic_source == DIAG_SOURCE_PROVIDER:
                return [TcPAbort(did, ABNORMAL_DIALOGUE)]
            try:
                diag: DialogueDiagnostic | None = DialogueDiagnostic(pdu.diagnostic)
            except ValueError:
                diag = DialogueDiagnostic.NO_REASON_GIVEN
            return [
                TcUAbort(
                    did,
                    pdu.application_context,
                    pdu.user_information,
                    DialogueResult.REJECT_PERMANENT,
                    diag,
                )
            ]
        return [TcPAbort(did, ABNORMAL_DIALOGUE)]

    def _unknown_transaction(self, ind: NUnitdata, msg: TcapMessage) -> list[TcapOutput]:
        """Q.774 §3.2.1.1.5: P-Abort unrecognizedTransactionID if the sender can be answered.

        A DTID whose first byte names another worker belongs to a live dialogue of that worker
        (ARCHITECTURE §5, loadshare across workers): aborting it would kill that worker's call.
        A sibling worker of this node gets the message handed over (:func:`owner_worker`);
        another node's is only logged and dropped here.
        """
        dtid = msg.dtid
        owner = owner_worker(dtid, self.worker_id, self.siblings)
        if owner is not None:
            return [ForwardToWorker(owner, ind)]
        if dtid is not None and len(dtid) == 4 and dtid[0] != self.worker_id:
            return [
                TcapLog(
                    "foreign_dtid",
                    f"{msg.message_type.name} for worker {dtid[0]} dropped",
                    None,
                    msg.otid,
                    dtid,
                )
            ]
        log = TcapLog(
            "unknown_dtid", f"{msg.message_type.name} for no open dialogue", None, msg.otid, dtid
        )
        if msg.otid is None:
            return [log]
        return [self._p_abort_to(ind, msg.otid, PAbortCause.UNRECOGNIZED_TRANSACTION_ID), log]

    def _decode_error(self, ind: NUnitdata, e: TcapDecodeError) -> list[TcapOutput]:
        log = TcapLog(
            "decode_error", f"{e.portion}: {e.reason} (byte {e.offset})", None, e.otid, e.dtid
        )
        dlg = self._lookup(e.dtid) if e.message_type != _BEGIN else None
        if e.portion == "dialogue":
            if dlg is not None:
                # Only a Continue leaves the peer's transaction open to be aborted.
                return [log, *self._provider_abort(dlg, e.reason, e.message_type == _CONTINUE)]
            if e.otid is not None:
                return [
                    self._answer(
                        ind,
                        e.otid,
                        encode_dialogue_portion(Abrt(AbortSource.DIALOGUE_SERVICE_PROVIDER)),
                    ),
                    log,
                ]
            return [log]
        cause = p_abort_cause_for(e)
        out: list[TcapOutput] = [log]
        if dlg is not None and e.message_type in (_CONTINUE, _END, _ABORT):
            # A broken message on an open transaction ends it (Q.774 §3.2.1.1.5).
            self._free(dlg)
            if dlg.rtid is not None and e.message_type == _CONTINUE:
                out.append(self._to_peer(dlg, _ABORT, p_abort_cause=cause))
            out.append(TcPAbort(dlg.did, cause))
        elif e.otid is not None:
            out.append(self._p_abort_to(ind, e.otid, cause))
        return out

    def _provider_abort(self, dlg: _Dialogue, reason: str, send: bool = True) -> list[TcapOutput]:
        """Abnormal dialogue: ABRT (dialogue-service-provider) to the peer, TC-P-ABORT up."""
        out: list[TcapOutput] = [
            TcapLog("dialogue_portion_error", reason, dlg.did, dlg.ltid, dlg.rtid)
        ]
        if send and dlg.rtid is not None:
            out.append(
                self._to_peer(
                    dlg,
                    _ABORT,
                    dialogue_portion=encode_dialogue_portion(
                        Abrt(AbortSource.DIALOGUE_SERVICE_PROVIDER)
                    ),
                )
            )
        self._free(dlg)
        out.append(TcPAbort(dlg.did, ABNORMAL_DIALOGUE))
        return out

    # -- component sub-layer, receiving side --------------------------------------------------

    def _components_in(
        self, dlg: _Dialogue, msg: TcapMessage, now: float
    ) -> tuple[tuple[Component, ...], list[TcapOutput], list[Component]]:
        """Check received components (Q.774 §3.2.2.2): (for the TC-user, TC-L-REJECTs, Rejects)."""
        comps = msg.components
        if not comps and not msg.bad_components:
            return (), [], []
        up: list[Component] = []
        rejects: list[Component] = []
        for c in comps or ():
            if type(c) is Invoke:
                iid = c.invoke_id
                until = dlg.peer_invokes.get(iid)
                if until is not None and until > now:
                    rejects.append(
                        Reject(iid, ProblemType.INVOKE, InvokeProblem.DUPLICATE_INVOKE_ID)
                    )
                    continue
                if c.linked_id is not None and c.linked_id not in dlg.invokes:
                    # Q.774 §3.2.2.2: linked to no invocation of ours that is still active.
                    rejects.append(
                        Reject(iid, ProblemType.INVOKE, InvokeProblem.UNRECOGNIZED_LINKED_ID)
                    )
                    continue
                dlg.peer_invokes[iid] = now + self.invoke_timeout
                up.append(c)
            elif type(c) is ReturnResult:
                inv = dlg.invokes.get(c.invoke_id)
                if inv is None:
                    rejects.append(
                        Reject(
                            c.invoke_id,
                            ProblemType.RETURN_RESULT,
                            ReturnResultProblem.UNRECOGNIZED_INVOKE_ID,
                        )
                    )
                    continue
                if inv[0] == 2:  # class 2 reports failure only
                    self._release_invoke(dlg, c.invoke_id)
                    rejects.append(
                        Reject(
                            c.invoke_id,
                            ProblemType.RETURN_RESULT,
                            ReturnResultProblem.RETURN_RESULT_UNEXPECTED,
                        )
                    )
                    continue
                if c.last:
                    self._release_invoke(dlg, c.invoke_id)
                up.append(c)
            elif type(c) is ReturnError:
                inv = dlg.invokes.get(c.invoke_id)
                if inv is None:
                    rejects.append(
                        Reject(
                            c.invoke_id,
                            ProblemType.RETURN_ERROR,
                            ReturnErrorProblem.UNRECOGNIZED_INVOKE_ID,
                        )
                    )
                    continue
                self._release_invoke(dlg, c.invoke_id)
                if inv[0] == 3:  # class 3 reports success only
                    rejects.append(
                        Reject(
                            c.invoke_id,
                            ProblemType.RETURN_ERROR,
                            ReturnErrorProblem.RETURN_ERROR_UNEXPECTED,
                        )
                    )
                    continue
                up.append(c)
            else:  # Reject from the peer: it ends the rejected invoke of ours, if any
                assert isinstance(c, Reject)
                if c.invoke_id is not None and c.problem_type == ProblemType.INVOKE:
                    self._release_invoke(dlg, c.invoke_id)
                up.append(Reject(c.invoke_id, c.problem_type, c.problem_code, _reject_source(c)))
        events: list[TcapOutput] = []
        for p in msg.bad_components:
            if p.is_reject:  # a Reject is never rejected back: only the TC-user hears of it
                events.append(
                    TcComponentEvent(
                        dlg.did, Reject(p.invoke_id, p.problem_type, p.problem_code, "local")
                    )
                )
            else:
                rejects.append(Reject(p.invoke_id, p.problem_type, p.problem_code))
        for r in rejects:
            assert isinstance(r, Reject)
            events.append(
                TcComponentEvent(
                    dlg.did, Reject(r.invoke_id, r.problem_type, r.problem_code, "local")
                )
            )
        return tuple(up), events, rejects

    def _release_invoke(self, dlg: _Dialogue, iid: int) -> None:
        if dlg.invokes.pop(iid, None) is not None:
            self._timers.cancel(("inv", dlg.did, iid))

    # -- component sub-layer, sending side ----------------------------------------------------

    def _components_out(
        self, dlg: _Dialogue, comps: Sequence[Component], now: float
    ) -> tuple[bytes, list[TcapOutput]]:
        """Encode the TC-user's components, arming invocation timers (Q.774 §3.2.2.2)."""
        send: list[Component] = dlg.pending
        dlg.pending = []
        events: list[TcapOutput] = []
        for c in comps:
            match c:
                case Invoke():
                    if c.invoke_id in dlg.invokes:
                        events.append(
                            TcComponentEvent(
                                dlg.did,
                                Reject(
                                    c.invoke_id,
                                    ProblemType.INVOKE,
                                    InvokeProblem.DUPLICATE_INVOKE_ID,
                                    "local",
                                ),
                            )
                        )
                        continue
                    if c.op_class != 4:  # class 4 has no outcome: the ID is free once sent
                        dlg.invokes[c.invoke_id] = (c.op_class, c.opcode)
                        self._timers.start(
                            ("inv", dlg.did, c.invoke_id),
                            now,
                            c.timeout if c.timeout is not None else self.invoke_timeout,
                        )
                case ReturnResult():
                    if c.last:
                        dlg.peer_invokes.pop(c.invoke_id, None)
                case ReturnError():
                    dlg.peer_invokes.pop(c.invoke_id, None)
                case Reject():
                    if c.invoke_id is not None:
                        dlg.peer_invokes.pop(c.invoke_id, None)
                case _:
                    assert_never(c)
            send.append(c)
        try:
            return encode_components(send), events
        except CodecError:
            for c in send:  # undo the invoke state of a message that is not going out
                if type(c) is Invoke:
                    self._release_invoke(dlg, c.invoke_id)
            raise

    # -- TC-user requests ----------------------------------------------------------------------

    # Each action takes the request of its row's event (the table types them as TcRequest).

    def _req_begin(self, dlg: _Dialogue, req: TcRequest, now: float) -> list[TcapOutput]:
        assert type(req) is TcBegin
        did = dlg.did
        ac = dlg.ac
        dlg.state = _IS
        self._dialogues[did] = dlg
        try:
            portion = encode_dialogue_portion(Aarq(ac, req.user_information)) if ac else b""
            comps, events = self._components_out(dlg, req.components, now)
        except CodecError:
            self._free(dlg)
            raise
        self._timers.start(("idle", did), now, self.idle_timeout)
        data = encode_message(
            _BEGIN, otid=dlg.ltid, dialogue_portion=portion, component_portion=comps
        )
        return [self._nunitdata(dlg, data, True), *events]

    def _req_uni(self, req: TcUni) -> list[TcapOutput]:
        ac = req.application_context
        portion = encode_dialogue_portion(Audt(ac, req.user_information)) if ac else b""
        data = encode_message(
            _UNI,
            dialogue_portion=portion,
            component_portion=encode_components(req.components) or b"\x6c\x00",
        )
        return [NUnitdata(req.called, req.calling, data)]

    def _first_answer_portion(self, dlg: _Dialogue, req: TcContinue | TcEnd) -> bytes:
        """The AARE accepting the dialogue, iff the Begin had an AARQ (Q.774 §3.2.2.1)."""
        if dlg.state is not _IR or not dlg.aarq:
            return b""
        ac = req.application_context or dlg.ac
        assert ac is not None
        if req.user_information is None:
            cached = _AARE_CACHE.get(ac)
            if cached is None:
                cached = encode_dialogue_portion(Aare(ac))
                if len(_AARE_CACHE) < 64:
                    _AARE_CACHE[ac] = cached
            return cached
        return encode_dialogue_portion(Aare(ac, user_information=req.user_information))

    def _req_continue(self, dlg: _Dialogue, req: TcRequest, now: float) -> list[TcapOutput]:
        assert type(req) is TcContinue
        portion = self._first_answer_portion(dlg, req)
        comps, events = self._components_out(dlg, req.components, now)
        if dlg.state is _IR:
            if req.calling is not None:
                dlg.local = req.calling
            dlg.state = _A
            if req.application_context:
                dlg.ac = req.application_context
        self._timers.start(("idle", dlg.did), now, self.idle_timeout)
        return [
            self._to_peer(dlg, _CONTINUE, dialogue_portion=portion, component_portion=comps),
            *events,
        ]

    def _req_end(self, dlg: _Dialogue, req: TcRequest, now: float) -> list[TcapOutput]:
        assert type(req) is TcEnd
        portion = self._first_answer_portion(dlg, req)
        comps, events = self._components_out(dlg, req.components, now)
        self._free(dlg)
        return [
            self._to_peer(dlg, _END, dialogue_portion=portion, component_portion=comps),
            *events,
        ]

    def _req_local_end(self, dlg: _Dialogue, req: TcRequest, now: float) -> list[TcapOutput]:
        """Prearranged end, or an end/abort before the peer answered: nothing is sent."""
        self._free(dlg)
        return []

    def _req_u_abort(self, dlg: _Dialogue, req: TcRequest, now: float) -> list[TcapOutput]:
        assert type(req) is TcUAbort
        if dlg.state is _IR and dlg.aarq and req.result == DialogueResult.REJECT_PERMANENT:
            # A refused dialogue (Q.774 §3.2.2.1): Abort carrying an AARE reject-permanent.
            aare = Aare(
                req.application_context or dlg.ac or (),
                DialogueResult.REJECT_PERMANENT,
                DIAG_SOURCE_USER,
                req.diagnostic
                if req.diagnostic is not None
                else DialogueDiagnostic.NO_REASON_GIVEN,
                req.user_information,
            )
            portion = encode_dialogue_portion(aare)
        elif dlg.aarq:
            portion = encode_dialogue_portion(
                Abrt(AbortSource.DIALOGUE_SERVICE_USER, req.user_information)
            )
        else:
            portion = b""  # no dialogue negotiated: a U-Abort without dialogue portion
        self._free(dlg)
        return [self._to_peer(dlg, _ABORT, dialogue_portion=portion)]

    # -- sending -------------------------------------------------------------------------------

    def _nunitdata(self, dlg: _Dialogue, data: bytes, return_option: bool) -> NUnitdata:
        return NUnitdata(
            dlg.peer,
            dlg.local,
            data,
            dlg.protocol_class,
            return_option,
            dlg.sls,
            None,
            None,
            dlg.dpc,
        )

    def _to_peer(
        self,
        dlg: _Dialogue,
        mtype: MessageType,
        *,
        dialogue_portion: bytes = b"",
        component_portion: bytes = b"",
        p_abort_cause: int | None = None,
    ) -> NUnitdata:
        """One message of ``dlg`` toward the peer (Continue carries both TIDs, Q.773 §3.1)."""
        data = encode_message(
            mtype,
            otid=dlg.ltid if mtype is _CONTINUE else None,
            dtid=dlg.rtid,
            dialogue_portion=dialogue_portion,
            component_portion=component_portion,
            p_abort_cause=p_abort_cause,
        )
        return self._nunitdata(dlg, data, mtype is _CONTINUE)

    def _answer(self, ind: NUnitdata, otid: bytes, dialogue_portion: bytes) -> NUnitdata:
        """An Abort with ``dialogue_portion`` to the sender of ``ind``, outside any dialogue."""
        data = encode_message(_ABORT, dtid=otid, dialogue_portion=dialogue_portion)
        return NUnitdata(
            ind.calling,
            ind.called,
            data,
            ind.protocol_class,
            False,
            ind.sequence_control,
            None,
            None,
            ind.opc,
        )

    def _p_abort_to(self, ind: NUnitdata, otid: bytes, cause: PAbortCause) -> NUnitdata:
        data = encode_message(_ABORT, dtid=otid, p_abort_cause=cause)
        return NUnitdata(
            ind.calling,
            ind.called,
            data,
            ind.protocol_class,
            False,
            ind.sequence_control,
            None,
            None,
            ind.opc,
        )

    def _free(self, dlg: _Dialogue) -> None:
        if self._dialogues.pop(dlg.did, None) is None:
            return
        if dlg.counted:  # peer-opened: its dpc is still the OPC of its Begin (only a Begin
            # of ours takes its dpc from the first answer)
            _uncount(self._per_opc, dlg.dpc)
            _uncount(self._per_assoc, dlg.assoc)
        self._timers.cancel(("idle", dlg.did))
        for iid in dlg.invokes:
            self._timers.cancel(("inv", dlg.did, iid))
        dlg.invokes.clear()


_Received = Callable[[TcapLayer, _Dialogue, NUnitdata, TcapMessage, float], list[TcapOutput]]
_Requested = Callable[[TcapLayer, _Dialogue, TcRequest, float], list[TcapOutput]]
_L = TcapLayer
_E = TsmEvent


def _uncount(counts: dict[int, int], key: int | None) -> None:
    """One dialogue fewer for ``key`` in a share's counts (its entry gone at zero)."""
    if key is None:
        return
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


TSM_RECEIVED: TransitionTable[DialogueState, TsmEvent, _Received] = TransitionTable(
    "TCAP TSM",
    {
        (_IDLE, _E.BEGIN_RECEIVED): Transition(_L._begin_received, _IR),
        # Q.774 §3.2.1.1.2: our Begin's first answer fixes the peer's TID (an abnormal dialogue
        # portion instead ends it: idle)
        (_IS, _E.CONTINUE_RECEIVED): Transition(_L._ind_continue, _A),
        (_IS, _E.END_RECEIVED): Transition(_L._ind_end, _IDLE),
        (_IS, _E.ABORT_RECEIVED): Transition(_L._ind_abort, _IDLE),
        (_A, _E.CONTINUE_RECEIVED): Transition(_L._ind_continue, _A),
        (_A, _E.END_RECEIVED): Transition(_L._ind_end, _IDLE),
        (_A, _E.ABORT_RECEIVED): Transition(_L._ind_abort, _IDLE),
    },
)
"""The TSM (Q.774 Annex A) for the peer's messages. No row: a message for no transaction of ours
in that state, answered with a P-Abort "unrecognized transaction ID" (§3.2.1.1.5); in
initiation received the peer cannot know our TID yet."""

TSM_REQUESTED: TransitionTable[DialogueState, TsmEvent, _Requested] = TransitionTable(
    "TCAP TSM",
    {
        (_IDLE, _E.TC_BEGIN_REQ): Transition(_L._req_begin, _IS),
        (_IR, _E.TC_CONTINUE_REQ): Transition(_L._req_continue, _A),
        (_IR, _E.TC_END_REQ): Transition(_L._req_end, _IDLE),
        (_IR, _E.TC_U_ABORT_REQ): Transition(_L._req_u_abort, _IDLE),
        # the peer's TID is not known yet: ending or aborting is local only
        (_IS, _E.TC_END_REQ): Transition(_L._req_local_end, _IDLE),
        (_IS, _E.TC_U_ABORT_REQ): Transition(_L._req_local_end, _IDLE),
        (_A, _E.TC_CONTINUE_REQ): Transition(_L._req_continue, _A),
        (_A, _E.TC_END_REQ): Transition(_L._req_end, _IDLE),
        (_A, _E.TC_U_ABORT_REQ): Transition(_L._req_u_abort, _IDLE),
        **{
            (s, _E.TC_END_PREARRANGED_REQ): Transition(_L._req_local_end, _IDLE)
            for s in (_IR, _IS, _A)
        },
    },
)
"""The TSM (Q.774 Annex A) for the TC-user's requests. No row: TcapLog ``illegal_request``."""
