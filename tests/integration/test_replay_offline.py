"""Offline replay: captures fed to an in-process SCP with the real users on a real PostgreSQL.

The demo capture's network side must produce the same answers the capture holds (it was made
by the simulator against the §4 call flow) and queue the notification SMS; every third-party
capture in /work/shared/pcaps/real/ replays without error, and every frame our SCP emitted
while answering them is read back by tshark.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scp.config import parse_config
from scp.tools.demo import seed_subscribers
from scp.tools.pcapread import CaptureWarning
from scp.tools.replay.ladder import LadderEntry
from scp.tools.replay.offline import replay_offline
from scp.tools.replay.output import LadderFilter
from tests import strict_asn1, tshark
from tests.dates import today

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "pcaps" / "demo-missed-call.pcap"
REAL = Path("/work/shared/pcaps/real")
REAL_FILES = (
    sorted(p for p in REAL.glob("*") if p.suffix in (".pcap", ".cap")) if REAL.exists() else []
)
PREFS = tshark.PREFS + ("-o", "gsm_map.tcap.ssn:5-10,145,147-150")


def _assert_ours_clean(pcap: Path) -> None:
    """tshark finds no malformed frame and no expert error among the frames our SCP sent, and
    the strict ASN.1 oracle decodes each of them.

    The capture also holds what was fed (third-party bytes, some non-conformant on purpose);
    our SCP's frames are those from InProcessScp.LOCAL (127.0.0.1).
    """
    bad = tshark.fields(
        pcap,
        ["frame.number", "_ws.col.Info", "_ws.expert.message"],
        display_filter="ip.src == 127.0.0.1 && (_ws.malformed || _ws.expert.severity == error)",
        prefs=PREFS,
    )
    assert not bad, bad
    assert tshark.fields(pcap, ["frame.number"], display_filter="ip.src == 127.0.0.1", prefs=PREFS)
    report = strict_asn1.assert_strict(pcap, only_from="127.0.0.1:2905")
    assert report.checked, "no frame of our SCP reached the strict oracle"


def _collect() -> tuple[list[tuple[str, object]], object]:
    seen: list[tuple[str, object]] = []
    return seen, lambda kind, payload: seen.append((kind, payload))


@pytest.mark.tshark
async def test_demo_capture_offline_matches_the_capture(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await seed_subscribers(clean_pool, today=today())
    seen, emit = _collect()
    s = await replay_offline(
        DEMO,
        parse_config(""),
        pool=clean_pool,
        emit=emit,
        compare=True,
        capture_out=tmp_path / "ours.pcap",
    )
    tshark.assert_clean(tmp_path / "ours.pcap", prefs=PREFS)
    dialogues = [p for k, p in seen if k == "dialogue"]
    assert len(dialogues) == 2 and s.fed == 3 and s.warnings == 0
    call, alert = dialogues
    ours = [o.name for e in call.our_answers for o in e.ops]
    theirs = [o.name for e in call.capture_answers for o in e.ops]
    assert ours == theirs == ["requestReportBCSMEvent", "continue", "connect"]
    # AlertServiceCentre returns no value: the End carries the invoke ID alone, no opcode
    # (Q.773 §3.2); the ladder names it after the invoke of the dialogue it answers.
    assert [(o.kind, o.invoke_id, o.code, o.name) for e in alert.our_answers for o in e.ops] == [
        ("result", 1, None, "alertServiceCentre")
    ]
    assert [e.tcap for e in alert.our_answers] == ["End"]
    sms = [p for k, p in seen if k == "sms"]
    assert sms and sms[0]["destination"] == "8613800138000", sms


@pytest.mark.tshark
async def test_itu_capture_replayed_against_a_china_scp(clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The capture is read as ITU (--pc-format itu); what goes to a China-configured SCP and
    what it answers carry 24-bit point codes in three octets (tshark, "Chinese ITU")."""
    from scp.primitives import PointCodeFormat

    await seed_subscribers(clean_pool, today=today())
    seen, emit = _collect()
    cfg = parse_config('[m3ua]\npc_format = "china"\nlocal_pc = 1193046\n')
    out = tmp_path / "china.pcap"
    s = await replay_offline(
        DEMO, cfg, pool=clean_pool, emit=emit, capture_out=out, capture_pcf=PointCodeFormat.ITU
    )
    assert s.fed == 3 and s.warnings == 0
    call, alert = [p for k, p in seen if k == "dialogue"]
    assert [o.name for e in call.our_answers for o in e.ops] == [
        "requestReportBCSMEvent",
        "continue",
        "connect",
    ]
    assert [(o.kind, o.code) for e in alert.our_answers for o in e.ops] == [("result", None)]
    prefs = ("-o", "mtp3.standard:Chinese ITU", *PREFS)
    tshark.assert_clean(out, prefs=prefs)
    called = tshark.fields(
        out, ["sccp.called.chinese_pc"], display_filter="ip.dst == 127.0.0.1", prefs=prefs
    )
    assert called and {r[0].split(",")[1] for r in called} == {"1193046"}, called


