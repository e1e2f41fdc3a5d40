"""Call handling executor: the CAP / INAP TC-user that carries out :mod:`scp.service.calls`.

ARCHITECTURE §2 / §4: the service decides, this module loads what the decision needs and
carries the actions out, in that order: decode the components (``scp.codecs.cap`` /
``scp.codecs.inap``, by the dialogue's application context: TS 29.078 §6.1.3 / §6.2.3,
ETS 300 374-1 §5), load the subscriber, blacklist verdict and tariffs from PostgreSQL, call the
pure session, write in ONE transaction what must be written (missed call + notification hook,
callback, voicemail, CDRs), then send the operations as TC requests (Q.771 §3).

Per dialogue, indications are handled strictly in arrival order (one asyncio task drains a
queue per call; the media server's assist dialogue joins its call's queue once its
AssistRequestInstructions names the correlation ID). TC-U-ABORT, TC-P-ABORT, TC-END and the
TCAP idle timer end a session; a TC-CONTINUE for a dialogue we no longer know gets a
TC-U-ABORT. Nothing raises into the node: a failure becomes a protocol answer (Continue when
the InitialDP could not be served, TC-U-ABORT on the dialogues of a session that broke).

The database never holds a call past ``[database] budget`` per message, well inside the
switch's operation timer: the InitialDP's reads (tariffs, subscriber) run again on another
connection after a transient failure until the budget is spent, then the call gets Continue
(it proceeds as if there were no service); an EventReportBCSM's records are written again
after an error that proves nothing was committed (or, for a write holding a missed call, after
any lost outcome: migration 0250 makes it once), then the call is routed all the same and
what was not written is logged with its content and counted (:class:`CallPathStats`).
The calls handled in one pass of the event loop share their database work: the InitialDPs'
subscriber reads are one statement (:class:`_CalleeReads`), and so are the EventReportBCSMs'
missed calls, with one commit (:class:`_MissedCallWrites`), each call keeping its budget and
its retry rules.
PostgreSQL coming back needs nothing from anyone: the next attempt opens a new connection.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, assert_never

import asyncpg
import structlog

from scp.codecs import appctx, cap, inap, ops
from scp.codecs.errors import CodecError
from scp.codecs.opcodec import OperationCodec
from scp.codecs.opcodes import CapErrorCode  # INAP CS-1 has the same codes (Q.1218)
from scp.codecs.opcodes import CapOpcode as Op
from scp.flows import notify as notify_flow
from scp.flows import provisioning as P
from scp.flows import voicemail as voicemail_flow
from scp.primitives import (
    Component,
    Invoke,
    LCancel,
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
from scp.service import calls as C
from scp.service.calls import CallSession, CallSettings
from scp.service.notifications import local_day
from scp.service.provisioning import Actor, InvalidInput, NotFound, ProvisioningError
from scp.service.rating import RateTable, RatingRules
from scp.service.selfcare import SelfcareSession, ServiceAnswer, ServiceRequest
from scp.service.stats import CallPathStats
from scp.state import calls_store as store

log = structlog.get_logger("scp.flows.calls")

__all__ = [
    "CallUser",
    "MissedCallNotifier",
    "build_call_user",
    "write_missed_calls",
    "write_records",
]

# Pause before another attempt after a failed connect (the server is away), doubled up to the
# cap and never past the budget; a stale connection is replaced at once.
DB_RETRY_MIN = 0.02
DB_RETRY_MAX = 0.2
CHARGING_GRACE = 30.0  # s beyond the charging period for the switch's ApplyChargingReport
CALL_MONITOR_LIMIT = 4 * 3600.0  # s a CallInformationRequest may wait for the call to end
# Operation classes (TS 29.078 §8 / Q.1218 §7): 1 result and error, 2 error only, 4 neither.
OP_CLASS: dict[int, int] = {
    Op.CONTINUE: 4,
    Op.RELEASE_CALL: 4,
    Op.PROMPT_AND_COLLECT_USER_INFORMATION: 1,
    Op.DISCONNECT_FORWARD_CONNECTION: 2,
}
# ApplyChargingReport, AssistRequestInstructions, CallInformationReport... have an error outcome.
REFUSABLE: set[int] = {Op.ASSIST_REQUEST_INSTRUCTIONS, Op.APPLY_CHARGING_REPORT}

# Operations whose wire form repeats from call to call: decoded / encoded once per context.
_DECODE_CACHED = frozenset(
    {
        Op.EVENT_REPORT_BCSM,
        Op.APPLY_CHARGING_REPORT,
        Op.SPECIALIZED_RESOURCE_REPORT,
    }
)
_CACHE_MAX = 4096

# We initiate this one ourselves (CAP v4 gsmSCF-to-gsmSSF): never accepted from a peer.
_NOT_OFFERED = {appctx.CAP_V4_SCF_GSMSSF}


class MissedCallNotifier(Protocol):
    """The notification flow as a call's write step needs it (:mod:`scp.flows.notify`)."""

    async def record_missed_call(
        self,
        conn: asyncpg.Connection,
        *,
        caller: str | None,
        callee: str,
        reason: str,
        cause: int | None,
        call_ref: str | None,
        at: dt.datetime,
        cfg: Any,
    ) -> int | None: ...

    async def record_missed_calls(
        self,
        conn: asyncpg.Connection,
        calls: Sequence[notify_flow.MissedCall],
        *,
        cfg: Any,
    ) -> list[int | None]: ...

    async def on_missed_call(
        self,
        conn: asyncpg.Connection,
        *,
        missed_call_id: int,
        caller: str | None,
        callee: str,
        reason: str,
        at: dt.datetime,
        cfg: Any,
    ) -> object: ...


