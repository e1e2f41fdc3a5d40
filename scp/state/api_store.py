"""Named SQL of the carrier API: its clients, remembered Idempotency-Key answers and bulk-load
jobs (migration 0150). Every function takes a connection (inside the caller's transaction when
it writes); times come from the caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = [
    "ApiClient",
    "Remembered",
    "client_by_digest",
    "fail_orphaned_jobs",
    "finish_job",
    "get_job",
    "insert_client",
    "insert_job",
    "list_clients",
    "purge_idempotency",
    "remember",
    "reserve_key",
    "revoke_client",
    "own_job",
    "disown_job",
    "start_job",
    "job_progress",
    "touch_client",
]


@dataclass(frozen=True, slots=True)
class ApiClient:
    """An API client as stored (never its token)."""

    id: int
    name: str
    token_hint: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Remembered:
    """The answer kept under an Idempotency-Key."""

    request_sha256: bytes
    status: int
    body: bytes
    content_type: str
    location: str | None


_CLIENT_COLS = "id, name, token_hint, scopes, created_at, revoked_at, last_used_at"


def _client(r: asyncpg.Record) -> ApiClient:
    d = dict(r)
    d["scopes"] = tuple(d["scopes"])
    return ApiClient(**d)


async def insert_client(
    conn: asyncpg.Connection,
    *,
    name: str,
    digest: bytes,
    hint: str,
    scopes: tuple[str, ...],
    at: dt.datetime,
) -> ApiClient | None:
    """A new client; None when a live client already has the name."""
    r = await conn.fetchrow(
        "INSERT INTO api_client (name, token_sha256, token_hint, scopes, created_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING"
        f" RETURNING {_CLIENT_COLS}",
        name,
        digest,
        hint,
        list(scopes),
        at,
    )
    return _client(r) if r is not None else None


async def list_clients(conn: asyncpg.Connection, *, revoked: bool) -> list[ApiClient]:
    rows = await conn.fetch(
        f"SELECT {_CLIENT_COLS} FROM api_client WHERE $1 OR revoked_at IS NULL ORDER BY name, id",
        revoked,
    )
    return [_client(r) for r in rows]


async def revoke_client(conn: asyncpg.Connection, name: str, at: dt.datetime) -> ApiClient | None:
    r = await conn.fetchrow(
        "UPDATE api_client SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL"
        f" RETURNING {_CLIENT_COLS}",
        name,
        at,
    )
    return _client(r) if r is not None else None


async def client_by_digest(
    db: asyncpg.Pool | asyncpg.Connection, digest: bytes
) -> ApiClient | None:
    """The live client whose token has this digest."""
    r = await db.fetchrow(
        f"SELECT {_CLIENT_COLS} FROM api_client WHERE token_sha256 = $1 AND revoked_at IS NULL",
        digest,
    )
    return _client(r) if r is not None else None


async def touch_client(
    db: asyncpg.Pool | asyncpg.Connection, client_id: int, at: dt.datetime
) -> None:
    await db.execute("UPDATE api_client SET last_used_at = $2 WHERE id = $1", client_id, at)


# -- Idempotency-Key ----------------------------------------------------------------------------


async def reserve_key(
    conn: asyncpg.Connection, client_id: int, key: str, request_sha256: bytes, at: dt.datetime
) -> Remembered | None:
    """Take ``key`` for this request (None), or the answer a committed request left under it.

    Call inside the request's transaction: a concurrent request with the same key waits here
    until this one commits (then sees its answer) or rolls back (then takes the key itself).
    """
    took = await conn.fetchval(
        "INSERT INTO api_idempotency (client_id, key, request_sha256, status, body, content_type,"
        " created_at) VALUES ($1, $2, $3, 0, '', '', $4) ON CONFLICT DO NOTHING RETURNING 1",
        client_id,
        key,
        request_sha256,
        at,
    )
    if took:
        return None
    r = await conn.fetchrow(
        "SELECT request_sha256, status, body, content_type, location FROM api_idempotency"
        " WHERE client_id = $1 AND key = $2",
        client_id,
        key,
    )
    return Remembered(bytes(r[0]), r[1], bytes(r[2]), r[3], r[4])


async def remember(
    conn: asyncpg.Connection,
    client_id: int,
    key: str,
    *,
    status: int,
    body: bytes,
    content_type: str,
    location: str | None,
) -> None:
    await conn.execute(
        "UPDATE api_idempotency SET status = $3, body = $4, content_type = $5, location = $6"
        " WHERE client_id = $1 AND key = $2",
        client_id,
        key,
        status,
        body,
        content_type,
        location,
    )


async def purge_idempotency(conn: asyncpg.Connection, before: dt.datetime) -> int:
    status = await conn.execute("DELETE FROM api_idempotency WHERE created_at < $1", before)
    return int(status.rsplit(" ", 1)[1])


# -- bulk-load jobs -----------------------------------------------------------------------------

_JOB_COLS = (
    "id, client, status, skip_bad, size_bytes, lines_read, result, error, created_at,"
    " started_at, finished_at"
)


def _job(r: asyncpg.Record) -> dict[str, Any]:
    return dict(r)


async def insert_job(
    conn: asyncpg.Connection, *, client: str, skip_bad: bool, size: int, at: dt.datetime
) -> dict[str, Any]:
    r = await conn.fetchrow(
        "INSERT INTO import_job (client, status, skip_bad, size_bytes, created_at)"
        f" VALUES ($1, 'queued', $2, $3, $4) RETURNING {_JOB_COLS}",
        client,
        skip_bad,
        size,
        at,
    )
    return _job(r)


async def get_job(db: asyncpg.Pool | asyncpg.Connection, job_id: int) -> dict[str, Any] | None:
    r = await db.fetchrow(f"SELECT {_JOB_COLS} FROM import_job WHERE id = $1", job_id)
    return _job(r) if r is not None else None


async def start_job(db: asyncpg.Pool | asyncpg.Connection, job_id: int, at: dt.datetime) -> None:
    await db.execute(
        "UPDATE import_job SET status = 'running', started_at = $2 WHERE id = $1", job_id, at
    )


async def job_progress(db: asyncpg.Pool | asyncpg.Connection, job_id: int, lines: int) -> None:
    await db.execute("UPDATE import_job SET lines_read = $2 WHERE id = $1", job_id, lines)


async def finish_job(
    db: asyncpg.Pool | asyncpg.Connection,
    job_id: int,
    *,
    status: str,
    at: dt.datetime,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    lines: int | None = None,
) -> None:
    await db.execute(
        "UPDATE import_job SET status = $2, finished_at = $3, result = $4, error = $5,"
        " lines_read = coalesce($6, lines_read) WHERE id = $1",
        job_id,
        status,
        at,
        result,  # jsonb: encoded by the pool's codec (scp.state.db)
        error,
        lines,
    )


# The owner of a queued or running job holds the session advisory lock (JOB_LOCK, job id) on a
# connection of its own from before the job row is committed until the job is finished. A
# process that dies (kill -9, OOM, power) loses its connections and with them the lock: a job
# whose lock anyone can take has no owner any more, and its import's transaction rolled back.
JOB_LOCK = 0x6D636E0F


def _objid(job_id: int) -> int:
    return job_id % 2**31  # the int4 second key; ids 2**31 apart share one, which is harmless


async def own_job(conn: asyncpg.Connection, job_id: int) -> None:
    """Hold the job's lock on ``conn`` (a session lock: it outlives transactions)."""
    await conn.execute("SELECT pg_advisory_lock($1, $2)", JOB_LOCK, _objid(job_id))


async def disown_job(conn: asyncpg.Connection, job_id: int) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", JOB_LOCK, _objid(job_id))


async def fail_orphaned_jobs(
    db: asyncpg.Pool | asyncpg.Connection, at: dt.datetime, job_id: int | None = None
) -> list[int]:
    """Mark failed the unfinished jobs (all, or ``job_id``) whose owner is gone; their ids.

    One statement, one transaction: the transaction-level try-lock succeeds only where no
    session holds the owner's lock, and is released at commit."""
    rows = await db.fetch(
        "UPDATE import_job SET status = 'failed', finished_at = $1,"
        " error = 'interrupted: the process running it is gone; nothing was loaded'"
        " WHERE id IN (SELECT id FROM import_job WHERE status IN ('queued', 'running')"
        "   AND ($2::bigint IS NULL OR id = $2) FOR UPDATE SKIP LOCKED)"
        " AND pg_try_advisory_xact_lock($3, (id % 2147483648)::int4)"
        " RETURNING id",
        at,
        job_id,
        JOB_LOCK,
    )
    return [r["id"] for r in rows]
