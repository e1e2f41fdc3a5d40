"""``mcn-scp rates | cdr``: tariffs by call category and prefix, and the CDR export."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

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
    parse_datetime,
    run_db,
    table,
)
from scp.config import Config
from scp.flows import billing, cdrfiles
from scp.flows import provisioning as prov
from scp.service.cdrfile import parse_period
from scp.service.provisioning import (
    to_json,
)


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
@click.option(
    "--monthly-fee",
    default="0",
    help="Stored, not billed: monthly fees are product prices (mcn-scp products set).",
)
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
    """Add or replace a tariff line (CALL_CATEGORY: on-net|local|national|hmt|international)."""
    today = network_today()
    if monthly_fee.strip() not in ("", "0", "0.0", "0.00"):
        click.echo(
            "note: a tariff line's monthly fee is not billed; price the products instead"
            " (mcn-scp products set SERVICE --monthly-fee ...)",
            err=True,
        )
    rate = run_db(
        lambda c: prov.add_rate(
            c,
            actor(),
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
    emit(rate, as_json, lambda r: f"rate {r.id} saved")


@rates_group.command("del")
@click.argument("rate_id", type=int)
def rates_del(rate_id: int) -> None:
    """Remove a tariff line (by its id, `rates list`); exit 1 if there is none."""
    run_db(lambda c: prov.delete_rate(c, actor(), rate_id))
    click.echo("deleted")


@rates_group.command("list")
@click.option("--category", default=None)
@json_option
def rates_list(category: str | None, as_json: bool) -> None:
    """Tariff lines."""
    emit(
        run_db(lambda c: prov.list_rates(c, call_category=category)),
        as_json,
        lambda rs: table([to_json(r) for r in rs], _RATE_TEXT_COLS),
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
    today = network_today()
    n = run_db(lambda c: prov.import_rates(c, actor("oss"), rows, today=today))
    click.echo(f"{n} rates loaded")


@rates_group.command("pair-set")
@click.argument("origin_prefix")
@click.argument("destination_prefix")
@click.option("--category", default=None, help="on-net|local|...; default: by the destination")
@click.option("--per-minute", default="0")
@click.option("--per-use", default="0")
@click.option("--valid-from", default=None, help="YYYY-MM-DD (default today)")
@json_option
def rates_pair_set(
    origin_prefix: str,
    destination_prefix: str,
    category: str | None,
    per_minute: str,
    per_use: str,
    valid_from: str | None,
    as_json: bool,
) -> None:
    """Rate calls by the pair of numbers: from the paying subscriber's ORIGIN_PREFIX to
    DESTINATION_PREFIX ("" any). The most specific pair wins over the category table."""
    today = network_today()
    saved = run_db(
        lambda c: billing.set_pair_tariff(
            c,
            actor(),
            origin_prefix,
            destination_prefix,
            today=today,
            call_category=category,
            per_minute=per_minute,
            per_use=per_use,
            valid_from=valid_from,
        )
    )
    emit(
        saved,
        as_json,
        lambda t: f"pair {t.origin_prefix or '*'} > {t.destination_prefix or '*'} saved",
    )


@rates_group.command("pairs")
@json_option
def rates_pairs(as_json: bool) -> None:
    """Number-pair tariffs."""
    cols = ["origin_prefix", "destination_prefix", "call_category", "per_minute", "per_use"]
    emit(
        run_db(billing.list_pair_tariffs),
        as_json,
        lambda ts: table([to_json(t) for t in ts], [*cols, "valid_from"]),
    )


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
@click.option(
    "--files",
    is_flag=True,
    help="Write the CDRs not yet exported into rotating CDR files, and each billed month's"
    " fee records into a fee file (docs/cdr-format.md).",
)
@click.option("--dir", "directory", default=None, help="Directory of the files ([cdr] directory).")
@click.option(
    "--period",
    default=None,
    help="YYYYMMDD[HH]: write that period's CDR files again; YYYYMM: that month's fee file.",
)
@click.pass_context
def cdr_export(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    fmt: str,
    output: IO[str],
    files: bool,
    directory: str | None,
    period: str | None,
) -> None:
    """Stream CDRs in start order to a CSV or JSON-lines file (default stdout); with --files,
    write each CDR exactly once (across all nodes) into the period's CDR files, and the fee
    records of each month billed since into its fee file."""
    if files or period:
        _cdr_files(get_config(ctx), directory, period)
        return
    s, u = parse_datetime(since, "since"), parse_datetime(until, "until")

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

    n = run_db(go)
    click.echo(f"{n} CDRs exported", err=True)


def _cdr_files(cfg: Config, directory: str | None, period: str | None) -> None:
    where = Path(directory or cfg.cdr.directory or "")
    if not (directory or cfg.cdr.directory):
        raise BadInputError("dir: give --dir or set [cdr] directory")
    if period is not None:
        try:
            p = parse_period(period)
        except ValueError as e:
            raise BadInputError(f"period: {e}") from None
        done = run_db(lambda c: cdrfiles.reexport_period(c, period=p, directory=where))
    else:
        now = utcnow()
        done = run_db(
            lambda c: cdrfiles.export_files(
                c,
                node=cfg.node.name,
                directory=where,
                rotation=cfg.cdr.rotation,
                timezone=cfg.notify.timezone,
                now=now,
            )
        )
    for f in done:
        click.echo(f"{f.path}  {f.records} records  sha256 {f.sha256}")
    click.echo(f"{len(done)} files written", err=True)
