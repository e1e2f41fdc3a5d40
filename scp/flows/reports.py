"""Reports over the records the node keeps: the daily report of ``mcn-scp report daily``.

:func:`daily_report` is the one place the numbers are put together, so every channel (the CLI,
the operator console's dashboard) shows the same ones. Per calendar day in the network's time
zone (``[notify] timezone``): missed calls by reason, SMS by outcome, callback requests and
how many turned into an SMS, revenue per product (monthly fees on the first day of the month
they bill, callback fees on the day they were charged) and per call category (call and SMS
CDRs). The SQL is :mod:`scp.state.report_store`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from scp.flows.provisioning import Db, transaction
from scp.service.provisioning import InvalidInput
from scp.state import report_store

__all__ = ["DayReport", "daily_report"]

MAX_DAYS = 366 * 2  # a report longer than this is a query for the warehouse, not for the node

SMS_OUTCOMES = ("submitted", "delivered", "failed", "expired", "pending")
REASONS = ("busy", "not-reachable", "no-answer")


@dataclass
class DayReport:
    """One day's numbers (zeros where nothing happened)."""

    day: dt.date
    missed_calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    sms: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SMS_OUTCOMES, 0))
    callback_requests: int = 0
    callbacks_with_sms: int = 0
    revenue_by_product: dict[str, Decimal] = field(default_factory=dict)
    revenue_by_category: dict[str, Decimal] = field(default_factory=dict)

    @property
    def revenue(self) -> Decimal:
        """The day's whole revenue: the products' and the call categories' (disjoint records:
        monthly fees and fee CDRs, call and SMS CDRs)."""
        return sum(self.revenue_by_product.values(), Decimal(0)) + sum(
            self.revenue_by_category.values(), Decimal(0)
        )


async def daily_report(db: Db, *, since: dt.date, until: dt.date, timezone: str) -> list[DayReport]:
    """One :class:`DayReport` per day from ``since`` to ``until``, both included."""
    if until < since:
        raise InvalidInput("until", f"{until} is before since {since}")
    if (until - since).days >= MAX_DAYS:
        raise InvalidInput("until", f"at most {MAX_DAYS} days in one report")
    days = {
        since + dt.timedelta(days=i): DayReport(since + dt.timedelta(days=i))
        for i in range((until - since).days + 1)
    }
    async with transaction(db) as conn:
        rows = await report_store.daily_rows(conn, since, until + dt.timedelta(days=1), timezone)
    for r in rows["missed_calls"]:
        days[r["day"]].missed_calls[r["key"]] = int(r["n"])
    for r in rows["sms"]:
        days[r["day"]].sms[r["key"]] = int(r["n"])
    for r in rows["callbacks"]:
        d = days[r["day"]]
        d.callback_requests += int(r["n"])
        if r["key"] == "sms":
            d.callbacks_with_sms += int(r["n"])
    for r in rows["revenue_by_product"]:
        rev = days[r["day"]].revenue_by_product
        rev[r["key"]] = rev.get(r["key"], Decimal(0)) + Decimal(r["amount"])
    for r in rows["revenue_by_category"]:
        days[r["day"]].revenue_by_category[r["key"]] = Decimal(r["amount"])
    return [days[k] for k in sorted(days)]
