"""The background job of every node that deletes voice messages past ``[voicemail]
retention_days`` and Idempotency-Keys past ``[api] idempotency_hours``
(:func:`scp.flows.retention.run_voicemail_retention`), driven for one round with an injected
clock: what is older than each limit goes, what is younger stays, on a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest

from scp.config import parse_config
from scp.flows import api as api_flow
from scp.flows.retention import run_voicemail_retention
from tests.integration.api_rig import ADMIN
from tests.integration.test_voicemail_counts import CALLEE, deposit, subscribers

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)


async def test_one_round_deletes_old_messages_and_spent_keys(clean_pool: asyncpg.Pool) -> None:
    cfg = parse_config("[voicemail]\nretention_days = 7\n[api]\nidempotency_hours = 24\n")
    await subscribers(clean_pool)
    kept = await deposit(clean_pool, CALLEE, NOW - dt.timedelta(days=6, hours=23))
    await deposit(clean_pool, CALLEE, NOW - dt.timedelta(days=7, minutes=1))
    client, _ = await api_flow.create_client(clean_pool, ADMIN, "boss", ["provisioning"], now=NOW)
    for key, hours in (("old", 24.1), ("young", 23.9)):
        async with clean_pool.acquire() as conn, conn.transaction():
            at = NOW - dt.timedelta(hours=hours)
            assert await api_flow.reserve_key(conn, client, key, b"x" * 32, at) is None
    stop = asyncio.Event()
    rounds: list[dt.datetime] = []

    def clock() -> dt.datetime:
        rounds.append(NOW)
        stop.set()  # this round is the last: the loop ends after it
        return NOW

    await asyncio.wait_for(run_voicemail_retention(clean_pool, cfg, clock, stop), 30)
    assert len(rounds) == 1
    assert [r["id"] for r in await clean_pool.fetch("SELECT id FROM voicemail")] == [kept]
    keys = await clean_pool.fetch("SELECT key FROM api_idempotency")
    assert [r["key"] for r in keys] == ["young"]
    purged = await clean_pool.fetch(
        "SELECT channel, actor FROM audit_log WHERE action = 'purge' AND entity = 'voicemail'"
    )
    assert [tuple(r) for r in purged] == [("system", "retention")]
