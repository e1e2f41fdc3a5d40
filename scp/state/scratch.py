"""A scratch copy of the database, for tools that run an in-process SCP on real data.

``mcn-scp replay`` and ``simulate`` feed an SCP node that writes what a live one writes
(missed calls, CDRs, the SMS outbox). On the configured database a running node's sender
would submit those SMS; so, unless the operator asks for the live database, they run on a new
database on the same server (``$MCN_DATABASE_URL`` or the embedded one), migrated, holding a
copy of the reference data a call needs (:data:`REFERENCE_TABLES`), and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from scp.state.db import DatabaseError, open_pool, resolve_dsn
from scp.state.migrate import (
    SchemaOutdated,
    SchemaVersionError,
    check_schema_version,
    current_version,
    migrate,
)

__all__ = ["REFERENCE_TABLES", "ScratchDatabase", "ScratchDatabaseError"]

# Reference data a replayed call needs; everything the SCP writes (missed calls, SMS outbox,
# CDRs) goes to the scratch database and disappears with it.
REFERENCE_TABLES = ("subscriber", "subscription", "blacklist", "ad_rule", "rate")


class ScratchDatabaseError(DatabaseError):
    """The scratch database could not be made: not even created (``created`` False: the
    server refused, the message is its reason), or refused by the schema check."""

    def __init__(self, message: str, *, created: bool) -> None:
        super().__init__(message)
        self.created = created


class ScratchDatabase:
    """``async with ScratchDatabase() as pool``: a migrated scratch copy, dropped on exit.

    ``warn`` is told about a reference table that could not be copied (the copy goes on).
    """

    def __init__(self, *, prefix: str = "mcn_replay", warn: Callable[[str], None] | None = None):
        self.prefix = prefix
        self.warn = warn
        self.pool: asyncpg.Pool | None = None
        self._admin_dsn: str | None = None
        self._name: str | None = None

    async def __aenter__(self) -> asyncpg.Pool:
        dsn = await asyncio.to_thread(resolve_dsn)
        name = f"{self.prefix}_{os.getpid()}_{secrets.token_hex(3)}"
        parts = urlsplit(dsn)
        scratch = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
        try:
            admin = await asyncpg.connect(dsn)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
        except (OSError, asyncpg.PostgresError) as e:
            raise ScratchDatabaseError(str(e), created=False) from None
        self._admin_dsn, self._name = dsn, name
        try:
            self.pool = await open_pool(scratch, max_size=5)
            await migrate(self.pool)
            await self._copy_reference_data(dsn, self.pool)
        except BaseException as e:
            await self.__aexit__(None, None, None)  # the scratch database goes with the error
            if isinstance(e, SchemaVersionError):
                raise ScratchDatabaseError(str(e), created=True) from None
            raise
        return self.pool

    async def _copy_reference_data(self, dsn: str, pool: asyncpg.Pool) -> None:
        live = await asyncpg.connect(dsn)
        try:
            # A brand-new database (a fresh $MCN_HOME's embedded one) is set up on the spot,
            # as every command does, so there is a schema to copy from (and nothing in it).
            version = await current_version(live)
            if version == 0:
                await migrate(live)
            else:
                try:
                    await check_schema_version(live)
                except SchemaOutdated:
                    pass  # older columns still copy; `db migrate` is the operator's call
            for table in REFERENCE_TABLES:
                try:
                    rows = await live.fetch(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
                    if rows:
                        await pool.copy_records_to_table(
                            table, records=[tuple(r) for r in rows], columns=list(rows[0].keys())
                        )
                except asyncpg.PostgresError as e:
                    if self.warn is not None:
                        self.warn(f"{table} not copied to the scratch database: {e}")
        finally:
            await live.close()

    async def __aexit__(self, *exc: object) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        if self._name is not None and self._admin_dsn is not None:
            admin = await asyncpg.connect(self._admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')
            finally:
                await admin.close()
            self._name = None
