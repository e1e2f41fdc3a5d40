"""``mcn-scp db``: apply the migrations, print the DSN, stop the embedded PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import click

from scp.cli.common import (
    Failure,
    emit,
    json_option,
    run_db,
)
from scp.state import db as dbmod
from scp.state.migrate import (
    current_version,
    migrate,
)


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

    res = run_db(go, migrate_first=False)
    emit(
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
