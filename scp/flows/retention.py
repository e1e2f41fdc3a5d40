"""Data retention: the node's background job deleting records older than ``[retention]``.

Each kind of record (missed calls with their callback requests, final SMS, delivery receipts,
handled MO SMS, the audit log, CDRs once exported to a CDR file) is kept for its configured number of days (0: for ever). A pass
takes the job's session advisory lock first (scp.state.retention_store.LOCK): with several
nodes one works, the others skip the pass. It deletes in small batches (``batch`` rows, one
short transaction each, ``pause`` between them) so the call path never waits behind it. Rows
that are not final (an open callback request, an SMS queued or in flight, an unhandled MO) are
never taken, nor a CDR not yet in a written CDR file; monthly fee records are kept.

:func:`run_voicemail_retention` is the voice mail's own job beside it (``[voicemail]
retention_days``, and the API's spent Idempotency-Keys).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

import asyncpg
import structlog

from scp.flows import api as api_flow
from scp.flows import voicemail as voicemail_flow
from scp.state import retention_store as store

if TYPE_CHECKING:
    from scp.config import Config, RetentionConfig

__all__ = ["retention_pass", "run_retention", "run_voicemail_retention"]

log = structlog.get_logger(__name__)


async def retention_pass(
    pool: asyncpg.Pool,
    cfg: RetentionConfig,
    now: dt.datetime,
    stop: asyncio.Event | None = None,
) -> dict[str, int] | None:
    """One pass at ``now``: rows deleted per kind, or None if another node holds the job."""
    async with pool.acquire() as lock_conn:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *store.LOCK):
            return None
        try:
            deleted: dict[str, int] = {}
            for kind, statements in store.DELETES.items():
                days = getattr(cfg, kind)
                if days <= 0:
                    continue
                cutoff = now - dt.timedelta(days=days)
                n = 0
                for sql in statements:
                    while stop is None or not stop.is_set():
                        async with pool.acquire() as conn:
                            got = await store.delete_batch(conn, sql, cutoff, cfg.batch)
                        n += got
                        if got < cfg.batch:
                            break
                        if cfg.pause:
                            await asyncio.sleep(cfg.pause)
                deleted[kind] = n
            return deleted
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1, $2)", *store.LOCK)


async def run_retention(
    pool: asyncpg.Pool,
    cfg: RetentionConfig,
    clock: Callable[[], dt.datetime],
    stop: asyncio.Event,
) -> None:
    """A pass every ``cfg.interval`` seconds until ``stop`` is set (nothing to do when no kind
    has a retention)."""
    if not any(getattr(cfg, k) > 0 for k in store.DELETES):
        return
    while not stop.is_set():
        deleted = await retention_pass(pool, cfg, clock(), stop)
        if deleted:
            log.info("retention.pass", **deleted)
        try:
            await asyncio.wait_for(stop.wait(), cfg.interval)
        except TimeoutError:
            pass


async def run_voicemail_retention(
    pool: asyncpg.Pool,
    cfg: Config,
    clock: Callable[[], dt.datetime],
    stop: asyncio.Event,
) -> None:
    """Every ``[voicemail] retention_interval`` until ``stop`` is set: voice messages older
    than ``[voicemail] retention_days`` go (once across the nodes: the flow takes an advisory
    lock the others skip), and Idempotency-Keys older than ``[api] idempotency_hours``."""
    while not stop.is_set():
        now = clock()
        n = await voicemail_flow.purge(pool, cfg, now=now)
        keys = await api_flow.purge_idempotency(
            pool, before=now - dt.timedelta(hours=cfg.api.idempotency_hours)
        )
        if n or keys:
            log.info("retention", voicemail_deleted=n, idempotency_keys_deleted=keys)
        try:
            await asyncio.wait_for(stop.wait(), cfg.voicemail.retention_interval)
        except TimeoutError:
            pass
