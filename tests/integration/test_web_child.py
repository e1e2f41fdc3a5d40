"""``mcn-scp run`` with ``[web] listen`` serves its web application from a child process
(scp/adapters/web_child.py), run here as a real process on a real PostgreSQL, with the
simulator's switch over M3UA/TCP (its frames read by tshark and the strict ASN.1 oracle):

* the pages answer, from a process whose CPU priority is ``[web] nice`` below the node's, in
  the node's session (where, with autogroup scheduling, that priority counts);
* ``/readyz`` and ``/metrics`` show the node's own state (its active ASP, the call it took)
  through the child; with the node not answering on its link (SIGSTOP), ``/readyz`` is 503
  naming the node and ``/metrics`` still serves the web process's own families;
* a child killed with SIGKILL is started again, and serves;
* SIGTERM to the node stops both, the node exiting 0; SIGKILL to the node stops the child too:
  no web child outlives its node.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.config import parse_config
from scp.tools.simulate.network import Simulator
from scp.tools.simulate.scenarios import Numbers
from scp.tools.simulate.transports import connect_tcp
from tests import tshark
from tests.helpers import eventually, free_port
from tests.integration.test_metrics import add_busy_subscriber, scrape, value
from tests.integration.test_workers import _log, _reap, _until, start_run

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

N = Numbers()


def _config(m3ua: int, web: int) -> str:
    return (
        f'[m3ua]\nlisten = "127.0.0.1:{m3ua}"\nbeat_interval = 0\n[smpp]\nbackend = "console"\n'
        f'[web]\nlisten = "127.0.0.1:{web}"\nnice = 7\n[notify]\nalert_via_hlr = false\n'
        '[log]\nformat = "json"\n'
    )


def _children(log: Path, event: str) -> list[int]:
    """The web children's process IDs the node logged ``event`` for, in order."""
    return [e["pid"] for e in _log(log) if e.get("event") == event]


def _running(pid: int) -> bool:
    """The process exists and has not ended (a zombie that nobody reaped yet has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def _get(url: str) -> httpx.Response | None:
    try:
        async with httpx.AsyncClient(timeout=10) as c:
            return await c.get(url)
    except httpx.TransportError:
        return None


@pytest.mark.tshark
async def test_the_node_runs_its_web_in_a_child(
    tmp_path: Path, db_dsn: str, clean_pool: Any
) -> None:
    await add_busy_subscriber(clean_pool)
    m3ua, web = free_port(), free_port()
    conf = tmp_path / "node.toml"
    conf.write_text(_config(m3ua, web))
    log = tmp_path / "run.log"
    proc, stderr = start_run(conf, log, db_dsn)
    base = f"http://127.0.0.1:{web}"
    wire = SctpPcapWriter.open(str(tmp_path / "sim.pcap"))
    conn = None
    stopped: int | None = None
    try:
        (first,) = await _until(
            "the web child serving", lambda: _children(log, "web child serving"), proc
        )
        assert _running(first) and first != proc.pid
        # its CPU priority below the node's by [web] nice
        assert os.getpriority(os.PRIO_PROCESS, first) == min(
            19, os.getpriority(os.PRIO_PROCESS, proc.pid) + 7
        )
        # in the node's session (with autogroup scheduling a session of its own would void
        # that priority against the node), in a process group of its own (no terminal Ctrl-C)
        assert os.getsid(first) == os.getsid(proc.pid) and os.getpgid(first) == first
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            page = await c.get("/login")
            assert page.status_code == 200 and 'action="/login"' in page.text
            assert (await c.get("/healthz")).json()["role"] == "node"

            # the node's state, through the child: its ASP active, the call it took
            conn = await connect_tcp("127.0.0.1", m3ua, capture=wire)
            ready = await c.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {
                "database": {"ready": True, "detail": "reachable"},
                "m3ua": {"ready": True, "detail": "application server active"},
                "smsc": {"ready": True, "detail": "console sink"},
            }
            sim = Simulator(conn.peer, parse_config(conf.read_text()), numbers=N, timeout=10.0)
            call = await sim.call("busy", caller="8613900000001")
            assert call.ok, call.outcome
            got, _ = await scrape(c)
            idp = {"application_context": "CAP-v2-gsmSSF-to-gsmSCF-AC", "operation": "initialDP"}
            assert value(got, "mcn_scp_operations_received_total", **idp) == 1
            assert value(got, "mcn_scp_m3ua_as_state", state="active") == 1
            assert value(got, "mcn_scp_db_pool_size") >= 1  # the node's pool
            assert value(got, "mcn_scp_db_pool_size", process="web") >= 1  # the child's own
            assert value(got, "mcn_scp_workers") == value(got, "mcn_scp_workers_alive") == 1

            # the node does not answer on its link: not ready, and why; the web's own metrics
            os.kill(proc.pid, signal.SIGSTOP)
            stopped = proc.pid
            ready = await c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {
                "database": {"ready": True, "detail": "reachable"},
                "node": {"ready": False, "detail": "the node does not answer on its link"},
            }
            got, _ = await scrape(c)
            assert value(got, "mcn_scp_db_pool_size", process="web") >= 1
            assert value(got, "mcn_scp_workers") == 1 and value(got, "mcn_scp_workers_alive") == 0
            assert value(got, "mcn_scp_operations_received_total", **idp) == 0
            os.kill(proc.pid, signal.SIGCONT)
            stopped = None

            async def ready_again() -> bool:
                return (await c.get("/readyz")).status_code == 200

            await eventually(ready_again, what="ready once the node answers", timeout=10)

        # the child killed: the node starts another, which serves
        os.kill(first, signal.SIGKILL)
        await _until(
            "the web child started again",
            lambda: len(_children(log, "web child serving")) == 2,
            proc,
        )
        (exited,) = [e for e in _log(log) if e.get("event") == "web child exited"]
        assert exited["pid"] == first and exited["status"] == -signal.SIGKILL
        second = _children(log, "web child serving")[1]
        assert second != first and _running(second)
        page2 = await _get(f"{base}/login")
        assert page2 is not None and page2.status_code == 200

        # SIGTERM to the node stops both
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 30)
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        if conn is not None:
            await conn.close()
        wire.close()
        _reap(proc, stderr)
    assert rc == 0, log.read_text()
    assert not _running(second)
    assert _children(log, "web child stopped") == [second]
    assert await _get(f"{base}/healthz") is None  # nobody listens any more
    tshark.assert_clean(tmp_path / "sim.pcap")


async def test_a_web_child_does_not_outlive_its_node(tmp_path: Path, db_dsn: str) -> None:
    """The node killed with SIGKILL cannot stop its child: the child sees the link's end and
    stops by itself."""
    conf = tmp_path / "node.toml"
    conf.write_text(_config(free_port(), free_port()))
    log = tmp_path / "run.log"
    proc, stderr = start_run(conf, log, db_dsn)
    try:
        (child,) = await _until(
            "the web child serving", lambda: _children(log, "web child serving"), proc
        )
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)
        await _until("the web child gone", lambda: not _running(child), None)
    finally:
        _reap(proc, stderr)
    assert any(e.get("event") == "the node is gone: web child stopping" for e in _log(log))
