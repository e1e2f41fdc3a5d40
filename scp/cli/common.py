"""What every ``mcn-scp`` command shares (ARCHITECTURE §3): exit codes, the configuration, the
database connection, the output.

Exit codes: 0 done; 2 bad input (:class:`BadInputError`: the message names the field, or the
file's line); 1 failure (:class:`Failure`). ``--json`` wherever the output is data. The database
is ``$MCN_DATABASE_URL`` or the embedded server under ``$MCN_HOME``; a brand-new one is migrated
before a command touches data (:func:`run_db`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import getpass
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO, Any, TypeVar

import asyncpg
import click

from scp.adapters.clock import utcnow
from scp.cli.logs import configure_logging
from scp.config import Config, ConfigError, load_config
from scp.flows import importer
from scp.service.notifications import local_day, notify_tz
from scp.service.provisioning import (
    Actor,
    InvalidInput,
    ProvisioningError,
    to_json,
)
from scp.state import db as dbmod
from scp.state.migrate import (
    SchemaVersionError,
    check_schema_version,
    current_version,
    migrate,
    open_migrated_pool,
)
from scp.state.scratch import ScratchDatabase, ScratchDatabaseError

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
    cfg: Config = obj["config"]
    return cfg


def network_today() -> dt.date:
    """Today in the network's time zone (``[notify].timezone``), as the node counts days: the
    CLI reads the clock for its default dates, the layers below are told the day."""
    return local_day(utcnow(), get_config(click.get_current_context()))


def actor(channel: str = "cli") -> Actor:
    try:
        name = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        name = f"uid:{os.getuid()}"
    return Actor(channel, name)


def run_db(fn: Callable[[asyncpg.Connection], Awaitable[T]], *, migrate_first: bool = True) -> T:
    """Open one connection, check the schema, run ``fn``, map errors to exit codes.

    A brand-new database (the embedded default on first use) is migrated on the spot; an
    existing one is only checked: upgrading a schema shared with running nodes is for
    `mcn-scp db migrate` (or `run`), never a side effect of `subscriber list`.
    """

    ctx = click.get_current_context(silent=True)
    options = get_config(ctx).database if ctx is not None else None

    async def main() -> T:
        conn = await dbmod.connect(options=options)
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


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    if as_json:
        click.echo(json.dumps(to_json(data), ensure_ascii=False, indent=None))
    else:
        out = text(data)
        if out:
            click.echo(out)


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").replace(";", ",").split(",") if v.strip()]


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def parse_datetime(value: str | None, name: str) -> dt.datetime | None:
    """An ISO date/time; without an offset it is the network's local time ([notify].timezone),
    never the machine's."""
    if not value:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadInputError(f"{name}: {value!r} is not an ISO date/time") from None
    return d if d.tzinfo else d.replace(tzinfo=notify_tz(get_config(click.get_current_context())))


def tool_verbosity(ctx: click.Context, verbose: int) -> None:
    """``-v``: the in-process node's log lines at info, ``-vv`` at debug.

    Replay and simulate print a ladder or a verdict on stdout; the node they drive logs only
    errors to stderr unless asked (``-v`` here, or ``mcn-scp --log-level``, which wins).
    """
    obj = ctx.obj or {}
    if verbose and obj.get("log_level") is None:
        configure_logging("debug" if verbose > 1 else "info", "auto")


VERBOSE_OPTION = click.option(
    "-v",
    "--verbose",
    count=True,
    help="Show the SCP node's log lines (-v info, -vv debug) on stderr.",
)


@contextlib.asynccontextmanager
async def tool_database(live: bool) -> AsyncIterator[asyncpg.Pool]:
    """The database of a tool's in-process SCP: a scratch copy (default, dropped afterwards:
    a replay never queues a real SMS that a running node would submit) or, ``live``, the
    configured one, migrated."""
    if live:
        pool = await open_migrated_pool()
        try:
            yield pool
        finally:
            await pool.close()
        return
    try:
        scratch = ScratchDatabase(warn=lambda m: click.echo(f"warning: {m}", err=True))
        async with scratch as pool:
            yield pool
    except ScratchDatabaseError as e:
        if e.created:
            raise Failure(str(e)) from None
        raise Failure(
            f"cannot create a scratch database for the replay ({e}); "
            "--live-db uses the configured database instead"
        ) from None
