"""The MAP TC-user: subscriber presence in, HLR alert registration out.

Spec: 3GPP TS 29.002 - §12.5 alertServiceCentre (shortMsgAlertContext v2, op 64, answered with
an empty result) and alertServiceCentreWithoutResult (v1, op 49, no result); §8.11.2
noteMM-Event (mm-EventReportingContext v3, op 89; MM-Code 0/1 location update, 2 IMSI attach
mean present, 3/4 detach mean absent; result NoteMM-Event-Res); §12.7 readyForSM (mwdMngt, op
66); §12.3 sendRoutingInfoForSM (45) and §12.4 reportSM-DeliveryStatus (47) in
shortMsgGatewayContext, which we originate toward the HLR so that it keeps our SC address in
the message waiting data (TS 23.040 §10.2) and alerts us when the callee is back. Dialogue
rules: Q.771/Q.773 via the TCAP core; MAP version negotiation §5.3 / §15.6.3 - a proposed
context we do not serve is refused in the AARE with ``application-context-name-not-supported``
naming the version we do serve (:func:`scp.codecs.appctx.map_ac_decision`), so the peer falls
back.

Inbound: :func:`plan_begin` is the pure decision (what to answer, which presence events to
record); :class:`MapUser` records the events in one database transaction
(:func:`scp.flows.notify.on_present`) and only then answers - a database failure is
answered with ``systemFailure`` (error 34), so the HLR keeps our address and alerts again.

Outbound: :func:`run_alert_originator` claims ``hlr_alert`` rows (``FOR UPDATE SKIP LOCKED``,
any number of nodes) and runs SRI-SM then ReportSM-DeliveryStatus(absentSubscriber) per callee,
falling back to the version the HLR names in an AARE refusal, with retry and backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, assert_never

import asyncpg
import structlog

from scp.codecs import map as mapc
from scp.codecs import ops
from scp.codecs.appctx import Protocol as AcProtocol
from scp.codecs.appctx import lookup, map_ac_decision
from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import CHINA, AddressString, NatureOfAddress
from scp.codecs.opcodes import MapErrorCode as Err
from scp.codecs.opcodes import MapOpcode as Op
from scp.flows import notify as notifications
from scp.primitives import (
    ApplicationContext,
    DialogueDiagnostic,
    DialogueResult,
    GlobalTitle,
    Invoke,
    LCancel,
    ProblemType,
    Reject,
    ReturnError,
    ReturnResult,
    RoutingIndicator,
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
from scp.state import notify_store as store

if TYPE_CHECKING:
    from scp.config import Config

log = structlog.get_logger("scp.map")

__all__ = [
    "MapUser",
    "PresenceEvent",
    "BeginPlan",
    "plan_begin",
    "build_map_user",
    "run_alert_originator",
]

# Errors after which asking again cannot help (TS 29.002 §17.6): the HLR does not know or
# will not serve this subscriber for SMS.
PERMANENT_ERRORS = frozenset(
    {
        Err.UNKNOWN_SUBSCRIBER,
        Err.TELESERVICE_NOT_PROVISIONED,
        Err.CALL_BARRED,
        Err.FACILITY_NOT_SUPPORTED,
    }
)
# What the HLR / VLR tells us: alertServiceCentre v2 and its v1 form without result,
# NoteMM-Event, ReadyForSM.
_ALERTS = frozenset({Op.ALERT_SERVICE_CENTRE, Op.ALERT_SERVICE_CENTRE_WITHOUT_RESULT})
_SERVED = _ALERTS | {Op.NOTE_MM_EVENT, Op.READY_FOR_SM}

INVOKE_UNRECOGNIZED_OPERATION = 1  # Q.773 §3.2.2.1 InvokeProblem
INVOKE_MISTYPED_PARAMETER = 2

MM_PRESENT = frozenset({0, 1, 2})  # locationUpdateInSameVLR, ...ToOtherVLR, imsi-Attach
MM_ABSENT = frozenset({3, 4})  # ms-initiatedIMSI-Detach, networkInitiatedIMSI-Detach

SHORT_MSG_GATEWAY = (0, 4, 0, 0, 1, 0, 20)  # + version


# ---------------------------------------------------------------------------------------------
# Inbound: the pure decision
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """Evidence about one subscriber from a MAP operation (by MSISDN, or IMSI for ReadyForSM)."""

    present: bool
    source: str  # presence.source: alert-sc | note-mm-event
    msisdn: str | None = None
    imsi: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class BeginPlan:
    """How to answer a TC-BEGIN: ``refuse`` now, or record ``events`` then end the dialogue
    with ``ok`` components (``failed`` ones if the record could not be written)."""

    dialogue_id: int
    application_context: ApplicationContext | None
    refuse: TcUAbort | None = None
    events: tuple[PresenceEvent, ...] = ()
    ok: tuple[ReturnResult | ReturnError | Reject, ...] = ()
    failed: tuple[ReturnResult | ReturnError | Reject, ...] = ()

    def end(self, components: tuple[ReturnResult | ReturnError | Reject, ...]) -> TcEnd:
        return TcEnd(
            dialogue_id=self.dialogue_id,
            application_context=self.application_context,
            components=components,
        )


def is_map_context(begin: TcBegin, map_ssns: tuple[int, ...]) -> bool:
    """Whether this TC-BEGIN is ours: a MAP context, or none at all (v1) on a MAP SSN."""
    ac = begin.application_context
    if ac is None:
        return begin.called.ssn in map_ssns
    known = lookup(ac)
    if known is not None:
        return known.protocol is AcProtocol.MAP
    # an unknown MAP context (e.g. a version we lack): ours to refuse with the right AARE
    return len(ac) == 8 and tuple(ac[:6]) == (0, 4, 0, 0, 1, 0) and ac[6] not in (50, 51, 52)


def _reject(invoke_id: int, code: int) -> Reject:
    return Reject(invoke_id=invoke_id, problem_type=ProblemType.INVOKE, problem_code=code)


def _e164(a: AddressString) -> str:
    """MSISDN as stored (E.164): an HLR or VLR may send it national (TS 29.002 §17.7.8 AddressString
    nature of address 2) or unknown; Q.763 natures are what the numbering plan understands."""
    nai = {1: NatureOfAddress.INTERNATIONAL, 2: NatureOfAddress.NATIONAL}.get(
        a.nai, NatureOfAddress.UNKNOWN
    )
    return CHINA.to_e164(a.digits, nai)


def plan_begin(begin: TcBegin) -> BeginPlan:
    """The answer to a MAP TC-BEGIN (pure: no database, no clock; never raises)."""
    ac = begin.application_context
    decision = map_ac_decision(ac)
    did = begin.dialogue_id
    if not decision.accept:
        return BeginPlan(
            did,
            ac,
            refuse=TcUAbort(
                dialogue_id=did,
                application_context=decision.ac or ac,
                result=DialogueResult.REJECT_PERMANENT,
                diagnostic=DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED,
            ),
        )
    version = decision.version or 1
    events: list[PresenceEvent] = []
    ok: list[ReturnResult | ReturnError | Reject] = []
    failed: list[ReturnResult | ReturnError | Reject] = []
    for comp in begin.components:
        if type(comp) is not Invoke:
            continue  # results/errors/rejects in a TC-BEGIN answer nothing we asked
        iid, op = comp.invoke_id, comp.opcode
        if op not in _SERVED:
            rej = _reject(iid, INVOKE_UNRECOGNIZED_OPERATION)
            ok.append(rej)
            failed.append(rej)
            continue
        try:
            arg = mapc.CODEC.decode_arg(op, comp.parameter, ac=ac)
        except (DecodeError, EncodeError):
            arg = None
        except Exception:  # noqa: BLE001 - a core answers, never raises (STYLE habit 3)
            arg = None
        if op in _ALERTS and isinstance(arg, ops.AlertServiceCentre):
            events.append(
                PresenceEvent(
                    True,
                    "alert-sc",
                    msisdn=_e164(arg.msisdn),
                    detail=f"sc={arg.service_centre_address.digits}",
                )
            )
            if op == Op.ALERT_SERVICE_CENTRE:
                # RETURN RESULT TRUE, no value: the TCAP codec sends the invoke ID alone
                ok.append(ReturnResult(invoke_id=iid, opcode=op))
                failed.append(ReturnError(invoke_id=iid, error_code=Err.SYSTEM_FAILURE))
            continue
        if op == Op.NOTE_MM_EVENT and isinstance(arg, ops.NoteMMEvent):
            if arg.event_met in MM_PRESENT or arg.event_met in MM_ABSENT:
                events.append(
                    PresenceEvent(
                        arg.event_met in MM_PRESENT,
                        "note-mm-event",
                        msisdn=_e164(arg.msisdn),
                        imsi=arg.imsi,
                        detail=f"mm-code={arg.event_met}",
                    )
                )
            # RESULT NoteMM-Event-Res is mandatory (TS 29.002 §8.11.2), here empty:
            # NoteMM-Event-Res ::= SEQUENCE { extensionContainer OPTIONAL, ... }
            res = mapc.CODEC.encode_result(op, None, ac=ac)
            ok.append(ReturnResult(invoke_id=iid, opcode=op, parameter=res))
            failed.append(ReturnError(invoke_id=iid, error_code=Err.SYSTEM_FAILURE))
            continue
        if op == Op.READY_FOR_SM and isinstance(arg, ops.ReadyForSM):
            events.append(
                PresenceEvent(
                    True,
                    "alert-sc",
                    imsi=arg.imsi,
                    detail=f"ready-for-sm reason={arg.alert_reason}",
                )
            )
            # v3: an empty ReadyForSM-Res; v2 defines no result value (invoke ID alone)
            ok.append(
                ReturnResult(
                    invoke_id=iid, opcode=op, parameter=b"\x30\x00" if version >= 3 else None
                )
            )
            failed.append(ReturnError(invoke_id=iid, error_code=Err.SYSTEM_FAILURE))
            continue
        rej = _reject(iid, INVOKE_MISTYPED_PARAMETER)
        ok.append(rej)
        failed.append(rej)
    return BeginPlan(did, ac, None, tuple(events), tuple(ok), tuple(failed))


# ---------------------------------------------------------------------------------------------
# Outbound dialogues: outcome of one request toward the HLR
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a dialogue we opened ended, as far as our one invoke is concerned."""

    kind: str  # result | error | refused | abort | reject | timeout
    parameter: bytes | None = None
    error_code: int | tuple[int, ...] | None = None
    application_context: ApplicationContext | None = None


