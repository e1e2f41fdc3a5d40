"""Benchmark: the monthly billing run vs an ``INSERT ... SELECT`` of the same rows.

Prints one JSON object: seconds and rows/s of ``mcn-scp billing run --month 2024-06`` (a
subprocess, as ops would run it) over ``--subscribers`` subscribers with two products each (1M
subscriber-products by default, half of them with a price change mid-month so the daily
proration really weighs two prices), its memory (it must stay flat: the run works in committed
chunks), and in the same database the baselines.

Memory: while the run works, the bench samples every ``SAMPLE_EVERY`` seconds the command's
resident set (``VmRSS`` of its process) and the private memory of its PostgreSQL backend
(``RssAnon``: shared buffers excluded; the backend is the one holding the month's advisory
lock), beside the records the run has committed so far (``billing_run.records``).
``memory`` prints a few of those samples across the run (records, client MB, backend MB), the
peak of each in the first and in the second half of the records, and the command's peak
(``VmHWM``): flat memory is a second half no higher than the first.

Baselines:

* ``bare``: ``INSERT INTO bare SELECT`` of the very rows the run wrote into a table with no key;
* ``keyed``: the same into a table with only the run's unique key (month, msisdn, service): the
  floor of any writer that must be idempotent;
* ``compute``: the run's own fee computation (``scp.state.billing_store.FEE_ROWS``: periods
  read, clipped, priced and summed) over all subscribers in one statement, nothing written;
* ``ceiling``: that computation and the insert of its rows into a table with no key, the
  subscribers split in as many ranges as the machine has CPUs, one connection and one statement
  each, all at once (the split point found beforehand, untimed): no key, no chunk, no resume
  point, every core; what no run on this machine and server can beat;
* ``rerun``: the same command again once the month is done (it writes nothing): what the
  command costs besides the billing (interpreter start, imports, connection, lock, summary);
* ``ratio`` = bare seconds / run seconds (target >= 0.5), ``keyed_vs_bare`` the floor's ratio,
  ``keyed_plus_compute_vs_bare`` the ratio of a run that did nothing but compute and insert
  under the key (no chunks, no resume point), ``ceiling_vs_bare`` the ceiling's, ``ceiling_plus_rerun_vs_bare`` that of a command
  that did only the ceiling's work.

Runs against a throw-away database on ``$MCN_DATABASE_URL``'s server if set, else on a
temporary pgserver instance (deleted afterwards). Usage:
    python bench/billing.py [--subscribers 500000] [--chunk 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from scratch import scratch_database

from scp.config import BillingConfig
from scp.service.billing import month_bounds, price_segments
from scp.state import billing_store as store

MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")
MONTH = "2024-06-01"

SEED = """
INSERT INTO subscriber (msisdn) SELECT '86138' || lpad(i::text, 8, '0')
  FROM generate_series(0, $1 - 1) i;
INSERT INTO subscription (msisdn, service, start_date, end_date)
SELECT '86138' || lpad(i::text, 8, '0'), s,
       CASE WHEN i % 10 = 0 THEN date '2024-06-11' ELSE date '2024-01-01' END,
       CASE WHEN i % 10 = 1 THEN date '2024-06-21' END
  FROM generate_series(0, $1 - 1) i CROSS JOIN (VALUES ('missed-call'), ('busy')) AS v (s);
INSERT INTO product_price (service, valid_from, monthly_fee) VALUES
  ('missed-call', '2024-01-01', 2.00), ('busy', '2024-01-01', 2.00), ('busy', '2024-06-16', 3.00);
ANALYZE subscriber; ANALYZE subscription;
"""

COLS = (
    'month date, msisdn text COLLATE "C", service text, days smallint, month_days smallint,'
    " fee numeric(12, 4), charge numeric(12, 4)"
)
BASELINES = {
    "bare": f"CREATE TABLE timed_insert ({COLS})",
    "keyed": f"CREATE TABLE timed_insert ({COLS}, PRIMARY KEY (month, msisdn, service))",
}


async def execute(dsn: str, sql: str, *args: Any) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for stmt in [s for s in sql.split(";\n") if s.strip()]:
            await conn.execute(stmt, *(args if "$1" in stmt else ()))
    finally:
        await conn.close()


async def timed_insert(dsn: str, ddl: str) -> float:
    """Seconds of ``INSERT INTO timed_insert SELECT`` of the month's fee rows."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS timed_insert")
        await conn.execute(ddl)
        await conn.execute("CHECKPOINT")
        t0 = time.perf_counter()
        await conn.execute(
            "INSERT INTO timed_insert SELECT month, msisdn, service, days, month_days, fee, charge"
            " FROM monthly_fee WHERE month = $1",
            dt.date.fromisoformat(MONTH),
        )
        secs = time.perf_counter() - t0
        await conn.execute("DROP TABLE timed_insert")
        return secs
    finally:
        await conn.close()


