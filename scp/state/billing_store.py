"""Named SQL of billing: product price lists, the monthly run, the callback fee.

Tables of migrations 0200, 0210 and 0260: ``product_price``, ``subscription`` with its kept
periods ``subscription_period``, ``billing_run`` with its totals per product
``billing_run_product``, ``monthly_fee`` and ``cdr``. The monthly run computes
:func:`scp.service.billing.monthly_fee`'s rule inside PostgreSQL, one statement per chunk of
subscribers (:data:`BILL_CHUNK`): the price segments of the month come in as arrays, the
subscribed periods are read, clipped, priced, summed per subscriber and product and inserted
under the unique key (month, msisdn, service). A run holds a session advisory lock per month
(:func:`lock_month`): several nodes may start it, one works, the others wait for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import asyncpg

from scp.service.billing import PriceSegment, ProductPrice
from scp.service.rating import PairTariff

__all__ = [
    "FEE_ROWS",
    "NO_UPPER_BOUND",
    "ChunkBilled",
    "Run",
    "advance_run",
    "bill_chunk",
    "charge_callbacks",
    "chunk_end",
    "count_periods",
    "defer_flush",
    "fee_rows_args",
    "get_run",
    "list_prices",
    "lock_month",
    "month_totals",
    "start_run",
    "try_lock_month",
    "unlock_month",
    "list_pairs",
    "upsert_pair",
    "upsert_price",
]

# pg_advisory_lock(key1, key2): key1 names the billing run (the migrators use 0x6D636E01),
# key2 the month as year * 12 + month - 1.
_RUN_LOCK = 0x6D636E02
# An MSISDN bound above every MSISDN (digits sort below '~' in the "C" collation): the last
# chunk's upper end, so every chunk is a plain range scan of the primary keys.
NO_UPPER_BOUND = "~"

UPSERT_PRICE = """
INSERT INTO product_price (service, valid_from, monthly_fee) VALUES ($1, $2, $3)
ON CONFLICT (service, valid_from) DO UPDATE SET monthly_fee = EXCLUDED.monthly_fee
RETURNING service, valid_from, monthly_fee
"""

LIST_PRICES = """
SELECT service, valid_from, monthly_fee FROM product_price
WHERE $1::text IS NULL OR service = $1 ORDER BY service, valid_from
"""

_RUN_COLS = "month, proration, status, node, started_at, finished_at, after_msisdn, records, total"

GET_RUN = f"SELECT {_RUN_COLS} FROM billing_run WHERE month = $1"

# A new run, or the node resuming one a stopped node left running.
START_RUN = f"""
INSERT INTO billing_run (month, proration, node, started_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (month) DO UPDATE SET node = EXCLUDED.node WHERE billing_run.status = 'running'
RETURNING {_RUN_COLS}
"""

# The upper end of the next chunk: the MSISDN at ``chunk`` subscription rows past ``after``
# (all the products of that subscriber go in the same chunk); NULL: the rest is one chunk.
CHUNK_END = """
SELECT msisdn FROM subscription WHERE msisdn > $1 ORDER BY msisdn OFFSET $2 LIMIT 1
"""

# The rows of every subscriber in (lo, hi] whose period overlaps the month [$3, $4): the
# current ones (subscription, alias c: no end date while it runs) and the kept ones
# (subscription_period, alias k). The run reads them (FEE_ROWS), the progress bar counts them
# (COUNT_PERIODS).
_CURRENT_IN_MONTH = """c.msisdn > $1 AND c.msisdn <= $2 AND c.start_date < $4::date
       AND (c.end_date IS NULL OR c.end_date > $3::date)"""
_KEPT_IN_MONTH = """k.msisdn > $1 AND k.msisdn <= $2 AND k.start_date < $4::date
       AND k.end_date > $3::date"""

# The fee records of the subscribers in (lo, hi] (CTE f: msisdn, service, days, first_fee,
# charge, periods): $1 lo, $2 hi, $3 month, $4 next month, $5-$8 the price segments (service,
# first day, end day, monthly fee), $9 days of the month, $10 full (no proration). bench/billing.py
# times it alone, the computing part of the run.
#
# A clipped period is a pair of days of the month, so the fee of every possible period is
# priced first, once per statement (t: at most 31 x 31 pairs per service, joined with the few
# price segments); each subscription row then finds its days, weighted fee and first fee in t by
# a hash lookup. Only the kept periods (subscription_period, few) are grouped per subscriber and
# product, and joined to the current row by a full join: grouping the whole chunk, and sorting
# each group for its first fee, was three quarters of the computation. Periods of one (msisdn,
# service) never overlap, so the days and weighted fees of the current and the kept periods
# add up; the first fee is the one of the earliest period. A period no price covers is read
# (counted in periods, the progress) but bills nothing: its first_fee is NULL.
_FEE_SEGMENTS = """
g AS (SELECT * FROM unnest($5::text[], $6::date[], $7::date[], $8::numeric[])
               AS g (service, s, e, fee)),
t AS (
    SELECT g.service, d1.s, d2.e,
           sum(least(d2.e, g.e) - greatest(d1.s, g.s)) AS days,
           sum((least(d2.e, g.e) - greatest(d1.s, g.s)) * g.fee) AS weighted,
           (array_agg(g.fee ORDER BY g.s))[1] AS first_fee
      FROM (SELECT $3::date + i AS s FROM generate_series(0, $9::int - 1) i) d1
      JOIN (SELECT $3::date + i AS e FROM generate_series(1, $9::int) i) d2 ON d1.s < d2.e
      JOIN g ON g.s < d2.e AND d1.s < g.e
     GROUP BY g.service, d1.s, d2.e
)"""

FEE_ROWS = f"""
WITH {_FEE_SEGMENTS},
cur AS (
    SELECT c.msisdn, c.service, t.s, t.days, t.weighted, t.first_fee
      FROM subscription c
      LEFT JOIN t ON t.service = c.service AND t.s = greatest(c.start_date, $3::date)
            AND t.e = least(coalesce(c.end_date, $4::date), $4::date)
     WHERE {_CURRENT_IN_MONTH}
),
kept AS (
    SELECT k.msisdn, k.service, count(*) AS n, min(t.s) AS s, sum(t.days) AS days,
           sum(t.weighted) AS weighted, (array_agg(t.first_fee ORDER BY t.s))[1] AS first_fee
      FROM subscription_period k
      LEFT JOIN t ON t.service = k.service AND t.s = greatest(k.start_date, $3::date)
            AND t.e = least(k.end_date, $4::date)
     WHERE {_KEPT_IN_MONTH}
     GROUP BY k.msisdn, k.service
),
x AS (
    SELECT coalesce(c.msisdn, k.msisdn) AS msisdn, coalesce(c.service, k.service) AS service,
           coalesce(c.days, 0) + coalesce(k.days, 0) AS days,
           coalesce(c.weighted, 0) + coalesce(k.weighted, 0) AS weighted,
           CASE WHEN k.s IS NULL OR k.s > c.s THEN c.first_fee ELSE k.first_fee END AS first_fee,
           (c.msisdn IS NOT NULL)::int + coalesce(k.n, 0) AS periods
      FROM cur c FULL JOIN kept k ON k.msisdn = c.msisdn AND k.service = c.service
),
f AS (
    SELECT msisdn, service, days, first_fee, periods,
           round(CASE WHEN $10::boolean THEN first_fee ELSE weighted / $9::int END, 2)
               ::numeric(12, 4) AS charge  -- as stored: the totals keep the column's scale
      FROM x
)"""

# One chunk of the run (the parameters of FEE_ROWS): per product, the periods read, the fee
# records written and their sum.
#
# A plain INSERT, no ON CONFLICT ... DO NOTHING and no RETURNING: a chunk's rows are committed
# with the resume point past them, under the month's lock, so no chunk is ever inserted twice;
# the unique key stays as the guard (a row already there is an error, not a silent skip). The
# speculative insertion of ON CONFLICT probes the key once more per row and RETURNING feeds
# every written row through a CTE scan to be summed: the totals come from f instead. Together
# they were about 40 % of the run's backend CPU (README, Known limits).
BILL_CHUNK = f"""{FEE_ROWS},
ins AS (
    INSERT INTO monthly_fee (month, msisdn, service, days, month_days, fee, charge)
    SELECT $3::date, msisdn, service, days, $9::smallint, first_fee, charge FROM f
     WHERE first_fee IS NOT NULL
)
SELECT service, sum(periods) AS seen, count(first_fee) AS records,
       coalesce(sum(charge) FILTER (WHERE first_fee IS NOT NULL), 0) AS total
FROM f GROUP BY service
"""

# The chunk's totals per product ($7 products, $8 records, $9 sums) are added in the same
# statement as the resume point moves (one round trip, one transaction with the fee rows).
ADVANCE_RUN = """
WITH p AS (
    INSERT INTO billing_run_product (month, service, records, total)
    SELECT $1, u.service, u.records, u.total
      FROM unnest($7::text[], $8::bigint[], $9::numeric[]) AS u (service, records, total)
    ON CONFLICT (month, service) DO UPDATE
       SET records = billing_run_product.records + EXCLUDED.records,
           total = billing_run_product.total + EXCLUDED.total
)
UPDATE billing_run SET after_msisdn = $2, records = records + $3, total = total + $4,
       status = CASE WHEN $5::boolean THEN 'done' ELSE status END,
       finished_at = CASE WHEN $5::boolean THEN $6::timestamptz ELSE finished_at END
WHERE month = $1
"""

COUNT_PERIODS = f"""
SELECT (SELECT count(*) FROM subscription c WHERE {_CURRENT_IN_MONTH})
     + (SELECT count(*) FROM subscription_period k WHERE {_KEPT_IN_MONTH})
"""

MONTH_TOTALS = """
SELECT service, records, total FROM billing_run_product WHERE month = $1 AND records > 0
ORDER BY service
"""

# The callback fee of each request whose SMS just reached the state that makes it due, once
# per request (index cdr_callback_fee_uq), at the time of that event. $1 request ids, $2 the
# event times, $3 the fee.
CHARGE_CALLBACKS = """
INSERT INTO cdr (record_type, msisdn, caller, callee, service, started_at, ended_at, charge,
                 call_ref)
SELECT 'fee', c.caller, c.caller, c.callee, 'callback', u.at, u.at, $3::numeric,
       'callback:' || c.id
  FROM unnest($1::bigint[], $2::timestamptz[]) AS u (id, at)
  JOIN callback_request c ON c.id = u.id
ON CONFLICT (call_ref)
   WHERE record_type = 'fee' AND service = 'callback' AND call_ref LIKE 'callback:%'
   DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class Run:
    """A month's billing run (a row of ``billing_run``)."""

    month: dt.date
    proration: str
    status: str
    node: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    after_msisdn: str
    records: int
    total: Decimal


def _month_key(month: dt.date) -> int:
    return month.year * 12 + month.month - 1


async def try_lock_month(conn: asyncpg.Connection, month: dt.date) -> bool:
    """Take the month's run lock if free (held by this session until :func:`unlock_month`)."""
    return bool(
        await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", _RUN_LOCK, _month_key(month))
    )


async def lock_month(conn: asyncpg.Connection, month: dt.date) -> None:
    """Wait for the month's run lock (its holder finishes, or its session ends)."""
    await conn.execute("SELECT pg_advisory_lock($1, $2)", _RUN_LOCK, _month_key(month))


async def unlock_month(conn: asyncpg.Connection, month: dt.date) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", _RUN_LOCK, _month_key(month))


async def get_run(conn: asyncpg.Connection, month: dt.date) -> Run | None:
    row = await conn.fetchrow(GET_RUN, month)
    return Run(**dict(row)) if row else None


async def start_run(
    conn: asyncpg.Connection, month: dt.date, proration: str, node: str, at: dt.datetime
) -> Run | None:
    """The month's run row, created or taken over by ``node``; None if it is done."""
    row = await conn.fetchrow(START_RUN, month, proration, node, at)
    return Run(**dict(row)) if row else None


async def chunk_end(conn: asyncpg.Connection, after: str, chunk: int) -> str:
    """The MSISDN ending the next chunk after ``after``, or :data:`NO_UPPER_BOUND`."""
    hi = await conn.fetchval(CHUNK_END, after, chunk - 1)
    return NO_UPPER_BOUND if hi is None else str(hi)


def fee_rows_args(
    *,
    lo: str,
    hi: str,
    month: dt.date,
    next_month: dt.date,
    month_days: int,
    segments: Sequence[PriceSegment],
    full: bool,
) -> tuple[object, ...]:
    """The parameters of :data:`FEE_ROWS` (and :data:`BILL_CHUNK`), in order."""
    return (
        lo,
        hi,
        month,
        next_month,
        [g.service for g in segments],
        [g.start for g in segments],
        [g.end for g in segments],
        [g.monthly_fee for g in segments],
        month_days,
        full,
    )


@dataclass(frozen=True, slots=True)
class ChunkBilled:
    """What one chunk wrote: periods read, and per product the records and their sum."""

    seen: int
    products: tuple[tuple[str, int, Decimal], ...]

    @property
    def records(self) -> int:
        return sum(n for _, n, _ in self.products)

    @property
    def total(self) -> Decimal:
        return sum((t for _, _, t in self.products), Decimal(0))


async def bill_chunk(conn: asyncpg.Connection, args: tuple[object, ...]) -> ChunkBilled:
    """Write the fees of the chunk :func:`fee_rows_args` names."""
    rows = await conn.fetch(BILL_CHUNK, *args)
    return ChunkBilled(
        seen=sum(int(r["seen"]) for r in rows),
        products=tuple((str(r["service"]), int(r["records"]), Decimal(r["total"])) for r in rows),
    )


async def defer_flush(conn: asyncpg.Connection) -> None:
    """Let the current chunk's commit return before its WAL is on disk.

    Safe for every chunk but the last: a chunk's fee rows and the resume point past them are one
    transaction, and WAL is replayed in order, so a server crash can only lose the last few
    chunks whole (rows and resume point together), which the next run bills again: no
    duplicate, no gap. The last chunk, which marks the run done, commits with the server's
    ``synchronous_commit`` and flushes every earlier one with it, so a run reported done is on
    disk. Saves one WAL flush per chunk."""
    await conn.execute("SET LOCAL synchronous_commit = off")


async def advance_run(
    conn: asyncpg.Connection,
    month: dt.date,
    *,
    after: str,
    billed: ChunkBilled,
    done: bool,
    at: dt.datetime,
) -> None:
    """Move the run's resume point and add the chunk's totals (in the chunk's transaction);
    ``done`` closes it."""
    products = [p for p in billed.products if p[1] > 0]
    await conn.execute(
        ADVANCE_RUN,
        month,
        after,
        billed.records,
        billed.total,
        done,
        at,
        [p[0] for p in products],
        [p[1] for p in products],
        [p[2] for p in products],
    )


async def count_periods(
    conn: asyncpg.Connection, month: dt.date, next_month: dt.date, after: str = ""
) -> int:
    """Subscription periods overlapping the month past ``after`` (the progress bar's length)."""
    return int(await conn.fetchval(COUNT_PERIODS, after, NO_UPPER_BOUND, month, next_month))


async def month_totals(conn: asyncpg.Connection, month: dt.date) -> list[tuple[str, int, Decimal]]:
    """(product, records, sum) of the month's run."""
    return [
        (r["service"], int(r["records"]), Decimal(r["total"]))
        for r in await conn.fetch(MONTH_TOTALS, month)
    ]


async def upsert_price(conn: asyncpg.Connection, p: ProductPrice) -> ProductPrice:
    return ProductPrice(
        **dict(await conn.fetchrow(UPSERT_PRICE, p.service, p.valid_from, p.monthly_fee))
    )


async def list_prices(conn: asyncpg.Connection, service: str | None = None) -> list[ProductPrice]:
    return [ProductPrice(**dict(r)) for r in await conn.fetch(LIST_PRICES, service)]


async def charge_callbacks(
    conn: asyncpg.Connection, request_ids: Sequence[int], ats: Sequence[dt.datetime], fee: Decimal
) -> None:
    """The callback fee of each request (in the transaction of its SMS's event)."""
    await conn.execute(CHARGE_CALLBACKS, list(request_ids), list(ats), fee)


UPSERT_PAIR = """
INSERT INTO rate_pair (origin_prefix, destination_prefix, call_category, per_minute, per_use,
                       valid_from)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (origin_prefix, destination_prefix, valid_from) DO UPDATE
   SET call_category = EXCLUDED.call_category, per_minute = EXCLUDED.per_minute,
       per_use = EXCLUDED.per_use
RETURNING origin_prefix, destination_prefix, call_category, per_minute, per_use, valid_from
"""

LIST_PAIRS = """
SELECT origin_prefix, destination_prefix, call_category, per_minute, per_use, valid_from
  FROM rate_pair ORDER BY origin_prefix, destination_prefix, valid_from
"""


async def upsert_pair(conn: asyncpg.Connection, t: PairTariff) -> PairTariff:
    row = await conn.fetchrow(
        UPSERT_PAIR,
        t.origin_prefix,
        t.destination_prefix,
        t.call_category,
        t.per_minute,
        t.per_use,
        t.valid_from,
    )
    return PairTariff(**dict(row))


async def list_pairs(conn: asyncpg.Connection) -> list[PairTariff]:
    return [PairTariff(**dict(r)) for r in await conn.fetch(LIST_PAIRS)]
