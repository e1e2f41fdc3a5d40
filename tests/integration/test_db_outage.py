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
import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from scp.app import Node, build_users
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.state.db import open_pool
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.scenarios import CallResult, Numbers
from scp.tools.simulate.transports import connect_tcp
from tests.dates import today
from tests.pgcluster import PgCluster, remove, workdir

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

N = Numbers()
CALLERS = itertools.count(int(N.caller))  # one caller per call, over every phase
BUDGET = 0.5
IVR = "connect 8613800999"
# what a call may take end to end: the InitialDP's answer and the EventReportBCSM's, each
# within the budget, plus the loop's own work on a shared machine
CALL_BOUND = 2 * BUDGET + 1.5
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
    base = workdir("mcn-outage-")
    c = PgCluster(base).init()
    c.start()
    try:
        yield c
    finally:
        remove(base, c)


@dataclasses.dataclass
class Call:
    caller: str
    started: float
    result: CallResult


class Load:
    """Busy calls, ``concurrency`` at a time, each from a caller of its own, until stopped."""

    def __init__(self, sim: Simulator, concurrency: int = 4) -> None:
        self.sim = sim
        self.concurrency = concurrency
        self.calls: list[Call] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[object] | None = None

    async def _worker(self, limit: int | None) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set() and (limit is None or len(self.calls) < limit):
            caller = str(next(CALLERS))
            t0 = loop.time()
            res = await self.sim.call("busy", caller=caller)
            self.calls.append(Call(caller, t0, res))

    def start(self) -> None:
        self._task = asyncio.ensure_future(
            asyncio.gather(*(self._worker(None) for _ in range(self.concurrency)))
        )

    async def stop(self) -> list[Call]:
        self._stop.set()
        assert self._task is not None
        await self._task
        return self.calls

    async def run(self, n: int) -> list[Call]:
        await asyncio.gather(*(self._worker(n) for _ in range(self.concurrency)))
        return self.calls


async def test_restart_freeze_and_stop_under_call_load(cluster: PgCluster, tmp_path: Path) -> None:
    cfg = parse_config(CONFIG)
    dsn = cluster.create_database("outage")
    pool = await open_pool(dsn, options=cfg.database)
    await prov.add_subscriber(
        pool,
        prov.Actor("cli", "test"),
        N.subscriber,
        today=today(),
        services=("missed-call", "busy"),
    )
    users = build_users(pool, cfg)
    node = Node(cfg, users=users)
    await node.start()
    conn = await connect_tcp("127.0.0.1", node.transport.listening[0][1])
    sim = Simulator(conn.peer, cfg, numbers=N, timeout=10.0)
    stats = users.stats.calls
    loop = asyncio.get_running_loop()

    async def check(calls: list[Call], *, before: dict[str, int]) -> tuple[set[str], set[str]]:
        """Every call ended in time with Continue or the IVR; the database holds at most one
        missed call (and one SMS) per call, and exactly the ones not counted as lost."""
        for c in calls:
            r = c.result
            assert r.ok, (c.caller, r.outcome)  # answered and ended: no hung dialogue
            assert r.outcome in ("continue", IVR), (c.caller, r.outcome)
            assert r.duration < CALL_BOUND, (c.caller, r.duration, r.outcome)
        callers = [c.caller for c in calls]
        rows = await pool.fetch(
            "SELECT caller, count(*) AS n FROM missed_call WHERE caller = ANY($1::text[])"
            " GROUP BY caller",
            callers,
        )
        assert all(r["n"] == 1 for r in rows), [tuple(r) for r in rows if r["n"] > 1]
        recorded = {r["caller"] for r in rows}
        routed = {c.caller for c in calls if c.result.outcome == IVR}
        continued = {c.caller for c in calls if c.result.outcome == "continue"}
        assert recorded <= routed  # a call given Continue armed nothing and recorded nothing
        assert len(continued) == stats.continued_without_database - before["continued"]
        lost = stats.records_lost["missed_call"] - before["lost"]
        doubt = stats.records_in_doubt["missed_call"] - before["doubt"]
        assert lost <= len(routed - recorded) <= lost + doubt
        sms = await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE text LIKE ANY ($1::text[])",
            [f"%{c[-8:]}%" for c in recorded] or [""],
        )
        assert sms == len(recorded)  # the busy notification, queued with its missed call
        return routed, recorded

    def counters() -> dict[str, int]:
        return {
            "continued": stats.continued_without_database,
            "lost": stats.records_lost["missed_call"],
            "doubt": stats.records_in_doubt["missed_call"],
        }

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
        assert {c.caller for c in after} <= recorded  # recovered by itself, stale pool or not

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
        assert users.call is not None and users.call.active_calls == 0
        assert list(node.stack.tcap.open_dialogues()) == []
        total = await pool.fetchval("SELECT count(*) FROM missed_call")
        assert total == await pool.fetchval("SELECT count(DISTINCT caller) FROM missed_call")
    finally:
        await conn.close()
        await node.stop()
        await users.aclose()
        await pool.close()
