"""``/metrics`` scraped over real HTTP from a running node (its web child, which reads the node's
families over their link) while the simulator's switch and HLR talk to it over M3UA/TCP; the text is parsed with
``prometheus_client.parser`` and each value must have moved exactly as the calls did. Real
PostgreSQL; the console SMS sink (no SMSC: the SMPP counters stay 0 and are exported all the
same). The Grafana dashboard in docs/ may only query metrics the node exports.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scp.adapters.capture import SctpPcapWriter
from scp.app import Services
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.primitives import TcEnd
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.scenarios import Numbers
from scp.tools.simulate.transports import connect_tcp
from tests import tshark
from tests.dates import today
from tests.helpers import free_port
from tests.integration import test_workers as workers
from tests.integration.peer import PeerAsp

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

N = Numbers()
MAP_SSN_PREFS = ("-o", "gsm_map.tcap.ssn:6-9,145,147-150")  # the HLR side of the calls
DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana-dashboard.json"
CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = 0
[smpp]
backend = "console"
[web]
listen = "127.0.0.1:0"
[notify]
busy_window = 0
alert_via_hlr = false
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[Samples, set[str]]:
    """Every sample of /metrics by (name, sorted labels), and the family names."""
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    names: set[str] = set()
    for fam in text_string_to_metric_families(r.text):
        names.add(fam.name)
        for s in fam.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples, names


async def in_outbox(pool) -> int:  # type: ignore[no-untyped-def]
    """Rows queued or being sent, as mcn_scp_outbox_depth counts them."""
    n = await pool.fetchval("SELECT count(*) FROM sms_outbox WHERE status IN ('queued', 'sending')")
    return int(n)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def add_busy_subscriber(pool: Any) -> None:
    """The simulator's subscriber, to missed-call and busy since today."""
    await prov.add_subscriber(
        pool,
        prov.Actor("cli", "test"),
        N.subscriber,
        today=today(),
        services=("missed-call", "busy"),
    )


