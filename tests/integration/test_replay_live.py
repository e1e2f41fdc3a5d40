"""Live replay and the ``make run`` demo against a running node over M3UA/TCP.

The node runs with the real call handling and MAP users on a real PostgreSQL; the replay plays
the switch and HLR of ``pcaps/demo-missed-call.pcap`` toward it, rewriting transaction IDs so
the capture's EventReportBCSM reaches the dialogue the node opened. Every frame both ways is
written to a pcap and read back by tshark.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scp.app import Node, build_users
from scp.config import parse_config
from scp.tools.demo import run_demo, seed_subscribers
from scp.tools.replay.feed import NumberRewriter
from scp.tools.replay.live import replay_live
from scp.tools.simulate.network import Simulator, run_scenario
from scp.tools.simulate.scenarios import Numbers
from scp.tools.simulate.transports import connect_tcp
from tests import tshark
from tests.dates import today
from tests.helpers import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo-missed-call.pcap"
PREFS = tshark.PREFS + ("-o", "gsm_map.tcap.ssn:6-9,145,147-150")
N = Numbers()


async def _node(pool, tmp_path: Path) -> Node:  # type: ignore[no-untyped-def]
    cfg = parse_config('[m3ua]\nlisten = "127.0.0.1:0"\nbeat_interval = 0\n')
    node = Node(cfg, users=build_users(pool, cfg), capture=tmp_path / "node.pcap")
    await node.start()
    return node


@pytest.mark.tshark
async def test_live_replay_of_the_demo_capture_queues_the_sms(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await seed_subscribers(clean_pool, today=today())
    node = await _node(clean_pool, tmp_path)
    seen: list[tuple[str, object]] = []
    try:
        port = node.transport.listening[0][1]
        s = await replay_live(
            DEMO,
            node.cfg,
            f"127.0.0.1:{port}",
            emit=lambda k, p: seen.append((k, p)),
            speed=None,
            capture_out=tmp_path / "replay.pcap",
        )
    finally:
        await node.stop()
    ours = [p for k, p in seen if k == "message" and getattr(p, "source", "") == "ours"]
    sent = [p for k, p in seen if k == "message" and getattr(p, "source", "") == "sent"]
    # IDP, ERB (its dtid rewritten to the node's otid), AlertServiceCentre.
    assert [o.name for e in sent for o in e.ops] == [
        "initialDP",
        "eventReportBCSM",
        "alertServiceCentre",
    ]
    names = [o.name for e in ours for o in e.ops]
    assert names[:2] == ["requestReportBCSMEvent", "continue"]
    # the AlertServiceCentre answer: the invoke ID alone (no value, so no opcode), named by
    # the ladder after the invoke it answers
    assert "connect" in names and names[-1] == "alertServiceCentre"
    assert s.unanswered == 0 and len(s.latencies) >= 3 and s.warnings == 0
    tshark.assert_clean(tmp_path / "replay.pcap", prefs=PREFS)
    tshark.assert_clean(tmp_path / "node.pcap", prefs=PREFS)
    missed = await clean_pool.fetch("SELECT caller, callee FROM missed_call")
    assert [(r["caller"], r["callee"]) for r in missed] == [(N.caller, N.subscriber)]
    assert await clean_pool.fetchval("SELECT count(*) FROM sms_outbox") >= 1


@pytest.mark.tshark
async def test_rewrite_number_reaches_another_subscriber(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from scp.flows import provisioning as prov

    other = "8613800138999"
    await prov.add_subscriber(
        clean_pool, prov.Actor("cli", "t"), other, today=today(), services=("missed-call", "busy")
    )
    node = await _node(clean_pool, tmp_path)
    try:
        port = node.transport.listening[0][1]
        await replay_live(
            DEMO,
            node.cfg,
            f"127.0.0.1:{port}",
            emit=lambda k, p: None,
            numbers=NumberRewriter([f"{N.subscriber}={other}"]),
            capture_out=tmp_path / "replay.pcap",
        )
    finally:
        await node.stop()
    tshark.assert_clean(tmp_path / "replay.pcap", prefs=PREFS)
    callee = tshark.fields(
        tmp_path / "replay.pcap", ["e164.called_party_number.digits"], prefs=PREFS
    )
    assert any(other in row[0] for row in callee if row[0])
    missed = await clean_pool.fetch("SELECT callee FROM missed_call")
    assert [r["callee"] for r in missed] == [other]


async def test_live_replay_to_nowhere_is_a_connection_error(tmp_path: Path) -> None:
    cfg = parse_config("")
    with pytest.raises(ConnectionError):
        await replay_live(
            DEMO,
            cfg,
            "127.0.0.1:9",
            emit=lambda k, p: None,
        )


@pytest.mark.tshark
async def test_simulator_over_tcp(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from scp.adapters.capture import SctpPcapWriter

    await seed_subscribers(clean_pool, today=today())
    node = await _node(clean_pool, tmp_path)
    w = SctpPcapWriter.open(str(tmp_path / "sim.pcap"))
    try:
        port = node.transport.listening[0][1]
        conn = await connect_tcp("127.0.0.1", port, capture=w)
        try:
            res = await run_scenario(Simulator(conn.peer, node.cfg, numbers=N), "busy")
        finally:
            await conn.close()
    finally:
        w.close()
        await node.stop()
    assert res.ok and res.outcome == f"connect {node.cfg.ivr.number}", res.as_dict()
    tshark.assert_clean(tmp_path / "sim.pcap", prefs=PREFS)


async def test_run_demo_narrates_and_shows_the_sms(clean_pool, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    node = await _node(clean_pool, tmp_path)
    try:
        await run_demo(node, clean_pool, node.cfg, wait_sms=3.0)
    finally:
        await node.stop()
    out = capsys.readouterr().out
    print(out)
    assert "[demo]" in out and "SMS to 8613800138000" in out, out
    assert "Ctrl-C" in out
    # the brief's example products, 2 元 a month each
    assert "products priced at 2.00 CNY a month: missed-call, busy" in out
    prices = await clean_pool.fetch("SELECT service, monthly_fee FROM product_price ORDER BY 1")
    assert [tuple(r) for r in prices] == [("busy", 2), ("missed-call", 2)]


@pytest.mark.tshark
async def test_make_run_demo_on_the_default_event_loop(
    clean_pool, db_dsn: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """What ``make run`` runs, as a process: conf/example.toml (uvloop, the default loop), the
    demo's replay client on the node's own loop. The in-process test above runs on pytest's
    asyncio loop, which let an ``isinstance(transport, asyncio.Transport)`` that uvloop's
    transports fail hide the demo's failure from the suite."""
    conf = tmp_path / "example.toml"
    text = (ROOT / "conf" / "example.toml").read_text()
    for addr in ("127.0.0.1:2905", "127.0.0.1:8080"):
        assert addr in text, addr  # the ports make run uses, moved off the machine's own
        text = text.replace(addr, f"127.0.0.1:{free_port()}")
    conf.write_text(text)
    env = dict(os.environ, MCN_DATABASE_URL=db_dsn, MCN_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "scp", "run", "--config", str(conf), "--demo"]
    cmd += ["--capture", str(tmp_path / "run.pcap")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def read_until_the_sms() -> list[str]:
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "SMS to" in line or "stopped early" in line or "no SMS queued" in line:
                break
        return lines

    try:
        lines = await asyncio.wait_for(asyncio.to_thread(read_until_the_sms), 90)
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 20)
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = "".join(lines), proc.stderr.read() if proc.stderr else ""
    assert rc == 0, err
    assert "SMS to 8613800138000" in out, out + err
    assert "stopped early" not in out and "Traceback" not in err, out + err
    events = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert any(e.get("event_loop") == "uvloop" for e in events), err
    tshark.assert_clean(tmp_path / "run.pcap", prefs=PREFS)


async def test_cli_live_replay_with_filter(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]

    from click.testing import CliRunner

    from tests.unit.test_replay import _cli

    main = _cli()
    await seed_subscribers(clean_pool, today=today())
    node = await _node(clean_pool, tmp_path)
    try:
        port = node.transport.listening[0][1]
        res = await asyncio.to_thread(
            CliRunner().invoke,
            main,
            [
                "replay",
                str(DEMO),
                "--target",
                f"127.0.0.1:{port}",
                "--speed",
                "10",
                "--filter",
                "protocol=map",
            ],
        )
    finally:
        await node.stop()
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert any("=>" in x and "alertServiceCentre" in x for x in lines), res.output
    assert any("<=" in x and "answered in" in x for x in lines), res.output
    assert not any("initialDP" in x for x in lines)  # filtered out of the view ...
    assert "unanswered=0" in res.output  # ... but replayed: every dialogue was answered
    assert await clean_pool.fetchval("SELECT count(*) FROM missed_call") == 1
