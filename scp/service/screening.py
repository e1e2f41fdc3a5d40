"""SS7 screening of the dialogues peers open (GSMA FS.11 categories, the SigFW model).

A TC-BEGIN is admitted when its sender is on the allow-lists of its protocol (``[screening.map]``,
``[screening.cap]``, ``[screening.inap]``): the calling-party GT by prefix, the MTP originating
point code by value or range. Per operation where FS.11 matters for this SCP: MAP
AlertServiceCentre (TS 29.002 §12.4; v1 alertServiceCentreWithoutResult too) only from the
HLRs, NoteMM-Event (§12.7, M-CSI) only from the VLRs, ReadyForSM (§12.4.1, the same presence
event as an alert) from its own list, else the HLRs': a category 3 (location / presence)
message from anywhere else would make the SCP send SMS for a number it does not own. An empty
list allows anyone.

A TC-BEGIN without a dialogue portion (MAP v1, TS 29.002 §15.6.4: no application context at
all) is MAP when it is addressed to one of our MAP SSNs or invokes a MAP operation screened
here; it passes the same lists as its v2/v3 forms (the presence user serves it just the same).

Answer to a refused TC-BEGIN: TC-U-ABORT, the dialogue refused by the TC-user (Q.771
§3.1.2.2.2.4, Q.774 §3.2.2.1: an ABORT carrying an AARE reject-permanent, diagnostic
dialogue-service-user no-reason-given; TS 29.002 §15.6.3 maps MAP-OPEN refused to it). Not a
Reject: Q.773 §3.2.2 Reject reports a malformed or unexpected component, which would tell the
sender its message was wrong and invite a corrected retry; a policy refusal is about the
dialogue, and the reason is not given. Nothing else happens: no TC-user sees the dialogue.

:func:`screen` is the pure decision; :class:`Screener` adds what the node needs around it
(the counter, and a log line per sender per interval, never a flood), with ``now`` passed in.
The sender is the association the BEGIN came on, else its OPC, else its calling GT: the
calling GT is whatever the peer writes, and one rotating it must not get a line per GT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scp.codecs.appctx import Protocol, lookup
from scp.codecs.opcodes import MapOpcode, spec_names
from scp.config import ScreeningConfig, ScreeningList, parse_pc_range
from scp.primitives import (
    ApplicationContext,
    DialogueDiagnostic,
    DialogueResult,
    Invoke,
    TcBegin,
    TcUAbort,
)
from scp.service.stats import ScreeningStats, operation_label

__all__ = [
    "AllowList",
    "LogRation",
    "Refusal",
    "Screened",
    "Screener",
    "ScreeningPolicy",
    "refusal",
    "screen",
]

_MAP_NAMES = spec_names(MapOpcode)

# sources whose last log line is remembered; past this the oldest are forgotten (a flood from
# many spoofed GTs costs bounded memory, and at worst one more line per source)
MAX_LOG_SOURCES = 10_000


@dataclass(frozen=True, slots=True)
class AllowList:
    """One compiled allow-list: GT prefixes and inclusive point-code ranges (empty: anyone)."""

    calling_gt: tuple[str, ...] = ()
    opc: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, lst: ScreeningList, key: str, max_pc: int = 0xFFFFFF) -> AllowList:
        return cls(
            tuple(lst.allowed_calling_gt),
            tuple(parse_pc_range(pc, f"{key}.allowed_opc", max_pc) for pc in lst.allowed_opc),
        )

    def refuses(self, calling_gt: str | None, opc: int | None) -> str | None:
        """Why this list refuses the sender, or None."""
        if self.calling_gt:
            if calling_gt is None:
                return "no_calling_gt"  # routed on PC/SSN: nothing to match the list against
            if not calling_gt.startswith(self.calling_gt):
                return "calling_gt"
        if self.opc:
            if opc is None:
                return "no_opc"
            if not any(lo <= opc <= hi for lo, hi in self.opc):
                return "opc"
        return None


@dataclass(frozen=True, slots=True)
class ScreeningPolicy:
    """The allow-lists by protocol, MAP's by operation (local opcode), and the SSNs on which
    a TC-BEGIN without application context is MAP (v1)."""

    by_protocol: dict[Protocol, AllowList] = field(default_factory=dict)
    map_operations: dict[int, AllowList] = field(default_factory=dict)
    map_ssns: frozenset[int] = frozenset()

    @classmethod
    def of(cls, cfg: ScreeningConfig, map_ssns: tuple[int, ...] = ()) -> ScreeningPolicy:
        m = cfg.map
        alert = AllowList.of(m.alert_service_centre, "screening.map.alert_service_centre")
        # ReadyForSM makes the subscriber present like an alert: its own list, else the HLRs'
        ready = (
            alert
            if m.ready_for_sm.is_open
            else AllowList.of(m.ready_for_sm, "screening.map.ready_for_sm")
        )
        return cls(
            by_protocol={
                Protocol.MAP: AllowList.of(m, "screening.map"),
                Protocol.CAP: AllowList.of(cfg.cap, "screening.cap"),
                Protocol.INAP: AllowList.of(cfg.inap, "screening.inap"),
            },
            map_operations={
                MapOpcode.ALERT_SERVICE_CENTRE: alert,
                MapOpcode.ALERT_SERVICE_CENTRE_WITHOUT_RESULT: alert,
                MapOpcode.READY_FOR_SM: ready,
                MapOpcode.NOTE_MM_EVENT: AllowList.of(
                    m.note_mm_event, "screening.map.note_mm_event"
                ),
            },
            map_ssns=frozenset(map_ssns),
        )

    def protocol(
        self, ac: ApplicationContext | None, called_ssn: int | None, opcodes: tuple[object, ...]
    ) -> Protocol | None:
        """The protocol whose lists apply: the context's, or MAP for a BEGIN without one (v1)
        to a MAP SSN or invoking a screened MAP operation; None for a context we do not know."""
        if ac is not None:
            known = lookup(ac)
            return known.protocol if known is not None else None
        if called_ssn in self.map_ssns or any(op in self.map_operations for op in opcodes):
            return Protocol.MAP
        return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a TC-BEGIN was refused: its protocol, the operation at fault (``*``: the
    protocol's list), and ``calling_gt`` / ``opc`` / ``no_calling_gt`` / ``no_opc``."""

    protocol: str
    operation: str
    reason: str


