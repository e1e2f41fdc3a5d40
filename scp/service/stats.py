"""What the node counts for operations: one :class:`NodeStats` per process.

The composition root (``scp/app.py``) makes it and hands each part the section it counts in;
the metrics endpoint reads it. Plain integers, no I/O, no clock: a counter only ever grows, so
an exporter reports it as a Prometheus counter and a test reads it directly.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import assert_never

from scp.codecs.appctx import Protocol, lookup
from scp.codecs.opcodes import CapOpcode, InapOpcode, MapOpcode, spec_names
from scp.primitives import (
    ApplicationContext,
    Component,
    Invoke,
    Reject,
    ReturnError,
    ReturnResult,
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

__all__ = ["CallPathStats", "Histogram", "NodeStats", "ScreeningStats", "SignallingStats"]


@dataclass
class CallPathStats:
    """The call path and its database (:mod:`scp.flows.calls`, ``[database] budget``).

    Record kinds, as the keys of the two counters: ``missed_call``, ``callback``,
    ``voicemail``, ``cdr``.
    """

    # InitialDP answered with Continue because the subscriber could not be read within the
    # budget (database down, slow or failing): the call went on as if there were no service
    continued_without_database: int = 0
    # records of a call that were not written (the database failed or outlasted the budget
    # before anything was committed); each is logged with its content
    records_lost: Counter[str] = field(default_factory=Counter)
    # records whose write was cut off after it reached the server and could not be run again
    # safely: they may or may not be in the database; each is logged with its content
    records_in_doubt: Counter[str] = field(default_factory=Counter)
    # database work run again after an error that proved nothing had been committed (a stale
    # connection, a refused connect, a rolled-back transaction), or after a lost outcome of a
    # write that is safe to repeat (a missed call: migration 0250)
    db_retries: int = 0
    # self-service requests (PIN check, service on/off...) answered "not done" because the
    # database did not answer within the budget
    requests_failed: int = 0
    # the call path's database round trips that succeeded, by work ("read": the subscriber
    # and its settings for an InitialDP; "write": a call decision's records), each from taking
    # a connection to the answer: what a slow or busy PostgreSQL adds to a call
    db_latency: dict[str, Histogram] = field(
        default_factory=lambda: {"read": Histogram(), "write": Histogram()}
    )


# Operation names by protocol and local opcode, as the codecs know them (TS 29.078 §6
# CAP-operationcodes, ETS 300 374-1 §6.4, TS 29.002 §17.5): a finite set, so a peer cannot grow
# the label set; an opcode none of them knows is counted as "other".
_OPERATIONS: dict[Protocol, Mapping[int, str]] = {
    Protocol.CAP: spec_names(CapOpcode),
    Protocol.INAP: spec_names(InapOpcode),
    Protocol.MAP: spec_names(MapOpcode),
}

# InitialDP-to-answer and EventReportBCSM-to-answer latency buckets, seconds: the switch's
# "short" operation timer is 1-10 s (TS 29.078), [database] budget 1 s by default.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Histogram:
    """Histogram in the Prometheus model: :meth:`cumulative` gives, for each of ``bounds``, how
    many observations were at most that bound; ``count`` and ``total`` cover all of them.

    An observation counts once, in the first bucket that holds it (``_in[i]``, the last one
    past every bound): one bisection per call on the call path, the running sums are made when
    the metrics are read."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    count: int = 0
    total: float = 0.0
    _in: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1), repr=False)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self._in[bisect_left(self.bounds, value)] += 1

    def cumulative(self) -> list[int]:
        """Observations at most each bound, in the order of ``bounds``."""
        return list(accumulate(self._in[: len(self.bounds)]))


@dataclass(frozen=True, slots=True)
class _Labels:
    """An application context and its metric labels."""

    ac: ApplicationContext | None
    ac_label: str
    operations: Mapping[int, str]

    def operation(self, opcode: object) -> str:
        return self.operations.get(opcode, "other") if isinstance(opcode, int) else "other"


def _labels(ac: ApplicationContext | None) -> _Labels:
    known = lookup(ac) if ac is not None else None
    if known is None:
        return _Labels(ac, "other", {})
    # MAP context names carry no version (TS 29.002 §17.3.3); CAP and INAP names do
    name = f"{known.name}-v{known.version}" if known.protocol is Protocol.MAP else known.name
    return _Labels(ac, name, _OPERATIONS[known.protocol])


def ac_label(ac: ApplicationContext | None) -> str:
    """The metric label of an application context: its name when we know it, else "other"."""
    return _labels(ac).ac_label


def operation_label(ac: ApplicationContext | None, opcode: object) -> str:
    """The metric label of an operation in ``ac``: its name in that protocol, else "other"."""
    return _labels(ac).operation(opcode)


_NO_LABELS = _labels(None)  # a dialogue the counters did not see begin


