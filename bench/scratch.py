"""What the benchmarks share: a throw-away database, a free port, waiting for a web server.

A benchmark runs against a database of its own, created on ``$MCN_DATABASE_URL``'s server when
that is set, else on a temporary pgserver instance (the PyPI package the tests use); both are
removed afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# the tests' helpers (free_port, wait_for_http) serve the benchmarks too
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import free_port, wait_for_http  # noqa: E402

__all__ = ["free_port", "scratch_database", "wait_for_http", "with_db"]


def with_db(dsn: str, name: str) -> str:
    """``dsn`` pointed at database ``name``."""
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


async def admin(dsn: str, sql: str) -> None:
    """Run one statement on its own connection (CREATE / DROP DATABASE)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database(prefix: str) -> Iterator[tuple[str, Path]]:
    """(DSN of a new empty database, a temporary directory); both gone on exit."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    server = None
    admin_dsn = os.environ.get("MCN_DATABASE_URL")
    if not admin_dsn:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver  # deferred: a test dependency, needed only without a server given

        server = pgserver.get_server(tmp / "pg", cleanup_mode="delete")
        admin_dsn = server.get_uri()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield with_db(admin_dsn, name), tmp
    finally:
        asyncio.run(admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
