"""Named SQL of the daily report (``mcn-scp report daily``, the console's dashboard later).

Each query groups one kind of record by its calendar day in the network's time zone (``$3``,
``[notify] timezone``) over the days ``[$1, $2)``, and returns (day, key, count, sum) rows:

* missed calls by reason (``missed_call.occurred_at``);
* SMS by outcome (``sms_outbox``, the day it was queued): submitted (still waiting for its
  receipt), delivered, failed, expired; queued and sending are counted as pending;
* callback requests (the day the caller pressed 1) and how many of them got their SMS: the
  SMS (``sms_outbox.idempotency_key = 'callback:<id>'``) submitted to the SMSC or delivered;
  one queued, in flight, failed or expired does not count;
* revenue per product: monthly fee records (on the first day of the month they bill) and the
  callback fee CDRs (product ``callback``), per call category: call and SMS CDRs.

Tables of migrations 0001, 0020, 0200 and 0210. Read-only.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

__all__ = ["daily_rows"]


def _day(col: str) -> str:
    """The local day of ``col`` in the time zone $3."""
    return f"(({col}) AT TIME ZONE $3)::date"


def _in_days(col: str) -> str:
    """``col`` within the local days $1 .. $2 (exclusive) of the time zone $3."""
    return (
        f"{col} >= ($1::date::timestamp AT TIME ZONE $3)"
        f" AND {col} < ($2::date::timestamp AT TIME ZONE $3)"
    )


MISSED = f"""
SELECT {_day("occurred_at")} AS day, reason AS key, count(*) AS n, 0::numeric AS amount
  FROM missed_call
 WHERE {_in_days("occurred_at")}
 GROUP BY 1, 2
"""

SMS = f"""
SELECT {_day("created_at")} AS day,
       CASE WHEN status IN ('queued', 'sending') THEN 'pending' ELSE status END AS key,
       count(*) AS n, 0::numeric AS amount
  FROM sms_outbox
 WHERE {_in_days("created_at")}
 GROUP BY 1, 2
"""

CALLBACKS = f"""
SELECT {_day("c.requested_at")} AS day,
       CASE WHEN o.status IN ('submitted', 'delivered') THEN 'sms' ELSE 'requested' END AS key,
       count(*) AS n, 0::numeric AS amount
  FROM callback_request c
  LEFT JOIN sms_outbox o ON o.idempotency_key = 'callback:' || c.id
 WHERE {_in_days("c.requested_at")}
 GROUP BY 1, 2
"""

# product revenue: monthly fees on the first day of their month, callback fees on their day
PRODUCTS = f"""
SELECT month AS day, service AS key, count(*) AS n, sum(charge) AS amount
  FROM monthly_fee WHERE month >= $1::date AND month < $2::date
 GROUP BY 1, 2
UNION ALL
SELECT {_day("started_at")}, service, count(*), sum(charge)
  FROM cdr
 WHERE record_type = 'fee' AND {_in_days("started_at")}
 GROUP BY 1, 2
"""

CATEGORIES = f"""
SELECT {_day("started_at")} AS day, coalesce(call_category, 'none') AS key,
       count(*) AS n, sum(charge) AS amount
  FROM cdr
 WHERE record_type IN ('call', 'sms') AND {_in_days("started_at")}
 GROUP BY 1, 2
"""

SECTIONS = {
    "missed_calls": MISSED,
    "sms": SMS,
    "callbacks": CALLBACKS,
    "revenue_by_product": PRODUCTS,
    "revenue_by_category": CATEGORIES,
}


async def daily_rows(
    conn: asyncpg.Connection, since: dt.date, until: dt.date, timezone: str
) -> dict[str, list[asyncpg.Record]]:
    """Every section's (day, key, n, amount) rows for the days ``[since, until)``."""
    return {name: await conn.fetch(sql, since, until, timezone) for name, sql in SECTIONS.items()}
