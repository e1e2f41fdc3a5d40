"""Two ``mcn-scp run`` processes on one PostgreSQL, one of them killed with SIGKILL under load.

Each node is a real process with its own name and worker ID, the same database and the same
SMSC (the real third-party one, tests/smppd); the simulator plays a switch and an HLR toward
each. Busy calls flow through both; callees that cannot be reached make HLR alert
registrations; mid-run node 1 is killed (no clean stop: its claimed SMS and registrations keep
their leases), and node 2 carries on alone. Afterwards:

* every missed call is recorded once, every call answered by the survivor is recorded;
* every queued SMS reached the SMSC: the survivor's sender took over the dead node's leases
  once they ran out. The SMSC holds its answers while node 1 dies, so node 1 dies with SMS the
  SMSC accepted and it never heard of: those, and only those (their rows show the second
  claim: ``attempts`` counts claims), reach the SMSC twice (README "Operations", "Several
  nodes": SMPP 3.4 has no way to ask an SMSC whether it holds a submit whose answer was
  lost); every other SMS exactly once;
* every HLR registration was made, and no callee's was run by both nodes while it was leased.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.codecs import map as map_codec
from scp.codecs.errors import DecodeError
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.primitives import Invoke, TcBegin
from scp.state.db import open_pool
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.transports import Connection, connect_tcp
from tests import tshark
from tests.conftest import create_database, drop_database
from tests.dates import today
from tests.integration.callload import IVR, Load, N
from tests.integration.smppd import Smppd, smppd_fixture
from tests.pgcluster import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.tshark,
    pytest.mark.asyncio(loop_scope="session"),
]

PREFS = tshark.PREFS + ("-o", "gsm_map.tcap.ssn:6-9,145,147-150")
OP_SRI_SM = 45
WINDOW = 10  # [smpp] window, the default: SMS each node has at the SMSC unanswered at most
LEASE = 5.0  # [notify] lease: an SMS claimed by the dead node is taken over after it
ALERT_TIMEOUT = 1.0
ALERT_LEASE = 2 * (ALERT_TIMEOUT + 1.0) * 3 + 5  # scp.flows.presence.alert_once
CONFIG = """
[node]
name = "scp-{n}"
worker_id = {n}
[m3ua]
listen = "127.0.0.1:{port}"
beat_interval = 0
[sccp]
default_dpc = 200  # the simulator's point code: where the HLR dialogues go
[tcap]
idle_timeout = 20.0
[smpp]
backend = "smpp"
host = "127.0.0.1"
port = {smsc}
system_id = "mcn"
password = "secret"
[notify]
busy_window = 0
lease = {lease}
alert_via_hlr = true
alert_poll = 0.2
alert_timeout = {alert_timeout}
[database]
budget = 1.0
"""
# callees that cannot be reached: each makes one HLR registration (SRI-SM, ReportSM-Delivery..)
ABSENT = [f"86138002{i:05d}" for i in range(8)]


@pytest.fixture(scope="module")
def smppd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smppd]:
    yield from smppd_fixture(tmp_path_factory, "smppd-two-nodes")


class Hlr:
    """Every SRI-SM a node sent, by the node and the callee, then the simulator's answer."""

    def __init__(self) -> None:
        self.sri: list[tuple[int, str, float]] = []

    def watch(self, node: int, sim: Simulator) -> None:
        serve = sim.peer.on_begin

        def on_begin(b: TcBegin) -> None:
            for c in b.components:
                if type(c) is Invoke and c.opcode == OP_SRI_SM:
                    try:
                        arg = map_codec.CODEC.decode_arg(
                            c.opcode, c.parameter, ac=b.application_context
                        )
                    except DecodeError:
                        continue
                    msisdn = getattr(arg, "msisdn", None)
                    assert msisdn is not None, arg
                    self.sri.append((node, msisdn.digits, time.monotonic()))
            assert serve is not None
            serve(b)

        sim.peer.on_begin = on_begin


