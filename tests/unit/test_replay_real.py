"""Replay names, with no options, every operation Wireshark names in the real captures.

For each third-party capture in /work/shared/pcaps/real/ (read in place), tshark runs with the
preferences its MANIFEST.md lists in the "tshark prefs needed" column (the SSN settings that
tell Wireshark which subsystem carries CAMEL or INAP), and replay's ladder decoder runs with
none: it learns from the capture which protocol each subsystem carries. Every CAP, INAP and
GSM MAP operation or error tshark names in a frame must be named by replay in that frame, same
protocol, same code, same name, in the same order. Where tshark gives up part-way through a
frame (malformed), what it did name must be what replay names first.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scp.tools.pcapread import CaptureWarning
from scp.tools.replay.ladder import LadderDecoder, LadderEntry, decode_capture
from tests import tshark

REAL = Path("/work/shared/pcaps/real")
MANIFEST = REAL / "MANIFEST.md"
FILES = sorted(p for p in REAL.glob("*") if p.suffix in (".pcap", ".cap")) if REAL.exists() else []

needs = pytest.mark.skipif(
    not FILES or not MANIFEST.exists() or not Path("/usr/bin/tshark").exists(),
    reason="real captures, their manifest or tshark missing",
)

# Wireshark field of an operation or error code -> protocol; the parent field says which.
CODE_FIELDS = {"camel.local": "cap", "inap.code.local": "inap", "gsm_old.localValue": "map"}
ERROR_PARENTS = {"camel.errorCode", "inap.errcode", "gsm_old.errorCode"}
GAVE_UP = {"_ws.malformed", "_ws.unreassembled", "_ws.short"}

# What replay does not read, by design, so it names nothing where Wireshark may: a raw MTP2
# link (no SIGTRAN), the MTP3 Japan variant (16-bit point codes; tshark names no operation in
# it either: its one opcode is "Unknown"), M3UA draft-06 carrying ISUP (no TCAP at all).
NOT_READ = {
    "ansimap_wireshark-sample_ansi_tcap_over_itu_sccp_over_mtp3_over_mtp2.pcap": "raw MTP2 link",
    "tcap_wireshark-sample_japan_tcap_over_m2pa.pcap": "MTP3 Japan variant",
}


def manifest_prefs(manifest: Path = MANIFEST) -> dict[str, tuple[str, ...]]:
    """File name -> the ``-o`` options of its "tshark prefs needed" column (none: empty)."""
    out: dict[str, tuple[str, ...]] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) < 10 or not cols[1].isdigit():
            continue
        opts: list[str] = []
        for code in re.findall(r"`([^`]*)`", cols[-2]):
            if code.startswith("-o"):
                opts += shlex.split(code)
        out[cols[2].strip("`")] = tuple(opts)
    return out


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


Named = tuple[str, str, int, str]
"""protocol, kind (op | error), code, name."""


def theirs(path: Path, prefs: tuple[str, ...]) -> tuple[dict[int, list[Named]], set[int]]:
    """Per frame, the operations and errors tshark names (PDML), and the malformed frames."""
    xml = subprocess.run(
        [tshark.tshark_path(), "-n", "-r", str(path), *prefs, "-T", "pdml"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    frames: dict[int, list[Named]] = {}
    malformed: set[int] = set()
    for pkt in ET.fromstring(xml).iter("packet"):
        number = int(
            next(f.get("show") or 0 for f in pkt.iter("field") if f.get("name") == "frame.number")
        )
        found: list[Named] = []
        _walk(pkt, (), found)
        # Malformed, or cut short (BoundError: "Unreassembled Packet"): tshark stopped there.
        if any(el.get("name") in GAVE_UP for el in pkt.iter()):
            malformed.add(number)
        if found:
            frames[number] = found
    return frames, malformed


def _walk(el: ET.Element, ancestors: tuple[ET.Element, ...], found: list[Named]) -> None:
    for ch in el:
        name = ch.get("name") or ""
        if name in CODE_FIELDS:
            code = int(ch.get("show") or -1)
            label = (ch.get("showname") or "").split(": ", 1)[-1]
            m = re.fullmatch(r"(.+) \(\d+\)", label)
            op = m.group(1) if m else label
            if op.isdigit() and len(ancestors) >= 1:
                # tshark's INAP names the argument it decoded beside the code
                # (RequestReportBCSMEventArg), and the Info column, not the code itself.
                op = _argument_name(ancestors[-1]) or op
            if op != "Unknown":
                kind = "error" if el.get("name") in ERROR_PARENTS else "op"
                found.append((CODE_FIELDS[name], kind, code, op))
        _walk(ch, (*ancestors, el), found)


def _argument_name(component: ET.Element) -> str | None:
    for f in component:
        n = (f.get("name") or "").split(".", 1)[-1]
        if n.endswith(("Arg_element", "Res_element")):
            return n.rsplit("_", 1)[0][:-3]
    return None


def ours(path: Path) -> tuple[dict[int, list[Named]], list[CaptureWarning]]:
    """Per frame, the operations and errors replay names: no --ssn, nothing but the file."""
    frames: dict[int, list[Named]] = {}
    warnings: list[CaptureWarning] = []
    for item in decode_capture(path, LadderDecoder()):
        if isinstance(item, CaptureWarning):
            warnings.append(item)
            continue
        assert isinstance(item, LadderEntry)
        for o in item.ops:
            if o.kind in ("invoke", "result", "error") and isinstance(o.code, int):
                frames.setdefault(item.frame, []).append(
                    (item.protocol or "?", "error" if o.kind == "error" else "op", o.code, o.name)
                )
    return frames, warnings


def _key(n: Named) -> tuple[str, str, int, str]:
    return n[0], n[1], n[2], _norm(n[3])


def _agree(mine: list[Named], want: list[Named]) -> bool:
    """Same protocol, kind and code one by one, and the same name where tshark gave one (it
    shows a bare code where it decoded no argument to name it by, e.g. INAP code 34 in #6)."""
    if len(mine) != len(want):
        return False
    for m, w in zip(mine, want, strict=True):
        km, kw = _key(m), _key(w)
        if km[:3] != kw[:3] or (not w[3].isdigit() and km[3] != kw[3]) or m[3].isdigit():
            return False
    return True


@needs
def test_manifest_lists_every_capture_with_its_prefs() -> None:
    prefs = manifest_prefs()
    assert {p.name for p in FILES} <= set(prefs), set(p.name for p in FILES) - set(prefs)
    assert prefs["cap_wireshark-sample_camel_m2ua.pcap"] == ("-o", "camel.tcap.ssn:146,152,200")
    assert prefs["isup_wireshark-sample_isup_m3ua-draft6.cap"] == (
        "-o",
        "m3ua.version:Internet Draft version 6",
    )


@needs
@pytest.mark.tshark
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_replay_names_what_tshark_names(path: Path) -> None:
    tshark_ops, malformed = theirs(path, manifest_prefs()[path.name])
    our_ops, _warnings = ours(path)  # warnings are fine; a traceback is not
    if path.name in NOT_READ:
        assert not our_ops, NOT_READ[path.name]
        assert all(n[3].isdigit() for f in tshark_ops.values() for n in f), tshark_ops
        return
    for frame, named in tshark_ops.items():
        mine = our_ops.get(frame, [])
        if frame in malformed:
            # Wireshark gave up part-way (MANIFEST #6: a BoundError after the second
            # component of the Ericsson INAP Begin): what it named is what we named first.
            mine = mine[: len(named)]
        assert _agree(mine, named), (frame, our_ops.get(frame), named)
    # Nothing named where Wireshark saw no CAP, INAP or MAP operation.
    assert set(our_ops) == set(tshark_ops), (sorted(our_ops), sorted(tshark_ops))


@needs
def test_the_camel_sample_needs_no_ssn_option() -> None:
    """MANIFEST #1: SSNs 200 and 152, not 146. Frames 4 and 5 belong to a dialogue whose Begin
    is not in the file; what frames 1-3 show (CAP v2 on those SSNs) names their operations."""
    path = REAL / "cap_wireshark-sample_camel_m2ua.pcap"
    entries = [e for e in decode_capture(path) if isinstance(e, LadderEntry)]
    late = {e.frame: e for e in entries if e.frame in (4, 5)}
    assert [o.name for o in late[4].ops] == ["applyChargingReport", "eventReportBCSM"]
    assert [o.name for o in late[5].ops] == ["releaseCall"]
    assert late[5].ops[0].fields == {"cause": 16}
    assert {e.protocol_from for e in late.values()} == {
        "learned from pc 100 ssn 200",
        "learned from pc 10 ssn 152",
    }
    # Without learning (Wireshark without its preference), the same frames stay raw codes.
    raw = [
        e
        for e in decode_capture(path, LadderDecoder(), learn=False)
        if isinstance(e, LadderEntry) and e.frame == 5
    ]
    assert raw[0].protocol is None and raw[0].ops[0].name == "22"


@needs
def test_ericsson_cs1_plus_is_named_as_inap() -> None:
    """MANIFEST #6: AC 1.2.826.0.1249.51.1.1.1.0.1 (Ericsson INAP CS1+) on SSN 11 -> 6, where
    the standard assignments would say MAP (6 = HLR). The CS1+ arc keeps the CS-1 operation
    codes: all thirteen components are named as INAP, and those whose argument is ETSI's
    (RequestReportBCSMEvent, ConnectToResource) decode with their fields."""
    path = REAL / "inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap"
    begins = [e for e in decode_capture(path) if isinstance(e, LadderEntry) and e.ops]
    assert [e.frame for e in begins] == [3, 16, 19]
    for e in begins:
        assert e.protocol == "inap" and e.protocol_from == "ac", e
        names = [o.name for o in e.ops]
        assert names[:5] == [
            "requestReportBCSMEvent",
            "connectToResource",
            "playAnnouncement",
            "initiateCallAttempt",
            "sendChargingInformation",
        ], names
        assert len(names) == 13 and not any(n.isdigit() for n in names), names
    assert begins[0].ops[0].fields["bcsm_events"] == ["tAbandon", "tDisconnect"]
