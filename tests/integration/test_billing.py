"""The monthly billing run on a real PostgreSQL (scp.flows.billing, migration 0200).

* the fee of each product per subscriber, prorated by the days subscribed ([billing] proration
  daily) or in full, over price lists versioned by start date: named cases with their sums,
  and a seeded random population where the database's answer equals the pure rule's
  (scp.service.billing.monthly_fee) for every subscriber and product;
* the periods a subscription row no longer shows are kept (off and on again in a month, a
  renumbered or deleted subscriber), so they are billed;
* idempotence: a second run writes nothing; the old tariff lines' monthly fee migrates;
* `mcn-scp billing run` as real processes: one killed with SIGKILL in the middle of a run and
  run again (no duplicate, no gap), and two started at once (one works, the other waits and
  writes nothing), with the summary and --json output.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from scp.config import Config, parse_config
from scp.flows import billing
from scp.flows import provisioning as P
from scp.service.billing import ProductPrice, monthly_fee, price_segments
from scp.service.rating import RatingRules
from scp.state import billing_store as store
from scp.state import calls_store
from scp.state.migrate import migrate
from tests.conftest import create_database, drop_database
from tests.helpers import eventually

pytestmark = pytest.mark.integration

ADMIN = P.Actor("cli", "test")
JUNE = dt.date(2024, 6, 1)
MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")
NOW = dt.datetime(2024, 7, 1, 2, 0, tzinfo=dt.UTC)


def d(day: str) -> dt.date:
    return dt.date.fromisoformat(day)


def cfg(proration: str = "daily", chunk: int = 5000) -> Config:
    return parse_config(f'[billing]\nproration = "{proration}"\nchunk = {chunk}\n')


async def prices(pool: asyncpg.Pool) -> None:
    """The brief's example: missed-call and busy at 2 元 a month; busy dearer from the 16th."""
    for service, fee, day in (
        ("missed-call", "2.00", "2024-01-01"),
        ("busy", "2.00", "2024-01-01"),
        ("busy", "3.00", "2024-06-16"),
    ):
        await billing.set_price(pool, ADMIN, service, fee, today=d(day))


async def run(pool: asyncpg.Pool, conf: Config, month: dt.date = JUNE) -> billing.RunSummary:
    async with pool.acquire() as conn:
        return await billing.run_month(
            conn, month=month, cfg=conf, today=NOW.date(), clock=lambda: NOW
        )


async def fees(pool: asyncpg.Pool, month: dt.date = JUNE) -> dict[tuple[str, str], tuple]:
    rows = await pool.fetch(
        "SELECT msisdn, service, days, fee, charge FROM monthly_fee WHERE month = $1", month
    )
    return {(r["msisdn"], r["service"]): (r["days"], r["fee"], r["charge"]) for r in rows}


async def population(pool: asyncpg.Pool) -> None:
    """Named subscribers, each with its June."""
    add = P.add_subscriber
    # A: both products since May, still on
    await add(pool, ADMIN, "8613800000001", today=d("2024-05-01"), services=["missed-call", "busy"])
    # B: missed-call from the 10th
    await add(pool, ADMIN, "8613800000002", today=d("2024-06-10"), services=["missed-call"])
    # C: since May, off on the 5th (the 1st to the 4th subscribed)
    await add(pool, ADMIN, "8613800000003", today=d("2024-05-01"), services=["missed-call"])
    await P.disable_service(pool, ADMIN, "8613800000003", "missed-call", today=d("2024-06-05"))
    # D: on the 1st, off the 11th, on again the 21st: 20 days in two periods
    await add(pool, ADMIN, "8613800000004", today=d("2024-06-01"), services=["missed-call"])
    await P.disable_service(pool, ADMIN, "8613800000004", "missed-call", today=d("2024-06-11"))
    await P.enable_service(pool, ADMIN, "8613800000004", "missed-call", today=d("2024-06-21"))
    # E: since May, deleted on the 16th: 15 days billed though the subscriber is gone
    await add(pool, ADMIN, "8613800000005", today=d("2024-05-01"), services=["missed-call"])
    await P.delete_subscriber(pool, ADMIN, "8613800000005", today=d("2024-06-16"))
    # F: from July: nothing in June
    await add(pool, ADMIN, "8613800000006", today=d("2024-07-01"), services=["missed-call"])
    # G: voicemail has no price: no record; busy only from the 20th at the new price
    await add(pool, ADMIN, "8613800000007", today=d("2024-06-20"), services=["voicemail", "busy"])