async def write_records(
    db: asyncpg.Pool | asyncpg.Connection,
    records: Sequence[store.Record],
    *,
    cfg: Any,
    missed_call_id: int | None = None,
    notify: MissedCallNotifier | None = notify_flow,
) -> int | None:
    """Write a call decision's ``records`` in one transaction with the notifications a missed
    call causes (``notify``; None: the missed call alone); the id of the missed call written.

    ``missed_call_id`` links a callback request to the missed call of the same call. A lone
    record is one statement (its implicit transaction: no BEGIN / COMMIT round trips); a lone
    missed call with its notifications too (``notify.record_missed_call``, migration 0030),
    usually in one round trip; when that declines, the transaction path runs.
    """
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await write_records(
                conn, records, cfg=cfg, missed_call_id=missed_call_id, notify=notify
            )
    try:
        return await _write_records(db, records, cfg, missed_call_id, notify)
    except asyncpg.UniqueViolationError as e:
        if not store.written_before(e):
            raise
        # An earlier attempt of this very write committed (its answer was lost with its
        # connection): everything it held is in, with this missed call (migration 0250).
        mc = next(r for r in records if type(r) is C.RecordMissedCall)
        assert isinstance(mc, C.RecordMissedCall)
        return await store.missed_call_id(db, mc)


async def write_missed_calls(
    conn: asyncpg.Connection,
    records: Sequence[C.RecordMissedCall],
    *,
    cfg: Any,
    notify: MissedCallNotifier,
) -> list[int | None]:
    """The missed calls of several calls, each with its notifications, in ONE statement and
    one commit (``notify.record_missed_calls``, migration 0280): the id of each, or None for
    one the statement declined (its forecast still wrong: the caller writes it with
    :func:`write_records`). An error writes none of them."""
    calls = [
        notify_flow.MissedCall(r.caller, r.callee, r.reason, r.cause, r.call_ref, r.at)
        for r in records
    ]
    return await notify.record_missed_calls(conn, calls, cfg=cfg)


async def _write_records(
    conn: asyncpg.Connection,
    records: Sequence[store.Record],
    cfg: Any,
    missed_call_id: int | None,
    notify: MissedCallNotifier | None,
) -> int | None:
    if len(records) == 1 and not conn.is_in_transaction():
        r = records[0]
        if type(r) is not C.RecordMissedCall:
            await store.write_other(conn, r, missed_call_id)
            return missed_call_id
        assert isinstance(r, C.RecordMissedCall)
        if notify is None:
            return await store.insert_missed_call(conn, r)
        mc_id = await notify.record_missed_call(
            conn,
            caller=r.caller,
            callee=r.callee,
            reason=r.reason,
            cause=r.cause,
            call_ref=r.call_ref,
            at=r.at,
            cfg=cfg,
        )
        if mc_id is not None:
            return mc_id
    mc_id = missed_call_id
    async with conn.transaction():
        for r in records:
            if type(r) is C.RecordMissedCall:
                assert isinstance(r, C.RecordMissedCall)
                mc_id = await store.insert_missed_call(conn, r)
                if notify is not None:
                    await notify.on_missed_call(
                        conn,
                        missed_call_id=mc_id,
                        caller=r.caller,
                        callee=r.callee,
                        reason=r.reason,
                        at=r.at,
                        cfg=cfg,
                    )
            else:
                await store.write_other(conn, r, mc_id)
    return mc_id


