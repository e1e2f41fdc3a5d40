"""The node end to end over loopback M3UA/TCP against a peer ASP.

Handshake, DATA both ways (an InitialDP answered by Continue in TC-END in the proposed
application context), heartbeat, peer disconnect and reconnect, clean shutdown; every frame
both sides saw is read back by tshark.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scp.app import Node
from scp.config import parse_config
from scp.primitives import (
    GlobalTitle,
    Invoke,
    Reject,
    RoutingIndicator,
    SccpAddress,
    TcBegin,
    TcEnd,
    TcUAbort,
)
from scp.service.dialogue import AC_CAP_V2_GSMSSF_SCF, AC_CAP_V4_GSMSSF_SCF, AC_INAP_CS1_SSF_SCF
from tests import tshark
from tests.helpers import free_port
from tests.integration.peer import PeerAsp, connect_peer

# InitialDPArg { serviceKey [0] 100, eventTypeBCSM [28] termAttemptAuthorized (12) }; tag 28
# in one octet (9c): X.690 §8.1.2.2 allows the long form (9f 1c) only from tag 31 on.
IDP_ARG = bytes.fromhex("30068001649c010c")
# USSD-Arg { ussd-DataCodingScheme 0x0f, ussd-String "*100#" (GSM 7-bit packed) }
USSD_ARG = bytes.fromhex("300a04010f0405aa180c3602")

NODE_CONFIG = """
[m3ua]
listen = "127.0.0.1:0"
beat_interval = {beat}
beat_timeout = 2.0
[tcap]
idle_timeout = 5.0
"""

SCP = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613800000"))
MSC = SccpAddress(ri=RoutingIndicator.GT, ssn=146, gt=GlobalTitle("8613900000"))
SCP_INAP = SccpAddress(ri=RoutingIndicator.GT, ssn=241, gt=GlobalTitle("8613800000"))
MSC_INAP = SccpAddress(ri=RoutingIndicator.GT, ssn=241, gt=GlobalTitle("8613900000"))


def idp_begin(
    peer: PeerAsp, ac: tuple[int, ...], *, called: SccpAddress = SCP, calling: SccpAddress = MSC
) -> int:
    did = peer.stack.tcap.new_dialogue_id()
    peer.request(
        TcBegin(
            dialogue_id=did,
            called=called,
            calling=calling,
            application_context=ac,
            components=(Invoke(invoke_id=1, opcode=0, parameter=IDP_ARG),),
        )
    )
    return did


def answers(peer: PeerAsp, did: int) -> list[object]:
    return [i for i in peer.indications if getattr(i, "dialogue_id", None) == did]


async def start_node(tmp_path: Path, *, beat: float = 0.0) -> Node:
    node = Node(parse_config(NODE_CONFIG.format(beat=beat)), capture=tmp_path / "node.pcap")
    await node.start()
    return node


@pytest.mark.tshark
async def test_initialdp_answered_with_continue_in_the_proposed_context(tmp_path: Path) -> None:
    node = await start_node(tmp_path)
    port = node.transport.listening[0][1]
    peer = await connect_peer(port, tmp_path / "peer.pcap")
    try:
        await peer.wait(lambda: peer.active)
        for ac, called, calling in [
            (AC_CAP_V2_GSMSSF_SCF, SCP, MSC),
            (AC_CAP_V4_GSMSSF_SCF, SCP, MSC),
            (AC_INAP_CS1_SSF_SCF, SCP_INAP, MSC_INAP),
        ]:
            did = idp_begin(peer, ac, called=called, calling=calling)
            await peer.wait(lambda did=did: bool(answers(peer, did)))
            (end,) = answers(peer, did)
            assert isinstance(end, TcEnd), end
            assert end.application_context == ac
            (cue,) = end.components
            assert isinstance(cue, Invoke) and cue.opcode == 31 and cue.parameter is None
        # An operation the node does not serve yet gets a Reject, not silence.
        did = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did,
                called=SCP,
                calling=MSC,
                application_context=AC_CAP_V2_GSMSSF_SCF,
                components=(Invoke(invoke_id=5, opcode=22, parameter=bytes.fromhex("04029090")),),
            )
        )
        await peer.wait(lambda: bool(answers(peer, did)))
        (end,) = answers(peer, did)
        assert isinstance(end, TcEnd)
        assert isinstance(end.components[0], Reject) and end.components[0].invoke_id == 5
        # An application context the node does not serve is refused in an AARE.
        did = peer.stack.tcap.new_dialogue_id()
        peer.request(
            TcBegin(
                dialogue_id=did,
                called=SCP,
                calling=MSC,
                application_context=(0, 4, 0, 0, 1, 0, 19, 2),
                components=(Invoke(invoke_id=1, opcode=59, parameter=USSD_ARG),),
            )
        )
        await peer.wait(lambda: bool(answers(peer, did)))
        (ab,) = answers(peer, did)
        assert isinstance(ab, TcUAbort), ab
    finally:
        peer.close()
        await node.stop()
        peer.finish()
    tshark.assert_clean(tmp_path / "node.pcap")
    tshark.assert_clean(tmp_path / "peer.pcap")
    # camel.local / inap.code.local: the local operation code inside the opcode CHOICE.
    rows = tshark.fields(
        tmp_path / "node.pcap",
        ["camel.local", "inap.code.local"],
        display_filter="camel.local || inap.code.local",
    )
    ops = [r for r in rows if any(r)]
    # IDP in, Continue out, for CAP v2, CAP v4 and INAP, plus the rejected ReleaseCall invoke.
    assert sum(1 for r in ops if "0" in r[0].split(",") or "0" in r[1].split(",")) >= 3
    assert sum(1 for r in ops if "31" in r[0].split(",") or "31" in r[1].split(",")) >= 3


@pytest.mark.tshark
async def test_heartbeat_disconnect_reconnect_and_clean_shutdown(tmp_path: Path) -> None:
    node = await start_node(tmp_path, beat=0.2)
    port = node.transport.listening[0][1]
    peer = PeerAsp(tmp_path / "peer.pcap")
    loop = asyncio.get_running_loop()
    try:
        await loop.create_connection(lambda: peer, "127.0.0.1", port)
        await peer.wait(lambda: peer.active)
        # BEAT from the node every 0.2 s, BEAT_ACK from the peer's M3UA layer.
        await peer.wait(lambda: sum(1 for m in peer.received if m[2:4] == b"\x03\x03") >= 2)
        assert any(m[2:4] == b"\x03\x06" for m in peer.sent)
        # The peer drops the association: the node notices, the peer comes back and works.
        peer.close()
        await peer.closed.wait()
        await asyncio.sleep(0.05)
        assert not node.stack.m3ua.is_active
        await loop.create_connection(lambda: peer, "127.0.0.1", port)
        await peer.wait(lambda: peer.active)
        did = idp_begin(peer, AC_CAP_V2_GSMSSF_SCF)
        await peer.wait(lambda: bool(answers(peer, did)))
        assert isinstance(answers(peer, did)[0], TcEnd)
    finally:
        await node.stop()
    # The node closed its side on stop: the peer sees the association go.
    await asyncio.wait_for(peer.closed.wait(), 2)
    peer.finish()
    tshark.assert_clean(tmp_path / "node.pcap")
    tshark.assert_clean(tmp_path / "peer.pcap")


@pytest.mark.tshark
async def test_heartbeat_timeout_drops_a_peer_that_hangs(tmp_path: Path) -> None:
    """A peer that stops answering BEAT (hung, socket still open) is dropped after
    beat_timeout, and the node's M3UA state follows."""
    node = await start_node(tmp_path, beat=0.2)
    port = node.transport.listening[0][1]
    peer = await connect_peer(port, tmp_path / "peer.pcap")
    try:
        await peer.wait(lambda: peer.active)
        peer.deaf = True
        await asyncio.wait_for(peer.closed.wait(), 10)  # 0.2 s to the BEAT + 2 s beat_timeout
        assert not node.stack.m3ua.is_active
    finally:
        peer.close()
        await node.stop()
        peer.finish()
    tshark.assert_clean(tmp_path / "node.pcap")
    rows = tshark.fields(tmp_path / "node.pcap", ["m3ua.message_class", "m3ua.message_type"])
    assert ["3", "3"] in rows  # the BEAT that went unanswered


