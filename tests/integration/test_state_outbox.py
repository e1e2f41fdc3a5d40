"""PgOutbox (scp.state.outbox) on real PostgreSQL: idempotent enqueue, SKIP LOCKED claiming by
concurrent senders, lease reclaim, retry/fail, receipts (also ahead of mark_submitted), expiry,
MO; and the service's OutboxSender driving it end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from scp.service.outbox import OutboundSms, OutboxSender, RetryPolicy
from scp.state.outbox import PgOutbox

pytestmark = pytest.mark.integration

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
    await ob.enqueue("8613899999999", "later", idempotency_key="later",
                     now=T0 + timedelta(hours=1))
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
        "failed", "UNDELIV", "m-c")
    await ob.record_mo("8613800000001", "12599", "STOP", T0)
    assert await clean_pool.fetchval("SELECT text FROM sms_mo") == "STOP"


async def test_expired_rows_are_not_sent(clean_pool: asyncpg.Pool) -> None:
    ob = PgOutbox(clean_pool)
    sid = await ob.enqueue("8613800000001", "x", idempotency_key="k", now=T0,
                           expires_at=T0 + timedelta(hours=24))
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
    start = datetime.now(UTC)
    for i in range(40):
        await ob.enqueue(f"86138{i:08d}", f"t{i}", idempotency_key=f"s{i}", now=start)
    sender = OutboxSender(outbox=ob, gateway=Gateway(), window=5, poll_interval=0.02,
                          policy=RetryPolicy(base=0.01, cap=0.01))
    await sender.run_until_idle(idle_for=0.3, timeout=30)
    counts = dict(await clean_pool.fetch("SELECT status, count(*) FROM sms_outbox GROUP BY 1"))
    assert counts == {"submitted": 40}
    assert await clean_pool.fetchval("SELECT max(attempts) FROM sms_outbox") == 2