def screen(
    policy: ScreeningPolicy,
    *,
    ac: ApplicationContext | None,
    calling_gt: str | None,
    opc: int | None,
    opcodes: tuple[object, ...],
    called_ssn: int | None = None,
) -> Refusal | None:
    """The decision for one TC-BEGIN: None to admit it. A context we do not know is not
    screened here (the dispatcher refuses it: application-context-name-not-supported); no
    context at all is MAP v1 on a MAP SSN (see :meth:`ScreeningPolicy.protocol`)."""
    proto = policy.protocol(ac, called_ssn, opcodes)
    if proto is None:
        return None
    whole = policy.by_protocol.get(proto)
    if whole is not None and (why := whole.refuses(calling_gt, opc)) is not None:
        return Refusal(proto.value, "*", why)
    if proto is Protocol.MAP:
        for op in opcodes:
            if not isinstance(op, int) or (lst := policy.map_operations.get(op)) is None:
                continue
            if (why := lst.refuses(calling_gt, opc)) is not None:
                # v1 has no context to name the operation by: MAP's own name for it
                label = operation_label(ac, op) if ac is not None else _MAP_NAMES.get(op, "other")
                return Refusal(proto.value, label, why)
    return None


def refusal(begin: TcBegin) -> TcUAbort:
    """The answer to a refused TC-BEGIN: the dialogue refused by the user (see module doc); a
    BEGIN without a dialogue portion gets a U-ABORT without one (TCAP decides)."""
    if begin.application_context is None:
        return TcUAbort(begin.dialogue_id)
    return TcUAbort(
        begin.dialogue_id,
        application_context=begin.application_context,
        result=DialogueResult.REJECT_PERMANENT,
        diagnostic=DialogueDiagnostic.NO_REASON_GIVEN,
    )


@dataclass(frozen=True, slots=True)
class Screened:
    """A refused TC-BEGIN: the answer to send, why, who sent it (association, OPC and calling
    GT as known), and whether to log it now (``suppressed``: refusals of that sender not logged
    since its last line)."""

    answer: TcUAbort
    refusal: Refusal
    source: str
    log: bool
    suppressed: int


class LogRation:
    """At most one log line per source per ``interval`` seconds (``now`` passed in), in bounded
    memory: :meth:`due` says whether to log a refusal of ``source`` now."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        # source -> (time of its last log line, refusals since then not logged)
        self._logged: dict[str, tuple[float, int]] = {}

    def due(self, source: str, now: float) -> int | None:
        """None: not now (counted); else log now, saying how many were not logged since the
        source's last line."""
        last = self._logged.get(source)
        if last is not None and now - last[0] < self.interval:
            self._logged[source] = (last[0], last[1] + 1)
            return None
        if last is None and len(self._logged) >= MAX_LOG_SOURCES:
            self._forget(now)
        self._logged[source] = (now, 0)
        return last[1] if last is not None else 0

    def _forget(self, now: float) -> None:
        """Make room: sources quiet for an interval go first, then the oldest half."""
        quiet = [s for s, (t, _n) in self._logged.items() if now - t >= self.interval]
        for s in quiet:
            del self._logged[s]
        if len(self._logged) >= MAX_LOG_SOURCES:
            for s in list(self._logged)[: MAX_LOG_SOURCES // 2]:
                del self._logged[s]


class Screener:
    """:func:`screen` for the node: counts each refusal in ``stats`` and rations the log lines
    to one per source per ``log_interval`` seconds."""

    def __init__(
        self,
        cfg: ScreeningConfig,
        *,
        stats: ScreeningStats | None = None,
        map_ssns: tuple[int, ...] = (),
    ) -> None:
        self.policy = ScreeningPolicy.of(cfg, map_ssns)
        self.stats = stats if stats is not None else ScreeningStats()
        self.ration = LogRation(cfg.log_interval)

    def check(
        self, begin: TcBegin, *, opc: int | None, now: float, assoc: int | None = None
    ) -> Screened | None:
        gt = begin.calling.gt.digits if begin.calling.gt is not None else None
        opcodes = tuple(c.opcode for c in begin.components if type(c) is Invoke)
        why = screen(
            self.policy,
            ac=begin.application_context,
            calling_gt=gt,
            opc=opc,
            opcodes=opcodes,
            called_ssn=begin.called.ssn,
        )
        if why is None:
            return None
        self.stats.refused[why.protocol, why.operation, why.reason] += 1
        source = " ".join(
            f"{name} {value}"
            for name, value in (("assoc", assoc), ("opc", opc), ("gt", gt))
            if value is not None
        )
        # rationed by the first the node knows of association, OPC, GT (the most trustworthy)
        if assoc is not None:
            sender = f"assoc {assoc}"
        elif opc is not None:
            sender = f"opc {opc}"
        else:
            sender = f"gt {gt}"
        suppressed = self.ration.due(sender, now)
        if suppressed is None:
            return Screened(refusal(begin), why, source, False, 0)
        return Screened(refusal(begin), why, source, True, suppressed)
