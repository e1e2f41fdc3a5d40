"""``mcn-scp products | billing``: product price lists and the monthly run of their fees."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import asyncpg
import click

from scp.adapters.clock import utcnow
from scp.cli.common import (
    BadInputError,
    actor,
    emit,
    get_config,
    json_option,
    network_today,
    run_db,
    table,
)
from scp.flows import billing
from scp.service.billing import PRODUCTS, ProductPrice, parse_month, price_on
from scp.service.provisioning import InvalidInput, to_json


@click.group("products")
def products_group() -> None:
    """Products (the subscription services) and their monthly fees, versioned by start date."""


@products_group.command("set")
@click.argument("service", type=click.Choice(PRODUCTS))
@click.option("--monthly-fee", required=True, help="CNY a month, e.g. 2.00")
@click.option("--valid-from", default=None, help="YYYY-MM-DD (default today)")
@json_option
def products_set(service: str, monthly_fee: str, valid_from: str | None, as_json: bool) -> None:
    """Set SERVICE's monthly fee from a day on (replaces that day's line, keeps the others)."""
    today = network_today()
    saved = run_db(
        lambda c: billing.set_price(
            c, actor(), service, monthly_fee, today=today, valid_from=valid_from
        )
    )
    emit(
        saved,
        as_json,
        lambda p: f"{p.service}: {p.monthly_fee} CNY a month from {p.valid_from}",
    )


@products_group.command("list")
@click.option("--service", type=click.Choice(PRODUCTS), default=None)
@json_option
def products_list(service: str | None, as_json: bool) -> None:
    """Every price-list line; in_force marks each product's price of today."""
    today = network_today()
    lines: list[ProductPrice] = run_db(lambda c: billing.list_prices(c, service))
    rows = [dict(to_json(p), in_force=price_on(lines, p.service, today) == p) for p in lines]
    emit(rows, as_json, lambda rs: table(rs, ["service", "valid_from", "monthly_fee", "in_force"]))


@click.group("billing")
def billing_group() -> None:
    """The monthly run of product fees."""


@billing_group.command("run")
@click.option("--month", "month_text", required=True, help="YYYY-MM")
@json_option
@click.pass_context
def billing_run(ctx: click.Context, month_text: str, as_json: bool) -> None:
    """Write one fee record per subscriber per product for MONTH (prorated by [billing]
    proration), once MONTH is over in [notify] timezone. Safe to run twice, to rerun after a crash, and on several nodes at once."""
    try:
        month = parse_month(month_text, "month")
    except InvalidInput as e:
        raise BadInputError(str(e)) from None
    cfg = get_config(ctx)
    today = network_today()
    # the bar only on a terminal; the summary always, on stdout (--json: data only there)
    tty = sys.stderr.isatty()
    stack = contextlib.ExitStack()
    bar: list[Any] = []

    def start(n: int) -> None:
        if n:
            bar.append(
                stack.enter_context(
                    click.progressbar(length=n, label=f"billing {month:%Y-%m}", file=sys.stderr)
                )
            )

    def progress(n: int) -> None:
        if bar:
            bar[0].update(n)

    def waiting(node: str) -> None:
        click.echo(f"waiting: {node} is running the {month:%Y-%m} billing", err=True)

    async def go(conn: asyncpg.Connection) -> billing.RunSummary:
        with stack:
            return await billing.run_month(
                conn,
                month=month,
                cfg=cfg,
                today=today,
                clock=utcnow,
                # no bar: no count of the month's periods up front (a pass over all of them)
                start=start if tty else None,
                progress=progress if tty else None,
                waiting=waiting,
            )

    emit(run_db(go), as_json, _summary_text)


def _summary_text(s: billing.RunSummary) -> str:
    head = f"billing {s.month:%Y-%m} ({s.proration} proration): {s.status}, by {s.node}"
    if not s.already_done:
        now = f"written now: {s.written} records, {s.written_total} CNY"
    elif s.waited_for:
        now = f"nothing written here: {s.waited_for} did the run meanwhile"
    else:
        now = "nothing written: the run was done already"
    lines = [head, now]
    if s.resumed_after:
        lines.append(f"resumed after {s.resumed_after}")
    lines.append(f"month: {s.records} records, {s.total} CNY")
    lines.append(
        table([to_json(p) for p in s.products], ["service", "records", "total"])
        if s.products
        else "(no fee records: no product priced, or nobody subscribed)"
    )
    return "\n".join(lines)