class AlertFailed(Exception):
    """A registration attempt failed; ``permanent`` ones are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


EventSink = Callable[[tuple[PresenceEvent, ...]], Awaitable[None]]


@dataclass
class MapUser:
    """DialogueUser for MAP on our SSNs; also the owner of the dialogues we open to the HLR."""

    send: Callable[[TcPrimitive], None]
    new_dialogue_id: Callable[[MapUser], int]
    record: EventSink
    map_ssns: tuple[int, ...] = (147, 8)
    own_gt: str = "8613800000"
    sc_ssn: int = 8
    _waiters: dict[int, asyncio.Future[Outcome]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- DialogueUser ----------------------------------------------------------------------------

    def accepts(self, begin: TcBegin) -> bool:
        return is_map_context(begin, self.map_ssns)

    def handle(self, ind: TcPrimitive) -> list[TcPrimitive]:
        try:
            match ind:
                case TcBegin():
                    return self._begin(ind)
                case TcContinue() | TcEnd() | TcUAbort() | TcPAbort() | TcNotice():
                    return self._settle(ind)
                case TcComponentEvent():
                    return self._settle(ind)
                case TcUni():
                    return []  # no dialogue: nothing of ours waits on it
                case _:
                    assert_never(ind)
        except Exception:  # noqa: BLE001 - never raise into the node
            log.exception("map.user_failed", indication=type(ind).__name__)
        return []

    def _begin(self, begin: TcBegin) -> list[TcPrimitive]:
        plan = plan_begin(begin)
        if plan.refuse is not None:
            log.info(
                "map.ac_refused",
                ac=begin.application_context,
                offered=plan.refuse.application_context,
            )
            return [plan.refuse]
        if not plan.events:
            return [plan.end(plan.ok)]
        task = asyncio.get_running_loop().create_task(self._record_then_answer(plan))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return []

    async def _record_then_answer(self, plan: BeginPlan) -> None:
        try:
            await self.record(plan.events)
            comps = plan.ok
        except Exception as e:  # noqa: BLE001 - the HLR gets systemFailure and retries
            log.error("map.record_failed", error=repr(e), events=len(plan.events))
            comps = plan.failed
        self.send(plan.end(comps))

    def _settle(
        self, ind: TcContinue | TcEnd | TcUAbort | TcPAbort | TcNotice | TcComponentEvent
    ) -> list[TcPrimitive]:
        """Resolve the request waiting on this dialogue; requests that close it on our side."""
        fut = self._waiters.get(ind.dialogue_id)
        if fut is None or fut.done():
            return []
        outcome: Outcome | None = None
        close: list[TcPrimitive] = []
        match ind:
            case TcEnd() | TcContinue():
                for c in ind.components:
                    match c:
                        case ReturnResult():
                            outcome = Outcome("result", parameter=c.parameter)
                        case ReturnError():
                            outcome = Outcome(
                                "error", parameter=c.parameter, error_code=c.error_code
                            )
                        case Reject():
                            outcome = Outcome("reject", error_code=c.problem_code)
                if outcome is None and isinstance(ind, TcEnd):
                    outcome = Outcome("abort", error_code=None)  # ended with no answer
                if outcome is not None and isinstance(ind, TcContinue):
                    close.append(TcEnd(dialogue_id=ind.dialogue_id))
            case TcUAbort():
                if ind.diagnostic is DialogueDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED:
                    outcome = Outcome("refused", application_context=ind.application_context)
                else:
                    outcome = Outcome("abort")
            case TcPAbort():
                outcome = Outcome("abort", error_code=ind.cause)
            case TcNotice():
                outcome = Outcome("abort", error_code=ind.reason)
            case TcComponentEvent():
                if isinstance(ind.component, LCancel):
                    outcome = Outcome("timeout")
                    # the HLR never answered: free the transaction now, not at the idle timer
                    close.append(TcUAbort(dialogue_id=ind.dialogue_id))
            case _:
                assert_never(ind)
        if outcome is not None:
            fut.set_result(outcome)
        return close

    # -- origination -----------------------------------------------------------------------------

    async def request(
        self,
        *,
        called: SccpAddress,
        ac: ApplicationContext,
        opcode: int,
        parameter: bytes | None,
        timeout: float,
    ) -> Outcome:
        """Open a dialogue with one invoke; the outcome (never raises for network trouble)."""
        loop = asyncio.get_running_loop()
        did = self.new_dialogue_id(self)
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._waiters[did] = fut
        calling = SccpAddress(ri=RoutingIndicator.GT, ssn=self.sc_ssn, gt=GlobalTitle(self.own_gt))
        try:
            self.send(
                TcBegin(
                    dialogue_id=did,
                    called=called,
                    calling=calling,
                    application_context=ac,
                    components=(
                        Invoke(
                            invoke_id=1,
                            opcode=opcode,
                            parameter=parameter,
                            op_class=1,
                            timeout=timeout,
                        ),
                    ),
                )
            )
            try:
                return await asyncio.wait_for(fut, timeout + 1.0)
            except TimeoutError:
                self.send(TcUAbort(dialogue_id=did))
                return Outcome("timeout")
        finally:
            self._waiters.pop(did, None)

    async def register(
        self, msisdn: str, *, hlr: SccpAddress, sc_address: str, timeout: float
    ) -> str:
        """SRI-SM then ReportSM-DeliveryStatus(absentSubscriber); what the HLR said.

        Raises :class:`AlertFailed` if the HLR could not be reached or refused.
        """
        version = 3
        subscriber = AddressString(msisdn, nai=1, npi=1)
        sc = AddressString(sc_address, nai=1, npi=1)
        sri_note = ""
        for op in (
            ops.SendRoutingInfoForSM(subscriber, sc, sm_rp_pri=False),
            ops.ReportSMDeliveryStatus(subscriber, sc, sm_delivery_outcome=1),
        ):
            for _ in range(3):  # the proposed version, then the one an AARE refusal names
                ac = SHORT_MSG_GATEWAY + (version,)
                opcode, param = mapc.CODEC.encode_arg(op, ac=ac)
                assert isinstance(opcode, int)
                out = await self.request(
                    called=hlr, ac=ac, opcode=opcode, parameter=param, timeout=timeout
                )
                if out.kind == "refused" and out.application_context is not None:
                    offered = out.application_context
                    if (
                        len(offered) == 8
                        and tuple(offered[:7]) == SHORT_MSG_GATEWAY
                        and offered[7] < version
                    ):
                        version = offered[7]
                        continue
                break
            if out.kind == "result":
                if opcode == Op.SEND_ROUTING_INFO_FOR_SM:
                    sri_note = "sri-sm result"
                continue
            if (
                out.kind == "error"
                and opcode == Op.SEND_ROUTING_INFO_FOR_SM
                and out.error_code == Err.ABSENT_SUBSCRIBER_SM
            ):
                sri_note = "sri-sm absentSubscriberSM"
                continue
            permanent = out.kind == "error" and out.error_code in PERMANENT_ERRORS
            raise AlertFailed(
                f"{'SRI-SM' if opcode == Op.SEND_ROUTING_INFO_FOR_SM else 'ReportSM-DS'} "
                f"{out.kind} {out.error_code if out.error_code is not None else ''}".strip(),
                permanent=permanent or out.kind == "refused",
            )
        return f"{sri_note}, registered v{version}"

    @property
    def busy(self) -> bool:
        """Some dialogue's database work is still in flight (its answer not yet sent)."""
        return bool(self._tasks)

    async def drain(self) -> None:
        """Wait for answers still being recorded (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# Wiring
# ---------------------------------------------------------------------------------------------


def database_sink(pool: asyncpg.Pool, cfg: Config, clock: Callable[[], dt.datetime]) -> EventSink:
    """Record presence events in one transaction (queueing what waited for them), at the
    time ``clock`` (the node's wall clock) tells, within ``[database] budget``: past it the
    HLR / VLR gets systemFailure and reports again (the SMS it releases are queued under
    idempotency keys, so a transaction that committed after all sends nothing twice)."""

    async def record(events: tuple[PresenceEvent, ...]) -> None:
        at = clock()
        async with (
            asyncio.timeout(cfg.database.budget),
            pool.acquire() as conn,
            conn.transaction(),
        ):
            for e in events:
                msisdn = e.msisdn
                if e.imsi and not msisdn:
                    msisdn = await store.msisdn_by_imsi(conn, e.imsi)
                if not msisdn:
                    continue  # not our subscriber: nothing to record, still answered
                if e.present:
                    await notifications.on_present(
                        conn, msisdn=msisdn, source=e.source, at=at, cfg=cfg, detail=e.detail
                    )
                else:
                    await notifications.on_absent(
                        conn, msisdn=msisdn, source=e.source, at=at, detail=e.detail
                    )

    return record


class MapNode(Protocol):
    """What the MAP user needs of the node (:class:`scp.app.Node`): sending TC requests, a
    dialogue ID for each dialogue it opens, and the wall clock of business events."""

    def tc_send(self, req: TcPrimitive) -> None: ...

    def new_dialogue_id(self, user: MapUser) -> int: ...

    def wall_now(self) -> dt.datetime: ...


def build_map_user(node: MapNode, pool: asyncpg.Pool, cfg: Config) -> MapUser:
    """The MAP DialogueUser for ``Node(users=...)``; ``node`` gives tc_send / new_dialogue_id
    and its wall clock (``wall_now``)."""
    return MapUser(
        send=node.tc_send,
        new_dialogue_id=node.new_dialogue_id,
        record=database_sink(pool, cfg, node.wall_now),
        map_ssns=(cfg.sccp.ssn.map, cfg.sccp.ssn.sc),
        own_gt=cfg.sccp.global_title,
        sc_ssn=cfg.sccp.ssn.sc,
    )


def hlr_address(cfg: Config, msisdn: str) -> SccpAddress:
    """The HLR as SCCP called party: its configured GT, else the MSISDN (routed by the STP)."""
    return SccpAddress(
        ri=RoutingIndicator.GT, ssn=cfg.notify.hlr_ssn, gt=GlobalTitle(cfg.notify.hlr_gt or msisdn)
    )


async def alert_once(
    user: MapUser,
    pool: asyncpg.Pool,
    cfg: Config,
    *,
    clock: Callable[[], dt.datetime],
    limit: int = 32,
) -> int:
    """Claim the registrations due at ``clock()`` and run them; how many were claimed."""
    n = cfg.notify
    now = clock()
    lease = dt.timedelta(seconds=2 * (n.alert_timeout + 1.0) * 3 + 5)
    claimed = await store.claim_hlr_alerts(pool, limit, now, lease)

    async def one(msisdn: str, attempt: int) -> None:
        try:
            note = await user.register(
                msisdn,
                hlr=hlr_address(cfg, msisdn),
                sc_address=n.sc_address or cfg.sccp.global_title,
                timeout=n.alert_timeout,
            )
        except AlertFailed as e:
            if e.permanent or attempt >= n.alert_max_attempts:
                log.warning("map.alert_failed", msisdn=msisdn, attempts=attempt, error=str(e))
                await store.hlr_alert_failed(pool, msisdn, str(e))
            else:
                delay = n.alert_retry * 2 ** (attempt - 1)
                await store.hlr_alert_retry(
                    pool, msisdn, str(e), clock() + dt.timedelta(seconds=delay)
                )
            return
        log.info("map.alert_registered", msisdn=msisdn, detail=note)
        await store.hlr_alert_registered(pool, msisdn, clock())

    await asyncio.gather(*(one(m, a) for m, a in claimed))
    return len(claimed)


async def run_alert_originator(
    user: MapUser,
    pool: asyncpg.Pool,
    cfg: Config,
    *,
    clock: Callable[[], dt.datetime],
    ready: Callable[[], bool] = lambda: True,
    stop: asyncio.Event | None = None,
) -> None:
    """Until ``stop``: every ``[notify].alert_poll`` s, run due HLR registrations (if enabled
    and ``ready()``, e.g. ``lambda: node.stack.m3ua.is_active``), timed by the wall
    ``clock``."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        claimed = 0
        if cfg.notify.alert_via_hlr and ready():
            try:
                claimed = await alert_once(user, pool, cfg, clock=clock)
            except Exception as e:  # noqa: BLE001 - database, driver or a bug: the loop goes on
                log.error("map.alert_loop_failed", error=repr(e))
        if not claimed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), cfg.notify.alert_poll)
