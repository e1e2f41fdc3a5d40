"""The carrier API's own bookkeeping: its clients and tokens, Idempotency-Key answers, and the
bulk-load jobs it runs through the OSS importer.

* Clients (``mcn-scp api token create|list|revoke``): a token is made and shown once, only its
  digest is stored (:mod:`scp.service.apitoken` says why SHA-256 is the right digest here);
  :func:`authenticate` finds the live client of a presented token.
* Idempotency keys (IETF draft "The Idempotency-Key HTTP Header Field"): :func:`reserve_key`
  inside the request's transaction, :func:`remember_answer` before it commits, so the effect
  and the answer a retry gets commit together.
* Bulk loads: :func:`create_import_job` records the job, :func:`run_import_job` feeds the
  uploaded file to :func:`scp.flows.importer.import_subscribers` - the very importer of
  ``mcn-scp subscriber import``: same validation, one transaction, idempotent - and keeps the
  job row up to date (lines read, then the outcome and the bad lines) from a second connection,
  so progress is visible while the import's own transaction is still open. The connection the
  import runs on holds the job's session advisory lock (:func:`own_import_job`) from before the
  job row commits until it is finished; a process that dies loses it, and whoever reads the job
  next marks it failed (:func:`get_import_job`), so no job stays "running" after a crash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from typing import IO, Any

import asyncpg
import structlog

from scp.flows import importer
from scp.flows.provisioning import Db, audit, transaction
from scp.service.apitoken import digest, new_token, valid_client_name, valid_scopes
from scp.service.provisioning import Actor, Conflict, NotFound
from scp.state import api_store as store
from scp.state.api_store import ApiClient, Remembered

log = structlog.get_logger("scp.api")

__all__ = [
    "ApiClient",
    "Remembered",
    "authenticate",
    "create_client",
    "create_import_job",
    "get_import_job",
    "own_import_job",
    "list_clients",
    "purge_idempotency",
    "remember_answer",
    "reserve_key",
    "revoke_client",
    "fail_unfinished_jobs",
    "run_import_job",
]

TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at is refreshed at most this often


async def create_client(
    db: Db, actor: Actor, name: str, scopes: Iterable[str], *, now: dt.datetime
) -> tuple[ApiClient, str]:
    """A new client and its token (the only time the token exists outside the caller)."""
    name = valid_client_name(name)
    scope_t = valid_scopes(scopes)
    token, token_digest, hint = new_token()
    async with transaction(db) as conn:
        client = await store.insert_client(
            conn, name=name, digest=token_digest, hint=hint, scopes=scope_t, at=now
        )
        if client is None:
            raise Conflict(f"an API client named {name!r} exists: revoke it first")
        await audit(conn, actor, "create", "api_client", name, None, client)
    return client, token


async def list_clients(db: Db, *, revoked: bool = False) -> list[ApiClient]:
    async with transaction(db) as conn:
        return await store.list_clients(conn, revoked=revoked)


async def revoke_client(db: Db, actor: Actor, name: str, *, now: dt.datetime) -> ApiClient:
    """Revoke the live client ``name``: its token stops working at once."""
    async with transaction(db) as conn:
        client = await store.revoke_client(conn, name, now)
        if client is None:
            raise NotFound(f"no live API client named {name!r}")
        await audit(conn, actor, "revoke", "api_client", name, None, client)
    return client


async def authenticate(pool: asyncpg.Pool, token: str, *, now: dt.datetime) -> ApiClient | None:
    """The live client presenting ``token``, or None."""
    client = await store.client_by_digest(pool, digest(token))
    if client is not None and (
        client.last_used_at is None or now - client.last_used_at >= TOUCH_EVERY
    ):
        await store.touch_client(pool, client.id, now)
    return client


async def reserve_key(
    conn: asyncpg.Connection, client: ApiClient, key: str, request_sha256: bytes, now: dt.datetime
) -> Remembered | None:
    """None: the key is this request's (inside its transaction); else what it answered."""
    return await store.reserve_key(conn, client.id, key, request_sha256, now)


