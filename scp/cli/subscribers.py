"""Operations commands of ``mcn-scp`` (ARCHITECTURE §3): provisioning, OSS bulk load, database.

Every command is a thin shell over ``scp.flows.provisioning`` (the functions IVR, SMS, web
and operator channels call too), so features stay identical across channels. Exit codes:
0 done; 2 bad input (the message names the field, or the file's line); 1 failure.
``--json`` wherever the output is data. The database is ``$MCN_DATABASE_URL`` or the embedded
server under ``$MCN_HOME``; pending migrations are applied before any command touches data.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import getpass
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any, TypeVar

import asyncpg
import click

from scp.adapters.clock import utcnow
from scp.config import Config, ConfigError, load_config
from scp.flows import importer
from scp.flows import provisioning as prov
from scp.service.notifications import local_day, notify_tz
from scp.service.provisioning import (
    SERVICES,
    SMS_STATUSES,
    Actor,
    InvalidInput,
    ProvisioningError,
    Subscriber,
    to_json,
)
from scp.state import db as dbmod
from scp.state.migrate import (
    SchemaVersionError,
    check_schema_version,
    current_version,
    migrate,
)

T = TypeVar("T")


class BadInputError(click.ClickException):
    """Bad operator input: exit 2, message names the field or line."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Failure(click.ClickException):
    """The command could not be done: exit 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def get_config(ctx: click.Context) -> Config:
    """The validated config for this invocation, loaded once (exit 2 naming the key if bad)."""
    obj = ctx.ensure_object(dict)
    if "config" not in obj:
        try:
            obj["config"] = load_config(obj.get("config_path"))
        except ConfigError as e:
            raise BadInputError(f"config: {e}") from None
    return obj["config"]


def _today() -> dt.date:
    """Today in the network's time zone (``[notify].timezone``), as the node counts days: the
    CLI reads the clock for its default dates, the layers below are told the day."""
    return local_day(utcnow(), get_config(click.get_current_context()))


def _actor(channel: str = "cli") -> Actor:
    try:
        name = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        name = f"uid:{os.getuid()}"
    return Actor(channel, name)


def _run(fn: Callable[[asyncpg.Connection], Awaitable[T]], *, migrate_first: bool = True) -> T:
    """Open one connection, check the schema, run ``fn``, map errors to exit codes.

    A brand-new database (the embedded default on first use) is migrated on the spot; an
    existing one is only checked: upgrading a schema shared with running nodes is for
    `mcn-scp db migrate` (or `run`), never a side effect of `subscriber list`.
    """

    async def main() -> T:
        conn = await dbmod.connect()
        try:
            if migrate_first:
                if await current_version(conn) == 0:
                    await migrate(conn)
                await check_schema_version(conn)
            return await fn(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except InvalidInput as e:
        raise BadInputError(str(e)) from None
    except importer.ImportFileError as e:
        raise BadInputError(str(e)) from None
    except (ProvisioningError, SchemaVersionError, dbmod.DatabaseError) as e:
        raise Failure(str(e)) from None
    except asyncpg.PostgresError as e:
        raise Failure(f"database: {e}") from None
    except OSError as e:
        raise Failure(str(e)) from None


def _emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(to_json(data), ensure_ascii=False, indent=None))
    else:
        out = text(data)
        if out:
            click.echo(out)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").replace(";", ",").split(",") if v.strip()]


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


# --------------------------------------------------------------------------------------------
# db
# --------------------------------------------------------------------------------------------


@click.group("db")
def db_group() -> None:
    """Database: migrate, print the DSN, stop the embedded server."""


@db_group.command("migrate")
@json_option
def db_migrate(as_json: bool) -> None:
    """Apply pending schema migrations."""

    async def go(conn: asyncpg.Connection) -> dict[str, Any]:
        applied = await migrate(conn)
        return {"applied": applied, "version": await current_version(conn)}

    res = _run(go, migrate_first=False)
    _emit(
        res,
        as_json,
        lambda r: f"applied {r['applied'] or 'nothing'}; schema version {r['version']}",
    )


@db_group.command("url")
def db_url() -> None:
    """Print the DSN (starts the embedded server if needed), e.g. for psql."""
    try:
        click.echo(dbmod.resolve_dsn())
    except dbmod.DatabaseError as e:
        raise Failure(str(e)) from None


@db_group.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL under $MCN_HOME."""
    if os.environ.get("MCN_DATABASE_URL"):
        raise Failure("MCN_DATABASE_URL is set: the database is external, not stopped")
    try:
        was = dbmod.stop_embedded()
    except dbmod.DatabaseError as e:
        raise Failure(str(e)) from None
    click.echo("stopped" if was else "not running")


