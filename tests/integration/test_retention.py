"""Data retention (scp.flows.retention) on a real PostgreSQL: per kind, nothing younger than
its retention and nothing still open is deleted, everything older and final is, in batches;
a kind kept for ever (0) is untouched; a second node skips the pass while one holds the job;
the node's background loop stops when told.

The cutoff of every kind is probed a minute either side of its retention; the batches are
watched by a statement trigger in PostgreSQL (rows per DELETE, and its transaction); the
node's "retention" task is driven as scp.app.Services starts it, on the node's clock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from scp.app import Services
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


TABLES = ("callback_request", "missed_call", "sms_outbox", "sms_receipt", "sms_mo", "audit_log")


@contextlib.asynccontextmanager
async def batches(pool: asyncpg.Pool, tables: tuple[str, ...]) -> AsyncIterator[str]:
    """Log every DELETE statement on ``tables``: its table, rows and transaction (a statement
    trigger's transition table), into the returned table; dropped afterwards."""
    await pool.execute(
        "CREATE TABLE retention_batch (seq serial, tbl text, n int, xid bigint);"
        " CREATE FUNCTION retention_batch_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " INSERT INTO retention_batch (tbl, n, xid) SELECT TG_TABLE_NAME, count(*),"
        " txid_current() FROM gone; RETURN NULL; END $$"
    )
    for t in tables:
        await pool.execute(
            f"CREATE TRIGGER retention_batch AFTER DELETE ON {t} REFERENCING OLD TABLE AS gone"
            " FOR EACH STATEMENT EXECUTE FUNCTION retention_batch_log()"
        )
    try:
        yield "retention_batch"
    finally:
        for t in tables:
            await pool.execute(f"DROP TRIGGER retention_batch ON {t}")
        await pool.execute("DROP TABLE retention_batch; DROP FUNCTION retention_batch_log()")


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


TIME_COLUMNS = (
    ("missed_call", "occurred_at"),
    ("callback_request", "requested_at"),
    ("sms_outbox", "created_at"),
    ("sms_receipt", "received_at"),
    ("sms_mo", "received_at"),
    ("audit_log", "at"),
)


async def counts(pool: asyncpg.Pool) -> dict[str, tuple[int, int]]:
    """(old rows, young rows) per table."""
    out = {}
    for table, col in TIME_COLUMNS:
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
    async with batches(pool, TABLES) as log:
        deleted = await retention_pass(pool, CFG, NOW)
        stmts = await pool.fetch(f"SELECT tbl, n, xid FROM {log} ORDER BY seq")
    # batch = 7: full batches until a short one (0 when the rows were a multiple of 7), each
    # statement in a transaction of its own; a callback request before its missed call
    assert [(r["tbl"], r["n"]) for r in stmts] == [
        ("callback_request", 7),
        ("callback_request", 3),
        ("missed_call", 7),
        ("missed_call", 7),
        ("missed_call", 6),
        *[("sms_outbox", 7)] * 5,
        ("sms_outbox", 5),
        ("sms_receipt", 7),
        ("sms_receipt", 7),
        ("sms_receipt", 6),
        ("sms_mo", 7),
        ("sms_mo", 3),
    ]
    assert len({r["xid"] for r in stmts}) == len(stmts)
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
    # a billed month: the export records its fee file too
    await pool.execute(
        "INSERT INTO billing_run (month, proration, status, node, started_at) VALUES"
        " ('2024-04-01', 'daily', 'done', 'scp-1', $1)",
        NOW,
    )
    async with pool.acquire() as conn:
        await cdrfiles.export_files(
            conn, node="scp-1", directory=tmp_path, rotation="daily", timezone="UTC", now=NOW
        )
    late = await cdr(OLD)  # an old start, written after the export
    # a fee file not written yet holds no CDR back
    await pool.execute("UPDATE cdr_file SET written = false WHERE kind = 'fee'")
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


BOUNDARY = parse_config(
    "[retention]\nmissed_calls = 30\nsms_outbox = 30\nreceipts = 30\nmo_sms = 30\n"
    "audit_log = 30\ncdr = 30\nbatch = 2\npause = 0\n"
).retention
CUTOFF = NOW - dt.timedelta(days=30)
MINUTE = dt.timedelta(minutes=1)


async def seed_at(pool: asyncpg.Pool, at: dt.datetime, tag: str) -> None:
    """One final row of every kind at ``at`` (``tag`` tells them apart)."""
    caller, callee = f"86137{tag}", "8613900000001"
    mc = await pool.fetchval(
        "INSERT INTO missed_call (caller, callee, occurred_at, reason) VALUES ($1, $2, $3,"
        " 'busy') RETURNING id",
        caller,
        callee,
        at,
    )
    await pool.execute(
        "INSERT INTO callback_request (caller, callee, requested_at, missed_call_id,"
        " notified_at) VALUES ($1, $2, $3, $4, $3)",
        caller,
        callee,
        at,
        mc,
    )
    await pool.execute(
        "INSERT INTO sms_outbox (idempotency_key, destination, text, status, next_attempt_at,"
        " created_at) VALUES ($1, $2, 't', 'delivered', $3, $3)",
        f"k:{tag}",
        callee,
        at,
    )
    await pool.execute(
        "INSERT INTO sms_receipt (smsc_message_id, status, received_at) VALUES ($1, 'DELIVRD', $2)",
        f"m:{tag}",
        at,
    )
    await pool.execute(
        "INSERT INTO sms_mo (source, destination, text, received_at, handled_at,"
        " next_attempt_at) VALUES ($1, '12599', 'CX', $2, $2, $2)",
        caller,
        at,
    )
    await pool.execute(
        "INSERT INTO audit_log (at, channel, actor, action, entity, entity_key)"
        " VALUES ($1, 'cli', 't', 'x', 'subscriber', $2)",
        at,
        tag,
    )
    await pool.execute(
        "INSERT INTO cdr (record_type, msisdn, service, started_at, charge)"
        " VALUES ('fee', $1, 'callback', $2, 0.1)",
        caller,
        at,
    )


async def test_every_kind_cut_at_its_retention_to_the_minute(
    clean_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """A minute older than its retention goes, its retention exactly or a minute younger stays:
    every kind, the audit log and (exported) CDRs too."""
    pool = clean_pool
    await pool.execute("INSERT INTO subscriber (msisdn) VALUES ('8613900000001')")
    for tag, at in (
        ("00000001", CUTOFF - MINUTE),
        ("00000002", CUTOFF),
        ("00000003", CUTOFF + MINUTE),
    ):
        await seed_at(pool, at, tag)
    async with pool.acquire() as conn:
        await cdrfiles.export_files(
            conn, node="scp-1", directory=tmp_path, rotation="daily", timezone="UTC", now=NOW
        )
    deleted = await retention_pass(pool, BOUNDARY, NOW)
    assert deleted == {
        "missed_calls": 2,  # the request, then its missed call
        "sms_outbox": 1,
        "receipts": 1,
        "mo_sms": 1,
        "audit_log": 1,
        "cdr": 1,
    }
    for table, col in (*TIME_COLUMNS, ("cdr", "started_at")):
        left = [r[0] for r in await pool.fetch(f"SELECT {col} FROM {table} ORDER BY {col}")]
        assert left == [CUTOFF, CUTOFF + MINUTE], table


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_nodes_retention_task(clean_pool: asyncpg.Pool) -> None:
    """scp.app.Services starts the "retention" task on the node's wall clock: one pass deletes
    what is older than [retention] and nothing younger, and the task ends with the node."""
    pool = clean_pool
    await pool.execute("INSERT INTO subscriber (msisdn) VALUES ('8613900000001')")
    for tag, at in (("00000001", CUTOFF - MINUTE), ("00000003", CUTOFF + MINUTE)):
        await seed_at(pool, at, tag)
    cfg = parse_config(
        '[m3ua]\nlisten = "127.0.0.1:0"\nbeat_interval = 0\n'
        f'[smpp]\nhost = "127.0.0.1"\nport = {_closed_port()}\n'
        "[retention]\nreceipts = 30\naudit_log = 30\nbatch = 1\npause = 0\n"
    )
    services = Services(cfg, pool)
    services.node.wallclock = NOW.timestamp  # the node's clock: business time, not today's
    await services.start()
    try:
        (task,) = [t for t in services._tasks if t.get_name() == "retention"]
        async with asyncio.timeout(30):  # a bound on the first pass, not a measured time
            while await pool.fetchval("SELECT count(*) FROM sms_receipt") > 1:
                await asyncio.sleep(0.05)
            while await pool.fetchval("SELECT count(*) FROM audit_log") > 1:
                await asyncio.sleep(0.05)
    finally:
        await services.stop()
    assert task.done() and task.exception() is None
    for table, col in (("sms_receipt", "received_at"), ("audit_log", "at")):
        assert [r[0] for r in await pool.fetch(f"SELECT {col} FROM {table}")] == [
            CUTOFF + MINUTE
        ], table
    # kinds without a retention are kept
    assert await pool.fetchval("SELECT count(*) FROM sms_mo") == 2