@dataclass
class SignallingStats:
    """The TC boundary of the node (:class:`scp.app.Node` feeds every TC primitive that crosses
    it): dialogues by application context and outcome, operations in and out, aborts and
    rejects by cause, and the time from an InitialDP or EventReportBCSM to the SCP's answer.

    Outcomes: ``end`` (we ended it), ``end_received``, ``u_abort_sent``, ``u_abort_received``,
    ``p_abort``. Per-dialogue state lives only while the dialogue is open (TCAP bounds that by
    ``[tcap] max_dialogues``) and goes with its ending primitive.
    """

    # (application context, direction in|out) -> dialogues opened
    dialogues_opened: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (application context, outcome) -> dialogues ended
    dialogues_ended: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (application context, operation) -> invokes received / sent
    operations_in: Counter[tuple[str, str]] = field(default_factory=Counter)
    operations_out: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (direction, cause) -> TC-U-ABORT / TC-P-ABORT; cause: P-AbortCause or the AARE diagnostic
    aborts: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (direction, problem type, problem code) -> Reject components
    rejects: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    initial_dp_latency: Histogram = field(default_factory=Histogram)
    event_report_latency: Histogram = field(default_factory=Histogram)
    # moving average of the InitialDP-to-answer time (s), what [overload] watches
    initial_dp_latency_avg: float = 0.0
    # open dialogue -> its context with that context's labels, looked up once at its Begin:
    # every component of the dialogue is counted under them
    _ac: dict[int, _Labels] = field(default_factory=dict, repr=False)
    _waiting: dict[int, tuple[Histogram, float]] = field(default_factory=dict, repr=False)

    @property
    def open_dialogues(self) -> int:
        return len(self._ac)

    def ac_of(self, dialogue_id: int) -> ApplicationContext | None:
        """The application context of an open dialogue."""
        labels = self._ac.get(dialogue_id)
        return labels.ac if labels is not None else None

    def indication(self, ind: TcPrimitive, now: float) -> None:
        """A TC indication on its way to the TC-user, at ``now`` (monotonic seconds)."""
        match ind:
            case TcBegin():
                labels = self._ac[ind.dialogue_id] = _labels(ind.application_context)
                self.dialogues_opened[labels.ac_label, "in"] += 1
                self._components_in(ind.dialogue_id, labels, ind.components, now)
            case TcContinue():
                did = ind.dialogue_id
                self._components_in(did, self._ac.get(did, _NO_LABELS), ind.components, now)
            case TcEnd():
                self._ended(ind.dialogue_id, "end_received")
            case TcUAbort():
                self.aborts["in", _u_abort_cause(ind)] += 1
                self._ended(ind.dialogue_id, "u_abort_received")
            case TcPAbort():
                self.aborts["in", ind.cause.name.lower()] += 1
                self._ended(ind.dialogue_id, "p_abort")
            case TcComponentEvent(component=Reject() as reject):
                self._reject("local", reject)
            case TcComponentEvent() | TcUni() | TcNotice():
                pass  # a TC-L-CANCEL, a dialogue-less TC-UNI, a returned message: not counted
            case _:
                assert_never(ind)

    def _components_in(
        self, did: int, labels: _Labels, components: tuple[Component, ...], now: float
    ) -> None:
        for c in components:
            match c:
                case Invoke(opcode=opcode):
                    self.operations_in[labels.ac_label, labels.operation(opcode)] += 1
                    if opcode == CapOpcode.INITIAL_DP:
                        self._waiting[did] = (self.initial_dp_latency, now)
                    elif opcode == CapOpcode.EVENT_REPORT_BCSM:
                        # timed to the SCP's next request in the dialogue (Connect, Continue,
                        # ReleaseCall...); a notify-mode report the switch ends is not timed
                        self._waiting.setdefault(did, (self.event_report_latency, now))
                case Reject():
                    self._reject("in", c)
                case ReturnResult() | ReturnError():
                    pass
                case _:
                    assert_never(c)

    def request(self, req: TcPrimitive, now: float) -> bool:
        """A TC request from a TC-user on its way into TCAP, at ``now``; True when it is the
        answer to an InitialDP."""
        did = req.dialogue_id
        match req:
            case TcBegin():
                labels = self._ac[did] = _labels(req.application_context)
                self.dialogues_opened[labels.ac_label, "out"] += 1
            case TcContinue() | TcEnd() | TcUAbort():
                labels = self._ac.get(did, _NO_LABELS)
            case TcPAbort() | TcUni() | TcNotice() | TcComponentEvent():
                return False  # not a request a TC-user sends in a dialogue
            case _:
                assert_never(req)
        waiting = self._waiting.pop(did, None)
        answers_idp = False
        if waiting is not None:
            histogram, since = waiting
            took = max(0.0, now - since)
            histogram.observe(took)
            if histogram is self.initial_dp_latency:
                answers_idp = True
                self.initial_dp_latency_avg += (took - self.initial_dp_latency_avg) / 16
        if isinstance(req, TcUAbort):
            self.aborts["out", _u_abort_cause(req)] += 1
            self._ended(did, "u_abort_sent")
            return answers_idp
        for c in req.components:
            if isinstance(c, Invoke):
                self.operations_out[labels.ac_label, labels.operation(c.opcode)] += 1
            elif isinstance(c, Reject):
                self._reject("out", c)
        if isinstance(req, TcEnd):
            self._ended(did, "end")
        return answers_idp

    def _ended(self, did: int, outcome: str) -> None:
        self._waiting.pop(did, None)
        labels = self._ac.pop(did, None)
        if labels is not None:
            self.dialogues_ended[labels.ac_label, outcome] += 1

    def _reject(self, direction: str, r: Reject) -> None:
        self.rejects[direction, r.problem_type.name.lower(), r.problem_code] += 1


def _u_abort_cause(a: TcUAbort) -> str:
    if a.diagnostic is not None:
        return a.diagnostic.name.lower()
    return "user" if a.result is None else a.result.name.lower()


@dataclass
class ScreeningStats:
    """SS7 screening (:mod:`scp.service.screening`): messages refused, by protocol and reason."""

    # (protocol, operation, reason) -> refused TC-BEGINs, and M3UA DATA whose OPC is bound to
    # other peer addresses ([[m3ua.binding]]) as ("m3ua", "DATA", "opc_binding")
    refused: Counter[tuple[str, str, str]] = field(default_factory=Counter)


@dataclass
class NodeStats:
    """Every counter of one node process, by the part of the node that keeps it."""

    calls: CallPathStats = field(default_factory=CallPathStats)
    signalling: SignallingStats = field(default_factory=SignallingStats)
    screening: ScreeningStats = field(default_factory=ScreeningStats)