# --------------------------------------------------------------------------------------------
# subscriber
# --------------------------------------------------------------------------------------------


def _sub_text(s: Subscriber) -> str:
    today = _today()
    svc = (
        ", ".join(
            f"{x.service}{'' if x.active_on(today) else ' (ended)'}"
            f" {x.start_date}..{x.end_date or ''}"
            for x in s.subscriptions
        )
        or "-"
    )
    pin = "locked" if s.pin_locked else "set" if s.pin_set else "not set"
    return "\n".join(
        [
            f"msisdn       {s.msisdn}",
            f"imsi         {s.imsi or '-'}",
            f"status       {s.status}",
            f"language     {s.language}",
            f"group        {s.user_group}",
            f"notify_mode  {s.notify_mode}",
            f"forward_to   {s.forward_to or '-'}",
            f"pin          {pin} (failed attempts {s.pin_failed_attempts})",
            f"services     {svc}",
        ]
    )


@click.group("subscriber")
def subscriber_group() -> None:
    """Subscribers: add, show, set, del, list, import (OSS bulk load)."""


@subscriber_group.command("add")
@click.argument("msisdn")
@click.option("--services", default="", help="Comma-separated: " + ",".join(SERVICES))
@click.option("--pin", default=None, help="Initial PIN, 6-10 digits.")
@click.option("--group", default="default", show_default=True)
@click.option("--language", default="zh", show_default=True)
@click.option("--imsi", default=None)
@click.option("--notify-mode", default="sms", show_default=True)
@click.option("--forward-to", default=None)
@json_option
def subscriber_add(
    msisdn: str,
    services: str,
    pin: str | None,
    group: str,
    language: str,
    imsi: str | None,
    notify_mode: str,
    forward_to: str | None,
    as_json: bool,
) -> None:
    """Create a subscriber (services in force from today)."""
    today = _today()
    sub = _run(
        lambda c: prov.add_subscriber(
            c,
            _actor(),
            msisdn,
            today=today,
            services=_csv_list(services),
            pin=pin,
            group=group,
            language=language,
            imsi=imsi,
            notify_mode=notify_mode,
            forward_to=forward_to,
        )
    )
    _emit(sub, as_json, _sub_text)


@subscriber_group.command("show")
@click.argument("msisdn")
@json_option
def subscriber_show(msisdn: str, as_json: bool) -> None:
    """Show one subscriber."""
    _emit(_run(lambda c: prov.get_subscriber(c, msisdn)), as_json, _sub_text)


@subscriber_group.command("set")
@click.argument("msisdn")
@click.option("--status", default=None, help="active | suspended | barred")
@click.option("--language", default=None)
@click.option("--group", default=None)
@click.option("--imsi", default=None, help="'' clears it.")
@click.option("--notify-mode", default=None)
@click.option("--forward-to", default=None, help="'' clears it.")
@json_option
def subscriber_set(
    msisdn: str,
    status: str | None,
    language: str | None,
    group: str | None,
    imsi: str | None,
    notify_mode: str | None,
    forward_to: str | None,
    as_json: bool,
) -> None:
    """Change attributes of a subscriber."""
    kw: dict[str, Any] = {
        k: v
        for k, v in dict(
            status=status,
            language=language,
            group=group,
            imsi=imsi,
            notify_mode=notify_mode,
            forward_to=forward_to,
        ).items()
        if v is not None
    }
    if not kw:
        raise BadInputError("nothing to change: give at least one option")
    _emit(_run(lambda c: prov.update_subscriber(c, _actor(), msisdn, **kw)), as_json, _sub_text)


@subscriber_group.command("del")
@click.argument("msisdn")
def subscriber_del(msisdn: str) -> None:
    """Delete a subscriber and all their data."""
    _run(lambda c: prov.delete_subscriber(c, _actor(), msisdn))
    click.echo(f"deleted {msisdn}")


