"""Numbered SQL migrations (``scp/state/migrations/NNNN_name.sql``) and the schema version table.

Each file is applied once, in number order, in one transaction together with its row in
``schema_version``; concurrent migrators (two nodes starting at once) serialise on an advisory
lock. A database whose version is newer than the code is refused, never "downgraded".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from scp.config import DatabaseConfig
from scp.state.db import open_pool

log = structlog.get_logger("scp.node")

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Arbitrary constant: pg_advisory_xact_lock key that serialises migrators.
_LOCK_KEY = 0x6D636E01

VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration file."""

    version: int
    name: str
    sql: str


class SchemaVersionError(RuntimeError):
    """The database schema does not match this code."""


class SchemaTooNew(SchemaVersionError):
    """The database was migrated by a newer release than this one."""


class SchemaOutdated(SchemaVersionError):
    """The database lacks migrations this code needs (run ``mcn-scp db migrate``)."""


def load_migrations() -> list[Migration]:
    """All migrations shipped with the package, in number order (gaps allowed, so parallel
    work can reserve numbers; a number used twice is an error)."""
    found: list[Migration] = []
    for entry in resources.files("scp.state").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda mig: mig.version)
    for prev, mig in zip(found, found[1:], strict=False):
        if mig.version == prev.version:
            raise SchemaVersionError(f"two migrations numbered {mig.version:04d}")
    return found


def latest_version() -> int:
    """The schema version this code expects."""
    migs = load_migrations()
    return migs[-1].version if migs else 0


async def migrate(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection, *, target: int | None = None
) -> list[int]:
    """Apply pending migrations up to ``target`` (default: all); return the versions applied."""
    if isinstance(pool_or_conn, asyncpg.Pool):
        async with pool_or_conn.acquire() as conn:
            return await _migrate(conn, target)
    return await _migrate(pool_or_conn, target)


async def _migrate(conn: asyncpg.Connection, target: int | None) -> list[int]:
    migrations = load_migrations()
    newest = migrations[-1].version if migrations else 0
    target = newest if target is None else target
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(VERSION_TABLE)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_version")}
        if done and max(done) > newest:
            raise SchemaTooNew(_too_new_message(max(done), newest))
        for mig in migrations:
            if mig.version in done or mig.version > target:
                continue
            await conn.execute(mig.sql)
            await conn.execute(
                "INSERT INTO schema_version (version, name) VALUES ($1, $2)", mig.version, mig.name
            )
            applied_now.append(mig.version)
    return applied_now


def _too_new_message(db: int, code: int) -> str:
    return (
        f"database schema version {db} is newer than this mcn-scp (knows up to {code}); "
        "upgrade mcn-scp, or point MCN_DATABASE_URL at the right database"
    )


async def current_version(conn: asyncpg.Connection) -> int:
    """Highest applied migration, 0 for an empty database."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def check_schema_version(conn: asyncpg.Connection) -> int:
    """Return the database's version if it equals the code's; raise SchemaVersionError if not."""
    db, code = await current_version(conn), latest_version()
    if db > code:
        raise SchemaTooNew(_too_new_message(db, code))
    if db < code:
        raise SchemaOutdated(
            f"database schema version {db} is older than {code}: run `mcn-scp db migrate`"
        )
    return db


async def open_migrated_pool(
    dsn: str | None = None, *, options: DatabaseConfig | None = None
) -> asyncpg.Pool:
    """A pool on ``dsn`` (default ``$MCN_DATABASE_URL`` or the embedded server), opened as
    ``[database]`` says (``options``) and migrated to this code's schema: what a node runs on.

    Refuses a database whose schema is newer than this code (another node was upgraded first).
    """
    pool = await open_pool(dsn, options=options)
    try:
        applied = await migrate(pool)
    except BaseException:
        await pool.close()
        raise
    if applied:
        log.info("database migrated", applied=applied)
    return pool