async def _fee_rows_args(conn: asyncpg.Connection, lo: str, hi: str) -> tuple[object, ...]:
    """FEE_ROWS' parameters for the subscribers in (lo, hi] of the bench's month."""
    first, next_month, days = month_bounds(dt.date.fromisoformat(MONTH))
    return store.fee_rows_args(
        lo=lo,
        hi=hi,
        month=first,
        next_month=next_month,
        month_days=days,
        segments=price_segments(await store.list_prices(conn), first),
        full=False,
    )


async def timed_compute(dsn: str) -> float:
    """Seconds of the run's fee computation over the whole month, nothing written."""
    conn = await asyncpg.connect(dsn)
    try:
        args = await _fee_rows_args(conn, "", store.NO_UPPER_BOUND)
        t0 = time.perf_counter()
        await conn.fetchrow(
            store.FEE_ROWS + " SELECT count(*), sum(charge) FROM f WHERE first_fee IS NOT NULL",
            *args,
        )
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def timed_ceiling(dsn: str, parts: int) -> float:
    """Seconds of the computation and an unkeyed insert of its rows over ``parts`` connections
    at once, each one statement over its range of subscribers."""
    conns = [await asyncpg.connect(dsn) for _ in range(parts)]
    c = conns[0]
    try:
        await c.execute("DROP TABLE IF EXISTS timed_insert")
        await c.execute(BASELINES["bare"])
        n = await c.fetchval("SELECT count(*) FROM subscription")
        cuts = [
            await c.fetchval(
                "SELECT msisdn FROM subscription ORDER BY msisdn OFFSET $1 LIMIT 1", n * i // parts
            )
            for i in range(1, parts)
        ]
        bounds = list(zip(["", *cuts], [*cuts, store.NO_UPPER_BOUND], strict=True))
        args = [await _fee_rows_args(c, lo, hi) for lo, hi in bounds]
        await c.execute("CHECKPOINT")
        sql = (
            store.FEE_ROWS + " INSERT INTO timed_insert SELECT $3::date, msisdn, service, days,"
            " $9::smallint, first_fee, charge FROM f WHERE first_fee IS NOT NULL"
        )
        t0 = time.perf_counter()
        await asyncio.gather(*(k.execute(sql, *a) for k, a in zip(conns, args, strict=True)))
        secs = time.perf_counter() - t0
        await c.execute("DROP TABLE timed_insert")
        return secs
    finally:
        for k in conns:
            await k.close()


SAMPLE_EVERY = 0.1  # s between two memory samples of a run
_RUN_LOCK_KEY = 0x6D636E02  # scp.state.billing_store._RUN_LOCK: the month's advisory lock