@pytest.mark.tshark
async def test_mcn_scp_run_shuts_down_cleanly_on_sigterm_and_sigint(
    tmp_path: Path, db_dsn: str
) -> None:
    # asyncio's loop with either signal, and uvloop ([node] event_loop's default) with one
    for sig, loop in (
        (signal.SIGTERM, "asyncio"),
        (signal.SIGINT, "asyncio"),
        (signal.SIGTERM, "uvloop"),
    ):
        port = free_port()
        conf = tmp_path / f"node-{sig}-{loop}.toml"
        conf.write_text(
            f'[node]\nevent_loop = "{loop}"\n[m3ua]\nlisten = "127.0.0.1:{port}"\n'
            '[smpp]\nbackend = "console"\n'
        )
        env = dict(os.environ, MCN_CONFIG=str(conf), MCN_DATABASE_URL=db_dsn)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scp",
                "run",
                "--config",
                str(conf),
                "--capture",
                str(tmp_path / f"run-{sig}-{loop}.pcap"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            peer = None
            deadline = time.monotonic() + 20
            while peer is None:
                try:
                    peer = await connect_peer(port, tmp_path / f"peer-{sig}-{loop}.pcap")
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    await asyncio.sleep(0.1)
            await peer.wait(lambda p=peer: p.active, timeout=10)
            did = idp_begin(peer, AC_CAP_V2_GSMSSF_SCF)
            await peer.wait(lambda p=peer, d=did: bool(answers(p, d)))
            proc.send_signal(sig)
            await asyncio.wait_for(peer.closed.wait(), 5)
            # ASP-DOWN sent before the socket closed (an unsolicited ASPDN_ACK, RFC 4666 §4.3.4.2)
            assert any(m[2:4] == b"\x03\x04" for m in peer.received), "no ASPDN_ACK from the node"
            rc = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
        finally:
            if proc.poll() is None:
                proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
        assert rc == 0, err
        assert "scp node stopped" in err
        # what was loaded at start (the codecs' ASN.1 above all) is out of the collector's reach
        events = {e["event"]: e for e in map(json.loads, filter(None, err.splitlines()))}
        assert events["scp node up"]["event_loop"] == loop, err
        assert events["long-lived objects frozen"]["objects"] > 100_000, err
        peer.finish()
        tshark.assert_clean(tmp_path / f"run-{sig}-{loop}.pcap")
        tshark.assert_clean(tmp_path / f"peer-{sig}-{loop}.pcap")


def test_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text('[m3ua]\ntraffic_mode = "roundrobin"\n')
    out = subprocess.run(
        [sys.executable, "-m", "scp", "run", "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "m3ua.traffic_mode" in out.stderr


async def test_client_role_connects_brings_asp_active_and_reconnects(tmp_path: Path) -> None:
    """[m3ua] role = client: the node connects out, goes ASP-ACTIVE, and after the far end
    goes away it reconnects with backoff once the far end is back (both ends our cores)."""
    far = Node(parse_config(NODE_CONFIG.format(beat=0)), capture=tmp_path / "far.pcap")
    await far.start()
    port = far.transport.listening[0][1]
    client_cfg = parse_config(
        "[node]\nworker_id = 9\n[m3ua]\nrole = 'client'\n"
        f"peers = ['127.0.0.1:{port}']\nlocal_pc = 200\nbeat_interval = 0\n"
        "ack_timeout = 0.2\nreconnect_min = 0.05\nreconnect_max = 0.2\n"
    )
    client = Node(client_cfg, capture=tmp_path / "client.pcap")
    await client.start()

    async def until(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.02)

    try:
        await until(lambda: client.stack.m3ua.is_active and far.stack.m3ua.is_active)
        await far.stop()  # the far end goes: unsolicited ASPDN_ACK, then the socket closes
        await until(lambda: not client.stack.m3ua.is_active)
        far = Node(
            parse_config(
                NODE_CONFIG.format(beat=0).replace(
                    'listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'
                )
            ),
            capture=tmp_path / "far2.pcap",
        )
        await far.start()
        await until(lambda: client.stack.m3ua.is_active and far.stack.m3ua.is_active)
    finally:
        await client.stop()
        await far.stop()
    for name in ("far.pcap", "client.pcap", "far2.pcap"):
        tshark.assert_clean(tmp_path / name)