EXPECTED_DAILY = {
    ("8613800000001", "missed-call"): (30, Decimal("2.0000"), Decimal("2.0000")),
    # 15 days at 2.00 and 15 at 3.00: (30 + 45) / 30
    ("8613800000001", "busy"): (30, Decimal("2.0000"), Decimal("2.5000")),
    ("8613800000002", "missed-call"): (21, Decimal("2.0000"), Decimal("1.4000")),  # 42 / 30
    ("8613800000003", "missed-call"): (4, Decimal("2.0000"), Decimal("0.2700")),  # 0.2667
    ("8613800000004", "missed-call"): (20, Decimal("2.0000"), Decimal("1.3300")),  # 1.3333
    ("8613800000005", "missed-call"): (15, Decimal("2.0000"), Decimal("1.0000")),
    ("8613800000007", "busy"): (11, Decimal("3.0000"), Decimal("1.1000")),  # 33 / 30
}


async def test_daily_proration_named_cases(clean_pool: asyncpg.Pool) -> None:
    await prices(clean_pool)
    await population(clean_pool)
    started: list[int] = []
    steps: list[int] = []
    async with clean_pool.acquire() as conn:
        s = await billing.run_month(
            conn,
            month=JUNE,
            cfg=cfg("daily", chunk=2),
            today=NOW.date(),
            clock=lambda: NOW,
            start=started.append,
            progress=steps.append,
        )
    # the progress bar ends full: every period read is told, the unpriced voicemail one too
    assert len(started) == 1 and sum(steps) == started[0] > len(EXPECTED_DAILY)
    assert await fees(clean_pool) == EXPECTED_DAILY
    assert (s.status, s.written, s.records, s.already_done) == ("done", 7, 7, False)
    assert s.written_total == s.total == sum(v[2] for v in EXPECTED_DAILY.values())
    assert [(p.service, p.records) for p in s.products] == [("busy", 2), ("missed-call", 5)]
    # the same again: done, nothing written, the same records
    again = await run(clean_pool, cfg("daily"))
    assert (again.written, again.already_done, again.records) == (0, True, 7)
    assert await fees(clean_pool) == EXPECTED_DAILY


async def test_a_month_not_over_is_refused(clean_pool: asyncpg.Pool) -> None:
    """Billed on its last day, June would miss a service starting that day and charge one
    that ended early as if it ran to the end, and the run, once done, is never redone: the
    run refuses it (naming the month) until the network's day is 1 July, and writes nothing."""
    await prices(clean_pool)
    await population(clean_pool)
    for today in (d("2024-05-20"), d("2024-06-01"), d("2024-06-30")):
        async with clean_pool.acquire() as conn:
            with pytest.raises(P.InvalidInput, match=r"^month: 2024-06 is not over in Asia"):
                await billing.run_month(conn, month=JUNE, cfg=cfg(), today=today, clock=lambda: NOW)
    assert await clean_pool.fetchval("SELECT count(*) FROM billing_run") == 0
    assert await fees(clean_pool) == {}
    async with clean_pool.acquire() as conn:
        s = await billing.run_month(
            conn, month=JUNE, cfg=cfg(), today=d("2024-07-01"), clock=lambda: NOW
        )
    assert (s.status, s.records) == ("done", len(EXPECTED_DAILY))


async def test_full_month_whatever_the_days(clean_pool: asyncpg.Pool) -> None:
    await prices(clean_pool)
    await population(clean_pool)
    await run(clean_pool, cfg("full"))
    got = await fees(clean_pool)
    assert set(got) == set(EXPECTED_DAILY)
    # the price in force on the first subscribed day, in full
    assert {k: v[2] for k, v in got.items()} == {
        k: (Decimal("3.0000") if k == ("8613800000007", "busy") else Decimal("2.0000"))
        for k in EXPECTED_DAILY
    }


