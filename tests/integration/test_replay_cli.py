"""``mcn-scp replay`` and ``mcn-scp simulate`` end to end through click, on a real PostgreSQL.

Offline replay and the in-process simulator work on a scratch database (created on the same
server, subscribers copied in, dropped afterwards): the live data gains no missed call and no
queued SMS. ``--live-db`` writes to the configured database instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from scp.demo import DEMO_SUBSCRIBERS
from tests.conftest import _in_thread
from tests.dates import today
from tests.unit.test_replay import _cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo-missed-call.pcap"


def _sql(dsn: str, q: str) -> object:
    async def go() -> object:
        c = await asyncpg.connect(dsn)
        try:
            return await c.fetchval(q)
        finally:
            await c.close()

    return _in_thread(go)


@pytest.fixture
def seeded(db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    async def go() -> None:
        from scp.demo import seed_subscribers
        from scp.state.db import open_pool
        from tests.conftest import truncate_all

        pool = await open_pool(db_dsn, max_size=2)
        try:
            await truncate_all(pool)
            await seed_subscribers(pool, today=today())
        finally:
            await pool.close()

    _in_thread(go)
    monkeypatch.setenv("MCN_DATABASE_URL", db_dsn)
    return db_dsn


def test_offline_replay_uses_a_scratch_database(seeded: str) -> None:
    res = CliRunner().invoke(_cli(), ["replay", "--json", "--compare", str(DEMO)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["fed"] == 3 and summary["sms"] >= 1
    sms = [d for d in lines if d["type"] == "sms"]
    assert sms[0]["destination"] == DEMO_SUBSCRIBERS[0][0]
    dialogues = [d for d in lines if d["type"] == "dialogue"]
    assert dialogues[0]["ours"] == dialogues[0]["capture"]
    # Nothing reached the configured database, and the scratch one is gone.
    assert _sql(seeded, "SELECT count(*) FROM sms_outbox") == 0
    assert _sql(seeded, "SELECT count(*) FROM missed_call") == 0
    assert _sql(seeded, "SELECT count(*) FROM pg_database WHERE datname LIKE 'mcn_replay_%'") == 0


def test_offline_replay_live_db_writes_for_real(seeded: str) -> None:
    res = CliRunner().invoke(_cli(), ["replay", "--live-db", str(DEMO)])
    assert res.exit_code == 0, res.output
    assert "our SCP  : Continue requestReportBCSMEvent" in res.output
    assert "SMS to 8613800138000" in res.output
    assert _sql(seeded, "SELECT count(*) FROM missed_call") == 1


def test_simulate_cli_in_process(seeded: str) -> None:
    res = CliRunner().invoke(_cli(), ["simulate", "not-reachable-then-present", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output.splitlines()[-1])
    assert d["ok"] and d["map"] == "alertServiceCentre: acknowledged", d
    res = CliRunner().invoke(_cli(), ["simulate", "--calls", "20", "--concurrency", "5"])
    assert res.exit_code == 0 and "20 calls, concurrency 5: 20 ok" in res.output, res.output
    assert _sql(seeded, "SELECT count(*) FROM missed_call") == 0


def test_simulate_unreachable_target_exits_1() -> None:
    res = CliRunner().invoke(_cli(), ["simulate", "busy", "--target", "127.0.0.1:9",
                                      "--timeout", "1"])
    assert res.exit_code == 1 and "cannot reach" in res.output, res.output