class NodeProcess:
    def __init__(self, n: int, tmp: Path, dsn: str, smsc: Smppd) -> None:
        self.n = n
        self.port = free_port()
        self.text = CONFIG.format(
            n=n, port=self.port, smsc=smsc.port, lease=LEASE, alert_timeout=ALERT_TIMEOUT
        )
        self.cfg = parse_config(self.text)
        conf = tmp / f"scp-{n}.toml"
        conf.write_text(self.text)
        self.stderr = open(tmp / f"scp-{n}.log", "w+")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, MCN_DATABASE_URL=dsn)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scp", "run", "--config", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env=env,
        )
        self.conn: Connection | None = None
        # what the simulator and the node said to each other, for tshark and the strict oracle
        # (the simulator's side: the killed node's own capture would end mid-record)
        self.pcap = tmp / f"sim-{n}.pcap"
        self.writer = SctpPcapWriter.open(str(self.pcap))

    async def connect(self) -> Simulator:
        deadline = time.monotonic() + 30
        while self.conn is None:
            try:
                self.conn = await connect_tcp("127.0.0.1", self.port, capture=self.writer)
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"node {self.n} did not start: {self.log()}") from None
                await asyncio.sleep(0.2)
        return Simulator(self.conn.peer, self.cfg, numbers=N, timeout=3.0)

    def log(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()[-4000:]

    async def stop(self) -> None:
        if self.conn is not None:
            await self.conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()
        self.writer.close()


async def absent_call(sim: Simulator, callee: str, caller: str) -> None:
    """A call to an unreachable callee whose caller asks for an SMS: an HLR registration."""
    serve = sim.peer.on_begin  # the node's MAP dialogues stay with the HLR of ``sim``
    own = Simulator(sim.peer, sim.cfg, numbers=dataclasses.replace(N, subscriber=callee))
    sim.peer.on_begin = serve
    res = await own.call("not-reachable-then-present", caller=caller)
    assert res.ok, res.outcome


async def settled(pool: asyncpg.Pool, timeout: float) -> None:
    """Until every SMS left the outbox and every registration ran, or ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_sms = await pool.fetchval(
            "SELECT count(*) FROM sms_outbox WHERE status IN ('queued', 'sending')"
        )
        open_alerts = await pool.fetchval(
            "SELECT count(*) FROM hlr_alert WHERE status IN ('pending', 'in-progress')"
        )
        if open_sms == 0 and open_alerts == 0:
            return
        await asyncio.sleep(0.25)


async def test_two_nodes_one_killed_every_record_and_sms_once(
    pg_admin_dsn: str, smppd: Smppd, tmp_path: Path
) -> None:
    dsn = create_database(pg_admin_dsn, "twonodes")
    pool = await open_pool(dsn)
    actor = prov.Actor("cli", "test")
    for msisdn in (N.subscriber, *ABSENT):
        await prov.add_subscriber(
            pool, actor, msisdn, today=today(), services=("missed-call", "busy")
        )
    nodes = [NodeProcess(n, tmp_path, dsn, smppd) for n in (1, 2)]
    hlr = Hlr()
    try:
        sims = [await node.connect() for node in nodes]
        for node, sim in zip(nodes, sims, strict=True):
            hlr.watch(node.n, sim)
        loads = [Load(sim, concurrency=3) for sim in sims]
        for load in loads:
            load.start()
        callers = iter(range(int(N.caller) + 900_000, int(N.caller) + 999_999))
        await asyncio.gather(
            *(
                absent_call(sims[i % 2], callee, str(next(callers)))
                for i, callee in enumerate(ABSENT[:4])
            )
        )
        await asyncio.sleep(1.5)
        # the SMSC takes submits and holds its answers: each node has SMS the SMSC accepted
        # but the node has not heard of yet, as at any instant of a busy link
        await asyncio.to_thread(smppd.hold, True)
        await asyncio.sleep(0.3)
        # both nodes' windows full of held submits: more than one window's worth held means the
        # node about to die has some (a sender claims no more than its window has room for;
        # the survivor's sender could otherwise have claimed every SMS due meanwhile)
        deadline = time.monotonic() + 5
        while (await asyncio.to_thread(smppd.stats))["held"] <= WINDOW:
            assert time.monotonic() < deadline, smppd.stats()
            await asyncio.sleep(0.05)
        nodes[0].proc.send_signal(signal.SIGKILL)  # mid-run: calls, SMS and alerts in flight
        killed = time.monotonic()
        nodes[0].proc.wait(10)
        await asyncio.to_thread(smppd.hold, False)
        dead_stopped = asyncio.ensure_future(loads[0].stop())  # its calls in flight time out
        await asyncio.gather(
            *(absent_call(sims[1], callee, str(next(callers))) for callee in ABSENT[4:])
        )
        await asyncio.sleep(2.0)
        dead_calls = await asyncio.wait_for(dead_stopped, 10)
        live_calls = await loads[1].stop()
        await settled(pool, timeout=ALERT_LEASE + 20)

        # missed calls: once each; every call the survivor routed is recorded
        assert live_calls and dead_calls
        for c in live_calls:
            assert c.result.ok and c.result.outcome == IVR, (c.caller, c.result.outcome)
        rows = await pool.fetch("SELECT caller, count(*) AS n FROM missed_call GROUP BY caller")
        per_caller = {r["caller"]: r["n"] for r in rows}
        assert all(n == 1 for n in per_caller.values()), per_caller
        assert {c.caller for c in live_calls} <= per_caller.keys()
        routed_by_dead = [c for c in dead_calls if c.result.outcome == IVR]
        assert routed_by_dead and {c.caller for c in routed_by_dead} <= per_caller.keys()

        # SMS: every row went out; only a row the dead node held may have reached the SMSC twice
        sms = await pool.fetch("SELECT id, destination, text, status, attempts FROM sms_outbox")
        # one per busy call (no busy_window); an absent callee's waits for the HLR's alert
        assert len(sms) == len(per_caller) - len(ABSENT)
        assert all(r["status"] in ("submitted", "delivered") for r in sms), [
            tuple(r) for r in sms if r["status"] not in ("submitted", "delivered")
        ]
        accepted = collections.Counter((s["destination"], s["text"]) for s in smppd.accepted())
        twice = []
        for r in sms:
            got = accepted[(r["destination"], r["text"])]
            assert got >= 1, tuple(r)
            if got > 1:
                twice.append(tuple(r))
                assert got <= r["attempts"], tuple(r)  # at most once per claim
        reclaimed = sum(1 for r in sms if r["attempts"] >= 2)
        assert reclaimed >= 1  # the dead node's claims were taken over
        assert len(twice) <= reclaimed
        print(f"SMS {len(sms)}, taken over {reclaimed}, accepted twice {len(twice)}")

        # HLR registrations: every one made; a callee asked twice only across its lease's end
        alerts = await pool.fetch(
            "SELECT msisdn, status, attempts, last_error, next_attempt_at FROM hlr_alert"
        )
        assert {r["msisdn"] for r in alerts} == set(ABSENT)
        assert all(r["status"] == "registered" for r in alerts), (
            [tuple(r) for r in alerts],
            hlr.sri,
            [ln for ln in nodes[1].log().splitlines() if "alert" in ln][-10:],
        )
        asked: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
        for by, msisdn, at in hlr.sri:
            asked[msisdn].append((by, at))
        for msisdn in ABSENT:
            times = asked[msisdn]
            assert times, msisdn
            survivor = [t for n, t in times if n == 2]
            assert len(survivor) <= 1, (msisdn, times)  # no node asks twice
            assert len(times) - len(survivor) <= 1, (msisdn, times)
            if len(times) == 2:  # the dead node's claim, taken over when its lease ran out
                first = next(t for n, t in times if n == 1)
                assert first <= killed and survivor[0] >= first + ALERT_LEASE * 0.9, (msisdn, times)
        log = nodes[1].log()
        assert "Traceback" not in log, log
    finally:
        smppd.hold(False)
        for node in nodes:
            await node.stop()
        await pool.close()
        drop_database(pg_admin_dsn, dsn)
    for node in nodes:
        tshark.assert_clean(node.pcap, prefs=PREFS)
