"""Billing rules: products and their price lists, the monthly fee of a subscription, the month.

Pure (ARCHITECTURE §2: ``service/`` decides, it never does I/O and never reads a clock);
:mod:`scp.flows.billing` loads the price lists and runs the month. The brief sells each
subscription service as a product with a monthly fee (来话提示 missed-call and 遇忙提示 busy at
2 元 each in its example); a price list is versioned by start date, the price in force on a day
being the one with the latest ``valid_from`` not after it.

The monthly fee of one product for one subscriber in a month of ``D`` days, over the days it was
subscribed (its periods, clipped to the month) on which a price was in force:

* ``daily`` proration: the sum over those days of the day's price / ``D``, rounded to the fen
  (0.01, half away from zero): a whole month costs the price, the 10th to the end of a 30-day
  month 21/30 of it, a price change on the 16th weighs each price by its days;
* ``full``: the whole price in force on the first of those days, however few they are.

No subscribed day with a price in force: no fee record at all. The database computes the same
rule for every subscriber in one statement per chunk (``scp.state.billing_store``); this module
is its reference, and a test holds the two to the same answers.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from scp.service.msisdn import is_digits
from scp.service.provisioning import CALL_CATEGORIES, SERVICES, InvalidInput, valid_money
from scp.service.rating import PairTariff

__all__ = [
    "PRODUCTS",
    "PRORATIONS",
    "FEE_ON",
    "MonthlyFee",
    "PriceSegment",
    "ProductPrice",
    "month_bounds",
    "monthly_fee",
    "parse_month",
    "price_on",
    "price_segments",
    "valid_pair",
    "valid_price",
]

PRODUCTS = SERVICES  # every subscription service is a product with its own price list
PRORATIONS = ("daily", "full")
FEE_ON = ("submitted", "delivered")
FEN = Decimal("0.01")

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class ProductPrice:
    """One line of a product's price list (a row of ``product_price``)."""

    service: str
    valid_from: dt.date
    monthly_fee: Decimal


@dataclass(frozen=True, slots=True)
class PriceSegment:
    """Days ``[start, end)`` of a month on which ``service`` costs ``monthly_fee`` a month."""

    service: str
    start: dt.date
    end: dt.date
    monthly_fee: Decimal


@dataclass(frozen=True, slots=True)
class MonthlyFee:
    """A product's fee for one subscriber and month: days billed, list price, charge."""

    days: int
    fee: Decimal
    charge: Decimal


def parse_month(raw: str, field_name: str = "month") -> dt.date:
    """``YYYY-MM`` as the month's first day; InvalidInput names the field otherwise."""
    m = _MONTH.match(raw.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1970:
        raise InvalidInput(field_name, f"expected YYYY-MM, got {raw!r}")
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date, int]:
    """First day, first day of the next month, and the number of days of ``month``."""
    days = calendar.monthrange(month.year, month.month)[1]
    first = month.replace(day=1)
    return first, first + dt.timedelta(days=days), days


def valid_price(
    service: str,
    monthly_fee: str | Decimal | float | int,
    valid_from: dt.date | str | None,
    *,
    today: dt.date,
) -> ProductPrice:
    """A price-list line from operator input (InvalidInput names the field)."""
    if service not in PRODUCTS:
        raise InvalidInput("service", f"must be one of {', '.join(PRODUCTS)}, got {service!r}")
    fee = valid_money(monthly_fee, "monthly_fee")
    if valid_from is None or valid_from == "":
        day = today
    elif isinstance(valid_from, dt.date):
        day = valid_from
    else:
        try:
            day = dt.date.fromisoformat(valid_from)
        except ValueError:
            raise InvalidInput("valid_from", f"expected YYYY-MM-DD, got {valid_from!r}") from None
    return ProductPrice(service, day, fee)


def price_on(lines: Iterable[ProductPrice], service: str, day: dt.date) -> ProductPrice | None:
    """The line of ``service``'s price list in force on ``day`` (latest start not after it)."""
    best: ProductPrice | None = None
    for p in lines:
        if p.service == service and p.valid_from <= day:
            if best is None or p.valid_from > best.valid_from:
                best = p
    return best


def price_segments(prices: Iterable[ProductPrice], month: dt.date) -> list[PriceSegment]:
    """The prices of every product in force during ``month``, as day ranges of the month
    (a product without a price on a day has no segment covering it)."""
    first, end, _ = month_bounds(month)
    by_service: dict[str, list[ProductPrice]] = {}
    for p in prices:
        by_service.setdefault(p.service, []).append(p)
    out: list[PriceSegment] = []
    for service in sorted(by_service):
        lines = sorted(by_service[service], key=lambda p: p.valid_from)
        for i, p in enumerate(lines):
            until = lines[i + 1].valid_from if i + 1 < len(lines) else end
            s, e = max(p.valid_from, first), min(until, end)
            if s < e:
                out.append(PriceSegment(service, s, e, p.monthly_fee))
    return out


def monthly_fee(
    periods: Iterable[tuple[dt.date, dt.date | None]],
    segments: Sequence[PriceSegment],
    month: dt.date,
    proration: str,
) -> MonthlyFee | None:
    """The fee of one product (``segments`` of that product only) for a subscriber whose
    subscription periods (``[start, end)``, end None: still running; non-overlapping) are
    ``periods``, by the rules of the module docstring; None when nothing is due."""
    if proration not in PRORATIONS:
        raise ValueError(f"proration {proration!r}")
    first, end, month_days = month_bounds(month)
    days = 0
    weighted = Decimal(0)
    first_day: dt.date | None = None
    first_fee = Decimal(0)
    for start, stop in periods:
        s, e = max(start, first), min(stop or end, end)
        for g in segments:
            a, b = max(s, g.start), min(e, g.end)
            if a >= b:
                continue
            n = (b - a).days
            days += n
            weighted += n * g.monthly_fee
            if first_day is None or a < first_day:
                first_day, first_fee = a, g.monthly_fee
    if days == 0:
        return None
    if proration == "full":
        return MonthlyFee(days, first_fee, first_fee.quantize(FEN, ROUND_HALF_UP))
    charge = (weighted / month_days).quantize(FEN, ROUND_HALF_UP)
    return MonthlyFee(days, first_fee, charge)


def valid_pair(
    origin_prefix: str,
    destination_prefix: str,
    *,
    call_category: str | None,
    per_minute: str | Decimal | float | int,
    per_use: str | Decimal | float | int,
    valid_from: dt.date | str | None,
    today: dt.date,
) -> PairTariff:
    """A number-pair tariff from operator input (InvalidInput names the field): prefixes of up
    to 15 digits ('' any number), the category None (by the destination's rules) or one of
    :data:`scp.service.provisioning.CALL_CATEGORIES`."""
    for name, v in (("origin_prefix", origin_prefix), ("destination_prefix", destination_prefix)):
        if v and not is_digits(v, 1, 15):
            raise InvalidInput(name, f"{v!r} must be up to 15 digits")
    if not origin_prefix and not destination_prefix:
        raise InvalidInput("origin_prefix", "a pair needs an origin or a destination prefix")
    if call_category is not None and call_category not in CALL_CATEGORIES:
        raise InvalidInput(
            "call_category", f"must be one of {', '.join(CALL_CATEGORIES)}, got {call_category!r}"
        )
    day = valid_price("missed-call", 0, valid_from, today=today).valid_from
    return PairTariff(
        origin_prefix,
        destination_prefix,
        call_category,
        valid_money(per_minute, "per_minute"),
        valid_money(per_use, "per_use"),
        day,
    )
