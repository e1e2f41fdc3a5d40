"""``mcn-scp run --workers 2``: two worker processes behind one listen address (SO_REUSEPORT).

A simulated switch holds two associations that the kernel gave to different workers. It opens
a dialogue on the first (worker A answers with its TID), then sends the continuation, as an STP
loadsharing over the ASPs of the application server would, on the second (worker B gets it).
Worker B hands it to A over the node's local channel; A answers on its own association (the
first, ARCHITECTURE §5). A worker killed with SIGKILL is started again; SIGTERM to the parent
stops both workers cleanly. In the client role each worker brings up its own association.
Every frame either side saw goes through tshark and the strict ASN.1 oracle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from scp.app import Node
from scp.config import parse_config
from scp.core.m3ua_asp import AspState
from scp.primitives import TcContinue, TcEnd
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF
from tests import tshark
from tests.dates import today
from tests.helpers import free_port
from tests.integration.peer import PeerAsp, connect_peer
from tests.integration.test_calls_e2e import ADMIN, CALLEE, Switch, erb, idp, names
from tests.integration.test_calls_e2e import P as provisioning

# The workers are other processes on the machine's clock: the subscriber is provisioned on the
# machine's day (as tests/integration/test_two_nodes.py does), not on a moved one.
pytestmark = [pytest.mark.tshark]

FIRST_WORKER_ID = 10
ATTEMPTS = 24  # associations tried to find one on the other worker: all on one is 2**-23


def _worker_of(peer: PeerAsp, did: int) -> int:
    """The worker that answered dialogue ``did``: the first octet of the TID it gave us."""
    rtid = peer.stack.tcap._dialogues[did].rtid  # noqa: SLF001 - the TID on the wire
    assert rtid is not None and len(rtid) == 4
    return rtid[0]


def _log(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines the workers and the parent wrote so far (a line being written and
    the asyncpg warnings, which are not JSON, left out)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return [e for e in out if isinstance(e, dict)]


async def _until(what: str, found: Callable[[], Any], proc: subprocess.Popen[bytes] | None) -> Any:
    deadline = time.monotonic() + 60
    while not (got := found()):
        assert proc is None or proc.poll() is None, f"mcn-scp run exited while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what}"
        await asyncio.sleep(0.1)
    return got


async def _connect(
    port: int, pcap: Path, proc: subprocess.Popen[bytes], log: Path
) -> tuple[PeerAsp, int]:
    """A new association, ASP-ACTIVE; with the worker that accepted it (from its log line)."""
    peer = await connect_peer(port, pcap)
    await peer.wait(lambda: peer.active, timeout=10)
    assert peer.transport is not None
    me = f"127.0.0.1:{peer.transport.get_extra_info('sockname')[1]}"
    worker = await _until(
        f"association up from {me}",
        lambda: next(
            (
                e["worker"]
                for e in _log(log)
                if e.get("event") == "association up" and e.get("peer") == me
            ),
            None,
        ),
        proc,
    )
    return peer, worker


def start_run(
    conf: Path, log: Path, db_dsn: str, *args: str
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """``mcn-scp run`` on ``conf`` and the database ``db_dsn``, its log in ``log``; the process
    and the log's file (:func:`_reap` closes it)."""
    stderr = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "scp", "--config", str(conf), "run", *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=dict(os.environ, MCN_DATABASE_URL=db_dsn),
    )
    return proc, stderr