@subscriber_group.command("list")
@click.option("--group", default=None)
@click.option("--after", default=None, help="Page: MSISDNs after this one.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100000))
@json_option
def subscriber_list(group: str | None, after: str | None, limit: int, as_json: bool) -> None:
    """List subscribers in MSISDN order."""
    subs = _run(lambda c: prov.list_subscribers(c, group=group, after=after, limit=limit))
    today = _today()
    _emit(
        subs,
        as_json,
        lambda ss: _table(
            [
                {
                    "msisdn": s.msisdn,
                    "status": s.status,
                    "language": s.language,
                    "group": s.user_group,
                    "services": ",".join(s.active_services(today)),
                }
                for s in ss
            ],
            ["msisdn", "status", "language", "group", "services"],
        ),
    )


@subscriber_group.command("import")
@click.argument("file", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--skip-bad", is_flag=True, help="Load the good rows, report the bad ones.")
@json_option
def subscriber_import(file: str, skip_bad: bool, as_json: bool) -> None:
    """OSS bulk load: CSV with header msisdn,services,group,language[,imsi,pin,notify_mode,forward_to]."""
    if file == "-":
        fh: IO[bytes] = sys.stdin.buffer
        size = None
    else:
        try:
            fh = open(file, "rb")  # noqa: SIM115 - closed below
            size = os.fstat(fh.fileno()).st_size
        except OSError as e:
            raise BadInputError(f"file: {e.strerror}: {file}") from None
    bar = None
    if size and sys.stderr.isatty() and not as_json:
        bar = click.progressbar(
            length=size, file=sys.stderr, label="importing", show_pos=False, show_percent=True
        )
        bar.__enter__()
    last = [0]

    def progress(_line: int) -> None:
        if bar is not None:
            pos = fh.tell()
            bar.update(pos - last[0])
            last[0] = pos

    today = _today()
    started = time.monotonic()
    try:
        result = _run(
            lambda c: importer.import_subscribers(
                c, _actor("oss"), fh, today=today, skip_bad=skip_bad, source=file, progress=progress
            )
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        if fh is not sys.stdin.buffer:
            fh.close()
    secs = time.monotonic() - started
    for b in result.bad:
        click.echo(f"line {b.line}: {b.reason}", err=True)
    if result.bad_count > len(result.bad):
        click.echo(f"... and {result.bad_count - len(result.bad)} more bad rows", err=True)
    if as_json:
        click.echo(json.dumps({**result.to_json(), "seconds": round(secs, 3)}))
    else:
        click.echo(f"{file}: {result.summary()} ({secs:.1f} s)", err=not result.loaded)
    if not result.loaded:
        raise BadInputError(
            f"{result.bad_count} bad rows, nothing loaded"
            " (fix them, or --skip-bad to load the good rows)"
        )


# --------------------------------------------------------------------------------------------
# service, blacklist, pin
# --------------------------------------------------------------------------------------------


@click.group("service")
def service_group() -> None:
    """Enable or disable a subscriber's services."""


def _date(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"{name}: {value!r} is not YYYY-MM-DD") from None


@service_group.command("enable")
@click.argument("msisdn")
@click.argument("service")
@click.option("--start", default=None, help="YYYY-MM-DD (default today)")
@click.option("--end", default=None, help="YYYY-MM-DD, exclusive (default open)")
@json_option
def service_enable(
    msisdn: str, service: str, start: str | None, end: str | None, as_json: bool
) -> None:
    """Subscribe SERVICE for MSISDN."""
    s, e = _date(start, "start"), _date(end, "end")
    today = _today()
    _emit(
        _run(
            lambda c: prov.enable_service(c, _actor(), msisdn, service, today=today, start=s, end=e)
        ),
        as_json,
        _sub_text,
    )


@service_group.command("disable")
@click.argument("msisdn")
@click.argument("service")
@json_option
def service_disable(msisdn: str, service: str, as_json: bool) -> None:
    """End SERVICE for MSISDN today."""
    today = _today()
    _emit(
        _run(lambda c: prov.disable_service(c, _actor(), msisdn, service, today=today)),
        as_json,
        _sub_text,
    )


@click.group("blacklist")
def blacklist_group() -> None:
    """Per-subscriber blacklists (exact numbers or prefixes)."""


@blacklist_group.command("add")
@click.argument("owner")
@click.argument("number")
@click.option("--prefix", is_flag=True, help="NUMBER is a prefix.")
def blacklist_add(owner: str, number: str, prefix: bool) -> None:
    """Block calls from NUMBER for OWNER."""
    e = _run(lambda c: prov.blacklist_add(c, _actor(), owner, number, prefix=prefix))
    click.echo(f"{e.owner}: blocked {e.kind} {e.number}")


@blacklist_group.command("del")
@click.argument("owner")
@click.argument("number")
@click.option("--prefix", is_flag=True, help="NUMBER is a prefix.")
def blacklist_del(owner: str, number: str, prefix: bool) -> None:
    """Remove NUMBER from OWNER's blacklist."""
    _run(lambda c: prov.blacklist_del(c, _actor(), owner, number, prefix=prefix))
    click.echo("removed")


@blacklist_group.command("list")
@click.argument("owner")
@json_option
def blacklist_list(owner: str, as_json: bool) -> None:
    """OWNER's blacklist."""
    _emit(
        _run(lambda c: prov.blacklist_list(c, owner)),
        as_json,
        lambda es: _table([{"number": e.number, "kind": e.kind} for e in es], ["number", "kind"]),
    )


@click.group("pin")
def pin_group() -> None:
    """Subscriber PINs (6-10 digits; locked after 3 wrong attempts)."""


@pin_group.command("set")
@click.argument("msisdn")
@click.argument("pin", required=False)
def pin_set(msisdn: str, pin: str | None) -> None:
    """Set the PIN (prompted without echo when not given)."""
    if pin is None:
        pin = click.prompt("PIN", hide_input=True, confirmation_prompt=True, err=True)
    value = pin
    _run(lambda c: prov.set_pin(c, _actor(), msisdn, value))
    click.echo("pin set")


@pin_group.command("reset")
@click.argument("msisdn")
def pin_reset(msisdn: str) -> None:
    """Remove the PIN and its lock."""
    _run(lambda c: prov.reset_pin(c, _actor(), msisdn))
    click.echo("pin reset")


@pin_group.command("unlock")
@click.argument("msisdn")
def pin_unlock(msisdn: str) -> None:
    """Clear the lock and failed attempts, keep the PIN."""
    _run(lambda c: prov.unlock_pin(c, _actor(), msisdn))
    click.echo("pin unlocked")


# --------------------------------------------------------------------------------------------
# missed calls, callbacks, ads, rates, sms, cdr
# --------------------------------------------------------------------------------------------


def _records_text(cols: list[str]) -> Callable[[list[asyncpg.Record]], str]:
    return lambda rows: _table([dict(r) for r in rows], cols)


@click.group("missed-calls")
def missed_calls_group() -> None:
    """Missed calls recorded by the call flow."""


@missed_calls_group.command("list")
@click.option("--callee", default=None)
@click.option("--pending", is_flag=True, help="Only not yet notified.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
def missed_calls_list(callee: str | None, pending: bool, limit: int, as_json: bool) -> None:
    """Newest first."""
    _emit(
        _run(lambda c: prov.list_missed_calls(c, callee=callee, pending=pending, limit=limit)),
        as_json,
        _records_text(["id", "occurred_at", "caller", "callee", "reason", "notified_at"]),
    )


@click.group("callbacks")
def callbacks_group() -> None:
    """Callback requests (notify the caller when the callee is reachable)."""


@callbacks_group.command("list")
@click.option("--callee", default=None)
@click.option("--pending", is_flag=True, help="Only not yet notified.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
def callbacks_list(callee: str | None, pending: bool, limit: int, as_json: bool) -> None:
    """Newest first."""
    _emit(
        _run(lambda c: prov.list_callbacks(c, callee=callee, pending=pending, limit=limit)),
        as_json,
        _records_text(["id", "requested_at", "caller", "callee", "notified_at"]),
    )


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


def _datetime(value: str | None, name: str) -> dt.datetime | None:
    """An ISO date/time; without an offset it is the network's local time ([notify].timezone),
    never the machine's."""
    if not value:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"{name}: {value!r} is not an ISO date/time") from None
    return d if d.tzinfo else d.replace(tzinfo=notify_tz(get_config(click.get_current_context())))


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
    vf, vu = _datetime(valid_from, "from"), _datetime(valid_until, "until")
    now = utcnow()
    ad = _run(
        lambda c: prov.add_ad(
            c,
            _actor(),
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
    _emit(ad, as_json, lambda a: f"ad rule {a.id} added")


@ads_group.command("list")
@json_option
def ads_list(as_json: bool) -> None:
    """All ad rules, highest priority first."""
    _emit(
        _run(prov.list_ads),
        as_json,
        lambda ads: _table(
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
    _run(lambda c: prov.delete_ad(c, _actor(), ad_id))
    click.echo("deleted")


@click.group("rates")
def rates_group() -> None:
    """Tariffs by call category and prefix."""


_RATE_TEXT_COLS = [
    "id",
    "call_category",
    "prefix",
    "per_minute",
    "per_sms",
    "per_use",
    "monthly_fee",
    "valid_from",
]


@rates_group.command("add")
@click.argument("call_category")
@click.argument("prefix", default="")
@click.option("--per-minute", default="0")
@click.option("--per-sms", default="0")
@click.option("--per-use", default="0")
@click.option("--monthly-fee", default="0")
@click.option("--valid-from", default=None, help="YYYY-MM-DD (default today)")
@json_option
def rates_add(
    call_category: str,
    prefix: str,
    per_minute: str,
    per_sms: str,
    per_use: str,
    monthly_fee: str,
    valid_from: str | None,
    as_json: bool,
) -> None:
    """Add or replace a tariff line (CALL_CATEGORY: local|national|hmt|international)."""
    today = _today()
    rate = _run(
        lambda c: prov.add_rate(
            c,
            _actor(),
            call_category,
            prefix,
            today=today,
            per_minute=per_minute,
            per_sms=per_sms,
            per_use=per_use,
            monthly_fee=monthly_fee,
            valid_from=valid_from,
        )
    )
    _emit(rate, as_json, lambda r: f"rate {r.id} saved")


@rates_group.command("list")
@click.option("--category", default=None)
@json_option
def rates_list(category: str | None, as_json: bool) -> None:
    """Tariff lines."""
    _emit(
        _run(lambda c: prov.list_rates(c, call_category=category)),
        as_json,
        lambda rs: _table([to_json(r) for r in rs], _RATE_TEXT_COLS),
    )


@rates_group.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig", lazy=False))
def rates_import(file: IO[str]) -> None:
    """CSV: call_category,prefix,per_minute,per_sms,per_use,monthly_fee[,valid_from]."""
    reader = csv.DictReader(file)
    need = {"call_category", "prefix"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise BadInputError("line 1: header needs call_category,prefix and price columns")
    rows = [(reader.line_num, r) for r in reader]
    today = _today()
    n = _run(lambda c: prov.import_rates(c, _actor("oss"), rows, today=today))
    click.echo(f"{n} rates loaded")


@click.group("sms")
def sms_group() -> None:
    """The notification SMS outbox."""


@sms_group.command("list")
@click.option("--status", default=None, help="|".join(SMS_STATUSES))
@click.option("--destination", default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
def sms_list(status: str | None, destination: str | None, limit: int, as_json: bool) -> None:
    """Newest first."""
    _emit(
        _run(lambda c: prov.list_sms(c, status=status, destination=destination, limit=limit)),
        as_json,
        _records_text(
            [
                "id",
                "created_at",
                "destination",
                "status",
                "attempts",
                "next_attempt_at",
                "last_error",
            ]
        ),
    )


@sms_group.command("retry")
@click.argument("sms_id", type=int)
def sms_retry(sms_id: int) -> None:
    """Requeue a failed or expired SMS (due now)."""
    now = utcnow()
    _run(lambda c: prov.retry_sms(c, _actor(), sms_id, now=now))
    click.echo("requeued")


@click.group("cdr")
def cdr_group() -> None:
    """Charging data records."""


@cdr_group.command("export")
@click.option(
    "--since", default=None, help="ISO date/time, inclusive (no offset: [notify] timezone)."
)
@click.option("--until", default=None, help="ISO date/time, exclusive.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="json: one object per line.",
)
@click.option("-o", "--output", type=click.File("w", encoding="utf-8", lazy=True), default="-")
def cdr_export(since: str | None, until: str | None, fmt: str, output: IO[str]) -> None:
    """Stream CDRs in start order to a CSV or JSON-lines file (default stdout)."""
    s, u = _datetime(since, "since"), _datetime(until, "until")

    async def go(conn: asyncpg.Connection) -> int:
        n = 0
        w = csv.writer(output) if fmt == "csv" else None
        if w:
            w.writerow(prov.CDR_COLUMNS)
        async with conn.transaction():
            async for r in prov.iter_cdrs(conn, since=s, until=u):
                if w:
                    w.writerow(
                        [
                            "" if v is None else (v.isoformat() if hasattr(v, "isoformat") else v)
                            for v in r.values()
                        ]
                    )
                else:
                    output.write(json.dumps(to_json(r), ensure_ascii=False) + "\n")
                n += 1
        return n

    n = _run(go)
    click.echo(f"{n} CDRs exported", err=True)


GROUPS = (
    db_group,
    subscriber_group,
    service_group,
    blacklist_group,
    pin_group,
    missed_calls_group,
    callbacks_group,
    ads_group,
    rates_group,
    sms_group,
    cdr_group,
)


def register(main: click.Group) -> None:
    """Attach the provisioning and database command groups to the ``mcn-scp`` group."""
    for g in GROUPS:
        if g.name not in main.commands:
            main.add_command(g)
