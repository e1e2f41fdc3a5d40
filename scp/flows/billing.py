"""Billing flows: product price lists, the monthly run of product fees, the callback fee.

The rules are :mod:`scp.service.billing` (pure); the SQL is :mod:`scp.state.billing_store`.
Every channel calls these functions (``mcn-scp products`` / ``billing``; the web console later).

* :func:`set_price` / :func:`list_prices`: each product's price list, versioned by start date,
  every change audited in its transaction.
* :func:`run_month` writes one fee record per subscriber per product for a month (table
  ``monthly_fee``, unique per month, subscriber and product), prorated by the days subscribed
  or charged in full (``[billing] proration``). Only a month that is over in the network's
  time zone is billed (the caller's ``today``): a month still running would be billed before
  its late starts and with its early ends charged as if subscribed to its last day, and a run
  marked done is never redone. It works through the subscribers in MSISDN
  order, ``[billing] chunk`` subscription rows per transaction, each committed with the run's
  resume point (``billing_run.after_msisdn``): run again, or after a crash half-way, it writes
  no record twice and skips none. That is what keeps a record from being written twice, so
  the chunk is a plain insert; the unique key is the guard that refuses (:class:`Conflict`) a
  record the run did not write. Every chunk but the last commits without waiting for its
  WAL flush (:func:`scp.state.billing_store.defer_flush` says why that loses nothing). Several nodes may start it at once: the month's advisory
  lock lets one work while the others wait; a waiter that gets the lock finds the run done
  (nothing to do) or, if the worker died, resumes it. A done month goes to mediation in a fee
  file (:func:`scp.flows.cdrfiles.export_files`).
* :func:`charge_callbacks` is the outbox's charge hook: the callback fee (``[call]
  callback_fee``, charged to the caller who pressed 1) is written when the request's SMS is
  submitted, or delivered (``[billing] callback_fee_on``), in the transaction that records it,
  once per request. A request that expires unsent costs nothing; pressing 1 again before the
  callee is reachable joins the open request (one SMS, one fee).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import asyncpg

from scp.flows.provisioning import Db, audit, transaction
from scp.service.billing import (
    PRORATIONS,
    ProductPrice,
    month_bounds,
    price_segments,
    valid_pair,
    valid_price,
)
from scp.service.provisioning import Actor, Conflict, InvalidInput
from scp.service.rating import PairTariff
from scp.state import billing_store as store

if TYPE_CHECKING:
    from scp.config import Config

__all__ = [
    "ProductTotal",
    "RunSummary",
    "charge_callbacks",
    "list_pair_tariffs",
    "list_prices",
    "run_month",
    "set_pair_tariff",
    "set_price",
]

CALLBACK_KEY = "callback:"  # the idempotency key prefix of callback SMS (scp.flows.notify)


async def set_price(
    db: Db,
    actor: Actor,
    service: str,
    monthly_fee: str | Decimal | int | float,
    *,
    today: dt.date,
    valid_from: dt.date | str | None = None,
) -> ProductPrice:
    """Set ``service``'s monthly fee from ``valid_from`` (default the caller's ``today``); the
    line of that day is replaced, earlier and later lines stay."""
    p = valid_price(service, monthly_fee, valid_from, today=today)
    async with transaction(db) as conn:
        saved = await store.upsert_price(conn, p)
        await audit(conn, actor, "set-price", "product", f"{p.service}@{p.valid_from}", None, saved)
    return saved


async def list_prices(db: Db, service: str | None = None) -> list[ProductPrice]:
    """Price lists by product and start date."""
    if service is not None:
        valid_price(service, 0, None, today=dt.date(1970, 1, 1))  # InvalidInput names it
    async with transaction(db) as conn:
        return await store.list_prices(conn, service)


async def set_pair_tariff(
    db: Db,
    actor: Actor,
    origin_prefix: str,
    destination_prefix: str,
    *,
    today: dt.date,
    call_category: str | None = None,
    per_minute: str | Decimal | int | float = 0,
    per_use: str | Decimal | int | float = 0,
    valid_from: dt.date | str | None = None,
) -> PairTariff:
    """Add or replace the number-pair tariff (table ``rate_pair``) for calls from numbers
    under ``origin_prefix`` to numbers under ``destination_prefix`` from ``valid_from``; the
    call path picks it up with its next tariff reload."""
    t = valid_pair(
        origin_prefix,
        destination_prefix,
        call_category=call_category,
        per_minute=per_minute,
        per_use=per_use,
        valid_from=valid_from,
        today=today,
    )
    async with transaction(db) as conn:
        saved = await store.upsert_pair(conn, t)
        key = f"{t.origin_prefix}>{t.destination_prefix}@{t.valid_from}"
        await audit(conn, actor, "set", "rate-pair", key, None, saved)
    return saved


async def list_pair_tariffs(db: Db) -> list[PairTariff]:
    async with transaction(db) as conn:
        return await store.list_pairs(conn)


@dataclass(frozen=True, slots=True)
class ProductTotal:
    """One product's fee records in a month and their sum."""

    service: str
    records: int
    total: Decimal


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a ``billing run`` found and did.

    ``written`` / ``written_total``: what this call wrote (0 when another node did the work or
    the run was done already); ``records`` / ``total``: the month's run in all;
    ``resumed_after``: the MSISDN a run cut short had reached; ``waited_for``: the node whose
    run this call waited for.
    """

    month: dt.date
    proration: str
    status: str
    node: str
    written: int
    written_total: Decimal
    records: int
    total: Decimal
    products: tuple[ProductTotal, ...]
    resumed_after: str | None = None
    waited_for: str | None = None
    already_done: bool = False  # the run was done before this call took the lock


Progress = Callable[[int], None]
"""Told how many more subscription periods were billed (a progress bar's steps)."""


async def run_month(
    conn: asyncpg.Connection,
    *,
    month: dt.date,
    cfg: Config,
    today: dt.date,
    clock: Callable[[], dt.datetime],
    start: Callable[[int], None] | None = None,
    progress: Progress | None = None,
    waiting: Callable[[str], None] | None = None,
) -> RunSummary:
    """Bill ``month`` (its first day) on ``conn``, a connection of its own (it holds the
    month's session lock). ``today`` is the network's day (``[notify] timezone``): a month
    that has not ended by then is refused (InvalidInput naming ``month``). ``clock`` dates
    the run; ``start`` is told how many subscription
    periods are left to bill, ``progress`` each chunk's, ``waiting`` the node it waits for."""
    proration = cfg.billing.proration
    if proration not in PRORATIONS:
        raise InvalidInput("billing.proration", f"must be one of {', '.join(PRORATIONS)}")
    node = cfg.node.name
    first, next_month, month_days = month_bounds(month)
    if today < next_month:
        raise InvalidInput(
            "month",
            f"{first:%Y-%m} is not over in {cfg.notify.timezone} (today is {today}):"
            f" bill it from {next_month} on",
        )
    waited_for: str | None = None
    if not await store.try_lock_month(conn, first):
        holder = await store.get_run(conn, first)
        waited_for = holder.node if holder else "another node"
        if waiting is not None:
            waiting(waited_for)
        await store.lock_month(conn, first)
    try:
        run = await store.get_run(conn, first)
        if run is not None and run.status == "done":
            return await _summary(conn, run, 0, Decimal(0), None, waited_for, done=True)
        if run is not None and run.proration != proration:
            raise Conflict(
                f"the {first:%Y-%m} run was started with proration {run.proration!r}:"
                f" resume it with the same [billing] proration (now {proration!r})"
            )
        run = await store.start_run(conn, first, proration, node, clock())
        assert run is not None  # not done (checked under the lock)
        resumed = run.after_msisdn or None
        prices = await store.list_prices(conn)
        segments = price_segments(prices, first)
        if start is not None:
            start(await store.count_periods(conn, first, next_month, run.after_msisdn))
        after = run.after_msisdn
        written, written_total = 0, Decimal(0)
        while True:
            hi = await store.chunk_end(conn, after, cfg.billing.chunk)
            last = hi == store.NO_UPPER_BOUND
            chunk = store.fee_rows_args(
                lo=after,
                hi=hi,
                month=first,
                next_month=next_month,
                month_days=month_days,
                segments=segments,
                full=proration == "full",
            )
            async with conn.transaction():
                if not last:
                    await store.defer_flush(conn)
                try:
                    billed = await store.bill_chunk(conn, chunk)
                except asyncpg.UniqueViolationError as e:
                    # not written by this run (its chunks commit with the resume point)
                    raise Conflict(
                        f"a {first:%Y-%m} fee record past the run's resume point exists"
                        f" already ({e.detail or 'monthly_fee'}): remove it, then run again"
                    ) from e
                await store.advance_run(conn, first, after=hi, billed=billed, done=last, at=clock())
            written += billed.records
            written_total += billed.total
            if progress is not None:
                progress(billed.seen)
            if last:
                break
            after = hi
        run = await store.get_run(conn, first)
        assert run is not None
        return await _summary(conn, run, written, written_total, resumed, waited_for)
    finally:
        await store.unlock_month(conn, first)


async def _summary(
    conn: asyncpg.Connection,
    run: store.Run,
    written: int,
    written_total: Decimal,
    resumed: str | None,
    waited_for: str | None,
    *,
    done: bool = False,
) -> RunSummary:
    return RunSummary(
        month=run.month,
        proration=run.proration,
        status=run.status,
        node=run.node,
        written=written,
        written_total=written_total,
        records=run.records,
        total=run.total,
        products=tuple(ProductTotal(*t) for t in await store.month_totals(conn, run.month)),
        resumed_after=resumed,
        waited_for=waited_for,
        already_done=done,
    )


async def charge_callbacks(
    conn: asyncpg.Connection, sms: Sequence[tuple[str, dt.datetime]], *, fee: Decimal
) -> None:
    """The callback fee of each callback SMS in ``sms`` ((idempotency key, when the SMS was
    submitted or delivered)), in the caller's transaction, once per request."""
    ids, ats = [], []
    for key, at in sms:
        if key.startswith(CALLBACK_KEY) and key[len(CALLBACK_KEY) :].isdigit():
            ids.append(int(key[len(CALLBACK_KEY) :]))
            ats.append(at)
    if ids:
        await store.charge_callbacks(conn, ids, ats, fee)