def _reap(proc: subprocess.Popen[bytes], stderr: IO[bytes], peers: Sequence[PeerAsp] = ()) -> None:
    """After a test of ``mcn-scp run``: the node killed if it still runs, its log closed, the
    switches' sockets and captures closed."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    stderr.close()
    for p in peers:
        p.close()
        p.finish()


async def _open(sw: Switch) -> tuple[int, int]:
    """A busy-call dialogue opened with InitialDP; (our dialogue, the worker that armed it)."""
    did = sw.begin(AC_CAP_V2_GSMSSF_SCF, idp())
    (armed,) = await sw.next(did)
    assert isinstance(armed, TcContinue), armed
    assert names(sw, armed) == ["RequestReportBCSMEvent", "Continue"]
    return did, _worker_of(sw.peer, did)


async def test_continuation_on_the_other_workers_association_is_answered_by_its_owner(
    tmp_path: Path, db_dsn: str, clean_pool: Any
) -> None:
    await provisioning.add_subscriber(
        clean_pool, ADMIN, CALLEE, today=today(), services=("missed-call", "busy", "voicemail")
    )
    port = free_port()
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'[node]\nworker_id = {FIRST_WORKER_ID}\n[m3ua]\nlisten = "127.0.0.1:{port}"\n'
        '[smpp]\nbackend = "console"\n[ivr]\nmode = "connect"\n'
        '[rating]\nlocal_prefixes = ["86139"]\n'
    )
    proc, stderr = start_run(
        conf,
        tmp_path / "run.log",
        db_dsn,
        "--workers",
        "2",
        "--capture",
        str(tmp_path / "run.pcap"),
    )
    log = tmp_path / "run.log"
    peers: list[PeerAsp] = []
    try:
        await _until(
            "two workers up",
            lambda: sum(e.get("event") == "scp node up" for e in _log(log)) == 2,
            proc,
        )
        peer, owner = await _connect(port, tmp_path / "peer-0.pcap", proc, log)
        peers.append(peer)
        a = Switch(peer)
        did, armed_by = await _open(a)
        assert armed_by == owner and owner in (FIRST_WORKER_ID, FIRST_WORKER_ID + 1)
        b: Switch | None = None
        for i in range(1, ATTEMPTS):
            peer, worker = await _connect(port, tmp_path / f"peer-{i}.pcap", proc, log)
            peers.append(peer)
            if worker != owner:
                b = Switch(peer)
                break
            # the owner's second association to the same switch: answers could take either
            peer.close()
            await asyncio.wait_for(peer.closed.wait(), 5)
        assert b is not None, "every association landed on one worker"

        # The switch's continuation of A's dialogue leaves on B's association.
        a.peer.transport, own = b.peer.transport, a.peer.transport
        try:
            a.cont(did, erb(13, 17))
        finally:
            a.peer.transport = own
        msgs = await a.next(did, 2)
        end = msgs[1]
        assert isinstance(end, TcEnd), end
        ((_, connect),) = a.ops_of(end)
        assert connect.original_called_party_id.digits == CALLEE
        # answered on the owner's own association: B's got no DATA at all
        assert not [m for m in b.peer.received if m[2:4] == b"\x01\x01"]

        # A worker killed outright is started again by the parent and listens again.
        (pid,) = [
            e["pid"]
            for e in _log(log)
            if e.get("event") == "worker started" and e.get("index") == worker - FIRST_WORKER_ID
        ]
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait_for(b.peer.closed.wait(), 10)
        await _until(
            "the killed worker up again",
            lambda: sum(e.get("event") == "scp node up" for e in _log(log)) == 3,
            proc,
        )
        for _ in range(ATTEMPTS):
            peer, up = await _connect(port, tmp_path / f"peer-{len(peers)}.pcap", proc, log)
            peers.append(peer)
            if up == worker:
                break
            peer.close()
            await asyncio.wait_for(peer.closed.wait(), 5)
        else:
            raise AssertionError("no association reached the restarted worker")

        proc.send_signal(signal.SIGTERM)
        for p in peers:
            if p.transport is not None:
                await asyncio.wait_for(p.closed.wait(), 10)
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
    finally:
        _reap(proc, stderr, peers)
    text = log.read_text()
    assert rc == 0, text
    assert text.count("scp node stopped") == 2, text  # the two workers up at the end
    assert "workers stopped" in text
    events = {e.get("event") for e in _log(log)}
    assert "message for another worker dropped" not in events
    assert "forwarded message failed" not in events
    rows = await clean_pool.fetch("SELECT callee, reason, cause FROM missed_call")
    assert [tuple(r) for r in rows] == [(CALLEE, "busy", 17)]
    restarted = worker - FIRST_WORKER_ID
    for name in ("run.pcap.w0", "run.pcap.w1", f"run.pcap.w{restarted}.2"):
        tshark.assert_clean(tmp_path / name)
    for i in range(len(peers)):
        tshark.assert_clean(tmp_path / f"peer-{i}.pcap")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[node]\nworker_id = 250\n", "node.workers"),  # IDs 250..256: past one octet
        ('[m3ua]\nlisten = "127.0.0.1:0"\n', "m3ua.listen"),  # a port each: nothing shared
    ],
)
def test_bad_workers_exit_2_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    conf = tmp_path / "node.toml"
    conf.write_text(toml)
    out = subprocess.run(
        [sys.executable, "-m", "scp", "--config", str(conf), "run", "--workers", "7"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert key in out.stderr


async def test_client_role_workers_each_bring_up_their_own_association(
    tmp_path: Path, db_dsn: str
) -> None:
    """[m3ua] role = client: each worker connects out on its own; the far end (our cores in
    the server role, in this process) sees two ASPs active, and both go down on SIGTERM."""
    far = Node(parse_config('[m3ua]\nlisten = "127.0.0.1:0"\n'), capture=tmp_path / "far.pcap")
    await far.start()
    port = far.transport.listening[0][1]
    conf = tmp_path / "node.toml"
    conf.write_text(
        f"[node]\nworker_id = {FIRST_WORKER_ID}\nworkers = 2\n[m3ua]\nrole = 'client'\n"
        f"peers = ['127.0.0.1:{port}']\nlocal_pc = 200\n[smpp]\nbackend = 'console'\n"
    )
    log = tmp_path / "run.log"
    proc, stderr = start_run(conf, log, db_dsn)
    m3ua = far.stack.m3ua
    try:
        await _until(
            "two ASPs active",
            lambda: sum(m3ua.asp_state(a) is AspState.ACTIVE for a in far.association_ids) == 2,
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 30)
        await _until("both associations gone", lambda: not far.association_ids, proc=None)
    finally:
        _reap(proc, stderr)
        await far.stop()
    text = log.read_text()
    assert rc == 0, text
    assert text.count("scp node stopped") == 2, text
    tshark.assert_clean(tmp_path / "far.pcap")