async def test_a_resumed_run_keeps_its_proration(clean_pool: asyncpg.Pool) -> None:
    await prices(clean_pool)
    await clean_pool.execute(
        "INSERT INTO billing_run (month, proration, node, started_at) VALUES ($1, 'full',"
        " 'scp-2', $2)",
        JUNE,
        NOW,
    )
    with pytest.raises(P.Conflict, match="proration 'full'"):
        await run(clean_pool, cfg("daily"))


async def test_a_record_the_run_did_not_write_stops_it(clean_pool: asyncpg.Pool) -> None:
    """The chunks insert plainly (the resume point keeps them from writing twice): a fee record
    already there past the resume point is refused by the unique key, never skipped or
    doubled; the chunks before it stay committed and the run resumes once it is gone."""
    pool = clean_pool
    await prices(pool)
    await population(pool)
    stray = ("8613800000004", "missed-call")
    await pool.execute(
        "INSERT INTO monthly_fee (month, msisdn, service, days, month_days, fee, charge)"
        " VALUES ($1, $2, $3, 1, 30, 9, 9)",
        JUNE,
        *stray,
    )
    with pytest.raises(P.Conflict, match=r"2024-06 fee record .*8613800000004.*run again"):
        await run(pool, cfg("daily", chunk=2))  # subscribers 01, 02-03, then 04 to 06
    assert await pool.fetchval("SELECT after_msisdn FROM billing_run") == "8613800000003"
    before = {k: v for k, v in EXPECTED_DAILY.items() if k[0] <= "8613800000003"}
    assert await fees(pool) == before | {stray: (1, Decimal("9.0000"), Decimal("9.0000"))}
    await pool.execute("DELETE FROM monthly_fee WHERE msisdn = $1", stray[0])
    s = await run(pool, cfg("daily", chunk=2))
    assert (s.status, s.written, s.records) == ("done", 3, 7)
    assert await fees(pool) == EXPECTED_DAILY


async def test_kept_periods_follow_the_subscription(clean_pool: asyncpg.Pool) -> None:
    """What the trigger keeps: a period replaced by a later start, the history of a
    renumbered subscriber, a deleted one's ended services; a backdated start absorbs."""
    pool, m = clean_pool, "8613800000010"
    await P.add_subscriber(pool, ADMIN, m, today=d("2024-01-10"), services=["busy"])
    await P.disable_service(pool, ADMIN, m, "busy", today=d("2024-02-01"))
    await P.enable_service(pool, ADMIN, m, "busy", today=d("2024-03-01"))  # after it ended
    await P.disable_service(pool, ADMIN, m, "busy", today=d("2024-04-01"))
    await P.enable_service(pool, ADMIN, m, "busy", today=d("2024-05-01"))

    async def kept(msisdn: str) -> list[tuple[dt.date, dt.date]]:
        rows = await pool.fetch(
            "SELECT start_date, end_date FROM subscription_period WHERE msisdn = $1"
            " ORDER BY start_date",
            msisdn,
        )
        return [(r[0], r[1]) for r in rows]

    assert await kept(m) == [(d("2024-01-10"), d("2024-02-01")), (d("2024-03-01"), d("2024-04-01"))]
    # re-enabling while on changes nothing; a start moved earlier absorbs what it covers
    await P.enable_service(pool, ADMIN, m, "busy", today=d("2024-05-20"))
    await P.enable_service(pool, ADMIN, m, "busy", today=d("2024-05-20"), start=d("2024-03-15"))
    assert await kept(m) == [(d("2024-01-10"), d("2024-02-01")), (d("2024-03-01"), d("2024-03-15"))]
    # renumbered: the history follows the number
    await pool.execute("UPDATE subscriber SET msisdn = '8613800000011' WHERE msisdn = $1", m)
    assert await kept(m) == []
    assert len(await kept("8613800000011")) == 2
    # deleted on a day: its services end that day and are kept
    await P.delete_subscriber(pool, ADMIN, "8613800000011", today=d("2024-06-10"))
    assert (await kept("8613800000011"))[-1] == (d("2024-03-15"), d("2024-06-10"))


