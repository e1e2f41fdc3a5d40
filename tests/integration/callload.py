"""Busy calls from the simulator against an in-process node, and what the database must show
after them whatever PostgreSQL did meanwhile (tests of outages and failover).

:class:`CallBench` is a node on a pool (its call and MAP users, M3UA over loopback TCP) with
the simulator's switch connected; :class:`Load` runs busy calls through it, each from a caller
of its own; :meth:`CallBench.check` says that every call ended in time with Continue or the
IVR, that the database holds at most one missed call and one SMS per call, and that every
routed call whose missed call is missing was counted as lost or in doubt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

from scp.app import Node, build_users
from scp.config import Config
from scp.flows import provisioning as prov
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.scenarios import CallResult, Numbers
from scp.tools.simulate.transports import Connection, connect_tcp
from tests.dates import today

N = Numbers()
CALLERS = itertools.count(int(N.caller))  # one caller per call, over every test of the run
IVR = "connect 8613800999"  # [ivr] number: where a busy call is routed


@dataclasses.dataclass
class Call:
    caller: str
    started: float  # loop time the InitialDP left
    result: CallResult


class Load:
    """Busy calls, ``concurrency`` at a time, until stopped (or ``run(n)``: n of them)."""

    def __init__(self, sim: Simulator, concurrency: int = 4) -> None:
        self.sim = sim
        self.concurrency = concurrency
        self.calls: list[Call] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Future[Any] | None = None

    async def _worker(self, limit: int | None) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set() and (limit is None or len(self.calls) < limit):
            caller = str(next(CALLERS))
            t0 = loop.time()
            res = await self.sim.call("busy", caller=caller)
            self.calls.append(Call(caller, t0, res))

    def start(self) -> None:
        self._task = asyncio.gather(*(self._worker(None) for _ in range(self.concurrency)))

    async def stop(self) -> list[Call]:
        self._stop.set()
        assert self._task is not None
        await self._task
        return self.calls

    async def run(self, n: int) -> list[Call]:
        await asyncio.gather(*(self._worker(n) for _ in range(self.concurrency)))
        return self.calls


class CallBench:
    """A node on ``pool`` answering the simulator's switch over loopback M3UA/TCP."""

    def __init__(self, pool: Any, cfg: Config) -> None:
        self.pool = pool
        self.cfg = cfg
        self.users = build_users(pool, cfg)
        self.stats = self.users.stats.calls
        self.node = Node(cfg, users=self.users)
        self.conn: Connection | None = None
        self.sim: Simulator | None = None
        # an end-to-end bound per call: the InitialDP's and the EventReportBCSM's answers, each
        # within the budget, plus the loop's own work on a shared machine
        self.call_bound = 2 * cfg.database.budget + 1.5

    async def start(self, *, subscriber: bool = True) -> Simulator:
        if subscriber:
            await prov.add_subscriber(
                self.pool,
                prov.Actor("cli", "test"),
                N.subscriber,
                today=today(),
                services=("missed-call", "busy"),
            )
        await self.node.start()
        self.conn = await connect_tcp("127.0.0.1", self.node.transport.listening[0][1])
        self.sim = Simulator(self.conn.peer, self.cfg, numbers=N, timeout=10.0)
        return self.sim

    async def stop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        await self.node.stop()
        await self.users.aclose()

    def counters(self) -> dict[str, int]:
        s = self.stats
        return {
            "continued": s.continued_without_database,
            "lost": s.records_lost["missed_call"],
            "doubt": s.records_in_doubt["missed_call"],
        }

    async def check(
        self, calls: list[Call], *, before: dict[str, int]
    ) -> tuple[set[str], set[str]]:
        """Every call ended in time with Continue or the IVR; the database holds at most one
        missed call (and one SMS) per call, and every one not counted as lost or in doubt.
        Returns the callers routed to the IVR and those whose missed call is recorded."""
        for c in calls:
            r = c.result
            assert r.ok, (c.caller, r.outcome)  # answered and ended: no hung dialogue
            assert r.outcome in ("continue", IVR), (c.caller, r.outcome)
            assert r.duration < self.call_bound, (c.caller, r.duration, r.outcome)
        rows = await self.pool.fetch(
            "SELECT caller, count(*) AS n FROM missed_call WHERE caller = ANY($1::text[])"
            " GROUP BY caller",
            [c.caller for c in calls],
        )
        assert all(r["n"] == 1 for r in rows), [tuple(r) for r in rows if r["n"] > 1]
        recorded = {r["caller"] for r in rows}
        routed = {c.caller for c in calls if c.result.outcome == IVR}
        continued = {c.caller for c in calls if c.result.outcome == "continue"}
        assert recorded <= routed  # a call given Continue armed nothing and recorded nothing
        now = self.counters()
        assert len(continued) == now["continued"] - before["continued"]
        lost, doubt = now["lost"] - before["lost"], now["doubt"] - before["doubt"]
        assert lost <= len(routed - recorded) <= lost + doubt, (lost, doubt)
        sms = await self.pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE text LIKE ANY ($1::text[])",
            [f"%{c[-8:]}%" for c in recorded] or [""],
        )
        assert sms == len(recorded)  # the busy notification, queued with its missed call
        return routed, recorded
