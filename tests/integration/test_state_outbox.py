"""PgOutbox (scp.state.outbox) on real PostgreSQL: idempotent enqueue, SKIP LOCKED claiming by
concurrent senders, lease reclaim, retry/fail, receipts (also ahead of mark_submitted), expiry,
MO; and the service's OutboxSender driving it end to end."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from scp.adapters.clock import utcnow
from scp.flows.outbox import OutboxSender
from scp.service.outbox import OutboundSms, RetryPolicy
from scp.state.outbox import PgOutbox

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("any_day")]

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


async def status_of(pool: asyncpg.Pool, sms_id: int) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM sms_outbox WHERE id = $1", sms_id)


async def test_enqueue_is_idempotent(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool)
    a = await ob.enqueue("8613800000001", "hello", idempotency_key="mc-1", now=T0)
    b = await ob.enqueue("8613800000001", "other", idempotency_key="mc-1", now=T0)
    assert a == b
    assert await clean_pool.fetchval("SELECT count(*) FROM sms_outbox") == 1


async def test_concurrent_claims_are_disjoint(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool)
    for i in range(60):
        await ob.enqueue(f"86138{i:08d}", f"t{i}", idempotency_key=f"k{i}", now=T0)
    await ob.enqueue("8613899999999", "later", idempotency_key="later", now=T0 + timedelta(hours=1))
    batches = await asyncio.gather(*(ob.claim(25, T0) for _ in range(4)))
    ids = [s.id for b in batches for s in b]
    assert len(ids) == len(set(ids)) == 60  # each due row exactly once, the future one not
    assert all(s.attempts == 1 for b in batches for s in b)
    assert await ob.claim(10, T0) == []


async def test_lease_reclaims_rows_of_a_dead_sender(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool, lease=timedelta(minutes=5))
    sid = await ob.enqueue("8613800000001", "x", idempotency_key="k", now=T0)
    (first,) = await ob.claim(5, T0)
    assert await ob.claim(5, T0 + timedelta(minutes=4)) == []
    (again,) = await ob.claim(5, T0 + timedelta(minutes=5))
    assert again.id == first.id == sid and again.attempts == 2


async def test_retry_fail_submit_receipts(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool)
    a = await ob.enqueue("8613800000001", "a", idempotency_key="a", now=T0)
    b = await ob.enqueue("8613800000002", "b", idempotency_key="b", now=T0)
    c = await ob.enqueue("8613800000003", "c", idempotency_key="c", now=T0)
    await ob.claim(10, T0)
    await ob.mark_retry(a, "throttled", T0 + timedelta(seconds=30))
    assert (await status_of(clean_pool, a))["status"] == "queued"
    assert await ob.claim(10, T0 + timedelta(seconds=29)) == []
    (ra,) = await ob.claim(10, T0 + timedelta(seconds=30))
    assert ra.id == a and ra.attempts == 2
    await ob.mark_failed(b, "invalid destination")
    assert (await status_of(clean_pool, b))["status"] == "failed"
    await ob.mark_submitted(a, "m-a")
    await ob.record_receipt("m-a", "DELIVRD", T0 + timedelta(minutes=1))
    row = await status_of(clean_pool, a)
    assert (row["status"], row["delivery_status"]) == ("delivered", "DELIVRD")
    # the receipt for c overtakes its mark_submitted
    await ob.record_receipt("m-c", "UNDELIV", T0 + timedelta(minutes=1))
    await ob.mark_submitted(c, "m-c")
    row = await status_of(clean_pool, c)
    assert (row["status"], row["delivery_status"], row["smsc_message_id"]) == (
        "failed",
        "UNDELIV",
        "m-c",
    )
    await ob.record_mo("8613800000001", "12599", "STOP", T0)
    assert await clean_pool.fetchval("SELECT text FROM sms_mo") == "STOP"


async def test_expired_rows_are_not_sent(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool)
    sid = await ob.enqueue(
        "8613800000001", "x", idempotency_key="k", now=T0, expires_at=T0 + timedelta(hours=24)
    )
    assert await ob.claim(5, T0 + timedelta(hours=25)) == []
    assert (await status_of(clean_pool, sid))["status"] == "expired"


class Gateway:
    """Accepts every other submit, the others fail temporarily once."""

    ready = True

    def __init__(self) -> None:
        self.n = 0

    async def submit(self, sms: OutboundSms) -> str:
        self.n += 1
        if sms.attempts == 1 and sms.id % 2 == 0:
            raise RuntimeError("temporary")
        return f"m{sms.id}"


async def test_outbox_sender_drives_pg_outbox(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool)
    start = utcnow()
    for i in range(40):
        await ob.enqueue(f"86138{i:08d}", f"t{i}", idempotency_key=f"s{i}", now=start)
    sender = OutboxSender(
        clock=utcnow,
        outbox=ob,
        gateway=Gateway(),
        window=5,
        poll_interval=0.02,
        policy=RetryPolicy(base=0.01, cap=0.01),
    )
    await sender.run_until_idle(idle_for=0.3, timeout=30)
    counts = dict(await clean_pool.fetch("SELECT status, count(*) FROM sms_outbox GROUP BY 1"))
    assert counts == {"submitted": 40}
    assert await clean_pool.fetchval("SELECT max(attempts) FROM sms_outbox") == 2


# -- batching: group commit, read-ahead claims, crash bound -----------------------------------


async def _claimed(ob: PgOutbox, n: int, now: datetime) -> list[OutboundSms]:
    for i in range(n):
        await ob.enqueue(f"86138{i:08d}", f"t{i}", idempotency_key=f"g{i}", now=now)
    return await ob.claim(n, now)


async def test_marks_and_receipts_share_one_transaction(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool, claim_ahead=0, flush_delay=0.01)
    rows = await _claimed(ob, 40, T0)
    at = T0 + timedelta(minutes=1)
    # 0-9 and 10-19 get a receipt queued in the same group as their mark, 20-39 none; all
    # awaited together: one group, one transaction.
    early = [ob.record_receipt(f"m{r.id}", "DELIVRD", at) for r in rows[:10]]
    marks = [ob.mark_submitted(r.id, f"m{r.id}") for r in rows]
    late = [ob.record_receipt(f"m{r.id}", "UNDELIV", at) for r in rows[10:20]]
    before = ob.transactions
    await asyncio.gather(*early, *marks, *late)
    assert ob.transactions - before == 1
    got = {
        r["id"]: (r["status"], r["delivery_status"], r["smsc_message_id"])
        for r in await clean_pool.fetch("SELECT * FROM sms_outbox")
    }
    for i, r in enumerate(rows):
        want = (
            ("delivered", "DELIVRD")
            if i < 10
            else ("failed", "UNDELIV")
            if i < 20
            else ("submitted", None)
        )
        assert got[r.id] == (*want, f"m{r.id}"), i
    assert await clean_pool.fetchval("SELECT count(*) FROM sms_receipt") == 20
    # a receipt overtaking a mark that comes in a LATER group is applied by that mark
    (extra,) = await _claimed_one(ob)
    await ob.record_receipt("m-late", "EXPIRED", at)
    await ob.mark_submitted(extra.id, "m-late")
    assert (await status_of(clean_pool, extra.id))["status"] == "expired"


async def _claimed_one(ob: PgOutbox) -> list[OutboundSms]:
    await ob.enqueue("8613999999999", "x", idempotency_key="one", now=T0)
    return await ob.claim(1, T0)


async def test_two_receipts_for_one_id_in_a_group_apply_in_order(clean_pool: asyncpg.Pool) -> None:
    """The first final receipt wins, as it did one transaction per receipt."""
    ob = PgOutbox(clean_pool, claim_ahead=0, flush_delay=0.01)
    a, b = await _claimed(ob, 2, T0)
    await ob.mark_submitted(a.id, "ma")
    await ob.mark_submitted(b.id, "mb")
    at = T0 + timedelta(minutes=1)
    await asyncio.gather(
        ob.record_receipt("ma", "ACCEPTD", at),
        ob.record_receipt("ma", "UNDELIV", at),
        ob.record_receipt("ma", "DELIVRD", at),
        ob.record_receipt("mb", "DELIVRD", at),
    )
    ra, rb = await status_of(clean_pool, a.id), await status_of(clean_pool, b.id)
    assert (ra["status"], ra["delivery_status"]) == ("failed", "UNDELIV")
    assert (rb["status"], rb["delivery_status"]) == ("delivered", "DELIVRD")
    assert await clean_pool.fetchval("SELECT count(*) FROM sms_receipt") == 4


async def test_a_failing_item_does_not_fail_its_group(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool, claim_ahead=0, flush_delay=0.01)
    a, b = await _claimed(ob, 2, T0)
    bad = ob.record_receipt(None, "DELIVRD", T0)  # type: ignore[arg-type]  # NOT NULL
    good = ob.mark_submitted(a.id, "ma")
    results = await asyncio.gather(bad, good, return_exceptions=True)
    assert isinstance(results[0], Exception) and results[1] is None
    assert (await status_of(clean_pool, a.id))["status"] == "submitted"
    assert (await status_of(clean_pool, b.id))["status"] == "sending"


async def test_read_ahead_is_given_back(clean_pool: asyncpg.Pool) -> None:
    """Rows claimed ahead were never submitted: flush() returns them as they were; stale ones
    are returned instead of handed out."""
    ob = PgOutbox(clean_pool, claim_ahead=20, lease=timedelta(minutes=5))
    for i in range(30):
        await ob.enqueue(f"86138{i:08d}", f"t{i}", idempotency_key=f"r{i}", now=T0)
    got = await ob.claim(3, T0)
    assert len(got) == 3
    counts = dict(await clean_pool.fetch("SELECT status, count(*) FROM sms_outbox GROUP BY 1"))
    assert counts["sending"] >= 20  # read ahead (and maybe more in the background)
    await ob.flush()
    rows = await clean_pool.fetch("SELECT * FROM sms_outbox ORDER BY id")
    assert [r["id"] for r in rows if r["status"] == "sending"] == [s.id for s in got]
    rest = [r for r in rows if r["status"] != "sending"]
    assert len(rest) == 27 and {
        (r["status"], r["attempts"], r["next_attempt_at"]) for r in rest
    } == {("queued", 0, T0)}
    # held for more than half the lease: given back and claimed anew, not handed out stale
    ob2 = PgOutbox(clean_pool, claim_ahead=20, lease=timedelta(minutes=5))
    first = await ob2.claim(1, T0)
    later = await ob2.claim(1, T0 + timedelta(minutes=3))
    assert later[0].id != first[0].id and later[0].attempts == 1
    row = await status_of(clean_pool, later[0].id)
    assert row["next_attempt_at"] == T0 + timedelta(minutes=8)
    await ob2.flush()


async def test_held_row_past_its_validity_is_not_handed_out(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool, claim_ahead=10)
    keep = await ob.enqueue("8613800000001", "a", idempotency_key="a", now=T0)
    gone = await ob.enqueue(
        "8613800000002", "b", idempotency_key="b", now=T0, expires_at=T0 + timedelta(seconds=30)
    )
    assert [s.id for s in await ob.claim(1, T0)] == [keep]
    assert await ob.claim(1, T0 + timedelta(seconds=31)) == []
    await ob.claim(1, T0 + timedelta(seconds=40))  # the sweep marks it
    assert (await status_of(clean_pool, gone))["status"] == "expired"


class CountingGateway:
    """Accepts everything; counts submits per row."""

    ready = True

    def __init__(self) -> None:
        self.submits: dict[int, int] = {}

    async def submit(self, sms: OutboundSms) -> str:
        self.submits[sms.id] = self.submits.get(sms.id, 0) + 1
        await asyncio.sleep(0.0005)
        return f"m{sms.id}-{self.submits[sms.id]}"


class CrashingOutbox(PgOutbox):
    """Its group commits never finish and it flushes nothing: the process dies before them."""

    async def _commit(self, submits, receipts) -> None:  # type: ignore[no-untyped-def]
        await asyncio.Event().wait()

    async def flush(self) -> None:
        return


async def test_crash_before_the_group_commit_resends_at_most_the_bound(
    clean_pool: asyncpg.Pool,
) -> None:
    n, window, prefetch, commit_window = 200, 4, 3, 9
    bound = window + prefetch + commit_window
    start = utcnow()
    for i in range(n):
        await clean_pool.execute(
            "INSERT INTO sms_outbox (idempotency_key, destination, text, next_attempt_at)"
            " VALUES ($1, $2, 't', $3)",
            f"c{i}",
            f"86138{i:08d}",
            start,
        )
    gw = CountingGateway()
    lease = timedelta(seconds=0.5)
    crashing = CrashingOutbox(clean_pool, lease=lease, claim_ahead=32)
    sender = OutboxSender(
        clock=utcnow,
        outbox=crashing,
        gateway=gw,
        window=window,
        prefetch=prefetch,
        commit_window=commit_window,
        poll_interval=0.01,
    )
    run = asyncio.create_task(sender.run())
    for _ in range(100):
        await asyncio.sleep(0.01)
    accepted = dict(gw.submits)
    assert commit_window <= len(accepted) <= bound  # it stopped at the bound, stuck on commits
    # the crash: every task and pending mark of the process gone, nothing flushed
    if crashing._flusher is not None:
        crashing._flusher.cancel()
    for item in crashing._submits:
        item.done.cancel()
    for t in {*sender._inflight, *sender._committing}:
        t.cancel()
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    assert (
        await clean_pool.fetchval("SELECT count(*) FROM sms_outbox WHERE status = 'submitted'") == 0
    )
    await asyncio.sleep(lease.total_seconds() + 0.1)  # the dead sender's lease ends
    ob = PgOutbox(clean_pool, lease=timedelta(minutes=1))
    await OutboxSender(
        clock=utcnow, outbox=ob, gateway=gw, window=10, poll_interval=0.02
    ).run_until_idle(idle_for=0.2, timeout=30)
    twice = {i for i, c in gw.submits.items() if c > 1}
    assert twice == set(accepted) and len(twice) <= bound  # only the uncommitted ones
    assert max(gw.submits.values()) == 2 and len(gw.submits) == n
    assert (
        await clean_pool.fetchval("SELECT count(*) FROM sms_outbox WHERE status = 'submitted'") == n
    )


async def test_stop_flushes_and_senders_never_double_submit(clean_pool: asyncpg.Pool) -> None:
    """Three senders with read-ahead on one outbox table; one stops half way: its marks are
    committed and its read-ahead given back before run() returns; no row goes out twice."""
    n = 1500
    start = utcnow()
    await clean_pool.execute(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, next_attempt_at)"
        " SELECT 's' || g, '86139' || lpad(g::text, 8, '0'), 't', $1"
        " FROM generate_series(1, $2) g",
        start,
        n,
    )
    gw = CountingGateway()
    quitter_ob = PgOutbox(clean_pool, claim_ahead=100)
    quitter = OutboxSender(
        clock=utcnow, outbox=quitter_ob, gateway=gw, window=10, poll_interval=0.02
    )
    others = [
        OutboxSender(
            clock=utcnow,
            outbox=PgOutbox(clean_pool, claim_ahead=100),
            gateway=gw,
            window=10,
            poll_interval=0.02,
        )
        for _ in range(2)
    ]
    run = asyncio.create_task(quitter.run())
    rest = asyncio.gather(*(s.run_until_idle(idle_for=0.3, timeout=60) for s in others))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while quitter.submitted < 100 and loop.time() < deadline:
        await asyncio.sleep(0.005)
    quitter.stop()
    await run
    # every SMS the quitter got accepted is committed before run() returns
    assert quitter.submitted > 0 and quitter_ob.pending == 0 and not quitter_ob._held
    accepted = [i for i, c in gw.submits.items() if c]
    states = await clean_pool.fetch(
        "SELECT id, status FROM sms_outbox WHERE id = ANY($1)", accepted
    )
    assert len(states) == len(accepted)
    assert sum(1 for r in states if r["status"] == "submitted") >= quitter.submitted
    await rest
    assert len(gw.submits) == n and set(gw.submits.values()) == {1}
    counts = dict(await clean_pool.fetch("SELECT status, count(*) FROM sms_outbox GROUP BY 1"))
    assert counts == {"submitted": n}
    assert await clean_pool.fetchval("SELECT max(attempts) FROM sms_outbox") == 1
