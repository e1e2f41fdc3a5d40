"""The simulator's network elements against an in-process SCP, no database (scp/simulate.py).

The SCP side here is the reference call flow of ARCHITECTURE §4 (ReferenceCallUser /
ReferenceMapUser, what the demo captures are made with) or the interim ContinueUser; the real
call handling is exercised in tests/integration/test_simulate_inprocess.py. Every frame both
sides sent is read back by tshark. The demo captures in pcaps/ are regenerated and compared
message by message with the committed ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.config import parse_config
from scp.replay import LadderDecoder, decode_capture
from scp.service.dialogue import ContinueUser
from scp.simulate import (
    DEMO_CAPTURES,
    Numbers,
    ReferenceCallUser,
    ReferenceMapUser,
    Simulator,
    connect_in_process,
    run_load,
    run_scenario,
    write_demo_captures,
)
from tests import tshark

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
PREFS = tshark.PREFS + ("-o", "gsm_map.tcap.ssn:6-9,145,147-150")
N = Numbers()


def reference(cfg):  # type: ignore[no-untyped-def]
    return lambda node: [ReferenceCallUser(cfg, {N.subscriber}), ReferenceMapUser()]


@pytest.mark.tshark
@pytest.mark.parametrize(
    "scenario", ["busy", "no-answer", "not-reachable-then-present", "present-vlr"]
)
async def test_scenarios_against_the_reference_flow(scenario: str, tmp_path: Path) -> None:
    cfg = parse_config("")
    pcap = tmp_path / "sim.pcap"
    w = SctpPcapWriter.open(str(pcap))
    conn, _ = await connect_in_process(cfg, users=reference(cfg), capture=w)
    try:
        res = await run_scenario(Simulator(conn.peer, cfg, timeout=2.0), scenario, settle=0.05)
    finally:
        await conn.close()
        w.close()
    assert res.ok, res.as_dict()
    assert res.received == ["requestReportBCSMEvent", "continue", "connect"]
    assert res.outcome == f"connect {cfg.ivr.number}"
    tshark.assert_clean(pcap, prefs=PREFS)
    rows = tshark.fields(
        pcap, ["camel.local", "gsm_old.localValue"], prefs=PREFS, display_filter="tcap"
    )
    codes = [c for row in rows for col in row for c in col.split(",") if c]
    assert codes[:4] == ["0", "23", "31", "24"]  # IDP, RRBE, Continue, ERB: tshark agrees


async def test_interim_continue_user_and_unserved_map(tmp_path: Path) -> None:
    cfg = parse_config("")
    conn, _ = await connect_in_process(cfg, users=lambda node: [ContinueUser()])
    try:
        sim = Simulator(conn.peer, cfg, timeout=2.0)
        res = await run_scenario(sim, "not-reachable-then-present", settle=0.01)
    finally:
        await conn.close()
    assert res.outcome == "continue" and res.received == ["continue"]
    # No MAP user: the dialogue is refused (AARE application-context-name-not-supported).
    assert not res.ok and res.map_outcome and "aborted" in res.map_outcome


async def test_timeout_is_reported_not_raised() -> None:
    cfg = parse_config("")
    conn, scp = await connect_in_process(cfg, users=lambda node: [])
    scp.on_send = None
    try:
        sim = Simulator(conn.peer, cfg, timeout=0.2)
        # Nobody serves CAP: the SCP refuses the dialogue, the simulator says so.
        res = await sim.call("busy")
    finally:
        await conn.close()
    assert not res.ok and res.outcome


async def test_load_against_the_reference_flow() -> None:
    cfg = parse_config("")
    conn, _ = await connect_in_process(cfg, users=reference(cfg))
    try:
        rep = await run_load(Simulator(conn.peer, cfg, timeout=2.0), calls=200, concurrency=20)
    finally:
        await conn.close()
    d = rep.as_dict()
    assert d["ok"] == 200 and d["failed"] == 0 and d["calls_per_s"] > 0
    assert d["outcomes"] == {f"connect {cfg.ivr.number}": 200}
    assert 0 < d["first_answer_ms"]["p50"] <= d["first_answer_ms"]["p99"]


@pytest.mark.tshark
async def test_demo_captures_are_what_the_simulator_makes(tmp_path: Path) -> None:
    results = await write_demo_captures(str(tmp_path), reference=True)
    for name in DEMO_CAPTURES:
        assert results[name].ok, results[name].as_dict()
        fresh, committed = tmp_path / name, ROOT / "pcaps" / name
        tshark.assert_clean(fresh, prefs=PREFS)
        tshark.assert_clean(committed, prefs=PREFS)

        def ladder(p: Path) -> list[tuple[object, ...]]:
            return [
                (
                    e.opc,
                    e.dpc,
                    e.tcap,
                    tuple((o.kind, o.name, tuple(o.fields.items())) for o in e.ops),
                )
                for e in decode_capture(p, LadderDecoder())
                if hasattr(e, "ops")
            ]

        assert ladder(fresh) == ladder(committed), name