async def test_the_database_bills_as_the_pure_rule_says(clean_pool: asyncpg.Pool) -> None:
    """Seeded random subscribers, periods and price lists: every fee the run writes (in both
    proration modes, one month each) is the one scp.service.billing.monthly_fee computes, and
    nobody the rule bills is missing."""
    rng = random.Random(15)
    pool = clean_pool
    lines: list[ProductPrice] = []
    for service in ("missed-call", "busy", "forwarding"):
        for _ in range(rng.randint(1, 4)):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 75))
            fee = Decimal(rng.randint(0, 500)) / 100
            lines.append(ProductPrice(service, day, fee))
    for p in lines:
        await billing.set_price(pool, ADMIN, p.service, p.monthly_fee, today=p.valid_from)
    lines = await billing.list_prices(pool)
    current, kept = [], []
    periods: dict[tuple[str, str], list[tuple[dt.date, dt.date | None]]] = {}
    for i in range(400):
        msisdn = f"86139{i:08d}"
        for service in rng.sample(["missed-call", "busy", "forwarding", "voicemail"], 2):
            day = dt.date(2024, 1, 15) + dt.timedelta(days=rng.randint(0, 40))
            ps: list[tuple[dt.date, dt.date | None]] = []
            for _ in range(rng.randint(1, 3)):
                start = day
                day = start + dt.timedelta(days=rng.randint(1, 25))
                ps.append((start, day))
                day += dt.timedelta(days=rng.randint(1, 10))
            if rng.random() < 0.5:
                ps[-1] = (ps[-1][0], None)  # still running
            periods[(msisdn, service)] = ps
            current.append((msisdn, service, *ps[-1]))
            kept += [(msisdn, service, s, e) for s, e in ps[:-1]]
    await pool.executemany(
        "INSERT INTO subscriber (msisdn) VALUES ($1)", [(m,) for m in {c[0] for c in current}]
    )
    await pool.executemany(
        "INSERT INTO subscription (msisdn, service, start_date, end_date) VALUES ($1,$2,$3,$4)",
        current,
    )
    await pool.executemany(
        "INSERT INTO subscription_period (msisdn, service, start_date, end_date)"
        " VALUES ($1, $2, $3, $4)",
        kept,
    )
    for month, proration in ((dt.date(2024, 2, 1), "daily"), (dt.date(2024, 3, 1), "full")):
        await run(pool, cfg(proration, chunk=37), month)
        segs = price_segments(lines, month)
        want = {}
        for (msisdn, service), ps in periods.items():
            f = monthly_fee(ps, [g for g in segs if g.service == service], month, proration)
            if f is not None:
                want[(msisdn, service)] = (f.days, f.fee, f.charge)
        got = await fees(pool, month)
        assert len(want) > 200
        assert got == want, proration


