"""Shared fixtures: a real PostgreSQL for integration tests, never a mock.

The session starts one private server with pgserver in a temporary directory (deleted at the
end), or uses ``MCN_TEST_DATABASE_URL`` (an admin DSN allowed to CREATE/DROP DATABASE) if set.
Each test module that asks for ``db_dsn`` / ``pool`` gets a fresh database with all migrations
applied; ``clean_pool`` truncates every table before the test for full isolation.
``any_day`` is the date guard (tests/dates.py): the test runs on the real day and on fake ones.
Between modules the session freezes what it holds, as a node does once up (see
:func:`_frozen_session`).

pytest-asyncio runs in auto mode with one session event loop (see pyproject), so pools
created by module-scoped fixtures are usable from every test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from scp.app import freeze_loaded
from tests.dates import DAYS, Day, clock_offset


def _in_thread(coro_fn: Any) -> Any:
    """Run an async helper on its own loop in a thread: safe from sync fixtures while the
    pytest-asyncio session loop exists (asyncio.run in the main thread would disturb it)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["v"] = asyncio.run(coro_fn())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["e"] = e

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box.get("v")


def with_database(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` (URL form, host/socket and options kept)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(params=DAYS, ids=[d.id for d in DAYS])
def any_day(request: pytest.FixtureRequest) -> Iterator[dt.datetime | None]:
    """The test runs once per day of the date guard (tests/dates.py): the real one, then with
    the process's wall clock and time zone moved to each fake day; yields that start (None:
    real). Function-scoped fixtures set up after it see the same day."""
    day: Day = request.param
    # the test SMSC, where the test talks to one, lives on the same day (tests/dates.py)
    smsc = request.getfixturevalue("smppd") if "smppd" in request.fixturenames else None
    with day.travel():
        if smsc is not None:
            smsc.set_clock_offset(clock_offset())
        try:
            yield day.start
        finally:
            if smsc is not None:
                smsc.set_clock_offset(0.0)


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """Admin DSN of the test PostgreSQL (started for the session unless given by env)."""
    url = os.environ.get("MCN_TEST_DATABASE_URL")
    if url:
        yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    # Our own temp dir, not tmp_path_factory's: pytest prunes old basetemps of the same user,
    # and a concurrent pytest run could delete a live data directory under us.
    top = Path(tempfile.mkdtemp(prefix="mcn-test-pg-"))
    server = pgserver.get_server(top / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(top, ignore_errors=True)


def create_database(admin_dsn: str, prefix: str = "t", *, migrated: bool = True) -> str:
    """Create a fresh database (migrated unless told otherwise); return its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        if migrated:
            from scp.state.migrate import migrate

            c2 = await asyncpg.connect(with_database(admin_dsn, name))
            try:
                await migrate(c2)
            finally:
                await c2.close()

    _in_thread(go)
    return with_database(admin_dsn, name)


def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database named in ``dsn`` (terminating leftover sessions)."""
    name = urlsplit(dsn).path.lstrip("/")

    async def go() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _in_thread(go)


@pytest.fixture(scope="module")
def db_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A fresh, fully migrated database for this test module."""
    dsn = create_database(pg_admin_dsn)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool (scp.state.db.open_pool: our codecs) on the module's database."""
    from scp.state.db import open_pool

    p = await open_pool(db_dsn, min_size=1, max_size=5)
    yield p
    await p.close()


async def truncate_all(db: asyncpg.Pool | asyncpg.Connection) -> None:
    """Empty every table of the schema except the version table."""
    q = (
        "SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables"
        " WHERE schemaname = 'public' AND tablename <> 'schema_version'"
    )
    tables = await db.fetchval(q)
    if tables:
        await db.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest_asyncio.fixture(loop_scope="session")
async def clean_pool(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The module's pool on emptied tables."""
    await truncate_all(pool)
    yield pool


@pytest.fixture(scope="module", autouse=True)
def _frozen_session() -> None:
    """Before a module's first test, move what the session holds out of the garbage
    collector's reach (:func:`scp.app.freeze_loaded`, what a node does once up).

    The in-process nodes of the tests answer within ``[database] budget`` (0.5 s in the outage
    tests), and a full collection walks every object the process holds: the collected modules
    and codecs, and every earlier module's fixtures and reports, up to 0.56 s of stalled event
    loop by the end of the suite (measured), which a node up on its own never carries: a call
    missed its budget and went without the database. Frozen, a collection walks only what the
    current module made (5 ms at most in the outage and failover tests, measured)."""
    freeze_loaded()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many TCAP messages the strict ASN.1 oracle decoded in this run, per protocol."""
    from tests.strict_asn1 import TOTALS

    if TOTALS:
        per = ", ".join(f"{p} {n}" for p, n in sorted(TOTALS.items()))
        terminalreporter.write_line(
            f"strict ASN.1 oracle: {sum(TOTALS.values())} TCAP messages decoded and re-encoded "
            f"to the same octets ({per})"
        )
