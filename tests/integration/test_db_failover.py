"""PostgreSQL high availability through PostgreSQL's own replication and a multi-host DSN.

A real primary and a streaming standby (``pg_basebackup -R``, tests/pgcluster.py); the node's
DSN names both with ``target_session_attrs=read-write``, so asyncpg connects to whichever
accepts writes. Under call load the primary crashes (``pg_ctl stop -m immediate``), the
standby is promoted a second later, and the node carries on by itself: calls in the gap get
Continue or are routed with their loss counted, every call after the promotion is recorded,
nothing is written twice. With synchronous replication (``synchronous_standby_names``, as
Patroni's ``synchronous_mode`` sets it) the window is empty: every missed call the node was
told committed is on the promoted standby. With asynchronous replication the window is what
the primary had committed but not yet streamed; the test of the second case only checks
that the node carries on (README "Operations", "High availability").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from scp.config import parse_config
from scp.state.db import open_pool
from tests.integration.callload import CallBench, Load
from tests.pgcluster import PgCluster, remove, workdir

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[tcap]
idle_timeout = 20.0
[database]
budget = 0.5
connect_timeout = 2.0
[notify]
busy_window = 0
alert_via_hlr = false
"""


@pytest.fixture(params=["synchronous", "asynchronous"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[PgCluster, PgCluster, str]]:
    base = workdir("mcn-failover-")
    primary = PgCluster(base).init(synchronous_commit="on")
    primary.start()
    standby = None
    try:
        primary.create_database("mcn")
        standby = primary.standby()
        if request.param == "synchronous":
            # only now: with no standby yet, every commit (the migrations') would wait forever
            primary.reload(synchronous_standby_names="'*'")
        yield primary, standby, request.param
    finally:
        remove(base, *(c for c in (primary, standby) if c is not None))


async def test_primary_crashes_standby_promoted_node_carries_on(
    pair: tuple[PgCluster, PgCluster, str],
) -> None:
    primary, standby, mode = pair
    cfg = parse_config(CONFIG)
    dsn = (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/mcn"
        "?target_session_attrs=read-write"
    )
    pool = await open_pool(dsn, options=cfg.database)
    assert await pool.fetchval("SELECT inet_server_port()") == primary.port
    # the standby streams, and is the synchronous one when the mode says so
    want = "sync" if mode == "synchronous" else "async"
    for _ in range(100):  # the walsender takes the reloaded setting on its next round
        state = await pool.fetchval("SELECT sync_state FROM pg_stat_replication")
        if state == want:
            break
        await asyncio.sleep(0.1)
    assert state == want
    bench = CallBench(pool, cfg)
    sim = await bench.start()
    loop = asyncio.get_running_loop()
    try:
        before = bench.counters()
        calls = await Load(sim).run(12)  # the standby has them too
        load = Load(sim)
        load.start()
        await asyncio.sleep(0.3)
        await asyncio.to_thread(primary.stop, "immediate")  # a crash: no shutdown checkpoint
        crashed = loop.time()
        await asyncio.sleep(1.5)
        promoting = loop.time()
        await asyncio.to_thread(standby.promote)
        promoted = loop.time()
        deadline = promoted + 20  # a loaded machine: wait for calls, not for a time
        while sum(c.started > promoted for c in load.calls) < 8 and loop.time() < deadline:
            await asyncio.sleep(0.1)
        calls += await load.stop()
        assert await pool.fetchval("SELECT inet_server_port()") == standby.port
        routed, recorded = await bench.check(calls, before=before)
        after = [c for c in calls if c.started > promoted]
        timeline = [
            (round(c.started - crashed, 2), c.result.outcome, round(c.result.duration, 2))
            for c in calls[12:]
        ]
        assert len(after) >= 8, (round(promoted - crashed, 2), timeline[-40:])
        assert {c.caller for c in after} <= recorded
        # a call whose reads were all over before the promotion began had no server to use
        budget = cfg.database.budget
        gap = [c for c in calls if crashed < c.started and c.started + budget + 0.2 < promoting]
        assert gap and all(c.result.outcome == "continue" for c in gap)
        if mode == "synchronous":
            # nothing lost: a missed call missing on the new primary is one the node counted
            # (bench.check); and the calls of before the crash are all there
            first = {c.caller for c in calls[:12]}
            assert first <= recorded
        await asyncio.sleep(0.2)
        assert list(bench.node.stack.tcap.open_dialogues()) == []
    finally:
        await bench.stop()
        await pool.close()
