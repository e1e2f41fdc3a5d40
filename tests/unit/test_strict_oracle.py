"""The strict ASN.1 oracle (tests/strict_asn1.py) over the demo captures, and proof it can fail.

Every frame of every ``pcaps/*.pcap`` must pass tshark and the strict decode. The oracle itself
is checked on hand-made captures: each rule it states refuses the frame that breaks it (the
MAP answer it was written for first), each protocol reaches its own decoder and is counted,
and ``tshark.assert_clean`` fails if a frame tshark reads as TCAP escapes the oracle.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scp.adapters.capture import SctpPcapWriter
from scp.codecs import appctx, inap, ops, tcap
from scp.codecs.numbers import CalledPartyNumber, CallingPartyNumber
from scp.codecs.tcap import Aare, Aarq, MessageType, TcapMessage
from scp.primitives import Invoke, ReturnResult
from tests import strict_asn1, tshark
from tests.helpers import m3ua_data, sccp_udt
from tests.strict_asn1 import check_pcap

ROOT = Path(__file__).resolve().parents[2]
DEMO = sorted((ROOT / "pcaps").glob("*.pcap"))
PREFS = tshark.PREFS + ("-o", "gsm_map.tcap.ssn:6-9,145,147-150")
# The MAP dialogues of the demo captures: Begin from the HLR/VLR, End from the SCP.
MAP_FRAMES = {"demo-missed-call.pcap": 2, "present-vlr.pcap": 2}

SHORT_MSG_ALERT_V2 = (0, 4, 0, 0, 1, 0, 23, 2)
MM_EVENT_REPORTING_V3 = (0, 4, 0, 0, 1, 0, 42, 3)
CAP_V2, CAP_V4 = appctx.CAP_V2_GSMSSF_SCF, appctx.CAP_V4_GSMSSF_SCF
SRF_V2 = appctx.CAP_V2_GSMSRF_SCF
INAP_AC = appctx.INAP_CS1_SSP_SCP

HLR_TID, SCP_TID = bytes.fromhex("09000002"), bytes.fromhex("00000001")
# AlertServiceCentreArg {msisdn 8613912345678, serviceCentreAddress 8613800000}
ASC = bytes.fromhex("3012040891683119325476f80406916831080000")
# NoteMM-Event-Arg {serviceKey 100, eventMet imsi-Attach, imsi, msisdn}
NOTE_MM = bytes.fromhex(
    "301a020164800102810864001032547698f082089168311932 5476f8".replace(" ", "")
)
IDP_CAP = bytes.fromhex("300380012a")  # InitialDPArg {serviceKey 42}

PEER = ("10.0.0.2", 2906)
SCP = ("10.0.0.1", 2905)


def capture(path: Path, frames: list[tuple[bytes, tuple[str, int]]], ssn: int = 146) -> Path:
    """TCAP messages (with their sender) in UDTs on ``ssn``, one M3UA DATA per frame."""
    w = SctpPcapWriter.open(str(path))
    t = time.time()
    for i, (data, src) in enumerate(frames):
        w.write(
            m3ua_data(sccp_udt(data, called_ssn=ssn, calling_ssn=ssn), rc=1),
            ts=t + i / 1000,
            src=src,
            dst=SCP if src == PEER else PEER,
        )
    w.close()
    return path


def begin(ac: tuple[int, ...], *comps: Invoke, otid: bytes = HLR_TID) -> bytes:
    return tcap.encode(
        TcapMessage(MessageType.BEGIN, otid=otid, dialogue=Aarq(ac), components=comps)
    )


def end(ac: tuple[int, ...] | None, *comps: object, dtid: bytes = HLR_TID) -> bytes:
    return tcap.encode(
        TcapMessage(MessageType.END, dtid=dtid, dialogue=Aare(ac) if ac else None, components=comps)
    )  # type: ignore[arg-type]


def problems(path: Path) -> list[str]:
    return [f"{c.frame}: {c.problem}" for c in check_pcap(path).failures]


# -- the demo captures ---------------------------------------------------------------------------


def test_every_demo_capture_is_here() -> None:
    assert len(DEMO) >= 8, DEMO


@pytest.mark.tshark
@pytest.mark.parametrize("pcap", DEMO, ids=[p.name for p in DEMO])
def test_demo_capture_passes_tshark_and_the_strict_oracle(pcap: Path) -> None:
    tshark.assert_clean(pcap, prefs=PREFS)  # tshark, then the strict oracle on every frame
    report = check_pcap(pcap)
    assert not report.failures
    # Every message after the M3UA handshake is TCAP and was decoded, both directions.
    assert set(report.not_checked) == {"M3UA management"}
    rows = tshark.fields(pcap, ["frame.number"], display_filter="tcap", prefs=PREFS)
    assert report.tcap_frames == {int(r[0]) for r in rows}
    counts = report.counts()
    assert counts["map"] == MAP_FRAMES.get(pcap.name, 0)
    assert counts["cap"] >= 4 and set(counts) <= {"cap", "map"}
    assert {c.src for c in report.checked} == {"10.0.0.1:2905", "10.0.0.2:2906"}


# -- what the oracle refuses ------------------------------------------------------------------------


def test_alert_service_centre_answer_opcode_without_parameter_is_refused(tmp_path: Path) -> None:
    asc = begin(SHORT_MSG_ALERT_V2, Invoke(1, 64, ASC))
    # What the SCP used to send: result { opcode 64 } and no parameter (Q.773 §3.2 forbids it).
    old = bytes.fromhex(
        "643e490409000002"
        "6b2a2828060700118605010101a01d611b80020780a109060704000001001702"
        "a203020100a305a103020100"
        "6c0aa208020101"
        "3003020140"
    )
    path = capture(tmp_path / "old.pcap", [(asc, PEER), (old, SCP)], ssn=8)
    (bad,) = problems(path)
    assert bad.startswith("2: TCAP-MAP:") and "missing mandatory component, result" in bad
    # What the encoder sends now for the same ReturnResult: the invoke ID alone.
    new = end(SHORT_MSG_ALERT_V2, ReturnResult(1, 64))
    assert new.endswith(bytes.fromhex("6c05a203020101"))
    path = capture(tmp_path / "new.pcap", [(asc, PEER), (new, SCP)], ssn=8)
    assert problems(path) == []
    assert check_pcap(path).counts() == {"map": 2}


def test_a_mandatory_result_value_left_out_is_refused(tmp_path: Path) -> None:
    note = begin(MM_EVENT_REPORTING_V3, Invoke(1, 89, NOTE_MM))
    bare = end(MM_EVENT_REPORTING_V3, ReturnResult(1, 89))  # invoke ID alone: no NoteMM-Event-Res
    path = capture(tmp_path / "bare.pcap", [(note, PEER), (bare, SCP)], ssn=147)
    (bad,) = problems(path)
    assert "operation 89" in bad and "mandatory" in bad
    full = end(MM_EVENT_REPORTING_V3, ReturnResult(1, 89, b"\x30\x00"))
    path = capture(tmp_path / "full.pcap", [(note, PEER), (full, SCP)], ssn=147)
    assert problems(path) == []


@pytest.mark.parametrize(("protocol", "ac", "ssn"), [("cap", CAP_V2, 146), ("inap", INAP_AC, 241)])
def test_activity_test_is_answered_by_the_invoke_id_alone(
    tmp_path: Path, protocol: str, ac: tuple[int, ...], ssn: int
) -> None:
    """ActivityTest (CAP and INAP opcode 55) returns no value: RETURN RESULT TRUE."""
    probe = begin(ac, Invoke(1, 55), otid=SCP_TID)
    ok = end(ac, ReturnResult(1, 55), dtid=SCP_TID)
    assert ok.endswith(bytes.fromhex("6c05a203020101"))
    path = capture(tmp_path / "ok.pcap", [(probe, SCP), (ok, PEER)], ssn=ssn)
    assert problems(path) == [] and check_pcap(path).counts() == {protocol: 2}
    opcode_only = ok[:-7] + bytes.fromhex("6c0aa2080201013003020137")
    opcode_only = bytes((opcode_only[0], len(opcode_only) - 2)) + opcode_only[2:]
    path = capture(tmp_path / "bad.pcap", [(probe, SCP), (opcode_only, PEER)], ssn=ssn)
    (bad,) = problems(path)
    assert "missing mandatory component, result" in bad


def test_re_encoding_catches_what_pycrate_drops_silently(tmp_path: Path) -> None:
    # SpecializedResourceReportArg is NULL in CAP phase 2 (05 00) and a CHOICE in phase 4:
    # pycrate's v4 decoder drops the phase 2 form without a word; the re-encode sees it.
    srr = Invoke(1, 49, b"\x05\x00")
    for ac, refused in ((SRF_V2, False), (appctx.CAP_V4_GSMSRF_SCF, True)):
        path = capture(tmp_path / "srr.pcap", [(begin(ac, srr), PEER)])
        assert bool(problems(path)) is refused, ac
    # A long-form length where the short form fits: BER allows it, re-encoding does not.
    padded = Invoke(1, 0, bytes.fromhex("308103") + IDP_CAP[2:])
    msg = begin(CAP_V2, padded)
    assert tcap.decode(msg).components == (padded,)  # well-formed BER, as we read it
    (bad,) = problems(capture(tmp_path / "long.pcap", [(msg, PEER)]))
    assert "re-encodes to different octets" in bad


def test_an_argument_not_of_its_type_is_refused(tmp_path: Path) -> None:
    empty = Invoke(1, 0, b"\x30\x00")  # InitialDPArg without its mandatory serviceKey
    (bad,) = problems(capture(tmp_path / "cap.pcap", [(begin(CAP_V2, empty), PEER)]))
    assert "argument is not a value of its type" in bad
    (bad,) = problems(capture(tmp_path / "inap.pcap", [(begin(INAP_AC, empty), PEER)], 241))
    assert bad.startswith("1: INAP invoke 0:")


def test_each_protocol_reaches_its_own_decoder(tmp_path: Path) -> None:
    code, idp = inap.CODEC.encode_arg(
        ops.InitialDP(
            service_key=100,
            called_party_number=CalledPartyNumber("8613800138000"),
            calling_party_number=CallingPartyNumber("8613900139000"),
            event_type_bcsm=12,
        ),
        ac=INAP_AC,
    )
    frames = [
        capture(
            tmp_path / "map.pcap",
            [
                (begin(SHORT_MSG_ALERT_V2, Invoke(1, 64, ASC)), PEER),
                (end(None, ReturnResult(1, 64)), SCP),
            ],
            ssn=8,
        ),
        capture(
            tmp_path / "cap.pcap",
            [(begin(CAP_V2, Invoke(1, 0, IDP_CAP)), PEER), (end(None, Invoke(2, 31)), SCP)],
        ),
        capture(
            tmp_path / "inap.pcap",
            [(begin(INAP_AC, Invoke(1, code, idp)), PEER), (end(None, Invoke(2, 31)), SCP)],
            ssn=241,
        ),
    ]
    before = strict_asn1.TOTALS.copy()
    counts = [check_pcap(p).counts() for p in frames]
    # The End carries no context: its protocol comes from the dialogue its dtid names.
    assert counts == [{"map": 2}, {"cap": 2}, {"inap": 2}]
    assert strict_asn1.TOTALS - before == {"map": 2, "cap": 2, "inap": 2}


@pytest.mark.tshark
def test_only_from_leaves_out_the_other_sides_frames(tmp_path: Path) -> None:
    broken_peer = begin(CAP_V2, Invoke(1, 0, b"\x30\x00"))
    ours = end(None, Invoke(2, 31))
    path = capture(tmp_path / "mixed.pcap", [(broken_peer, PEER), (ours, SCP)])
    with pytest.raises(AssertionError, match="frame 1"):
        tshark.assert_clean(path)
    tshark.assert_clean(path, strict_only_from="10.0.0.1:2905")
    report = check_pcap(path, only_from="10.0.0.1:2905")
    assert report.excluded_frames == {1} and report.tcap_frames == {2}


@pytest.mark.tshark
def test_assert_clean_fails_if_a_tcap_frame_escapes_the_oracle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = capture(tmp_path / "one.pcap", [(begin(CAP_V2, Invoke(1, 0, IDP_CAP)), PEER)])
    tshark.assert_clean(path)
    monkeypatch.setattr(strict_asn1, "assert_strict", lambda *a, **k: strict_asn1.Report())
    with pytest.raises(AssertionError, match=r"did not check frames \[1\]"):
        tshark.assert_clean(path)