async def test_default_ladder_shows_the_whole_call_with_our_answers_beside(clean_pool) -> None:  # type: ignore[no-untyped-def]
    """No option: every SCCP message of the capture in both directions, in capture order, and
    right after each message fed, what our SCP answered to it (same frame number)."""
    from scp.tools.replay.ladder import decode_capture

    await seed_subscribers(clean_pool, today=today())
    seen, emit = _collect()
    await replay_offline(DEMO, parse_config(""), pool=clean_pool, emit=emit)
    ladder = [p for k, p in seen if k == "message"]
    capture = [e for e in ladder if e.source == "capture"]  # type: ignore[attr-defined]
    every = [e.frame for e in decode_capture(DEMO) if isinstance(e, LadderEntry)]
    assert [e.frame for e in capture] == every  # type: ignore[attr-defined]
    assert {e.opc for e in capture} == {100, 200}  # type: ignore[attr-defined]  # both ways
    ours = [(i, e) for i, e in enumerate(ladder) if e.source == "ours"]  # type: ignore[attr-defined]
    assert len(ours) == 3
    for i, e in ours:
        before = [x for x in ladder[:i] if x.source == "capture"]  # type: ignore[attr-defined]
        assert before[-1].frame == e.frame and before[-1].opc == 200, (before[-1], e)  # type: ignore[attr-defined]


async def test_filter_limits_the_ladder_not_the_replay(clean_pool) -> None:  # type: ignore[no-untyped-def]
    await seed_subscribers(clean_pool, today=today())
    seen, emit = _collect()
    s = await replay_offline(
        DEMO,
        parse_config(""),
        pool=clean_pool,
        emit=emit,
        flt=LadderFilter(["op=alertServiceCentre"]),
    )
    shown = [p for k, p in seen if k == "message"]
    assert s.fed == 3
    # the HLR's AlertServiceCentre, and the answers to it of the capture's SCP and of ours (a
    # value-less result, named after the invoke it answers: the filter finds it by that name)
    assert [(e.source, [o.text() for o in e.ops]) for e in shown] == [  # type: ignore[attr-defined]
        ("capture", ["alertServiceCentre(msisdn=8613800138000 sc=8613800000)"]),
        ("ours", ["result:alertServiceCentre"]),
        ("capture", ["result:alertServiceCentre"]),
    ]


@pytest.mark.tshark
@pytest.mark.parametrize("path", REAL_FILES, ids=[p.name for p in REAL_FILES])
async def test_real_capture_replays_offline(path: Path, clean_pool, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seen, emit = _collect()
    # No --ssn: what each subsystem carries is learned from the capture (MANIFEST #1: 200/152).
    s = await replay_offline(
        path,
        parse_config(""),
        pool=clean_pool,
        emit=emit,
        capture_out=tmp_path / "ours.pcap",
        settle=0.02,
    )
    assert s.messages >= len(
        [
            1
            for k, p in seen
            if k == "message" and isinstance(p, LadderEntry) and p.source == "capture"
        ]
    )
    failed = [
        p.reason
        for k, p in seen
        if k == "warning"  # type: ignore[attr-defined]
        and "our SCP failed" in p.reason
    ]  # type: ignore[attr-defined]
    for kind, payload in seen:
        if kind == "warning":
            assert isinstance(payload, CaptureWarning) and payload.reason
    if s.answers:
        _assert_ours_clean(tmp_path / "ours.pcap")
    assert not failed, failed  # our SCP must answer every real capture without raising


DEMO_PCAPS = sorted((ROOT / "pcaps").glob("*.pcap"))


@pytest.mark.tshark
@pytest.mark.parametrize("path", DEMO_PCAPS, ids=[p.name for p in DEMO_PCAPS])
async def test_every_demo_capture_gets_the_answers_it_holds(
    path: Path,
    clean_pool,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """Our SCP answers each captured dialogue as the capture's SCP did (operation by operation).

    The captures were made by the simulator against this SCP (pcaps/README.md); a difference
    means the call flow changed: regenerate them with
    ``python -m scp.tools.simulate.captures pcaps``.
    """
    await seed_subscribers(clean_pool, today=today())
    mode = next((m for m in ("ctr", "etc") if path.stem.endswith(m)), "connect")
    seen, emit = _collect()
    s = await replay_offline(
        path,
        parse_config(f'[ivr]\nmode = "{mode}"\n'),
        pool=clean_pool,
        emit=emit,
        compare=True,
        capture_out=tmp_path / "ours.pcap",
        settle=0.2,
    )
    _assert_ours_clean(tmp_path / "ours.pcap")
    assert s.warnings == 0
    for rep in (p for k, p in seen if k == "dialogue"):
        ours = [(e.tcap, [o.name for o in e.ops]) for e in rep.our_answers]  # type: ignore[attr-defined]
        theirs = [(e.tcap, [o.name for o in e.ops]) for e in rep.capture_answers]  # type: ignore[attr-defined]
        assert ours == theirs, (rep.key, ours, theirs)  # type: ignore[attr-defined]