async def remember_answer(
    conn: asyncpg.Connection,
    client: ApiClient,
    key: str,
    *,
    status: int,
    body: bytes,
    content_type: str,
    location: str | None,
) -> None:
    await store.remember(
        conn,
        client.id,
        key,
        status=status,
        body=body,
        content_type=content_type,
        location=location,
    )


async def purge_idempotency(pool: asyncpg.Pool, *, before: dt.datetime) -> int:
    async with pool.acquire() as conn:
        return await store.purge_idempotency(conn, before)


# -- bulk loads ---------------------------------------------------------------------------------


async def create_import_job(
    db: Db, actor: Actor, *, skip_bad: bool, size: int, now: dt.datetime
) -> dict[str, Any]:
    async with transaction(db) as conn:
        job = await store.insert_job(conn, client=actor.name, skip_bad=skip_bad, size=size, at=now)
        await audit(conn, actor, "create", "import_job", str(job["id"]), None, job)
    return job


async def own_import_job(owner: asyncpg.Connection, job_id: int) -> None:
    """Take the job's lock on ``owner``, the connection that then runs it
    (:func:`run_import_job`, which gives it back to the pool)."""
    await store.own_job(owner, job_id)


async def disown_import_job(pool: asyncpg.Pool, owner: asyncpg.Connection, job_id: int) -> None:
    try:
        await store.disown_job(owner, job_id)
    finally:
        await pool.release(owner)  # asyncpg's reset also drops any session lock left


async def get_import_job(db: Db, job_id: int, *, now: dt.datetime) -> dict[str, Any]:
    """The job as it stands; one whose owner is gone is marked failed first."""
    async with transaction(db) as conn:
        if await store.fail_orphaned_jobs(conn, now, job_id):
            log.warning("import job orphaned: marked failed", job=job_id)
        job = await store.get_job(conn, job_id)
    if job is None:
        raise NotFound(f"import job {job_id} does not exist")
    return job


async def run_import_job(
    pool: asyncpg.Pool,
    owner: asyncpg.Connection,
    actor: Actor,
    job_id: int,
    stream: IO[bytes],
    *,
    today: dt.date,
    skip_bad: bool,
    clock: Callable[[], dt.datetime],
) -> None:
    """Run the importer over ``stream`` on ``owner`` (holding the job's lock, from
    :func:`own_import_job`; given back to ``pool`` at the end) and record the outcome. The
    job's row is written on ``owner`` too (outside the import's transaction): a job never
    needs a second connection to finish, so loads at once cannot hold the pool between them."""

    async def work() -> None:
        await store.start_job(owner, job_id, clock())
        last = [0]

        def progress(line: int) -> None:
            last[0] = line

        async def report() -> None:
            # the importer reports synchronously between chunks; the row is updated apart, on
            # a connection of the pool (the owner's is in the import's transaction); a busy
            # pool delays the progress, never the import
            while True:
                await asyncio.sleep(0.5)
                await store.job_progress(pool, job_id, last[0])

        reporter = asyncio.ensure_future(report())
        try:
            result = await importer.import_subscribers(
                owner,
                actor,
                stream,
                today=today,
                skip_bad=skip_bad,
                source=f"api:import_job:{job_id}",
                progress=progress,
            )
        except importer.ImportFileError as e:
            await store.finish_job(
                owner, job_id, status="failed", at=clock(), error=str(e), lines=last[0]
            )
            return
        except Exception as e:  # the job must say it failed; the traceback goes to the log
            log.exception("import job failed", job=job_id)
            await store.finish_job(
                owner, job_id, status="failed", at=clock(), error=f"{type(e).__name__}: {e}"[:500]
            )
            return
        finally:
            reporter.cancel()
        await store.finish_job(
            owner,
            job_id,
            status="loaded" if result.loaded else "rejected",
            at=clock(),
            result=result.to_json(),
            lines=last[0],
        )

    try:
        await work()
    finally:
        await disown_import_job(pool, owner, job_id)


async def fail_unfinished_jobs(
    pool: asyncpg.Pool, job_ids: Iterable[int], *, now: dt.datetime
) -> None:
    """Jobs this process was running when it stopped: their transaction rolled back."""
    for job_id in job_ids:
        await store.finish_job(
            pool, job_id, status="failed", at=now, error="interrupted: the web process stopped"
        )
