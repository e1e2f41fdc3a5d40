"""``mcn-scp ads``: the ads appended to notification SMS, with their windows and targets."""

from __future__ import annotations

import datetime as dt

import click

from scp.adapters.clock import utcnow
from scp.cli.common import (
    BadInputError,
    actor,
    emit,
    json_option,
    parse_datetime,
    run_db,
    table,
)
from scp.flows import provisioning as prov


@click.group("ads")
def ads_group() -> None:
    """Advertising rules appended to notification SMS."""


def _window(value: str | None) -> tuple[dt.time, dt.time | None]:
    if not value:
        return dt.time(0, 0), None
    try:
        a, b = value.split("-", 1)
        start = dt.time.fromisoformat(a)
        end = None if b in ("24:00", "24:00:00") else dt.time.fromisoformat(b)
    except ValueError:
        raise BadInputError(f"window: {value!r} is not HH:MM-HH:MM") from None
    return start, end


@ads_group.command("add")
@click.argument("text")
@click.option("--window", default=None, help="Daily window HH:MM-HH:MM (default all day).")
@click.option("--caller-prefix", "prefixes", multiple=True, help="Repeatable; none: any caller.")
@click.option("--group", "groups", multiple=True, help="Repeatable; none: any user group.")
@click.option("--priority", default=0, show_default=True, type=int)
@click.option(
    "--from",
    "valid_from",
    default=None,
    help="ISO date/time (default now; no offset: [notify] timezone).",
)
@click.option("--until", "valid_until", default=None, help="ISO date/time (default open).")
@json_option
def ads_add(
    text: str,
    window: str | None,
    prefixes: tuple[str, ...],
    groups: tuple[str, ...],
    priority: int,
    valid_from: str | None,
    valid_until: str | None,
    as_json: bool,
) -> None:
    """Add an ad rule."""
    ws, we = _window(window)
    vf, vu = parse_datetime(valid_from, "from"), parse_datetime(valid_until, "until")
    now = utcnow()
    ad = run_db(
        lambda c: prov.add_ad(
            c,
            actor(),
            text,
            now=now,
            window_start=ws,
            window_end=we,
            caller_prefixes=prefixes,
            user_groups=groups,
            priority=priority,
            valid_from=vf,
            valid_until=vu,
        )
    )
    emit(ad, as_json, lambda a: f"ad rule {a.id} added")


@ads_group.command("list")
@json_option
def ads_list(as_json: bool) -> None:
    """All ad rules, highest priority first."""
    emit(
        run_db(prov.list_ads),
        as_json,
        lambda ads: table(
            [
                {
                    "id": a.id,
                    "priority": a.priority,
                    "window": f"{a.window_start:%H:%M}-"
                    f"{a.window_end.strftime('%H:%M') if a.window_end else '24:00'}",
                    "prefixes": ",".join(a.caller_prefixes),
                    "groups": ",".join(a.user_groups),
                    "until": a.valid_until,
                    "text": a.text,
                }
                for a in ads
            ],
            ["id", "priority", "window", "prefixes", "groups", "until", "text"],
        ),
    )


@ads_group.command("del")
@click.argument("ad_id", type=int)
def ads_del(ad_id: int) -> None:
    """Delete an ad rule."""
    run_db(lambda c: prov.delete_ad(c, actor(), ad_id))
    click.echo("deleted")
