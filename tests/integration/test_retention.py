"""Data retention (scp.flows.retention) on a real PostgreSQL: per kind, nothing younger than
its retention and nothing still open is deleted, everything older and final is, in batches;
a kind kept for ever (0) is untouched; a second node skips the pass while one holds the job;
the node's background loop stops when told."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import asyncpg
import pytest

from scp.config import parse_config
from scp.flows import cdrfiles
from scp.flows.retention import retention_pass, run_retention
from scp.state import retention_store

pytestmark = pytest.mark.integration

NOW = dt.datetime(2024, 6, 30, 12, 0, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=40)
YOUNG = NOW - dt.timedelta(days=20)
CFG = parse_config(
    "[retention]\nmissed_calls = 30\nsms_outbox = 30\nreceipts = 30\nmo_sms = 30\n"
    "audit_log = 0\nbatch = 7\npause = 0\n"
).retention


async def seed(pool: asyncpg.Pool) -> None:
    callee = "8613900000001"
    await pool.execute("INSERT INTO subscriber (msisdn) VALUES ($1)", callee)
    for i in range(20):
        for at in (OLD, YOUNG):
            mc = await pool.fetchval(
                "INSERT INTO missed_call (caller, callee, occurred_at, reason) VALUES"
                " ($1, $2, $3, 'busy') RETURNING id",
                f"86137{i:08d}",
                callee,
                at,
            )
            # every other request still open (never notified, never expiring): kept
            await pool.execute(
                "INSERT INTO callback_request (caller, callee, requested_at, missed_call_id,"
                " notified_at) VALUES ($1, $2, $3, $4, $5)",
                f"86137{i:08d}" if at is OLD else f"86136{i:08d}",
                callee,
                at,
                mc,
                at if i % 2 else None,
            )
            for status in ("delivered", "queued", "sending", "failed"):
                await pool.execute(
                    "INSERT INTO sms_outbox (idempotency_key, destination, text, status,"
                    " next_attempt_at, created_at) VALUES ($1, $2, 't', $3, $4, $4)",
                    f"k{i}:{status}:{at.date()}",
                    callee,
                    status,
                    at,
                )
            await pool.execute(
                "INSERT INTO sms_receipt (smsc_message_id, status, received_at)"
                " VALUES ($1, 'DELIVRD', $2)",
                f"m{i}",
                at,
            )
            await pool.execute(
                "INSERT INTO sms_mo (source, destination, text, received_at, handled_at, next_attempt_at)"
                " VALUES ($1, '12599', 'CX', $2, $3, $2)",
                f"86137{i:08d}",
                at,
                at if i % 2 else None,
            )
            await pool.execute(
                "INSERT INTO audit_log (at, channel, actor, action, entity, entity_key)"
                " VALUES ($1, 'cli', 't', 'x', 'subscriber', $2)",
                at,
                callee,
            )


async def counts(pool: asyncpg.Pool) -> dict[str, tuple[int, int]]:
    """(old rows, young rows) per table."""
    out = {}
    for table, col in (
        ("missed_call", "occurred_at"),
        ("callback_request", "requested_at"),
        ("sms_outbox", "created_at"),
        ("sms_receipt", "received_at"),
        ("sms_mo", "received_at"),
        ("audit_log", "at"),
    ):
        row = await pool.fetchrow(
            f"SELECT count(*) FILTER (WHERE {col} < $1), count(*) FILTER (WHERE {col} >= $1)"
            f" FROM {table}",
            NOW - dt.timedelta(days=30),
        )
        out[table] = (row[0], row[1])
    return out


async def test_only_old_and_final_rows_go(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await seed(pool)
    before = await counts(pool)
    assert all(old > 0 and young > 0 for old, young in before.values())
    deleted = await retention_pass(pool, CFG, NOW)
    after = await counts(pool)
    # nothing younger than its retention is touched
    assert {t: v[1] for t, v in after.items()} == {t: v[1] for t, v in before.items()}
    assert after["missed_call"][0] == 0
    assert after["callback_request"][0] == 10  # the open ones
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM callback_request WHERE requested_at < $1 AND notified_at IS NOT NULL",
            NOW - dt.timedelta(days=30),
        )
        == 0
    )
    # queued and in flight SMS stay; delivered and failed old ones go
    left = await pool.fetch(
        "SELECT status FROM sms_outbox WHERE created_at < $1", NOW - dt.timedelta(days=30)
    )
    assert sorted({r["status"] for r in left}) == ["queued", "sending"] and len(left) == 40
    assert after["sms_receipt"][0] == 0
    assert after["sms_mo"][0] == 10  # the unhandled ones
    assert after["audit_log"] == before["audit_log"]  # 0: kept for ever
    assert deleted == {
        "missed_calls": 20 + 10,
        "sms_outbox": 40,
        "receipts": 20,
        "mo_sms": 10,
    }
    # a second pass finds nothing more
    assert await retention_pass(pool, CFG, NOW) == dict.fromkeys(deleted, 0)


async def test_one_node_at_a_time_and_the_loop_stops(clean_pool: asyncpg.Pool) -> None:
    pool = clean_pool
    await seed(pool)
    async with pool.acquire() as other:  # another node's pass in progress
        assert await other.fetchval("SELECT pg_try_advisory_lock($1, $2)", *retention_store.LOCK)
        assert await retention_pass(pool, CFG, NOW) is None
        assert (await counts(pool))["sms_receipt"][0] == 20  # nothing done
        await other.execute("SELECT pg_advisory_unlock($1, $2)", *retention_store.LOCK)
    stop = asyncio.Event()
    loop = asyncio.create_task(run_retention(pool, CFG, lambda: NOW, stop))
    deadline = asyncio.get_running_loop().time() + 60
    while (await counts(pool))["sms_receipt"][0]:
        assert asyncio.get_running_loop().time() < deadline, "the loop made no pass"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, 30)  # it stops when told (waiting out the interval otherwise)
    assert loop.done() and loop.exception() is None


async def test_cdrs_only_after_export(clean_pool: asyncpg.Pool, tmp_path: Path) -> None:
    """Old CDRs go only once they are in a written CDR file; a younger one stays though
    exported; an old one written after the export, or in a file not yet written, stays."""
    pool = clean_pool
    cfg = parse_config("[retention]\ncdr = 30\nbatch = 2\npause = 0\n").retention

    async def cdr(at: dt.datetime) -> int:
        return await pool.fetchval(
            "INSERT INTO cdr (record_type, msisdn, service, started_at, charge)"
            " VALUES ('fee', '8613700000001', 'callback', $1, 0.1) RETURNING id",
            at,
        )

    old = [await cdr(OLD) for _ in range(5)]
    young = await cdr(YOUNG)
    assert await retention_pass(pool, cfg, NOW) == {"cdr": 0}  # nothing exported yet
    async with pool.acquire() as conn:
        await cdrfiles.export_files(
            conn, node="scp-1", directory=tmp_path, rotation="daily", timezone="UTC", now=NOW
        )
    late = await cdr(OLD)  # an old start, written after the export
    assert await retention_pass(pool, cfg, NOW) == {"cdr": 5}
    left = {r["id"] for r in await pool.fetch("SELECT id FROM cdr")}
    assert left == {young, late} and not set(old) & left
    # exported in a file that is not written yet: kept
    async with pool.acquire() as conn:
        await cdrfiles.export_files(
            conn, node="scp-1", directory=tmp_path, rotation="daily", timezone="UTC", now=NOW
        )
    await pool.execute("UPDATE cdr_file SET written = false WHERE period = $1", "20240521")
    assert await retention_pass(pool, cfg, NOW) == {"cdr": 0}
    await pool.execute("UPDATE cdr_file SET written = true")
    assert await retention_pass(pool, cfg, NOW) == {"cdr": 1}
    assert {r["id"] for r in await pool.fetch("SELECT id FROM cdr")} == {young}
