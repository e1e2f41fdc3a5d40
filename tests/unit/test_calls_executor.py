"""The call-control executor (scp.flows.calls) with a fake node and fake state: ordering, unknown
dialogues, AARE on the first answer, and a fuzz run of random TC primitives that must never
raise nor hit the executor's last-resort handler."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from scp.codecs import cap, inap, ops
from scp.codecs.numbers import CalledPartyNumber, CallingPartyNumber, Cause
from scp.config import parse_config
from scp.flows import calls as callflow
from scp.primitives import (
    GlobalTitle,
    Invoke,
    LCancel,
    PAbortCause,
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
    TcPAbort,
    TcUAbort,
)
from scp.service.calls import Callee
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF, AC_CAP_V4_GSMSSF_SCF, AC_INAP_CS1_SSF_SCF
from scp.service.rating import RateTable
from tests.helpers import eventually

# Fixed times only: the same on any day and in any time zone (tests/dates.py).
pytestmark = pytest.mark.usefixtures("any_day")

A = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000"))
CALLEE = "8613912345678"


class FakeNode:
    def __init__(self) -> None:
        self.sent: list[object] = []
        self.t = 100.0

    def clock(self) -> float:
        return self.t

    def wall_now(self) -> dt.datetime:  # 2026-11-24 16:30 UTC at t = 100
        return dt.datetime.fromtimestamp(1_795_537_700.0 + self.t, dt.UTC)

    def tc_send(self, req: object) -> None:
        self.sent.append(req)


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch) -> Any:
    written: list[object] = []

    async def load_callees(pool: Any, keys: list[tuple[str, str | None, dt.date]]) -> list[Any]:
        # the node's wall clock says 2026-11-24 16:30 UTC, already the 25th in Shanghai: the
        # services are looked up on the network's day, not UTC's (nor the machine's)
        assert all(day == dt.date(2026, 11, 25) for _, _, day in keys)
        await asyncio.sleep(0)
        return [
            Callee(CALLEE, True, frozenset({"missed-call", "busy"})) if msisdn == CALLEE else None
            for msisdn, _, _ in keys
        ]

    async def write_records(pool: Any, records: Any, **kw: Any) -> int:
        await asyncio.sleep(0)
        written.extend(records)
        return 1

    async def load_rates(pool: Any, rules: Any) -> RateTable:
        return RateTable(rules)

    batches: list[list[object]] = []

    async def write_missed_calls(conn: Any, records: Any, **kw: Any) -> list[int | None]:
        # the missed calls of one pass: each through write_records as looked up now (a test
        # may have put a failing one in its place); one failing fails the batch, as the one
        # statement does
        batches.append(list(records))
        kw.pop("notify")
        return [await callflow.write_records(conn, [r], **kw) for r in records]

    monkeypatch.setattr(callflow.store, "load_callees", load_callees)
    monkeypatch.setattr(callflow, "write_records", write_records)
    monkeypatch.setattr(callflow.store, "load_rates", load_rates)
    monkeypatch.setattr(callflow, "write_missed_calls", write_missed_calls)
    cfg = parse_config('[ivr]\nmode = "connect"\n')

    class FakeConn:
        def is_closed(self) -> bool:
            return False

    class FakePool:
        def get_max_size(self) -> int:
            return 5  # two lanes for the call path, as asyncpg's pool of 5 gives

        async def acquire(self) -> object:
            return FakeConn()

        async def release(self, c: object) -> None:
            pass

    u = callflow.CallUser(FakeNode(), FakePool(), cfg)
    u.written = written
    u.batches = batches

    u.failures = []

    def boom(*a: Any, **k: Any) -> None:
        import sys

        u.failures.append((a, k, repr(sys.exc_info()[1])))

    u.log = type(
        "L",
        (),
        {
            "exception": boom,
            "info": lambda *a, **k: None,
            "debug": lambda *a, **k: None,
            "error": lambda *a, **k: None,
            "warning": lambda *a, **k: None,
        },
    )()
    yield u
    assert u.failures == []  # the last-resort handler never ran


def idp_param(ac: tuple[int, ...], callee: str = CALLEE) -> bytes:
    codec = inap.CODEC if ac == AC_INAP_CS1_SSF_SCF else cap.CODEC
    o = ops.InitialDP(
        100, CalledPartyNumber(callee), CallingPartyNumber("8613700001111"), event_type_bcsm=12
    )
    return codec.encode_arg(o, ac=ac)[1] or b""


def erb_param(ac: tuple[int, ...]) -> bytes:
    codec = inap.CODEC if ac == AC_INAP_CS1_SSF_SCF else cap.CODEC
    o = ops.EventReportBCSM(
        13, ops.EventSpecificInfo("tBusySpecificInfo", Cause(17)), ops.LegID(2), message_type=0
    )
    return codec.encode_arg(o, ac=ac)[1] or b""


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.mark.parametrize("ac", [AC_CAP_V2_GSMSSF_SCF, AC_CAP_V4_GSMSSF_SCF, AC_INAP_CS1_SSF_SCF])
async def test_busy_ladder_in_order_with_aare_on_first_answer(
    user: Any, ac: tuple[int, ...]
) -> None:
    assert user.accepts(TcBegin(1, A, A, ac))
    # IDP and the ERB arrive back to back: the ERB waits for the IDP's database round trip.
    assert user.handle(TcBegin(1, A, A, ac, components=(Invoke(1, 0, idp_param(ac)),))) == []
    assert user.handle(TcContinue(1, components=(Invoke(2, 24, erb_param(ac), op_class=4),))) == []
    await settle()
    first, second = user.node.sent
    assert isinstance(first, TcContinue) and first.application_context == ac
    assert [c.opcode for c in first.components] == [23, 31]  # type: ignore[union-attr]
    assert isinstance(second, TcEnd) and second.application_context is None
    assert [c.opcode for c in second.components] == [20]  # type: ignore[union-attr]
    assert [type(r).__name__ for r in user.written] == ["RecordMissedCall"]
    assert user.active_calls == 0


async def test_missed_call_write_retried_through_a_database_blip(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses connections twice: the missed call is still written (nothing
    committed by the failed tries, so retrying is safe) before the caller is connected."""
    calls = {"n": 0}
    real = callflow.write_records

    async def flaky(pool: Any, records: Any, **kw: Any) -> int:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ConnectionRefusedError("database restarting")
        return await real(pool, records, **kw)

    monkeypatch.setattr(callflow, "write_records", flaky)
    monkeypatch.setattr(callflow, "DB_RETRY_MIN", 0.0)
    ac = AC_CAP_V2_GSMSSF_SCF
    user.handle(TcBegin(1, A, A, ac, components=(Invoke(1, 0, idp_param(ac)),)))
    user.handle(TcContinue(1, components=(Invoke(2, 24, erb_param(ac), op_class=4),)))
    for _ in range(10):
        await settle()
    assert calls["n"] == 3
    assert [type(r).__name__ for r in user.written] == ["RecordMissedCall"]
    assert isinstance(user.node.sent[-1], TcEnd)
    assert user.stats.db_retries == 2 and not user.stats.records_lost


