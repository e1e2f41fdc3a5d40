"""PostgreSQL restarted, frozen and stopped under call load (``[database] budget``).

The node (its cores, call and MAP users, on a pool) answers the simulator's switch over
M3UA/TCP while the test restarts, freezes (SIGSTOP: a server that stops answering, connections
left open) and stops a private PostgreSQL of its own (tests/pgcluster.py). Whatever the
database does:

* no dialogue hangs: every call is answered and ended, within the budget per message;
* an InitialDP that cannot be served gets Continue (counted); an armed call whose missed call
  cannot be written is still routed to the IVR, the loss counted (lost, or in doubt when the
  commit was cut off);
* nothing is written twice: one missed call per call at most, one SMS per missed call;
* once PostgreSQL answers again the node needs nobody: after a 1 s restart, every call that
  starts once the server is up is served and recorded, though the connections the node kept
  died with the old server ("released back to the pool").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from scp.config import parse_config
from scp.state.db import open_pool
from tests.integration.callload import CallBench, Load
from tests.pgcluster import PgCluster, cluster_fixture

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

BUDGET = 0.5
CONFIG = f"""
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[tcap]
idle_timeout = 20.0
[database]
budget = {BUDGET}
[notify]
busy_window = 0
alert_via_hlr = false
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    yield from cluster_fixture("mcn-outage-")


async def test_restart_freeze_and_stop_under_call_load(cluster: PgCluster) -> None:
    cfg = parse_config(CONFIG)
    pool = await open_pool(cluster.create_database("outage"), options=cfg.database)
    bench = CallBench(pool, cfg)
    sim = await bench.start()
    stats, check, counters = bench.stats, bench.check, bench.counters
    loop = asyncio.get_running_loop()

    try:
        # healthy: every call recorded
        before = counters()
        calls = await Load(sim).run(12)
        routed, recorded = await check(calls, before=before)
        assert routed == recorded == {c.caller for c in calls}

        # a quick restart between two bursts: the connections the call path keeps died with
        # the old server (asyncpg: "released back to the pool"); the next calls find them so
        before = counters()
        calls = await Load(sim).run(8)
        await asyncio.to_thread(cluster.stop, "fast")
        await asyncio.to_thread(cluster.start)
        calls += await Load(sim).run(16)
        routed, recorded = await check(calls, before=before)
        assert routed == recorded == {c.caller for c in calls}

        # a 1 s restart under load; every call started once the server is back is recorded
        before = counters()
        load = Load(sim)
        load.start()
        await asyncio.sleep(0.3)
        await asyncio.to_thread(cluster.stop, "fast")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.start)
        up = loop.time()
        await asyncio.sleep(1.0)
        calls = await load.stop()
        routed, recorded = await check(calls, before=before)
        after = [c for c in calls if c.started > up]
        assert len(after) >= 8
        # recovered by itself, stale pool or not
        missing = [c for c in after if c.caller not in recorded]
        assert not missing, [(c.caller, c.started - up, c.result) for c in missing]

        # frozen: connections open, nothing answers; then it thaws
        before = counters()
        load = Load(sim)
        load.start()
        await asyncio.sleep(0.3)
        cluster.freeze()
        frozen = loop.time()
        try:
            await asyncio.sleep(2.5)
        finally:
            cluster.thaw()
        thawed = loop.time()
        await asyncio.sleep(1.5)
        calls = await load.stop()
        routed, recorded = await check(calls, before=before)
        during = [c for c in calls if frozen < c.started and c.started + c.result.duration < thawed]
        assert len(during) >= 4 and all(c.result.outcome == "continue" for c in during)
        assert stats.continued_without_database > before["continued"]

        # stopped: Continue at once for every call; served again once it is back
        before = counters()
        await asyncio.to_thread(cluster.stop, "fast")
        calls = await Load(sim).run(8)
        await asyncio.to_thread(cluster.start)
        await check(calls, before=before)
        assert all(c.result.outcome == "continue" for c in calls)
        before = counters()
        calls = await Load(sim).run(8)
        routed, recorded = await check(calls, before=before)
        assert routed == recorded == {c.caller for c in calls}

        # nothing left open: the switch's dialogues all ended, no call still handled
        await asyncio.sleep(0.2)
        assert bench.users.call is not None and bench.users.call.active_calls == 0
        assert list(bench.node.stack.tcap.open_dialogues()) == []
        total = await pool.fetchval("SELECT count(*) FROM missed_call")
        assert total == await pool.fetchval("SELECT count(DISTINCT caller) FROM missed_call")
    finally:
        await bench.stop()
        await pool.close()
