"""``mcn-scp subscriber | service | blacklist | pin``: provisioning and the OSS bulk load.

Every command is a thin shell over ``scp.flows.provisioning`` and ``scp.flows.importer`` (the
functions the IVR, SMS, web and operator channels call too), so features stay identical across
channels; every write lands in the audit log in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from typing import IO, Any

import click

from scp.cli.common import (
    BadInputError,
    actor,
    csv_list,
    emit,
    json_option,
    network_today,
    run_db,
    table,
)
from scp.flows import importer
from scp.flows import provisioning as prov
from scp.service.provisioning import (
    SERVICES,
    Subscriber,
)


def _sub_text(s: Subscriber) -> str:
    today = network_today()
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
    today = network_today()
    sub = run_db(
        lambda c: prov.add_subscriber(
            c,
            actor(),
            msisdn,
            today=today,
            services=csv_list(services),
            pin=pin,
            group=group,
            language=language,
            imsi=imsi,
            notify_mode=notify_mode,
            forward_to=forward_to,
        )
    )
    emit(sub, as_json, _sub_text)


@subscriber_group.command("show")
@click.argument("msisdn")
@json_option
def subscriber_show(msisdn: str, as_json: bool) -> None:
    """Show one subscriber."""
    emit(run_db(lambda c: prov.get_subscriber(c, msisdn)), as_json, _sub_text)


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
    emit(run_db(lambda c: prov.update_subscriber(c, actor(), msisdn, **kw)), as_json, _sub_text)


@subscriber_group.command("del")
@click.argument("msisdn")
def subscriber_del(msisdn: str) -> None:
    """Delete a subscriber and all their data."""
    today = network_today()  # its services end today: the month's billing still counts them
    run_db(lambda c: prov.delete_subscriber(c, actor(), msisdn, today=today))
    click.echo(f"deleted {msisdn}")


@subscriber_group.command("list")
@click.option("--group", default=None)
@click.option("--after", default=None, help="Page: MSISDNs after this one.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100000))
@json_option
def subscriber_list(group: str | None, after: str | None, limit: int, as_json: bool) -> None:
    """List subscribers in MSISDN order."""
    subs = run_db(lambda c: prov.list_subscribers(c, group=group, after=after, limit=limit))
    today = network_today()
    emit(
        subs,
        as_json,
        lambda ss: table(
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

    today = network_today()
    started = time.monotonic()
    try:
        result = run_db(
            lambda c: importer.import_subscribers(
                c, actor("oss"), fh, today=today, skip_bad=skip_bad, source=file, progress=progress
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
    today = network_today()
    emit(
        run_db(
            lambda c: prov.enable_service(c, actor(), msisdn, service, today=today, start=s, end=e)
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
    today = network_today()
    emit(
        run_db(lambda c: prov.disable_service(c, actor(), msisdn, service, today=today)),
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
    e = run_db(lambda c: prov.blacklist_add(c, actor(), owner, number, prefix=prefix))
    click.echo(f"{e.owner}: blocked {e.kind} {e.number}")


@blacklist_group.command("del")
@click.argument("owner")
@click.argument("number")
@click.option("--prefix", is_flag=True, help="NUMBER is a prefix.")
def blacklist_del(owner: str, number: str, prefix: bool) -> None:
    """Remove NUMBER from OWNER's blacklist."""
    run_db(lambda c: prov.blacklist_del(c, actor(), owner, number, prefix=prefix))
    click.echo("removed")


@blacklist_group.command("list")
@click.argument("owner")
@json_option
def blacklist_list(owner: str, as_json: bool) -> None:
    """OWNER's blacklist."""
    emit(
        run_db(lambda c: prov.blacklist_list(c, owner)),
        as_json,
        lambda es: table([{"number": e.number, "kind": e.kind} for e in es], ["number", "kind"]),
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
    run_db(lambda c: prov.set_pin(c, actor(), msisdn, value))
    click.echo("pin set")


@pin_group.command("reset")
@click.argument("msisdn")
def pin_reset(msisdn: str) -> None:
    """Remove the PIN and its lock."""
    run_db(lambda c: prov.reset_pin(c, actor(), msisdn))
    click.echo("pin reset")


@pin_group.command("unlock")
@click.argument("msisdn")
def pin_unlock(msisdn: str) -> None:
    """Clear the lock and failed attempts, keep the PIN."""
    run_db(lambda c: prov.unlock_pin(c, actor(), msisdn))
    click.echo("pin unlocked")
