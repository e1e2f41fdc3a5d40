"""Replay reads every third-party capture in /work/shared/pcaps/real/ and agrees with Wireshark.

For each file (MANIFEST.md there: provenance, and the tshark preferences each needs) the
operations the replay ladder reports per frame (invoke, result and error codes, in order) must be the
ones tshark reports for the same frame with the same preferences. Files are read in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scp.pcapread import CaptureWarning
from scp.replay import DEFAULT_SSN_PROTOCOLS, LadderDecoder, LadderEntry, decode_capture
from tests import tshark

REAL = Path("/work/shared/pcaps/real")
FILES = sorted(p for p in REAL.glob("*") if p.suffix in (".pcap", ".cap")) if REAL.exists() else []

needs = pytest.mark.skipif(not FILES or not Path("/usr/bin/tshark").exists(),
                           reason="real captures or tshark missing")

# MANIFEST "tshark prefs needed" column, and the same SSN choices for our ladder decoder.
PREFS: dict[str, tuple[tuple[str, ...], dict[int, str]]] = {
    "cap_wireshark-sample_camel_m2ua.pcap": (
        ("-o", "camel.tcap.ssn:146,152,200"), {146: "cap", 152: "cap", 200: "cap"}),
    "inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap": (
        ("-o", "inap.ssn:6,11,106,241", "-o", "gsm_map.tcap.ssn:7-9,145,148-150"),
        {6: "inap", 11: "inap", 106: "inap", 241: "inap", 7: "map", 8: "map", 9: "map"}),
}
# What scp.pcapread does not read, by design (so no operations to compare): raw MTP2 link type,
# MTP3 Japan (16-bit point codes), M3UA draft-06 carrying ISUP (no TCAP at all).
NOT_COMPARABLE = {
    "ansimap_wireshark-sample_ansi_tcap_over_itu_sccp_over_mtp3_over_mtp2.pcap": "raw MTP2 link",
    "tcap_wireshark-sample_japan_tcap_over_m2pa.pcap": "MTP3 Japan variant",
}

# Wireshark 4.0 decodes only part of the component portion (MANIFEST #6), marked or not.
PARTIAL = {"inap_pcapr_ericsson-cs1plus_xudt-segmented_m2pa.pcap"}

OP_FIELDS = ("camel.local", "inap.code.local", "gsm_old.localValue")


def _ours(path: Path, ssn: dict[int, str] | None) -> tuple[dict[int, list[int]], list[object]]:
    dec = LadderDecoder({**DEFAULT_SSN_PROTOCOLS, **ssn} if ssn else None, with_fields=True)
    ops: dict[int, list[int]] = {}
    warnings: list[object] = []
    for item in decode_capture(path, dec):
        if isinstance(item, CaptureWarning):
            warnings.append(item)
            continue
        assert isinstance(item, LadderEntry)
        codes = [o.code for o in item.ops if o.kind in ("invoke", "result", "error")
                 and isinstance(o.code, int)]
        if codes:
            ops.setdefault(item.frame, []).extend(codes)
    return ops, warnings


def _theirs(path: Path, prefs: tuple[str, ...]) -> tuple[dict[int, list[int]], set[int]]:
    rows = tshark.fields(path, ["frame.number", *OP_FIELDS, "_ws.malformed"], prefs=prefs)
    ops: dict[int, list[int]] = {}
    malformed: set[int] = set()
    for row in rows:
        frame = int(row[0])
        codes = [int(v) for col in row[1:1 + len(OP_FIELDS)] if col for v in col.split(",")]
        if codes:
            ops[frame] = codes
        if len(row) > 1 + len(OP_FIELDS) and row[-1]:
            malformed.add(frame)
    return ops, malformed


@needs
@pytest.mark.tshark
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_replay_ops_match_tshark(path: Path) -> None:
    prefs, ssn = PREFS.get(path.name, ((), {}))
    ours, _warnings = _ours(path, ssn)  # warnings are fine; a traceback is not
    if path.name in NOT_COMPARABLE:
        assert not ours, NOT_COMPARABLE[path.name]
        return
    theirs, malformed = _theirs(path, prefs)
    assert set(ours) == set(theirs), f"frames with operations differ: {ours} vs {theirs}"
    for frame, codes in theirs.items():
        if frame in malformed or path.name in PARTIAL:
            # Wireshark gives up part-way (MANIFEST: BoundError in the Ericsson INAP Begin):
            # what it did decode must be what we decoded first.
            assert ours[frame][:len(codes)] == codes, (frame, ours[frame], codes)
        else:
            assert ours[frame] == codes, (frame, ours[frame], codes)
