"""The simulator against an in-process SCP with the real call handling and MAP users.

Every scenario of ``mcn-scp simulate`` runs against the node's own cores and TC-users on a real
PostgreSQL (tests/conftest.py); what both sides sent is read back by tshark, and the database
shows the effect: the missed call recorded, the notification SMS queued. The demo captures
in pcaps/ are regenerated the same way and compared with the committed ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.config import parse_config
from scp.flows import provisioning as prov
from scp.tools.demo import seed_subscribers
from scp.tools.replay.ladder import LadderDecoder, LadderEntry, decode_capture
from scp.tools.simulate.captures import DEMO_CAPTURES, IVR_CAPTURES, write_demo_captures
from scp.tools.simulate.load import run_load
from scp.tools.simulate.network import Simulator, run_scenario
from scp.tools.simulate.scenarios import SCENARIOS, Numbers
from scp.tools.simulate.transports import connect_in_process
from tests import tshark
from tests.dates import today

pytestmark = pytest.mark.asyncio(loop_scope="session")

N = Numbers()
ROOT = Path(__file__).resolve().parents[2]
PREFS = tshark.PREFS + ("-o", "gsm_map.tcap.ssn:6-9,145,147-150")

# Every scenario in connect mode; the caller menu and self-service also with the SRF in the
# switch (ctr) and on a media server (etc: AssistRequestInstructions in its own dialogue).
CASES = [(s, "connect") for s in SCENARIOS] + [
    (s, m) for m in ("ctr", "etc") for s in SCENARIOS if s.startswith(("menu-", "selfcare"))
]

# What the SCP must have sent for the scenario to have done its job (TS 29.078 operations).
EXPECT = {
    ("menu-voicemail", "ctr"): "connect 8613800200",
    ("menu-operator", "ctr"): "connect 8613800100",
    ("menu-other-number", "ctr"): "connect " + N.other,
    ("menu-voicemail", "etc"): "connect 8613800200",
    ("menu-operator", "etc"): "connect 8613800100",
    ("menu-other-number", "etc"): "connect " + N.other,
}


async def _seed(pool) -> None:  # type: ignore[no-untyped-def]
    actor = prov.Actor("cli", "test")
    await prov.add_subscriber(
        pool,
        actor,
        N.subscriber,
        today=today(),
        services=("missed-call", "busy", "voicemail"),
        pin=N.pin,
        language="en",
    )


@pytest.mark.tshark
@pytest.mark.parametrize(("scenario", "mode"), CASES)
async def test_scenario_against_real_users(
    scenario: str,
    mode: str,
    clean_pool,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    await _seed(clean_pool)
    cfg = parse_config(f'[ivr]\nmode = "{mode}"\n')
    pcap = tmp_path / f"{scenario}.pcap"
    w = SctpPcapWriter.open(str(pcap))
    conn, _scp = await connect_in_process(cfg, pool=clean_pool, capture=w)
    try:
        sim = Simulator(conn.peer, cfg, numbers=N, timeout=3.0)
        res = await run_scenario(sim, scenario, settle=0.3, pool=clean_pool)
    finally:
        await conn.close()
        w.close()
    tshark.assert_clean(pcap, prefs=PREFS)
    assert res.ok, res.as_dict()
    # The verdict: everything the scenario is about happened, except a caller-menu choice in
    # connect mode, which the IVR runs (reported as not checked, never as ok).
    menu_elsewhere = mode == "connect" and scenario.startswith("menu-")
    assert res.status == ("not checked" if menu_elsewhere else "ok"), res.as_dict()
    assert res.verdict is not None and not res.verdict.missing, res.as_dict()
    if (scenario, mode) in EXPECT:
        assert res.outcome == EXPECT[(scenario, mode)], res.as_dict()
    if mode == "connect" and scenario != "selfcare-pin":
        assert res.outcome == f"connect {cfg.ivr.number}", res.as_dict()
    missed = await clean_pool.fetch("SELECT caller, callee FROM missed_call")
    if scenario == "selfcare-pin":
        assert (
            res.received[0] == "connectToResource" or "establishTemporaryConnection" in res.received
        ), res.as_dict()
        assert (
            res.received.count("promptAndCollectUserInformation")
            + res.received.count("srf:promptAndCollectUserInformation")
            >= 2
        )  # PIN, then menu
        return
    assert [(r["caller"], r["callee"]) for r in missed] == [(N.caller, N.subscriber)]
    sms = await clean_pool.fetch("SELECT destination FROM sms_outbox")
    assert N.subscriber in {r["destination"] for r in sms}
    if scenario in ("not-reachable-then-present", "present-vlr"):
        assert "acknowledged" in (res.map_outcome or ""), res.as_dict()


async def test_a_scenario_whose_outcome_contradicts_it(clean_pool) -> None:  # type: ignore[no-untyped-def]
    """menu-voicemail in ctr mode for a subscriber without the voicemail service: the SCP
    plays the menu again on '2' and the call ends elsewhere; no voice message is recorded."""
    await prov.add_subscriber(
        clean_pool,
        prov.Actor("cli", "test"),
        N.subscriber,
        services=("missed-call", "busy"),
        pin=N.pin,
        language="en",
        today=today(),
    )
    cfg = parse_config('[ivr]\nmode = "ctr"\n')
    conn, _scp = await connect_in_process(cfg, pool=clean_pool)
    try:
        res = await run_scenario(
            Simulator(conn.peer, cfg, numbers=N, timeout=3.0),
            "menu-voicemail",
            settle=0.2,
            pool=clean_pool,
        )
    finally:
        await conn.close()
    assert res.status == "contradicted", res.as_dict()
    assert res.verdict is not None
    assert "no voice message recorded" in res.verdict.missing, res.as_dict()
    assert any(
        m.startswith("voice message: no connect to 8613800200") for m in res.verdict.missing
    ), res.as_dict()
    assert "missed call recorded (busy)" in res.verdict.checked  # what did happen, said too


async def test_load_mode_reports_rates(clean_pool) -> None:  # type: ignore[no-untyped-def]
    await _seed(clean_pool)
    cfg = parse_config("")
    conn, _scp = await connect_in_process(cfg, pool=clean_pool)
    try:
        rep = await run_load(
            Simulator(conn.peer, cfg, numbers=N, timeout=5.0), calls=40, concurrency=8
        )
    finally:
        await conn.close()
    d = rep.as_dict()
    assert d["ok"] == 40 and d["failed"] == 0, d
    assert d["calls_per_s"] > 0 and d["first_answer_ms"]["p50"] > 0
    assert await clean_pool.fetchval("SELECT count(*) FROM missed_call") == 40


@pytest.mark.tshark
async def test_china_point_codes_end_to_end(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A node on China's national network (24-bit point codes, three octets in SCCP): the
    missed call and the HLR's alert go through, and tshark set to "Chinese ITU" reads every
    message both sides sent with the point codes we meant."""
    await _seed(clean_pool)
    scp_pc = 0x123456
    cfg = parse_config(f'[m3ua]\npc_format = "china"\nlocal_pc = {scp_pc}\n')
    pcap = tmp_path / "china.pcap"
    w = SctpPcapWriter.open(str(pcap))
    conn, _scp = await connect_in_process(cfg, pool=clean_pool, capture=w)
    try:
        sim = Simulator(conn.peer, cfg, numbers=N, timeout=3.0)
        res = await run_scenario(sim, "not-reachable-then-present", settle=0.3)
    finally:
        await conn.close()
        w.close()
    prefs = ("-o", "mtp3.standard:Chinese ITU", *PREFS)
    tshark.assert_clean(pcap, prefs=prefs)
    assert res.ok and "acknowledged" in (res.map_outcome or ""), res.as_dict()
    rows = tshark.fields(
        pcap,
        [
            "m3ua.protocol_data_opc",
            "m3ua.protocol_data_dpc",
            "sccp.called.chinese_pc",
            "sccp.calling.chinese_pc",
        ],
        display_filter="sccp",
        prefs=prefs,
    )
    assert rows
    seen = set()
    for opc, dpc, called, calling in rows:
        seen |= {int(opc), int(dpc)}
        for pc in (called, calling):
            if pc:  # "18-52-86,1193046,0x123456": the decimal value is the second field
                seen.add(int(pc.split(",")[1]))
    assert scp_pc in seen and seen <= {scp_pc, 200}


@pytest.mark.tshark
async def test_demo_captures_are_what_the_simulator_makes(
    clean_pool,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """The captures in pcaps/ are what the simulator writes today against the node's own
    TC-users, message by message (pcaps/README.md: how to regenerate them)."""
    await seed_subscribers(clean_pool, today=today())
    results = await write_demo_captures(tmp_path, clean_pool)
    assert sorted(results) == sorted([*DEMO_CAPTURES, *IVR_CAPTURES])
    for name, res in results.items():
        assert res.ok, (name, res.as_dict())
        fresh, committed = tmp_path / name, ROOT / "pcaps" / name
        tshark.assert_clean(fresh, prefs=PREFS)

        def ladder(p: Path) -> list[tuple[object, ...]]:
            return [
                (
                    e.opc,
                    e.dpc,
                    e.tcap,
                    tuple((o.kind, o.name, tuple(o.fields.items())) for o in e.ops),
                )
                for e in decode_capture(p, LadderDecoder())
                if isinstance(e, LadderEntry)
            ]

        assert ladder(fresh) == ladder(committed), name