class _Lanes:
    """A few connections kept out of the pool while calls flow, released after ``idle`` s.

    asyncpg resets a connection (one more round trip) each time it goes back to the pool; the
    call path does one read and one write transaction per call, so keeping its connections out
    of the pool while traffic flows saves a fifth of its database round trips. A connection
    that saw an error goes back to the pool (which resets or discards it).
    """

    def __init__(self, pool: Any, size: int, idle: float = 2.0) -> None:
        self.pool = pool
        self.size = size
        self.idle = idle
        self.free: list[tuple[Any, float]] = []
        self.count = 0
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self._reaper: asyncio.TimerHandle | None = None

    @asynccontextmanager
    async def conn(self) -> AsyncIterator[Any]:
        c = await self._get()
        ok = False
        try:
            yield c
            ok = True
        finally:
            self._put(c, ok)

    async def _get(self) -> Any:
        while True:
            if self.free:
                c = self.free.pop()[0]
                if _usable(c):
                    return c
                # its server went away while it waited here (restart, failover): the pool has
                # taken it back or will discard it; take another
                self.count -= 1
                asyncio.get_running_loop().create_task(self._release(c))
                continue
            if self.count < self.size:
                self.count += 1
                try:
                    return await self.pool.acquire()
                except BaseException:
                    self.count -= 1
                    raise
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.waiters.append(fut)
            c = await fut
            if c is not None:
                return c
            # None: a lane went back to the pool; loop to take its place.

    def _put(self, c: Any, ok: bool) -> None:
        loop = asyncio.get_running_loop()
        if not ok:
            self.count -= 1
            loop.create_task(self._release(c))
            c = None
        while self.waiters:
            f = self.waiters.popleft()
            if not f.done():
                f.set_result(c)
                return
        if c is not None:
            self.free.append((c, loop.time()))
            if self._reaper is None:
                self._reaper = loop.call_later(self.idle, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        keep = []
        for c, t in self.free:
            if now - t >= self.idle:
                self.count -= 1
                loop.create_task(self._release(c))
            else:
                keep.append((c, t))
        self.free = keep
        if keep:
            self._reaper = loop.call_later(self.idle, self._reap)

    async def _release(self, c: Any) -> None:
        try:
            await self.pool.release(c)
        except Exception:  # the pool discards a broken connection itself
            log.debug("lane release failed", exc_info=True)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        free, self.free = self.free, []
        for c, _ in free:
            self.count -= 1
            await self._release(c)


class _CalleeReads:
    """The subscriber reads of the calls that ask in one pass of the event loop, as one query.

    Under load a TCP read brings several InitialDPs at once and their calls ask for their
    subscribers in the same pass. A read is a round trip whose fixed cost (the statement's
    messages, two system calls, the wake-ups: about 40 us of this process's CPU and a
    statement's work in the server's) is much more than its row's, so the reads asked for in
    one pass go out together (:func:`scp.state.calls_store.load_callees`) at its end, on one
    lane, at most :attr:`batch` at a time. Each caller keeps its own budget: it stops waiting
    at its deadline, and the query stops at the latest of its callers'. A failure reaches every
    caller of the batch (each as its own copy, :func:`_own_copy`), each of which decides on its
    own whether to try again.
    """

    batch = 64

    def __init__(self, lanes: _Lanes) -> None:
        self.lanes = lanes
        self.pending: list[tuple[store.CalleeKey, float, asyncio.Future[Any]]] = []
        self.running: set[asyncio.Task[None]] = set()

    def get(self, key: store.CalleeKey, deadline: float) -> asyncio.Future[Any]:
        """The subscriber of ``key`` (a future: Callee or None), read by ``deadline``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append((key, deadline, fut))
        if len(self.pending) >= self.batch:
            self._flush()
        return fut

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._read(batch))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _read(self, batch: list[tuple[store.CalleeKey, float, asyncio.Future[Any]]]) -> None:
        live = [b for b in batch if not b[2].done()]  # a caller may have given up already
        if not live:
            return
        try:
            async with asyncio.timeout_at(max(b[1] for b in live)), self.lanes.conn() as conn:
                found = await store.load_callees(conn, [b[0] for b in live])
        except BaseException as e:
            for _, _, fut in live:
                if not fut.done():
                    if isinstance(e, Exception):
                        fut.set_exception(_own_copy(e))
                    else:  # cancelled (the node stopping): so are its callers
                        fut.cancel()
            if isinstance(e, Exception):
                return
            raise
        for (_, _, fut), callee in zip(live, found, strict=True):
            if not fut.done():
                fut.set_result(callee)


@dataclass(eq=False, slots=True)
class _MissedCallAsk:
    """One call's missed call waiting for its pass's statement (:class:`_MissedCallWrites`)."""

    record: C.RecordMissedCall
    deadline: float
    fut: asyncio.Future[int | None]
    taken: bool = False  # in a statement sent: its outcome is that statement's


class _MissedCallWrites:
    """The missed calls that the calls of one pass of the event loop write, as one statement.

    Under load a TCP read brings several EventReportBCSMs and their calls ask for their
    missed calls (each with its SMS or HLR alert) in the same pass. One statement and one
    commit each cost PostgreSQL a statement's and a commit's fixed work and this process a
    round trip per call; so, as :class:`_CalleeReads` does for the InitialDPs' reads, the
    missed calls asked for in one pass go out together at its end (:func:`write_missed_calls`,
    migration 0280), on one lane, at most :attr:`batch` at a time: one round trip, one
    statement, one commit. Nothing is answered before that commit.

    Each caller keeps its own deadline (the statement runs until the latest of them) and its
    own retry rules (:meth:`CallUser._write`): a failure of the database or of the way to it
    reaches every caller of the batch, each as its own copy (:func:`_own_copy`); any other
    failure (a bad row: a callee deleted since its InitialDP, say) wrote nothing, so each call
    of the batch is then written on its own (the future's None, as for a call whose forecast
    the statement declined to the end), and only the bad one fails.
    """

    batch = 64

    def __init__(self, lanes: _Lanes, cfg: Any, notify: MissedCallNotifier, logger: Any) -> None:
        self.lanes = lanes
        self.cfg = cfg
        self.notify = notify
        self.log = logger
        self.pending: list[_MissedCallAsk] = []
        self.running: set[asyncio.Task[None]] = set()

    def put(self, record: C.RecordMissedCall, deadline: float) -> _MissedCallAsk:
        """Ask for ``record`` to be written by ``deadline``: the ask's future gives its missed
        call's id once committed, or None (write it on your own)."""
        loop = asyncio.get_running_loop()
        ask = _MissedCallAsk(record, deadline, loop.create_future())
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append(ask)
        if len(self.pending) >= self.batch:
            self._flush()
        return ask

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _write(self, batch: list[_MissedCallAsk]) -> None:
        live = [a for a in batch if not a.fut.done()]  # a caller may have given up already
        if not live:
            return
        for a in live:
            a.taken = True
        try:
            async with asyncio.timeout_at(max(a.deadline for a in live)), self.lanes.conn() as conn:
                ids = await write_missed_calls(
                    conn, [a.record for a in live], cfg=self.cfg, notify=self.notify
                )
        except BaseException as e:
            if not isinstance(e, Exception):  # cancelled (the node stopping): so are its callers
                for a in live:
                    a.fut.cancel()
                raise
            alone = not (isinstance(e, TimeoutError) or store.transient(e))
            if alone and len(live) > 1:
                self.log.warning(
                    "missed calls of one pass not written together: each on its own",
                    calls=len(live),
                    error=_why(e),
                )
            for a in live:
                if not a.fut.done():
                    if alone:
                        a.fut.set_result(None)
                    else:
                        a.fut.set_exception(_own_copy(e))
            return
        for a, mc_id in zip(live, ids, strict=True):
            if not a.fut.done():
                a.fut.set_result(mc_id)


def _own_copy(e: Exception) -> Exception:
    """``e`` for one caller of a failed shared read: an object of its own, same type, message,
    attributes and cause. Each caller raises what it gets and may keep it while it waits to
    try again; raising one object in several tasks rewrites its traceback under the others
    (asyncio gives it the future's traceback each time), so a call's log would show another
    call's frames. ``e`` itself if it cannot be rebuilt from its arguments."""
    try:
        c = copy.copy(e)
    except Exception:
        return e
    if type(c) is not type(e):
        return e
    c.__cause__, c.__context__ = e.__cause__, e.__context__
    c.__suppress_context__ = e.__suppress_context__
    return c.with_traceback(e.__traceback__)


def _usable(c: Any) -> bool:
    """False for a pooled connection that closed (or that the pool took back) while idle."""
    try:
        return not c.is_closed()
    except asyncpg.InterfaceError:  # "released back to the pool": its server went away
        return False


class _OutOfBudget(Exception):
    """The database did not do it within ``[database] budget`` (the cause is chained)."""


def _protocol(ac: tuple[int, ...] | None) -> str | None:
    a = appctx.lookup(ac)
    if a is None or a.oid in _NOT_OFFERED:
        return None
    if a.protocol is appctx.Protocol.INAP:
        return "inap"
    if a.protocol is appctx.Protocol.CAP:
        return f"cap{a.version}"
    return None


@dataclass(eq=False)
class _Leg:
    did: int
    ac: tuple[int, ...] | None
    codec: OperationCodec
    answered: bool = False  # first backward message sent (it carries the AARE)
    open: bool = True
    next_iid: int = 0
    invokes: dict[int, int] = field(default_factory=dict)  # our invoke id -> opcode


@dataclass(eq=False)
class _Ctx:
    """One call being handled: its dialogues, session, queue and timer."""

    call: _Leg
    proto: str
    assist: _Leg | None = None
    session: CallSession | None = None
    queue: deque[TcPrimitive | None] = field(default_factory=deque)  # None: the timer fired
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    timer_at: float | None = None
    current: tuple[_Leg, int] | None = None  # the invoke being handled (for a Refuse)
    missed_call_id: int | None = None
    corr: str | None = None
    finished: bool = False


class CallUser:
    """TC-user for CAP v2/v3/v4 and INAP CS-1 call control and their assist dialogues."""

    def __init__(
        self,
        node: Any,
        pool: Any,
        cfg: Any,
        *,
        rates_ttl: float = 60.0,
        notify: MissedCallNotifier | None = notify_flow,
        stats: CallPathStats | None = None,
    ) -> None:
        self.node = node
        self.pool = pool
        self.cfg = cfg
        self.notify = notify
        self.stats = stats if stats is not None else CallPathStats()
        self.budget = cfg.database.budget
        # Leave a few pool connections to the other users (MAP, SMS sender, self-service).
        size = pool.get_max_size() - 3
        self._lanes = _Lanes(pool, max(1, size))
        self._callees = _CalleeReads(self._lanes)
        self.log = log.bind(node=cfg.node.name)
        # the batch form of the notification flow, when the one given has it (test doubles
        # and ``notify=None`` write each call on its own)
        self._missed = (
            _MissedCallWrites(self._lanes, cfg, notify, self.log)
            if notify is not None and getattr(notify, "record_missed_calls", None) is not None
            else None
        )
        self.s = CallSettings.from_config(cfg)
        self.rules = RatingRules(
            cfg.rating.country_code,
            cfg.rating.local_prefixes,
            cfg.rating.hmt_prefixes,
            cfg.rating.on_net_prefixes,
        )
        self.rates = RateTable(self.rules)
        self.rates_ttl = rates_ttl
        self._rates_at: float | None = None
        self.ctx: dict[int, _Ctx] = {}
        # Decoded values are frozen: sharing them between calls is safe; pycrate is the cost.
        self._dec: dict[tuple[Any, ...], ops.Operation] = {}
        self._enc: dict[tuple[Any, ...], tuple[Any, bytes | None]] = {}
        self.by_corr: dict[str, _Ctx] = {}

    # -- DialogueUser ---------------------------------------------------------------------------

    def accepts(self, begin: TcBegin) -> bool:
        return _protocol(begin.application_context) is not None

    def handle(self, ind: TcPrimitive) -> list[TcPrimitive]:
        try:
            return self._handle(ind)
        except Exception:  # never into the node: the dialogue gets an abort instead
            self.log.exception("call indication failed")
            if not isinstance(ind, (TcEnd, TcUAbort, TcPAbort)):
                return [TcUAbort(ind.dialogue_id)]
            return []

    def _handle(self, ind: TcPrimitive) -> list[TcPrimitive]:
        if type(ind) is TcBegin:
            return self._begin(ind)
        did = ind.dialogue_id
        ctx = self.ctx.get(did)
        if ctx is None:
            if type(ind) is TcContinue:
                # A dialogue we no longer know (session over, process restarted): say so.
                self.log.info("continue for an unknown call dialogue: abort", dialogue=did)
                return [TcUAbort(did)]
            return []
        self._enqueue(ctx, ind)
        return []

    def _begin(self, b: TcBegin) -> list[TcPrimitive]:
        proto = _protocol(b.application_context)
        assert proto is not None
        codec = inap.CODEC if proto == "inap" else cap.CODEC
        leg = _Leg(b.dialogue_id, b.application_context, codec)
        invokes = [c for c in b.components if type(c) is Invoke]
        if invokes and invokes[0].opcode == Op.ASSIST_REQUEST_INSTRUCTIONS:
            # The media server's own dialogue (ETC): join it to its call by correlation ID.
            try:
                ari = codec.decode_arg(
                    Op.ASSIST_REQUEST_INSTRUCTIONS,
                    invokes[0].parameter,
                    ac=b.application_context,
                )
            except CodecError:
                ari = None
            ctx = (
                self.by_corr.get(ari.correlation_id.digits)
                if isinstance(ari, ops.AssistRequestInstructions)
                else None
            )
            if ctx is None or ctx.assist is not None or ctx.finished:
                self.log.info(
                    "AssistRequestInstructions for no waiting call", dialogue=b.dialogue_id
                )
                return [TcUAbort(b.dialogue_id)]
            ctx.assist = leg
            self.ctx[b.dialogue_id] = ctx
            self._enqueue(ctx, b)
            return []
        ctx = _Ctx(call=leg, proto=proto)
        self.ctx[b.dialogue_id] = ctx
        self._enqueue(ctx, b)
        return []

    # -- ordering -------------------------------------------------------------------------------

    def _enqueue(self, ctx: _Ctx, item: TcPrimitive | None) -> None:
        ctx.queue.append(item)
        if ctx.task is None:
            ctx.task = asyncio.get_running_loop().create_task(self._drain(ctx))

    async def _drain(self, ctx: _Ctx) -> None:
        try:
            while ctx.queue:
                item = ctx.queue.popleft()
                try:
                    if item is None:
                        await self._on_timer(ctx)
                    else:
                        await self._indication(ctx, item)
                except Exception:
                    self.log.exception("call handling failed", dialogue=ctx.call.did)
                    self._abort_all(ctx)
                self._arm(ctx)
        finally:
            ctx.task = None
            if ctx.queue and not ctx.finished:
                ctx.task = asyncio.get_running_loop().create_task(self._drain(ctx))

    def _arm(self, ctx: _Ctx) -> None:
        s = ctx.session
        at = None if s is None or ctx.finished else s.next_deadline()
        if at == ctx.timer_at:
            return
        if ctx.timer is not None:
            ctx.timer.cancel()
            ctx.timer = None
        ctx.timer_at = at
        if at is not None:
            delay = max(0.0, at - self.node.clock())
            ctx.timer = asyncio.get_running_loop().call_later(
                delay, lambda: self._enqueue(ctx, None)
            )

    async def _on_timer(self, ctx: _Ctx) -> None:
        ctx.timer = None
        ctx.timer_at = None
        if ctx.session is not None and not ctx.finished:
            await self._execute(ctx, ctx.session.handle_timer(self.node.clock(), self._at()))

    # -- indications ----------------------------------------------------------------------------

    def _at(self) -> dt.datetime:
        at: dt.datetime = self.node.wall_now()
        return at

    async def _indication(self, ctx: _Ctx, ind: TcPrimitive) -> None:
        if ctx.finished:
            return
        leg = ctx.call if ind.dialogue_id == ctx.call.did else ctx.assist
        if leg is None:
            return
        name = C.CALL if leg is ctx.call else C.ASSIST
        match ind:
            case TcBegin() if name == C.CALL:
                await self._initial(ctx, ind)
            case TcUAbort() | TcPAbort():
                leg.open = False
                self._forget_leg(ctx, leg)
                await self._feed(ctx, C.LegClosed(name, aborted=True))
            case TcComponentEvent():
                await self._component_event(ctx, leg, name, ind.component)
            case TcEnd():
                leg.open = False
                await self._components(ctx, leg, name, ind.components)
                self._forget_leg(ctx, leg)
                if not ctx.finished:
                    await self._feed(ctx, C.LegClosed(name))
            case TcBegin() | TcContinue() | TcUni():  # the assist dialogue's TC-BEGIN too
                await self._components(ctx, leg, name, ind.components)
            case TcNotice():
                pass  # the network could not deliver: the leg's timers and the session decide
            case _:
                assert_never(ind)

    async def _components(
        self, ctx: _Ctx, leg: _Leg, name: str, comps: tuple[Component, ...]
    ) -> None:
        for c in comps:
            if ctx.finished:
                break
            await self._component(ctx, leg, name, c)

    async def _initial(self, ctx: _Ctx, b: TcBegin) -> None:
        leg = ctx.call
        invokes = [c for c in b.components if type(c) is Invoke]
        idp: ops.Operation | None = None
        if invokes and invokes[0].opcode == Op.INITIAL_DP:
            try:
                idp = leg.codec.decode_arg(Op.INITIAL_DP, invokes[0].parameter, ac=leg.ac)
            except CodecError as e:
                self.log.info("InitialDP does not decode", dialogue=leg.did, error=str(e))
        if not isinstance(idp, ops.InitialDP):
            # Not an InitialDP opening the dialogue: the call continues untouched.
            self._send(ctx, C.Send((ops.Continue(),), C.CALL, "end"))
            self._finish(ctx)
            return
        selfcare = idp.service_key == self.s.selfcare_service_key
        if not selfcare and idp.service_key != self.cfg.service.terminating_service_key:
            # A trigger for a service this SCP does not provide (another serviceKey routed
            # here): the call continues untouched, nothing armed, nothing recorded.
            self.log.info(
                "InitialDP for another service key", dialogue=leg.did, service_key=idp.service_key
            )
            self._send(ctx, C.Send((ops.Continue(),), C.CALL, "end"))
            self._finish(ctx)
            return
        deadline = self._deadline()
        cls = SelfcareSession if selfcare else CallSession
        corr = f"{leg.did % 10**10:010d}"
        session = cls(
            self.s,
            call_ref=f"{self.cfg.node.name}:{leg.did:08x}",
            protocol=ctx.proto,
            rates=await self._rates(deadline),
            correlation_id=corr,
        )
        ctx.session = session
        ctx.corr = corr
        cg = idp.calling_party_number
        caller = C.e164(cg.digits, cg.nai) if cg is not None else None
        if selfcare:  # the owner calls the access number: the calling party is the subscriber
            who, other = caller, None
        else:
            cd = idp.called_party_number
            who, other = (C.e164(cd.digits, cd.nai) if cd is not None else None), caller
        at = self._at()
        callee = None
        if who:
            day = local_day(at, self.cfg)
            try:
                callee = await self._read((who, other, day), deadline)
            except Exception as e:
                # No database within the budget: the call proceeds as if there were no service,
                # before the switch's own timer would decide so.
                self.stats.continued_without_database += 1
                self.log.warning(
                    "subscriber not read: call continues without the service",
                    dialogue=leg.did,
                    callee=who,
                    error=_why(e),
                    exc_info=None if _database_error(e) else e,  # a bug: its traceback
                )
                self._send(ctx, C.Send((ops.Continue(),), C.CALL, "end"))
                self._finish(ctx)
                return
        await self._execute(ctx, session.start(idp, callee, self.node.clock(), at))

    async def _component(self, ctx: _Ctx, leg: _Leg, name: str, c: object) -> None:
        t = type(c)
        if t is Invoke:
            assert isinstance(c, Invoke)
            try:
                op = self._decode(leg, c.opcode, c.parameter)
            except CodecError as e:
                self.log.info("operation does not decode", dialogue=leg.did, error=str(e))
                if c.opcode in REFUSABLE:
                    self._error(leg, c.invoke_id, CapErrorCode.UNEXPECTED_COMPONENT_SEQUENCE)
                return
            ctx.current = (leg, c.invoke_id) if c.opcode in REFUSABLE else None
            await self._feed(ctx, C.OpReceived(op, name))
            ctx.current = None
        elif t is ReturnResult:
            assert isinstance(c, ReturnResult)
            opcode = leg.invokes.pop(c.invoke_id, None)
            if opcode == Op.PROMPT_AND_COLLECT_USER_INFORMATION:
                try:
                    res = leg.codec.decode_result(
                        Op.PROMPT_AND_COLLECT_USER_INFORMATION, c.parameter, ac=leg.ac
                    )
                except CodecError:
                    res = None
                if isinstance(res, ops.ReceivedInformation):
                    await self._feed(ctx, C.DigitsCollected(res.digits.digits, name))
                else:
                    await self._feed(ctx, C.OpFailed("badResult", name))
        elif t is ReturnError:
            assert isinstance(c, ReturnError)
            opcode = leg.invokes.pop(c.invoke_id, None)
            try:
                err = leg.codec.decode_error(c.error_code, c.parameter, ac=leg.ac)
                ename = err.name
            except CodecError:
                ename = str(c.error_code)
            if opcode is not None:
                await self._feed(ctx, C.OpFailed(ename, name))
        elif t is Reject:
            await self._component_event(ctx, leg, name, c)

    async def _component_event(self, ctx: _Ctx, leg: _Leg, name: str, comp: object) -> None:
        if isinstance(comp, LCancel):
            # Class 2 operations end by their timer without an error: that is success.
            if leg.invokes.pop(comp.invoke_id, None) == Op.PROMPT_AND_COLLECT_USER_INFORMATION:
                await self._feed(ctx, C.OpFailed("timeout", name))
        elif isinstance(comp, Reject) and comp.invoke_id is not None:
            if leg.invokes.pop(comp.invoke_id, None) is not None:
                await self._feed(ctx, C.OpFailed("rejected", name))

    async def _feed(self, ctx: _Ctx, ev: C.Event) -> None:
        if ctx.session is None or ctx.finished:
            return
        await self._execute(ctx, ctx.session.handle(ev, self.node.clock(), self._at()))

    # -- actions --------------------------------------------------------------------------------

    async def _execute(self, ctx: _Ctx, actions: list[C.Action]) -> None:
        records: list[store.Record] = [
            a
            for a in actions
            if isinstance(a, (C.RecordMissedCall, C.RecordCallback, C.RecordVoicemail, C.WriteCdr))
        ]
        if records:
            await self._write(ctx, records, self._deadline())
        for a in actions:
            match a:
                case C.Send():
                    self._send(ctx, a)
                case C.Refuse():
                    if ctx.current is not None:
                        leg, iid = ctx.current
                        self._error(leg, iid, CapErrorCode.UNEXPECTED_COMPONENT_SEQUENCE)
                case C.ExpectAssist():
                    ctx.corr = a.correlation_id
                    self.by_corr[a.correlation_id] = ctx
                case ServiceRequest():
                    answer = await self._provision(a)
                    if ctx.session is not None and not ctx.finished:
                        await self._execute(
                            ctx, ctx.session.handle(answer, self.node.clock(), self._at())
                        )
                case C.Finished():
                    self.log.debug("call finished", dialogue=ctx.call.did, outcome=a.outcome)
                    self._finish(ctx)
                case C.RecordMissedCall() | C.RecordCallback() | C.RecordVoicemail() | C.WriteCdr():
                    pass  # written above, in one transaction, before anything is sent
                case _:
                    assert_never(a)

    def _send(self, ctx: _Ctx, a: C.Send) -> None:
        leg = ctx.call if a.leg == C.CALL else ctx.assist
        if leg is None or not leg.open:
            return
        if not a.ops and a.close == "continue":
            return
        if a.close == "abort":
            leg.open = False
            self._forget_leg(ctx, leg)
            self.node.tc_send(TcUAbort(leg.did))
            return
        comps: list[Invoke] = []
        try:
            for op in a.ops:
                opcode, param = self._encode(leg, op)
                leg.next_iid = (leg.next_iid + 1) % 128
                iid = leg.next_iid
                cls = OP_CLASS.get(opcode, 2) if isinstance(opcode, int) else 2
                timeout = None
                if opcode == Op.PROMPT_AND_COLLECT_USER_INFORMATION or isinstance(
                    op, ops.PlayAnnouncement
                ):
                    timeout = self.s.announcement_timeout * 5  # long operation timer (29.078)
                elif isinstance(op, ops.ApplyCharging):
                    # The switch reports at the end of the period: keep the invocation (and so
                    # the dialogue, which TCAP does not count as idle meanwhile) until then.
                    timeout = self.cfg.call.charging_period + CHARGING_GRACE
                elif isinstance(op, ops.CallInformationRequest):
                    timeout = CALL_MONITOR_LIMIT  # the report comes when the call ends
                comps.append(Invoke(iid, opcode, param, op_class=cls, timeout=timeout))
                if cls != 4:
                    leg.invokes[iid] = opcode
        except CodecError as e:
            self.log.error(
                "operation does not encode: dialogue aborted", dialogue=leg.did, error=str(e)
            )
            leg.open = False
            self._forget_leg(ctx, leg)
            self.node.tc_send(TcUAbort(leg.did))
            return
        ac = None if leg.answered else leg.ac
        leg.answered = True
        req: TcPrimitive
        if a.close == "end":
            leg.open = False
            self._forget_leg(ctx, leg)
            req = TcEnd(leg.did, application_context=ac, components=tuple(comps))
        else:
            req = TcContinue(leg.did, application_context=ac, components=tuple(comps))
        self.node.tc_send(req)

    def _decode(self, leg: _Leg, opcode: Any, parameter: bytes | None) -> ops.Operation:
        if opcode not in _DECODE_CACHED:
            return leg.codec.decode_arg(opcode, parameter, ac=leg.ac)
        key = (leg.ac, opcode, parameter)
        op = self._dec.get(key)
        if op is None:
            op = leg.codec.decode_arg(opcode, parameter, ac=leg.ac)
            if len(self._dec) >= _CACHE_MAX:
                self._dec.clear()
            self._dec[key] = op
        return op

    def _encode(self, leg: _Leg, op: ops.Operation) -> tuple[Any, bytes | None]:
        # The operations the service builds are frozen dataclasses with nothing in ``extra``
        # (ops.NO_EXTRA), so they are their own keys: hashing one costs a fraction of the
        # repr that keyed this cache before (the repr alone was 4 % of a call's CPU).
        key: tuple[Any, ...] = (leg.ac, op)
        try:
            hit = self._enc.get(key)
        except TypeError:  # a field holds something unhashable: its repr is the key
            key = (leg.ac, repr(op))
            hit = self._enc.get(key)
        if hit is None:
            hit = leg.codec.encode_arg(op, ac=leg.ac)
            if len(self._enc) >= _CACHE_MAX:
                self._enc.clear()
            self._enc[key] = hit
        return hit

    def _error(self, leg: _Leg, iid: int, code: int) -> None:
        if not leg.open:
            return
        ac = None if leg.answered else leg.ac
        leg.answered = True
        self.node.tc_send(
            TcContinue(leg.did, application_context=ac, components=(ReturnError(iid, code),))
        )

    def _forget_leg(self, ctx: _Ctx, leg: _Leg) -> None:
        if self.ctx.get(leg.did) is ctx and not (
            leg is ctx.call and ctx.assist and ctx.assist.open
        ):
            del self.ctx[leg.did]

    def _finish(self, ctx: _Ctx) -> None:
        ctx.finished = True
        for leg in (ctx.call, ctx.assist):
            if leg is not None and self.ctx.get(leg.did) is ctx:
                del self.ctx[leg.did]
        if ctx.corr is not None and self.by_corr.get(ctx.corr) is ctx:
            del self.by_corr[ctx.corr]
        if ctx.timer is not None:
            ctx.timer.cancel()
            ctx.timer = None
            ctx.timer_at = None

    def _abort_all(self, ctx: _Ctx) -> None:
        for leg in (ctx.assist, ctx.call):
            if leg is not None and leg.open:
                leg.open = False
                self.node.tc_send(TcUAbort(leg.did))
        self._finish(ctx)

    # -- data -----------------------------------------------------------------------------------

    def _deadline(self) -> float:
        """When the database work for the message being handled must be over (loop time)."""
        deadline: float = asyncio.get_running_loop().time() + self.budget
        return deadline

    async def _retry_pause(self, e: BaseException, delay: float, deadline: float) -> float:
        """Wait before another attempt after ``e`` (none for a stale connection: another one
        is at hand); the next pause. Raises :class:`_OutOfBudget` when the budget is spent."""
        loop = asyncio.get_running_loop()
        stale = store.stale_connection(e)
        if loop.time() + (0.0 if stale else delay) >= deadline:
            raise _OutOfBudget(_why(e)) from e
        self.stats.db_retries += 1
        if stale:
            return delay
        await asyncio.sleep(delay)
        return min(delay * 2, DB_RETRY_MAX)

    async def _read(self, key: store.CalleeKey, deadline: float) -> C.Callee | None:
        """The subscriber of ``key`` (:class:`_CalleeReads`), read again after a transient
        failure, until ``deadline``; :class:`_OutOfBudget` past it. The attempt that answers is
        timed (from the ask to the answer) in ``stats.db_latency``."""
        loop = asyncio.get_running_loop()
        delay = DB_RETRY_MIN
        while True:
            try:
                start = loop.time()
                async with asyncio.timeout_at(deadline):
                    result: C.Callee | None = await self._callees.get(key, deadline)
                self.stats.db_latency["read"].observe(loop.time() - start)
                return result
            except TimeoutError as e:
                raise _OutOfBudget("no answer within the budget") from e
            except Exception as e:
                if not store.transient(e):
                    raise
                delay = await self._retry_pause(e, delay, deadline)

    async def _write(self, ctx: _Ctx, records: list[Any], deadline: float) -> None:
        """Write a call decision's records (:func:`write_records`) before ``deadline``.

        Run again after an error that proves nothing was committed; after one that leaves
        the outcome unknown only when the records hold a missed call (written once however
        often: migration 0250). What is not written is logged with its content and counted:
        the caller is treated all the same. The attempt that succeeds is timed in
        ``stats.db_latency``.
        """
        idempotent = any(type(r) is C.RecordMissedCall for r in records)
        # a lone missed call goes with the others of its pass (_MissedCallWrites)
        together = self._missed is not None and len(records) == 1 and idempotent
        loop = asyncio.get_running_loop()
        delay = DB_RETRY_MIN
        doubt = False  # an attempt so far may have committed
        while True:
            sent = False  # a statement may have reached the server
            ask: _MissedCallAsk | None = None
            try:
                start = loop.time()
                async with asyncio.timeout_at(deadline):
                    mc_id: int | None = None
                    if together:
                        assert self._missed is not None
                        ask = self._missed.put(records[0], deadline)
                        mc_id = await ask.fut
                        ask = None
                    if mc_id is None:  # on its own (and as always for anything else)
                        async with self._db() as conn:
                            sent = True
                            mc_id = await write_records(
                                conn,
                                records,
                                cfg=self.cfg,
                                missed_call_id=ctx.missed_call_id,
                                notify=self.notify,
                            )
                    ctx.missed_call_id = mc_id
                self.stats.db_latency["write"].observe(loop.time() - start)
                return
            except Exception as e:
                sent = sent or (ask is not None and ask.taken)
                if isinstance(e, TimeoutError):
                    return self._not_written(ctx, records, e, in_doubt=doubt or sent)
                safe = not sent or store.nothing_committed(e)
                doubt = doubt or not safe
                if not store.transient(e) or not (safe or idempotent):
                    return self._not_written(ctx, records, e, in_doubt=doubt)
                try:
                    delay = await self._retry_pause(e, delay, deadline)
                except _OutOfBudget:
                    return self._not_written(ctx, records, e, in_doubt=doubt)

    def _not_written(
        self, ctx: _Ctx, records: list[Any], e: BaseException, *, in_doubt: bool
    ) -> None:
        """Say what a call could not record (the caller is still treated): in the log, with
        the records' content so ops can put them in by hand, and in the counters."""
        counter = self.stats.records_in_doubt if in_doubt else self.stats.records_lost
        for r in records:
            counter[store.RECORD_KIND[type(r)]] += 1
        self.log.error(
            "call records may not have been written" if in_doubt else "call records not written",
            dialogue=ctx.call.did,
            error=_why(e),
            records=[_record_fields(r) for r in records],
            exc_info=None if _database_error(e) else e,  # a bug: its traceback
        )

    async def _rates(self, deadline: float) -> RateTable:
        now = self.node.clock()
        if self._rates_at is None or now - self._rates_at > self.rates_ttl:
            self._rates_at = now
            try:
                async with asyncio.timeout_at(deadline):
                    self.rates = await store.load_rates(self.pool, self.rules)
            except Exception as e:
                self.log.warning("tariffs not loaded: keeping the previous ones", error=_why(e))
        return self.rates

    async def _provision(self, r: ServiceRequest) -> ServiceAnswer:
        """Carry out a self-service request with the CLI's own functions (channel "ivr"),
        within the budget (past it the caller hears that it was not done)."""
        try:
            async with asyncio.timeout(self.budget):
                return await self._carry_out(r)
        except Exception as e:
            if not (isinstance(e, TimeoutError) or store.transient(e)):
                raise
            self.stats.requests_failed += 1
            self.log.warning("self-service request not carried out", op=r.op, error=_why(e))
            return ServiceAnswer(r.op, False, "database unavailable")

    async def _carry_out(self, r: ServiceRequest) -> ServiceAnswer:
        actor = Actor("ivr", r.msisdn)
        at = self._at()
        try:
            if r.op == "verify_pin":
                try:
                    check = await P.verify_pin(self.pool, actor, r.msisdn, r.arg or "")
                except (NotFound, InvalidInput):
                    # a mobile number keyed from another phone that is no subscriber's: to the
                    # caller, the same as a wrong PIN (nothing tells which numbers subscribe)
                    return ServiceAnswer(r.op, False, "wrong")
                return ServiceAnswer(r.op, check.outcome == "ok", check.outcome)
            if r.op == "missed_calls":
                # The notification window's calls, hidden callers included in the count ("").
                since = at - dt.timedelta(hours=self.cfg.service.window_hours)
                rows = await P.list_missed_calls(self.pool, callee=r.msisdn, limit=500, since=since)
                return ServiceAnswer(r.op, True, [x["caller"] or "" for x in rows])
            if r.op == "voicemail_count":
                return ServiceAnswer(
                    r.op, True, await voicemail_flow.mailbox_counts(self.pool, r.msisdn)
                )
            if r.op == "enable_service":
                await P.enable_service(
                    self.pool, actor, r.msisdn, r.arg or "", today=local_day(at, self.cfg)
                )
            elif r.op == "disable_service":
                await P.disable_service(
                    self.pool, actor, r.msisdn, r.arg or "", today=local_day(at, self.cfg)
                )
            elif r.op == "blacklist_add":
                await P.blacklist_add(self.pool, actor, r.msisdn, r.arg or "")
            elif r.op == "blacklist_del":
                await P.blacklist_del(self.pool, actor, r.msisdn, r.arg or "")
            elif r.op == "set_pin":
                await P.set_pin(self.pool, actor, r.msisdn, r.arg or "")
            elif r.op == "set_notify_mode":
                await P.update_subscriber(self.pool, actor, r.msisdn, notify_mode=r.arg)
            else:
                return ServiceAnswer(r.op, False, "unknown request")
        except ProvisioningError as e:
            return ServiceAnswer(r.op, False, str(e))
        return ServiceAnswer(r.op, True)

    def _db(self) -> Any:
        """A connection for the call path (an async context manager)."""
        return self._lanes.conn()

    @property
    def busy(self) -> bool:
        """Some call's indications are still being handled (database work in flight)."""
        return any(c.task is not None for c in self.ctx.values())

    async def aclose(self) -> None:
        """Give the call path's connections back to the pool (before ``pool.close()``)."""
        await self._lanes.close()

    @property
    def active_calls(self) -> int:
        """Calls being handled (for metrics and tests)."""
        return len({id(c) for c in self.ctx.values()})


def build_call_user(
    node: Any, pool: Any, cfg: Any, *, stats: CallPathStats | None = None
) -> CallUser:
    """The call-control TC-user for ``Node(cfg, users=lambda node: [build_call_user(...)])``,
    counting in ``stats`` (the node's :class:`scp.service.stats.NodeStats` ``calls``)."""
    return CallUser(node, pool, cfg, stats=stats)


def _why(e: BaseException) -> str:
    """An error as a log value: its type and message (a timeout has no message)."""
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _database_error(e: BaseException) -> bool:
    """An error of the database or the way to it (not of our code)."""
    return isinstance(
        e,
        (
            _OutOfBudget,
            TimeoutError,
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ),
    )


def _record_fields(r: Any) -> dict[str, Any]:
    """A record's kind and fields, as the log carries a record that was not written."""
    fields = {k: getattr(r, k) for k in r.__dataclass_fields__}
    return {"kind": store.RECORD_KIND[type(r)], **{k: str(v) for k, v in fields.items()}}