def _busy_call(user: Any, did: int = 1) -> None:
    ac = AC_CAP_V2_GSMSSF_SCF
    user.handle(TcBegin(did, A, A, ac, components=(Invoke(1, 0, idp_param(ac)),)))
    user.handle(TcContinue(did, components=(Invoke(2, 24, erb_param(ac), op_class=4),)))


# What a failed write proves (scp.state.calls_store): run again, and whether it may have
# committed. asyncpg raises InterfaceError before sending anything; a server error aborts its
# transaction; a connection lost mid-statement or a server going down leaves it unknown.
_CLOSED = asyncpg.InterfaceError("cannot perform operation: connection is closed")
_RELEASED = asyncpg.InterfaceError(
    "cannot call Connection.fetchval(): connection has been released back to the pool"
)
ERROR_CASES = [
    (_CLOSED, True, True),
    (_RELEASED, True, True),
    (ConnectionRefusedError("refused"), True, True),
    (asyncpg.CannotConnectNowError("the database system is starting up"), True, True),
    (asyncpg.SerializationError("could not serialize"), True, True),
    (asyncpg.ReadOnlySQLTransactionError("read-only transaction"), True, True),
    (asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"), True, False),
    (asyncpg.AdminShutdownError("terminating connection"), True, False),
    (asyncpg.CheckViolationError("violates check constraint"), False, True),
    (asyncpg.DataError("invalid input for query argument"), False, True),
]


@pytest.mark.parametrize(("exc", "transient", "committed_nothing"), ERROR_CASES)
def test_which_errors_prove_nothing_was_committed(
    exc: BaseException, transient: bool, committed_nothing: bool
) -> None:
    assert callflow.store.transient(exc) is transient
    assert callflow.store.nothing_committed(exc) is committed_nothing


@pytest.mark.parametrize(
    ("exc", "stale"),
    [
        (_CLOSED, True),
        (_RELEASED, True),
        # a multi-host DSN during a failover: no host accepts writes yet, so another
        # connection at once would find the same; the retry waits like after a refused connect
        (asyncpg.exceptions.TargetServerAttributeNotMatched("none is read-write"), False),
        (ConnectionRefusedError("refused"), False),
        (asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"), False),
    ],
)
def test_which_errors_are_about_the_connection_only(exc: BaseException, stale: bool) -> None:
    assert callflow.store.stale_connection(exc) is stale
    assert callflow.store.transient(exc)


async def test_stale_connection_after_a_restart_is_replaced_at_once(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a PostgreSQL restart a kept connection was taken back by the pool: asyncpg says
    "released back to the pool" before sending anything. The missed call is written on
    another connection, without a pause, and counted once."""
    calls = {"n": 0}
    real = callflow.write_records

    async def stale_first(pool: Any, records: Any, **kw: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise _RELEASED
        return await real(pool, records, **kw)

    monkeypatch.setattr(callflow, "write_records", stale_first)
    monkeypatch.setattr(callflow, "DB_RETRY_MIN", 60.0)  # a pause would fail the test
    _busy_call(user)
    await eventually(lambda: len(user.node.sent) == 2)
    assert calls["n"] == 2 and [type(r).__name__ for r in user.written] == ["RecordMissedCall"]
    assert user.stats.db_retries == 1


async def test_missed_call_whose_commit_was_cut_off_is_written_again(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection dies with the missed call's statement on its way: it may have committed,
    but a write holding a missed call is safe to repeat (migration 0250), so it is."""
    calls = {"n": 0}
    real = callflow.write_records

    async def cut_off(pool: Any, records: Any, **kw: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")
        return await real(pool, records, **kw)

    monkeypatch.setattr(callflow, "write_records", cut_off)
    monkeypatch.setattr(callflow, "DB_RETRY_MIN", 0.0)
    _busy_call(user)
    await eventually(lambda: len(user.node.sent) == 2)
    assert calls["n"] == 2 and user.written and not user.stats.records_in_doubt


async def test_cdr_whose_commit_was_cut_off_is_not_written_twice(user: Any) -> None:
    """A CDR alone is not safe to repeat: cut off mid-commit it is logged and counted as in
    doubt, never written a second time."""
    attempts: list[object] = []

    class Cut:
        def is_closed(self) -> bool:
            return False

    async def write(conn: Any, records: Any, **kw: Any) -> int:
        attempts.append(records)
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")

    ctx = callflow._Ctx(call=callflow._Leg(5, AC_CAP_V2_GSMSSF_SCF, cap), proto="cap2")
    cdr = callflow.C.WriteCdr(
        "call", "8613700001111", "8613700001111", CALLEE, "other-number", "local",
        user.node.wall_now(), user.node.wall_now(), 60, "0.10", "scp-1:5",
    )  # fmt: skip
    real = callflow.write_records
    callflow.write_records = write  # type: ignore[assignment]
    try:
        await user._write(ctx, [cdr], asyncio.get_running_loop().time() + 5)
    finally:
        callflow.write_records = real  # type: ignore[assignment]
    assert len(attempts) == 1
    assert user.stats.records_in_doubt == {"cdr": 1} and not user.stats.records_lost


async def test_database_past_the_budget_initialdp_gets_continue(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database does not answer (a frozen server): the InitialDP is answered with Continue
    once [database] budget is spent, counted; the switch's timer never runs out."""
    hung = asyncio.Event()

    async def never(pool: Any, keys: Any) -> list[Callee]:
        await hung.wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(callflow.store, "load_callees", never)
    user.budget = 0.05
    ac = AC_CAP_V2_GSMSSF_SCF
    user.handle(TcBegin(9, A, A, ac, components=(Invoke(1, 0, idp_param(ac)),)))
    await eventually(lambda: bool(user.node.sent))
    (end,) = user.node.sent
    assert isinstance(end, TcEnd) and [c.opcode for c in end.components] == [31]
    assert user.stats.continued_without_database == 1 and user.active_calls == 0


async def test_records_past_the_budget_the_call_is_still_routed(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is away when the EventReportBCSM comes: the caller still goes to the IVR
    within the budget; the missed call is logged and counted as lost (nothing committed)."""
    tries = {"n": 0}

    async def refused(pool: Any, records: Any, **kw: Any) -> int:
        tries["n"] += 1
        raise ConnectionRefusedError("database down")

    ac = AC_CAP_V2_GSMSSF_SCF
    user.handle(TcBegin(2, A, A, ac, components=(Invoke(1, 0, idp_param(ac)),)))
    await eventually(lambda: len(user.node.sent) == 1)  # the InitialDP was served: events armed
    monkeypatch.setattr(callflow, "write_records", refused)
    user.budget = 0.1
    user.handle(TcContinue(2, components=(Invoke(2, 24, erb_param(ac), op_class=4),)))
    await eventually(lambda: len(user.node.sent) == 2)
    routed = user.node.sent[-1]
    assert isinstance(routed, TcEnd) and [c.opcode for c in routed.components] == [20]
    assert tries["n"] >= 2  # tried again while the budget lasted
    assert user.stats.records_lost == {"missed_call": 1} and not user.stats.records_in_doubt


async def test_unknown_dialogue_gets_u_abort(user: Any) -> None:
    erb = Invoke(2, 24, erb_param(AC_CAP_V2_GSMSSF_SCF), op_class=4)
    assert user.handle(TcContinue(77, components=(erb,))) == [TcUAbort(77)]
    assert user.handle(TcEnd(77)) == []


async def test_not_a_subscriber_and_non_idp_begin_continue(user: Any) -> None:
    ac = AC_CAP_V2_GSMSSF_SCF
    user.handle(TcBegin(3, A, A, ac, components=(Invoke(1, 0, idp_param(ac, "8613911112222")),)))
    user.handle(TcBegin(4, A, A, ac, components=(Invoke(1, 22, b"\x04\x02\x80\x90"),)))
    await settle()
    assert [
        (type(r).__name__, r.dialogue_id, [c.opcode for c in r.components])  # type: ignore[union-attr]
        for r in sorted(user.node.sent, key=lambda r: r.dialogue_id)
    ] == [  # type: ignore[attr-defined]
        ("TcEnd", 3, [31]),
        ("TcEnd", 4, [31]),
    ]


def _begin_calls(user: Any, callees: dict[int, str]) -> None:
    """InitialDPs for ``callees`` (dialogue -> called number) handed over in one pass."""
    ac = AC_CAP_V2_GSMSSF_SCF
    for did, callee in callees.items():
        user.handle(TcBegin(did, A, A, ac, components=(Invoke(1, 0, idp_param(ac, callee)),)))


def _answers(user: Any) -> dict[int, tuple[str, list[int]]]:
    return {
        r.dialogue_id: (type(r).__name__, [c.opcode for c in r.components]) for r in user.node.sent
    }


def _reads(
    monkeypatch: pytest.MonkeyPatch, before: Callable[[int], Awaitable[None]] | None = None
) -> list[list[str]]:
    """The called numbers of each shared read, in order; ``before`` (given the read's number,
    from 1) runs ahead of the fixture's answer: it may wait or fail."""
    reads: list[list[str]] = []
    real = callflow.store.load_callees

    async def spy(conn: Any, keys: Any) -> list[Any]:
        reads.append([k[0] for k in keys])
        if before is not None:
            await before(len(reads))
        return await real(conn, keys)

    monkeypatch.setattr(callflow.store, "load_callees", spy)
    return reads


async def test_initial_dps_of_one_pass_share_one_read(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """InitialDPs handled in one pass of the loop ask for their subscribers in one statement,
    and each call gets its own subscriber's answer."""
    reads = _reads(monkeypatch)
    _begin_calls(user, {1: CALLEE, 2: "8613911112222", 3: CALLEE})
    await settle()
    assert reads == [[CALLEE, "8613911112222", CALLEE]]
    assert _answers(user) == {
        1: ("TcContinue", [23, 31]),  # armed
        2: ("TcEnd", [31]),  # not a subscriber: the call continues
        3: ("TcContinue", [23, 31]),
    }
    # a later InitialDP is a read of its own
    _begin_calls(user, {4: CALLEE})
    await settle()
    assert reads[1:] == [[CALLEE]] and _answers(user)[4] == ("TcContinue", [23, 31])


async def test_event_reports_of_one_pass_write_their_missed_calls_together(user: Any) -> None:
    """EventReportBCSMs handled in one pass ask for their missed calls in one write; each
    call is answered (Connect) only once that write is done, and a later one writes alone."""
    _begin_calls(user, {1: CALLEE, 2: CALLEE, 3: CALLEE})
    await settle()
    ac = AC_CAP_V2_GSMSSF_SCF
    for did in (1, 2, 3):
        user.handle(TcContinue(did, components=(Invoke(2, 24, erb_param(ac), op_class=4),)))
    await settle()
    assert [len(b) for b in user.batches] == [3]
    assert {d: a[0] for d, a in _answers(user).items()} == {1: "TcEnd", 2: "TcEnd", 3: "TcEnd"}
    _begin_calls(user, {4: CALLEE})
    await settle()
    user.handle(TcContinue(4, components=(Invoke(2, 24, erb_param(ac), op_class=4),)))
    await settle()
    assert [len(b) for b in user.batches] == [3, 1] and _answers(user)[4][0] == "TcEnd"


async def test_a_failed_batch_writes_each_call_on_its_own(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails for a reason of its own (not the database's: a bad value) wrote
    nothing: each of its calls is then written on its own, so only a bad call fails."""

    async def bad(conn: Any, records: Any, **kw: Any) -> list[int | None]:
        raise asyncpg.DataError("invalid input for query argument $5")

    monkeypatch.setattr(callflow, "write_missed_calls", bad)
    _begin_calls(user, {1: CALLEE, 2: CALLEE})
    await settle()
    ac = AC_CAP_V2_GSMSSF_SCF
    for did in (1, 2):
        user.handle(TcContinue(did, components=(Invoke(2, 24, erb_param(ac), op_class=4),)))
    await settle()
    assert [type(r).__name__ for r in user.written] == ["RecordMissedCall"] * 2
    assert _answers(user)[1][0] == _answers(user)[2][0] == "TcEnd"
    assert not user.stats.records_lost and not user.stats.db_retries


async def test_a_call_past_its_budget_in_a_batch_is_in_doubt(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's statement was sent and does not answer within the call's budget: the
    call is routed all the same, its missed call counted in doubt (it may commit), never
    lost."""
    hung = asyncio.Event()

    async def never(conn: Any, records: Any, **kw: Any) -> list[int | None]:
        await hung.wait()
        raise AssertionError("unreachable")

    _begin_calls(user, {1: CALLEE})
    await settle()
    monkeypatch.setattr(callflow, "write_missed_calls", never)
    user.budget = 0.05
    ac = AC_CAP_V2_GSMSSF_SCF
    user.handle(TcContinue(1, components=(Invoke(2, 24, erb_param(ac), op_class=4),)))
    await eventually(lambda: len(user.node.sent) == 2)
    assert _answers(user)[1] == ("TcEnd", [20])
    assert user.stats.records_in_doubt == {"missed_call": 1} and not user.stats.records_lost


async def test_a_read_holds_at_most_its_batch(user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = _reads(monkeypatch)
    n = callflow._CalleeReads.batch + 1
    _begin_calls(user, {did: CALLEE for did in range(1, n + 1)})
    await settle()
    assert [len(r) for r in reads] == [n - 1, 1] and len(_answers(user)) == n


async def test_a_failed_read_is_tried_again_by_each_call_of_its_batch(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses the shared read's connection: every call of it tries again (a
    read may always be repeated) and is answered; each retry is counted."""

    async def refused_once(n: int) -> None:
        if n == 1:
            raise ConnectionRefusedError("database restarting")

    reads = _reads(monkeypatch, refused_once)
    monkeypatch.setattr(callflow, "DB_RETRY_MIN", 0.0)
    _begin_calls(user, {1: CALLEE, 2: CALLEE})
    for _ in range(5):
        await settle()
    assert len(reads[0]) == 2 and sum(len(r) for r in reads[1:]) == 2
    assert _answers(user) == {1: ("TcContinue", [23, 31]), 2: ("TcContinue", [23, 31])}
    assert user.stats.db_retries == 2 and user.stats.continued_without_database == 0


async def test_each_call_of_a_failed_read_gets_its_own_exception() -> None:
    """A failed shared read fails every caller's future with an exception of its own (same
    type, arguments and cause): raising one object in several calls' tasks would rewrite its
    traceback under each other."""

    class Refusing:
        @contextlib.asynccontextmanager
        async def conn(self) -> AsyncIterator[Any]:
            try:
                raise OSError("socket closed")
            except OSError as cause:
                raise ConnectionRefusedError(111, "database restarting") from cause
            yield None  # pragma: no cover - never reached

    reads = callflow._CalleeReads(Refusing())
    deadline = asyncio.get_running_loop().time() + 5.0
    key = (CALLEE, None, dt.date(2026, 11, 25))
    futs = [reads.get(key, deadline), reads.get(key, deadline)]
    errors = await asyncio.gather(*futs, return_exceptions=True)
    a, b = errors
    assert isinstance(a, ConnectionRefusedError) and isinstance(b, ConnectionRefusedError)
    assert a is not b and a.args == b.args == (111, "database restarting")
    assert a.errno == b.errno == 111 and a.__cause__ is b.__cause__
    assert isinstance(a.__cause__, OSError)


async def test_a_call_past_its_budget_leaves_its_batch_to_the_others(
    user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that outlasts one call's budget: that call continues without the service, while
    the other call of the same read, whose budget ends later, gets its subscriber when the
    read answers."""
    answer = asyncio.Event()

    async def slow(n: int) -> None:
        await answer.wait()

    reads = _reads(monkeypatch, slow)
    now = asyncio.get_running_loop().time()
    deadlines = iter((now + 0.05, now + 5.0))  # the first call's budget ends first
    monkeypatch.setattr(user, "_deadline", lambda: next(deadlines))
    _begin_calls(user, {1: CALLEE, 2: CALLEE})
    await eventually(lambda: 1 in _answers(user))
    assert _answers(user) == {1: ("TcEnd", [31])}  # past its budget: Continue
    answer.set()
    await eventually(lambda: 2 in _answers(user))
    assert reads == [[CALLEE, CALLEE]] and _answers(user)[2] == ("TcContinue", [23, 31])
    assert user.stats.continued_without_database == 1


def _random_component(rng: random.Random) -> object:
    blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 24)))
    k = rng.randrange(6)
    if k == 0:
        return Invoke(
            rng.randrange(128),
            rng.choice((0, 16, 24, 36, 44, 49, 99)),
            rng.choice((blob, erb_param(AC_CAP_V2_GSMSSF_SCF), None)),
        )
    if k == 1:
        return ReturnResult(rng.randrange(8), 48, rng.choice((blob, None, b"\x80\x02\x01\x12")))
    if k == 2:
        return ReturnError(rng.randrange(8), rng.randrange(20), rng.choice((blob, None)))
    if k == 3:
        return Reject(rng.randrange(8), ProblemType.INVOKE, 1, "remote")
    return Invoke(rng.randrange(128), 0, idp_param(AC_CAP_V2_GSMSSF_SCF))


async def test_fuzz_random_primitives_never_raise(user: Any) -> None:
    rng = random.Random(11)
    acs = [
        AC_CAP_V2_GSMSSF_SCF,
        AC_CAP_V4_GSMSSF_SCF,
        AC_INAP_CS1_SSF_SCF,
        (0, 4, 0, 0, 1, 0, 52, 1),
    ]
    n = 0
    for _round in range(200):
        for _ in range(60):
            did = rng.randrange(1, 40)
            k = rng.randrange(7)
            comps = tuple(_random_component(rng) for _ in range(rng.randrange(0, 3)))
            if k == 0:
                ind: object = TcBegin(did, A, A, rng.choice(acs), components=comps)
            elif k in (1, 2):
                ind = TcContinue(did, components=comps)
            elif k == 3:
                ind = TcEnd(did, components=comps)
            elif k == 4:
                ind = rng.choice((TcUAbort(did), TcPAbort(did, PAbortCause.RESOURCE_LIMITATION)))
            elif k == 5:
                ind = TcComponentEvent(
                    did,
                    rng.choice(
                        (
                            LCancel(rng.randrange(8)),
                            Reject(rng.randrange(8), ProblemType.GENERAL, 0, "local"),
                        )
                    ),
                )
            else:
                ind = TcBegin(
                    did,
                    A,
                    A,
                    AC_CAP_V2_GSMSSF_SCF,
                    components=(Invoke(1, 0, idp_param(AC_CAP_V2_GSMSSF_SCF)),),
                )
            user.handle(ind)
            n += 1
            if rng.random() < 0.1:
                user.node.t += rng.random() * 30
        await settle()
    assert n >= 10_000
