"""The daily report (scp.flows.reports, `mcn-scp report daily`) on a real PostgreSQL: every
number of a known day, days cut in the network's time zone, the CLI's JSON the same."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from scp.flows import reports

pytestmark = pytest.mark.integration

TZ = "Asia/Shanghai"
MCN_SCP = str(Path(sys.executable).parent / "mcn-scp")
# 2024-06-10 in Shanghai is [2024-06-09 16:00Z, 2024-06-10 16:00Z)
DAY = dt.date(2024, 6, 10)
T = dt.datetime(2024, 6, 10, 2, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2024, 6, 10, 17, 0, tzinfo=dt.UTC)  # the 11th in Shanghai


async def seed(pool: asyncpg.Pool) -> None:
    callee, caller = "8613900000001", "8613700000001"
    await pool.execute("INSERT INTO subscriber (msisdn) VALUES ($1)", callee)
    for reason, at in (("busy", T), ("busy", T), ("not-reachable", T), ("no-answer", LATE)):
        await pool.execute(
            "INSERT INTO missed_call (caller, callee, occurred_at, reason) VALUES ($1,$2,$3,$4)",
            caller,
            callee,
            at,
            reason,
        )
    ids = [
        await pool.fetchval(
            "INSERT INTO callback_request (caller, callee, requested_at, notified_at)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            f"86137000000{i:02d}",
            callee,
            T,
            T,
        )
        for i in range(3)
    ]
    for i, (key, status) in enumerate(
        (
            # got their SMS: delivered, submitted; not: expired unsent
            (f"callback:{ids[0]}", "delivered"),
            (f"callback:{ids[1]}", "expired"),
            (f"callback:{ids[2]}", "submitted"),
            ("present:x:2", "failed"),
            ("present:x:3", "queued"),
        )
    ):
        await pool.execute(
            "INSERT INTO sms_outbox (idempotency_key, destination, text, status, next_attempt_at,"
            " created_at) VALUES ($1, $2, 't', $3, $4, $4)",
            key,
            f"8613700000{i:03d}",
            status,
            T,
        )
    for record_type, service, category, charge, at in (
        ("fee", "callback", None, "0.10", T),
        ("fee", "callback", None, "0.10", LATE),
        ("call", "forwarding", "national", "0.60", T),
        ("call", "forwarding", "on-net", "0.05", T),
        ("call", "forwarding", "on-net", "0.05", T),
        ("sms", "command", "local", "0.10", T),
    ):
        await pool.execute(
            "INSERT INTO cdr (record_type, msisdn, service, call_category, started_at, charge)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            record_type,
            caller,
            service,
            category,
            at,
            Decimal(charge),
        )
    await pool.execute(
        "INSERT INTO monthly_fee (month, msisdn, service, days, month_days, fee, charge) VALUES"
        " ('2024-06-01', $1, 'missed-call', 30, 30, 2, 2),"
        " ('2024-06-01', $1, 'busy', 15, 30, 2, 1)",
        callee,
    )


async def test_daily_numbers(clean_pool: asyncpg.Pool, db_dsn: str) -> None:
    await seed(clean_pool)
    days = await reports.daily_report(
        clean_pool, since=dt.date(2024, 6, 1), until=dt.date(2024, 6, 11), timezone=TZ
    )
    assert [d.day for d in days][0] == dt.date(2024, 6, 1) and len(days) == 11
    by = {d.day: d for d in days}
    first, tenth, eleventh = by[dt.date(2024, 6, 1)], by[DAY], by[dt.date(2024, 6, 11)]
    assert first.revenue_by_product == {"missed-call": Decimal(2), "busy": Decimal(1)}
    assert tenth.missed_calls == {"busy": 2, "not-reachable": 1, "no-answer": 0}
    assert eleventh.missed_calls == {"busy": 0, "not-reachable": 0, "no-answer": 1}
    assert tenth.sms == {"submitted": 1, "delivered": 1, "failed": 1, "expired": 1, "pending": 1}
    assert (tenth.callback_requests, tenth.callbacks_with_sms) == (3, 2)
    assert tenth.revenue_by_product == {"callback": Decimal("0.10")}
    assert eleventh.revenue_by_product == {"callback": Decimal("0.10")}
    assert tenth.revenue_by_category == {
        "national": Decimal("0.60"),
        "on-net": Decimal("0.10"),
        "local": Decimal("0.10"),
    }
    assert by[dt.date(2024, 6, 5)].sms["delivered"] == 0
    with pytest.raises(reports.InvalidInput, match="until"):
        await reports.daily_report(clean_pool, since=DAY, until=first.day, timezone=TZ)
    # the command prints the same numbers
    env = {**os.environ, "MCN_DATABASE_URL": db_dsn}
    res = subprocess.run(
        [MCN_SCP, "report", "daily", "--since", "2024-06-10", "--until", "2024-06-10", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    (day,) = json.loads(res.stdout)
    assert day["day"] == "2024-06-10" and day["callbacks_with_sms"] == 2
    assert day["missed_calls"]["busy"] == 2
    bad = subprocess.run(
        [MCN_SCP, "report", "daily", "--since", "10/06/2024"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "since: expected YYYY-MM-DD" in bad.stderr
