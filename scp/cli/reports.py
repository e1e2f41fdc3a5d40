"""``mcn-scp report``: the daily report (scp.flows.reports, shared with the web console)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import click

from scp.cli.common import BadInputError, emit, get_config, json_option, network_today, run_db
from scp.flows import reports


@click.group("report")
def report_group() -> None:
    """Operational and revenue reports."""


def _day(value: str | None, name: str, default: dt.date) -> dt.date:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"{name}: expected YYYY-MM-DD, got {value!r}") from None


@report_group.command("daily")
@click.option("--since", default=None, help="YYYY-MM-DD, first day (default: 7 days ago)")
@click.option("--until", default=None, help="YYYY-MM-DD, last day included (default: today)")
@json_option
@click.pass_context
def report_daily(ctx: click.Context, since: str | None, until: str | None, as_json: bool) -> None:
    """Per day ([notify] timezone): missed calls by reason, SMS by outcome, callback requests
    and those that got their SMS, revenue per product and per call category."""
    today = network_today()
    last = _day(until, "until", today)
    first = _day(since, "since", last - dt.timedelta(days=6))
    tz = get_config(ctx).notify.timezone
    rows = run_db(lambda c: reports.daily_report(c, since=first, until=last, timezone=tz))
    emit(rows, as_json, _text)


def _money(d: dict[str, Decimal]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "-"


def _text(days: list[reports.DayReport]) -> str:
    out = []
    for d in days:
        out.append(
            f"{d.day}  missed: "
            + " ".join(f"{k}={v}" for k, v in d.missed_calls.items())
            + "  sms: "
            + " ".join(f"{k}={v}" for k, v in d.sms.items())
            + f"  callbacks: {d.callback_requests} ({d.callbacks_with_sms} with SMS)"
        )
        out.append(f"            revenue by product: {_money(d.revenue_by_product)}")
        out.append(f"            revenue by category: {_money(d.revenue_by_category)}")
    return "\n".join(out)