def _proc_kb(pid: int, field: str) -> int | None:
    """A ``/proc/<pid>/status`` field in kB (None once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


async def sampled_billing_run(
    env: dict[str, str], dsn: str
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """:func:`billing_run` with memory samples (see the module docstring)."""
    month = dt.date.fromisoformat(MONTH)
    probe = await asyncpg.connect(dsn)
    samples: list[tuple[int, float, float | None]] = []  # records, client MB, backend MB
    peak_kb = 0
    try:
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            MCN_SCP,
            "billing",
            "run",
            "--month",
            MONTH[:7],
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        done = asyncio.ensure_future(proc.communicate())
        while not done.done():
            rss = _proc_kb(proc.pid, "VmRSS")
            peak_kb = max(peak_kb, _proc_kb(proc.pid, "VmHWM") or 0)
            backend = await probe.fetchval(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = $1::bigint::oid",
                _RUN_LOCK_KEY,
            )
            records = await probe.fetchval(
                "SELECT records FROM billing_run WHERE month = $1", month
            )
            anon = _proc_kb(backend, "RssAnon") if backend else None
            if rss is not None and records is not None:
                samples.append((int(records), rss / 1024, anon / 1024 if anon else None))
            await asyncio.wait([done], timeout=SAMPLE_EVERY)
        out, err = done.result()
        secs = time.perf_counter() - t0
    finally:
        await probe.close()
    if proc.returncode != 0:
        raise SystemExit(f"billing run failed: {err.decode()[-2000:]}")
    summary: dict[str, Any] = json.loads(out)
    return secs, summary, _memory(samples, summary["written"], peak_kb)


def _memory(
    samples: list[tuple[int, float, float | None]], rows: int, peak_kb: int
) -> dict[str, Any]:
    def peak(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(max(known), 1) if known else None

    first = [v for v in samples if v[0] <= rows // 2]
    second = [v for v in samples if v[0] > rows // 2]
    step = max(1, len(samples) // 8)
    return {
        "samples": len(samples),
        "by_records": [
            [r, round(c, 1), None if b is None else round(b, 1)] for r, c, b in samples[::step]
        ],
        "client_peak_mb_first_half": peak([c for _, c, _ in first]),
        "client_peak_mb_second_half": peak([c for _, c, _ in second]),
        "backend_peak_mb_first_half": peak([b for _, _, b in first]),
        "backend_peak_mb_second_half": peak([b for _, _, b in second]),
        "client_vmhwm_mb": round(peak_kb / 1024, 1),
    }


def billing_run(env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Seconds and JSON summary of ``mcn-scp billing run`` for the bench's month."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [MCN_SCP, "billing", "run", "--month", MONTH[:7], "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"billing run failed: {proc.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(proc.stdout)
    return secs, summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=500_000)
    ap.add_argument("--chunk", type=int, default=BillingConfig().chunk)
    args = ap.parse_args()

    with scratch_database("mcn-bench-billing-") as (dsn, tmp):
        run(args, dsn, tmp)


def run(args: argparse.Namespace, dsn: str, tmp: Path) -> None:
    env = {**os.environ, "MCN_DATABASE_URL": dsn}
    conf = tmp / "bench.toml"
    conf.write_text(f'[billing]\nproration = "daily"\nchunk = {args.chunk}\n', encoding="utf-8")
    env["MCN_CONFIG"] = str(conf)
    subprocess.run([MCN_SCP, "db", "migrate"], env=env, check=True, capture_output=True)
    t0 = time.perf_counter()
    asyncio.run(execute(dsn, SEED, args.subscribers))
    seed_secs = time.perf_counter() - t0
    asyncio.run(execute(dsn, "CHECKPOINT"))
    run_secs, summary, memory = asyncio.run(sampled_billing_run(env, dsn))
    rerun_secs, again = billing_run(env)
    if again["written"] != 0:
        raise SystemExit(f"the second run wrote records: {again}")
    base = {k: asyncio.run(timed_insert(dsn, ddl)) for k, ddl in BASELINES.items()}
    base["compute"] = asyncio.run(timed_compute(dsn))
    base["ceiling"] = asyncio.run(timed_ceiling(dsn, os.cpu_count() or 1))
    rows = summary["written"]
    report = {
        "subscriber_products": args.subscribers * 2,
        "fee_records": rows,
        "chunk": args.chunk,
        "cpus": os.cpu_count(),
        "seed_seconds": round(seed_secs, 2),
        "run_seconds": round(run_secs, 2),
        "run_rows_per_s": round(rows / run_secs),
        "run_peak_rss_mb": memory["client_vmhwm_mb"],
        "memory": memory,
        "bare_insert_select_seconds": round(base["bare"], 2),
        "keyed_insert_select_seconds": round(base["keyed"], 2),
        "compute_seconds": round(base["compute"], 2),
        "ceiling_seconds": round(base["ceiling"], 2),
        "rerun_seconds": round(rerun_secs, 2),
        "ratio": round(base["bare"] / run_secs, 3),
        "keyed_vs_bare": round(base["bare"] / base["keyed"], 3),
        "keyed_plus_compute_vs_bare": round(base["bare"] / (base["keyed"] + base["compute"]), 3),
        "ceiling_vs_bare": round(base["bare"] / base["ceiling"], 3),
        "ceiling_plus_rerun_vs_bare": round(base["bare"] / (base["ceiling"] + rerun_secs), 3),
        "target_met": base["bare"] / run_secs >= 0.5,
        "total": summary["total"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
