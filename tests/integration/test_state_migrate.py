"""Migrations (scp.state.migrate): order, idempotence, version checks, concurrent migrators, and
the schema of a fresh database equal to the one built step by step (catalog dumps compared)."""

from __future__ import annotations

import asyncio
import re

import asyncpg
import pytest

from scp.state.migrate import (
    SchemaOutdated,
    SchemaTooNew,
    check_schema_version,
    current_version,
    latest_version,
    load_migrations,
    migrate,
)
from tests.conftest import create_database, drop_database

pytestmark = pytest.mark.integration

CATALOG = {
    "columns": """
        SELECT table_name, ordinal_position, column_name, data_type, is_nullable,
               coalesce(column_default, ''), coalesce(collation_name, ''), is_identity
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
        ORDER BY 1, 2""",
    "types": """
        SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
        ORDER BY 1""",
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
}


async def catalog_dump(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {k: [tuple(r) for r in await conn.fetch(q)] for k, q in CATALOG.items()}
    finally:
        await conn.close()


@pytest.fixture
def empty_dsn(pg_admin_dsn: str):  # type: ignore[no-untyped-def]
    dsn = create_database(pg_admin_dsn, "mig", migrated=False)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest.fixture
def empty_dsn2(pg_admin_dsn: str):  # type: ignore[no-untyped-def]
    dsn = create_database(pg_admin_dsn, "mig", migrated=False)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


VERSIONS = [m.version for m in load_migrations()]


def test_migration_files_are_numbered_in_order() -> None:
    assert VERSIONS[0] == 1 and VERSIONS == sorted(set(VERSIONS))
    assert latest_version() == VERSIONS[-1]


async def test_fresh_database_gets_all_migrations_once(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(SchemaOutdated, match="db migrate"):
            await check_schema_version(conn)
        assert await migrate(conn) == VERSIONS
        assert await migrate(conn) == []
        assert await check_schema_version(conn) == latest_version()
        names = [
            r["name"] for r in await conn.fetch("SELECT name FROM schema_version ORDER BY version")
        ]
        assert names and names[0] == "initial"
    finally:
        await conn.close()


async def test_fresh_equals_stepwise_catalog(empty_dsn: str, empty_dsn2: str) -> None:
    # All at once on one database; one migration per session (as successive releases would)
    # on the other. The catalogs must be identical.
    c = await asyncpg.connect(empty_dsn)
    try:
        await migrate(c)
    finally:
        await c.close()
    for v in VERSIONS:
        c = await asyncpg.connect(empty_dsn2)
        try:
            assert await migrate(c, target=v) == [v]
            assert await current_version(c) == v
        finally:
            await c.close()
    a, b = await catalog_dump(empty_dsn), await catalog_dump(empty_dsn2)
    assert a == b
    # sanity: the dump sees the schema
    assert any(r[0] == "sms_outbox" for r in a["columns"])
    assert any(r[1] == "sms_outbox_claim_idx" for r in a["indexes"])


async def test_database_newer_than_code_is_refused(empty_dsn: str) -> None:
    conn = await asyncpg.connect(empty_dsn)
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO schema_version (version, name) VALUES ($1, 'future')", latest_version() + 1
        )
        with pytest.raises(SchemaTooNew, match="newer than this mcn-scp"):
            await check_schema_version(conn)
        with pytest.raises(SchemaTooNew):
            await migrate(conn)
    finally:
        await conn.close()


async def test_concurrent_migrators_apply_once(empty_dsn: str) -> None:
    conns = [await asyncpg.connect(empty_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = sorted(v for r in results for v in r)
        assert applied == VERSIONS
    finally:
        for c in conns:
            await c.close()


async def test_business_time_never_defaults_to_the_database_clock(pool: asyncpg.Pool) -> None:
    """Only audit stamps take the server's clock; every business time (start and validity
    dates, due times, request times) must be written by the caller (migration 0060), and the
    functions the call path runs take theirs as parameters."""
    defaults = await pool.fetch(
        "SELECT table_name || '.' || column_name AS col FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_default ~* 'now\\(\\)|current_|localtime'"
    )
    audit = {"created_at", "updated_at", "applied_at", "audit_log.at"}
    assert (
        sorted(
            r["col"]
            for r in defaults
            if r["col"].split(".")[1] not in audit and r["col"] not in audit
        )
        == []
    )
    for r in await pool.fetch(
        "SELECT proname, pg_get_functiondef(oid) AS def FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace"
    ):
        body = r["def"].replace("updated_at = now()", "")
        assert not re.search(r"now\(\)|current_date|current_timestamp", body, re.I), r["proname"]