@pytest.mark.tshark
async def test_metrics_move_as_the_calls_did(clean_pool, db_dsn: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = parse_config(CONFIG)
    await add_busy_subscriber(clean_pool)
    services = Services(cfg, clean_pool, dsn=db_dsn)
    await services.start()
    wire = SctpPcapWriter.open(str(tmp_path / "sim.pcap"))  # for tshark and the strict oracle
    try:
        assert services.web is not None
        conn = await connect_tcp("127.0.0.1", services.node.transport.listening[0][1], capture=wire)
        sim = Simulator(conn.peer, cfg, numbers=N, timeout=10.0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{services.web.port}") as c:
            before, _ = await scrape(c)
            assert value(before, "mcn_scp_m3ua_as_state", state="active") == 1
            calls = [await sim.call("busy", caller=f"86139{i:08d}") for i in range(3)]
            assert all(r.ok for r in calls), [r.outcome for r in calls]
            # the outbox's depth against PostgreSQL's, read just before and after each scrape
            # (rows only leave it from here on): waiting for presence, then after the alert
            depths = [await in_outbox(clean_pool)]
            mid, _ = await scrape(c)
            depths.append(await in_outbox(clean_pool))
            alert = await sim.alert_service_centre(N.subscriber)
            assert alert.endswith("acknowledged"), alert
            depths.append(await in_outbox(clean_pool))
            after, names = await scrape(c)
            depths.append(await in_outbox(clean_pool))
    finally:
        await conn.close()
        await services.stop()
        wire.close()
    tshark.assert_clean(tmp_path / "sim.pcap", prefs=tshark.PREFS + MAP_SSN_PREFS)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    cap = "CAP-v2-gsmSSF-to-gsmSCF-AC"
    map_ac = "shortMsgAlertContext-v2"
    assert (
        moved("mcn_scp_tcap_dialogues_opened_total", application_context=cap, direction="in") == 3
    )
    assert (
        moved("mcn_scp_operations_received_total", application_context=cap, operation="initialDP")
        == 3
    )
    assert (
        moved(
            "mcn_scp_operations_received_total",
            application_context=cap,
            operation="eventReportBCSM",
        )
        == 3
    )
    assert (
        moved(
            "mcn_scp_operations_sent_total",
            application_context=cap,
            operation="requestReportBCSMEvent",
        )
        == 3
    )
    assert (
        moved(
            "mcn_scp_operations_received_total",
            application_context=map_ac,
            operation="alertServiceCentre",
        )
        == 1
    )
    assert (
        moved("mcn_scp_tcap_dialogues_ended_total", application_context=map_ac, outcome="end") == 1
    )
    ended = sum(
        v - value(before, n, **dict(lab))
        for (n, lab), v in after.items()
        if n == "mcn_scp_tcap_dialogues_ended_total" and dict(lab)["application_context"] == cap
    )
    assert ended == 3
    # every InitialDP and every EventReportBCSM answered once, each timed
    assert moved("mcn_scp_initial_dp_answer_seconds_count") == 3
    assert moved("mcn_scp_event_report_answer_seconds_count") == 3
    assert moved("mcn_scp_initial_dp_answer_seconds_bucket", le="+Inf") == 3
    assert moved("mcn_scp_initial_dp_answer_seconds_sum") > 0
    # the three missed calls queued their SMS, and the alert made them due: the console sink
    # takes them, so the outbox drains (depth back to 0 once sent, never negative)
    assert depths[0] >= value(mid, "mcn_scp_outbox_depth") >= depths[1]
    assert depths[2] >= value(after, "mcn_scp_outbox_depth") >= depths[3]
    assert moved("mcn_scp_sms_submitted_total") + value(after, "mcn_scp_outbox_depth") >= 1
    assert value(after, "mcn_scp_db_pool_size") >= 1
    assert value(after, "mcn_scp_db_pool_size", process="web") >= 1  # the web child's own
    assert value(after, "mcn_scp_tcap_dialogues_open") == 0
    assert value(after, "mcn_scp_calls_continued_without_database_total") == 0
    assert value(after, "mcn_scp_workers") == value(after, "mcn_scp_workers_alive") == 1
    # the call path's database round trips: one subscriber read per InitialDP, and each call's
    # missed call written (busy, with its SMS) in one write, each timed
    assert moved("mcn_scp_db_query_seconds_count", work="read") == 3
    assert moved("mcn_scp_db_query_seconds_bucket", work="read", le="+Inf") == 3
    assert moved("mcn_scp_db_query_seconds_sum", work="read") > 0
    assert moved("mcn_scp_db_query_seconds_count", work="write") == 3
    assert moved("mcn_scp_db_query_seconds_sum", work="write") > 0

    # the dashboard queries only metrics the node exports
    dash = json.loads(DASHBOARD.read_text())
    queried = {
        m
        for panel in dash["panels"]
        for target in panel.get("targets", [])
        for m in re.findall(r"\bmcn_scp_[a-z0-9_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    # a labelled family with no sample yet is exported all the same (its HELP and TYPE): the
    # parser names a counter's family without _total, a histogram's without _bucket
    missing = {m for m in queried if re.sub(r"_(total|bucket|sum|count)$", "", m) not in names}
    assert not missing, f"the dashboard queries metrics the node does not export: {missing}"


@pytest.mark.tshark
async def test_metrics_of_every_worker(tmp_path: Path, db_dsn: str, clean_pool) -> None:  # type: ignore[no-untyped-def]
    """``mcn-scp run --workers 2``: worker 0's web child serves /metrics, and a call on an association the
    other worker holds shows there under that worker's ID; a worker that does not answer (here
    stopped with SIGSTOP) is not counted alive."""
    await workers.provisioning.add_subscriber(
        clean_pool,
        workers.ADMIN,
        workers.CALLEE,
        today=today(),
        services=("missed-call", "busy", "voicemail"),
    )
    port, web = free_port(), free_port()
    first = workers.FIRST_WORKER_ID
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'[node]\nworker_id = {first}\n[m3ua]\nlisten = "127.0.0.1:{port}"\n'
        f'[web]\nlisten = "127.0.0.1:{web}"\n[smpp]\nbackend = "console"\n'
        '[ivr]\nmode = "connect"\n[rating]\nlocal_prefixes = ["86139"]\n'
    )
    log = tmp_path / "run.log"
    proc, stderr = workers.start_run(conf, log, db_dsn, "--workers", "2")
    peers: list[PeerAsp] = []
    stopped: int | None = None
    try:
        await workers._until(
            "two workers up",
            lambda: sum(e.get("event") == "scp node up" for e in workers._log(log)) == 2,
            proc,
        )
        # an association held by the worker that does not serve HTTP
        for i in range(workers.ATTEMPTS):
            peer, worker = await workers._connect(port, tmp_path / f"peer-{i}.pcap", proc, log)
            peers.append(peer)
            if worker == first + 1:
                break
            peer.close()
            await asyncio.wait_for(peer.closed.wait(), 5)
        else:
            raise AssertionError("every association landed on worker 0")
        sw = workers.Switch(peers[-1])
        did, armed_by = await workers._open(sw)
        assert armed_by == first + 1
        sw.cont(did, workers.erb(13, 17))
        end = (await sw.next(did, 2))[1]
        assert isinstance(end, TcEnd), end

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web}") as c:
            got, _ = await scrape(c)
            cap = "CAP-v2-gsmSSF-to-gsmSCF-AC"
            idps = {
                w: value(
                    got,
                    "mcn_scp_operations_received_total",
                    application_context=cap,
                    operation="initialDP",
                    worker=str(w),
                )
                for w in (first, first + 1)
            }
            assert idps == {first: 0, first + 1: 1}
            assert value(got, "mcn_scp_initial_dp_answer_seconds_count", worker=str(first + 1)) == 1
            assert value(got, "mcn_scp_db_pool_size", worker=str(first + 1)) >= 1
            assert value(got, "mcn_scp_db_pool_size", process="web") >= 1
            assert value(got, "mcn_scp_workers") == 2
            assert value(got, "mcn_scp_workers_alive") == 2

            (pid,) = [
                e["pid"]
                for e in workers._log(log)
                if e.get("event") == "worker started" and e.get("index") == 1
            ]
            os.kill(pid, signal.SIGSTOP)
            stopped = pid
            got, _ = await scrape(c)
            assert value(got, "mcn_scp_workers") == 2
            assert value(got, "mcn_scp_workers_alive") == 1
            assert not any(dict(labels).get("worker") == str(first + 1) for _, labels in got)
            os.kill(pid, signal.SIGCONT)
            stopped = None

        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        workers._reap(proc, stderr, peers)
    assert rc == 0, log.read_text()
    for i in range(len(peers)):
        tshark.assert_clean(tmp_path / f"peer-{i}.pcap")
