"""Named SQL of the CDR files and fee files (scp.flows.cdrfiles; tables of migrations 0230 and
0270, ``cdr``, ``billing_run`` and ``monthly_fee``).

:data:`LOCK_WATERMARK` serialises exports across nodes (the row lock of ``cdr_export``);
:data:`HORIZON` is the oldest transaction still running: every CDR written by a transaction
below it is committed (or gone) and visible, so ``[high_tx, horizon)`` is final. Under the
same lock, :data:`UNEXPORTED_MONTHS` finds the billed months no fee file holds yet
(``billing_run.exported``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg

from scp.service.cdrfile import FEE_FIELDS, FIELDS

__all__ = [
    "HORIZON",
    "LOCK_WATERMARK",
    "add_file",
    "claim_unwritten",
    "fee_file_added",
    "files_of_period",
    "iter_records",
    "mark_written",
    "move_watermark",
    "new_periods",
    "next_seq",
    "unexported_months",
]

# the row (made again if a wipe removed it) locked till the export's transaction ends
LOCK_WATERMARK = """
INSERT INTO cdr_export AS e (stream) VALUES ('cdr')
ON CONFLICT (stream) DO UPDATE SET stream = e.stream RETURNING high_tx
"""
HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
MOVE_WATERMARK = "UPDATE cdr_export SET high_tx = $1, updated_at = now() WHERE stream = 'cdr'"

# periods with records in [lo, hi): the local start of the period (day or hour) and the count
NEW_PERIODS = """
SELECT date_trunc($3, started_at AT TIME ZONE $4) AS local_start, count(*) AS n
  FROM cdr WHERE tx >= $1 AND tx < $2 GROUP BY 1 ORDER BY 1
"""

NEXT_SEQ = "SELECT coalesce(max(seq), 0) + 1 FROM cdr_file WHERE period = $1"

ADD_FILE = """
INSERT INTO cdr_file (name, period, seq, node, period_start, period_end, tx_lo, tx_hi, records,
                      created_at, kind)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""

_FILE_COLS = (
    "name, period, seq, node, period_start, period_end, tx_lo, tx_hi, records, sha256,"
    " created_at, written, kind"
)

# months billed in full and in no fee file yet, with their record count (the run is done: its
# rows are final), locked with the run till the export's transaction ends
UNEXPORTED_MONTHS = """
SELECT r.month, (SELECT count(*) FROM monthly_fee f WHERE f.month = r.month) AS n
  FROM billing_run r WHERE r.status = 'done' AND NOT r.exported
 ORDER BY r.month FOR UPDATE OF r
"""
MARK_MONTH_EXPORTED = "UPDATE billing_run SET exported = true WHERE month = $1"

FEE_RECORDS = f"""
SELECT to_char(month, 'YYYY-MM') AS month, {", ".join(FEE_FIELDS[1:])} FROM monthly_fee
 WHERE month = $1 ORDER BY msisdn, service
"""

# one file committed and not yet written, locked while this node writes it
CLAIM_UNWRITTEN = f"""
SELECT {_FILE_COLS} FROM cdr_file WHERE NOT written ORDER BY period, seq
LIMIT 1 FOR UPDATE SKIP LOCKED
"""

MARK_WRITTEN = "UPDATE cdr_file SET written = true, sha256 = $2 WHERE name = $1"

FILES_OF_PERIOD = f"SELECT {_FILE_COLS} FROM cdr_file WHERE period = $1 ORDER BY seq"

RECORDS = f"""
SELECT {", ".join(FIELDS)} FROM cdr
 WHERE tx >= $1 AND tx < $2 AND started_at >= $3 AND started_at < $4
 ORDER BY started_at, id
"""


async def new_periods(
    conn: asyncpg.Connection, lo: int, hi: int, unit: str, tz: str
) -> list[tuple[dt.datetime, int]]:
    """(local period start, records) of the records with tx in [lo, hi); ``unit`` day | hour."""
    return [
        (r["local_start"], int(r["n"])) for r in await conn.fetch(NEW_PERIODS, lo, hi, unit, tz)
    ]


async def next_seq(conn: asyncpg.Connection, period: str) -> int:
    return int(await conn.fetchval(NEXT_SEQ, period))


async def add_file(conn: asyncpg.Connection, **f: object) -> None:
    await conn.execute(
        ADD_FILE,
        f["name"],
        f["period"],
        f["seq"],
        f["node"],
        f["period_start"],
        f["period_end"],
        f["tx_lo"],
        f["tx_hi"],
        f["records"],
        f["created_at"],
        f.get("kind", "cdr"),
    )


async def unexported_months(conn: asyncpg.Connection) -> list[tuple[dt.date, int]]:
    """(month, fee records) of the billed months no fee file holds yet, locked."""
    return [(r["month"], int(r["n"])) for r in await conn.fetch(UNEXPORTED_MONTHS)]


async def fee_file_added(conn: asyncpg.Connection, month: dt.date) -> None:
    """The month is in a fee file (recorded in this transaction): never exported again."""
    await conn.execute(MARK_MONTH_EXPORTED, month)


async def move_watermark(conn: asyncpg.Connection, horizon: int) -> None:
    await conn.execute(MOVE_WATERMARK, horizon)


async def claim_unwritten(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow(CLAIM_UNWRITTEN)


async def mark_written(conn: asyncpg.Connection, name: str, sha256: str) -> None:
    await conn.execute(MARK_WRITTEN, name, sha256)


async def files_of_period(conn: asyncpg.Connection, period: str) -> list[asyncpg.Record]:
    return list(await conn.fetch(FILES_OF_PERIOD, period))


async def iter_records(
    conn: asyncpg.Connection, f: asyncpg.Record
) -> AsyncIterator[asyncpg.Record]:
    """The records of file ``f`` in file order (inside a transaction: a server-side cursor):
    its CDRs, or for a fee file its month's fee records."""
    if f["kind"] == "fee":
        month = dt.datetime.strptime(f["period"], "%Y%m").date()
        cursor = conn.cursor(FEE_RECORDS, month, prefetch=2000)
    else:
        cursor = conn.cursor(
            RECORDS, f["tx_lo"], f["tx_hi"], f["period_start"], f["period_end"], prefetch=2000
        )
    async for r in cursor:
        yield r