@contextlib.asynccontextmanager
async def _database_at(pg_admin_dsn: str, version: int) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new database migrated up to ``version`` (the test migrates the rest);
    the database is dropped afterwards."""
    dsn = create_database(pg_admin_dsn, "mig", migrated=False)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, target=version)
            yield conn
        finally:
            await conn.close()
    finally:
        drop_database(pg_admin_dsn, dsn)


async def test_runs_billed_before_0260_get_their_totals_per_product(pg_admin_dsn: str) -> None:
    """Migration 0260: the totals per product of months billed before it come from their fee
    records; a month without a run gets none."""
    async with _database_at(pg_admin_dsn, 250) as conn:
        await conn.execute(
            "INSERT INTO billing_run (month, proration, status, node, started_at)"
            " VALUES ('2024-05-01', 'daily', 'done', 'scp-1', now())"
        )
        await conn.execute(
            "INSERT INTO monthly_fee (month, msisdn, service, days, month_days, fee, charge)"
            " VALUES ('2024-05-01', '8613700000001', 'busy', 31, 31, 2, 2.00),"
            " ('2024-05-01', '8613700000002', 'busy', 10, 31, 2, 0.65),"
            " ('2024-05-01', '8613700000001', 'missed-call', 31, 31, 2, 2.00),"
            " ('2024-04-01', '8613700000001', 'busy', 30, 30, 2, 2.00)"
        )
        await migrate(conn)
        assert await store.month_totals(conn, d("2024-05-01")) == [
            ("busy", 2, Decimal("2.6500")),
            ("missed-call", 1, Decimal("2.0000")),
        ]
        assert await store.month_totals(conn, d("2024-04-01")) == []


async def test_tariff_monthly_fees_become_product_prices(pg_admin_dsn: str) -> None:
    """Migration 0200: a monthly fee on tariff lines was never billed; it becomes the price of
    both notification products from the same day."""
    async with _database_at(pg_admin_dsn, 60) as conn:
        await conn.execute(
            "INSERT INTO rate (call_category, prefix, monthly_fee, valid_from) VALUES"
            " ('local', '', 2.00, '2024-01-01'), ('national', '', 2.50, '2024-01-01'),"
            " ('local', '', 0, '2024-03-01')"
        )
        await migrate(conn)
        rows = await conn.fetch(
            "SELECT service, valid_from, monthly_fee FROM product_price ORDER BY 1, 2"
        )
        assert [tuple(r) for r in rows] == [
            ("busy", d("2024-01-01"), Decimal("2.5000")),
            ("missed-call", d("2024-01-01"), Decimal("2.5000")),
        ]


# -- the command, as processes ------------------------------------------------------------------


def _env(db_dsn: str, conf: Path) -> dict[str, str]:
    return {**os.environ, "MCN_DATABASE_URL": db_dsn, "MCN_CONFIG": str(conf)}


def _conf(tmp_path: Path, name: str, chunk: int) -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(f'[node]\nname = "{name}"\n[billing]\nchunk = {chunk}\n', encoding="utf-8")
    return p


async def _many(pool: asyncpg.Pool, n: int) -> list[str]:
    """n subscribers with both products all June: 2n fees of 2.00."""
    msisdns = [f"86137{i:08d}" for i in range(n)]
    await pool.executemany("INSERT INTO subscriber (msisdn) VALUES ($1)", [(m,) for m in msisdns])
    await pool.executemany(
        "INSERT INTO subscription (msisdn, service, start_date) VALUES ($1, $2, '2024-05-01')",
        [(m, s) for m in msisdns for s in ("missed-call", "busy")],
    )
    return msisdns


async def _wait_for(pool: asyncpg.Pool, query: str, *args: object, timeout: float = 60.0) -> None:
    """Until ``query`` is true (a condition, never a duration: it returns as soon as it holds)."""
    await eventually(
        lambda: pool.fetchval(query, *args),
        what=f"never true: {query}",
        timeout=timeout,
        interval=0.05,
    )


async def _hold(
    pool: asyncpg.Pool, msisdn: str
) -> tuple[asyncpg.Connection, asyncpg.transaction.Transaction]:
    """An open transaction holding the June fee key of ``msisdn``: a run reaching that
    subscriber waits on it (the unique key), after committing the chunks before it."""
    conn = await pool.acquire()
    tr = conn.transaction()
    await tr.start()
    await conn.execute(
        "INSERT INTO monthly_fee (month, msisdn, service, days, month_days, fee, charge)"
        " VALUES ($1, $2, 'busy', 1, 30, 0, 0)",
        JUNE,
        msisdn,
    )
    return conn, tr


async def _release(
    pool: asyncpg.Pool, held: tuple[asyncpg.Connection, asyncpg.transaction.Transaction]
) -> None:
    conn, tr = held
    await tr.rollback()
    await pool.release(conn)


async def _check_complete(pool: asyncpg.Pool, msisdns: list[str]) -> None:
    rows = await pool.fetch(
        "SELECT msisdn, service, charge FROM monthly_fee WHERE month = $1", JUNE
    )
    assert len(rows) == 2 * len(msisdns)  # no gap, no duplicate (the key would refuse one)
    assert {(r["msisdn"], r["service"]) for r in rows} == {
        (m, s) for m in msisdns for s in ("missed-call", "busy")
    }
    # missed-call 2.00 all month; busy 2.00 to the 15th and 3.00 from the 16th: 2.50
    assert {(r["service"], r["charge"]) for r in rows} == {
        ("missed-call", Decimal("2.0000")),
        ("busy", Decimal("2.5000")),
    }
    run_row = await pool.fetchrow("SELECT status, records, total FROM billing_run")
    assert tuple(run_row) == ("done", 2 * len(msisdns), Decimal("4.5") * len(msisdns))


async def test_killed_mid_run_then_run_again(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    pool = clean_pool
    await prices(pool)
    msisdns = await _many(pool, 3000)
    conf = _conf(tmp_path, "scp-1", chunk=200)  # 100 subscribers a chunk
    held = await _hold(pool, msisdns[1234])  # in the 13th chunk
    proc = subprocess.Popen(
        [MCN_SCP, "billing", "run", "--month", "2024-06"],
        env=_env(db_dsn, conf),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # twelve chunks committed, the thirteenth waiting on the held key: kill it there
        await _wait_for(pool, "SELECT records = 2400 FROM billing_run WHERE month = $1", JUNE)
        await _wait_for(
            pool,
            "SELECT count(*) > 0 FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        await _release(pool, held)
    assert proc.returncode == -signal.SIGKILL
    half = await pool.fetchrow("SELECT status, after_msisdn, records FROM billing_run")
    assert tuple(half) == ("running", msisdns[1199], 2400)
    assert await pool.fetchval("SELECT count(*) FROM monthly_fee") == 2400
    # run again: it resumes after the last committed chunk
    res = subprocess.run(
        [MCN_SCP, "billing", "run", "--month", "2024-06", "--json"],
        env=_env(db_dsn, conf),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["resumed_after"] == msisdns[1199]
    assert (out["written"], out["records"], out["status"]) == (3600, 6000, "done")
    await _check_complete(pool, msisdns)
    # the totals per product, kept chunk by chunk across the kill, are those of the records
    by_product = await pool.fetch(
        "SELECT service, count(*) AS records, sum(charge) AS total FROM monthly_fee"
        " WHERE month = $1 GROUP BY service ORDER BY service",
        JUNE,
    )
    assert [(p["service"], p["records"], Decimal(p["total"])) for p in out["products"]] == [
        tuple(r) for r in by_product
    ]
    assert [p["records"] for p in out["products"]] == [3000, 3000]


async def test_two_nodes_start_the_run_at_once(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    pool = clean_pool
    await prices(pool)
    msisdns = await _many(pool, 1000)
    held = await _hold(pool, msisdns[500])  # keep the first one working while the second comes
    procs = {}
    try:
        procs["scp-1"] = subprocess.Popen(
            [MCN_SCP, "billing", "run", "--month", "2024-06", "--json"],
            env=_env(db_dsn, _conf(tmp_path, "scp-1", chunk=100)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        await _wait_for(pool, "SELECT records > 0 FROM billing_run WHERE month = $1", JUNE)
        procs["scp-2"] = subprocess.Popen(
            [MCN_SCP, "billing", "run", "--month", "2024-06", "--json"],
            env=_env(db_dsn, _conf(tmp_path, "scp-2", chunk=100)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # the second waits for the month's lock, held by the first
        await _wait_for(
            pool,
            "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
        )
    finally:
        await _release(pool, held)
    outs = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, (name, stderr)
        outs[name] = (json.loads(stdout), stderr)
    first, second = outs["scp-1"][0], outs["scp-2"][0]
    assert (first["written"], first["already_done"]) == (2000, False)
    assert (second["written"], second["already_done"], second["waited_for"]) == (0, True, "scp-1")
    assert "waiting: scp-1 is running the 2024-06 billing" in outs["scp-2"][1]
    assert first["node"] == second["node"] == "scp-1"
    await _check_complete(pool, msisdns)


async def test_summary_text_and_bad_month(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    await prices(clean_pool)
    await population(clean_pool)
    env = _env(db_dsn, _conf(tmp_path, "scp-1", chunk=2))
    res = subprocess.run(
        [MCN_SCP, "billing", "run", "--month", "2024-06"], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[:3] == [
        "billing 2024-06 (daily proration): done, by scp-1",
        "written now: 7 records, 9.6000 CNY",
        "month: 7 records, 9.6000 CNY",
    ]
    assert "missed-call  5        6.0000" in res.stdout
    bad = subprocess.run(
        [MCN_SCP, "billing", "run", "--month", "June"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "month: expected YYYY-MM" in bad.stderr
    # a month not over on any day this test can run (the refusal's edge is tested above)
    early = subprocess.run(
        [MCN_SCP, "billing", "run", "--month", "2999-12"], env=env, capture_output=True, text=True
    )
    assert early.returncode == 2 and "month: 2999-12 is not over in" in early.stderr
    assert await clean_pool.fetchval("SELECT count(*) FROM billing_run") == 1


async def test_pair_tariffs_reach_the_call_path(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    """A pair tariff set through the flow (or `mcn-scp rates pair-set`) is what the call path's
    rate table (scp.state.calls_store.load_rates) prices a call with; bad input names the field."""
    rules = RatingRules("86", ("8610",), on_net_prefixes=("86138",))
    await billing.set_pair_tariff(
        clean_pool,
        ADMIN,
        "8610",
        "8622",
        today=d("2024-01-01"),
        call_category="local",
        per_minute="0.12",
    )
    env = _env(db_dsn, _conf(tmp_path, "scp-1", chunk=10))
    res = subprocess.run(
        [
            MCN_SCP,
            "rates",
            "pair-set",
            "",
            "86400",
            "--per-use",
            "1.00",
            "--valid-from",
            "2024-01-01",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    table = await calls_store.load_rates(clean_pool, rules)
    day = d("2024-06-01")
    assert table.rate_call("862212345678", 61, day, origin="861012345678").charge == Decimal("0.24")
    assert table.rate_call("864001234567", 600, day, origin="8613812345678").charge == Decimal(
        "1.00"
    )
    assert table.rate_call("8613812345678", 60, day, origin="862112345678").call_category == (
        "on-net"
    )
    listed = subprocess.run(
        [MCN_SCP, "rates", "pairs", "--json"], env=env, capture_output=True, text=True
    )
    assert [(p["origin_prefix"], p["destination_prefix"]) for p in json.loads(listed.stdout)] == [
        ("", "86400"),
        ("8610", "8622"),
    ]
    bad = subprocess.run(
        [MCN_SCP, "rates", "pair-set", "86x", "8622"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "origin_prefix" in bad.stderr


async def test_products_set_and_list_commands(
    clean_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    """`mcn-scp products set|list` as an operator runs them: the lines stored, the price in
    force today marked (the dates bracket any day this test can run), bad input exit 2."""
    env = _env(db_dsn, _conf(tmp_path, "scp-1", chunk=10))

    def products(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MCN_SCP, "products", *args], env=env, capture_output=True, text=True)

    for fee, day in (("2.00", "2024-01-01"), ("1.50", "2000-01-01"), ("3.00", "2999-01-01")):
        res = products("set", "missed-call", "--monthly-fee", fee, "--valid-from", day)
        assert res.returncode == 0, res.stderr
    res = products("set", "busy", "--monthly-fee", "2", "--valid-from", "2024-01-01")
    assert res.stdout.strip() == "busy: 2.0000 CNY a month from 2024-01-01"
    listed = products("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [
        (p["service"], p["valid_from"], p["monthly_fee"], p["in_force"])
        for p in json.loads(listed.stdout)
    ] == [
        ("busy", "2024-01-01", "2.0000", True),
        ("missed-call", "2000-01-01", "1.5000", False),
        ("missed-call", "2024-01-01", "2.0000", True),
        ("missed-call", "2999-01-01", "3.0000", False),
    ]
    only = products("list", "--service", "busy")
    assert only.returncode == 0 and "missed-call" not in only.stdout and "True" in only.stdout
    for args, field in (
        (("set", "busy", "--monthly-fee", "two"), "monthly_fee"),
        (("set", "busy", "--monthly-fee", "-1"), "monthly_fee"),
        (("set", "busy", "--monthly-fee", "2", "--valid-from", "2024-13-01"), "valid_from"),
        (("set", "voicemail-x", "--monthly-fee", "2"), "'voicemail-x' is not one of"),
        (("list", "--service", "nope"), "--service"),
    ):
        bad = products(*args)
        assert bad.returncode == 2 and field in bad.stderr, (args, bad.stderr)
    # nothing stored by the refused lines
    assert await clean_pool.fetchval("SELECT count(*) FROM product_price") == 4
