"""Wireshark as an independent oracle: every frame the SCP emits in a test is read back here.

Tests write what the stack sent with :class:`scp.adapters.capture.SctpPcapWriter` and call
:func:`assert_clean`, which fails if tshark flags any frame malformed or with an expert error,
and :func:`fields` to compare what Wireshark decoded with what we meant to send.
:func:`assert_clean` also runs the strict second oracle (:mod:`tests.strict_asn1`) over every
TCAP message of the same file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from scp.adapters.capture import SctpPcapWriter
from scp.primitives import PointCodeFormat
from tests import strict_asn1

# SSNs as this SCP uses them (ARCHITECTURE §3): CAP 146, MAP 147 (gsmSCF) and 8, INAP 241.
PREFS: tuple[str, ...] = (
    "-o",
    "camel.tcap.ssn:146",
    "-o",
    "gsm_map.tcap.ssn:6-9,145,147-150",
    "-o",
    "inap.ssn:106,241",
)


def tshark_path() -> str:
    path = shutil.which("tshark")
    if path is None:
        raise RuntimeError(
            "tshark is not installed: `make test` installs it (apt-get install tshark)"
        )
    return path


def _run(pcap: Path, args: Sequence[str], prefs: Sequence[str]) -> str:
    cmd = [tshark_path(), "-n", "-r", str(pcap), *prefs, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError(f"tshark failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def fields(
    pcap: Path,
    names: Sequence[str],
    *,
    display_filter: str | None = None,
    prefs: Sequence[str] = PREFS,
) -> list[list[str]]:
    """One row per frame with the named tshark fields (multi-valued fields joined by ',')."""
    args = ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for n in names:
        args += ["-e", n]
    if display_filter:
        args += ["-Y", display_filter]
    out = _run(pcap, args, prefs)
    return [line.split("\t") for line in out.splitlines()]


def packets_json(pcap: Path, *, prefs: Sequence[str] = PREFS) -> list[dict]:
    return json.loads(_run(pcap, ["-T", "json"], prefs) or "[]")


def problems(pcap: Path, *, prefs: Sequence[str] = PREFS) -> list[list[str]]:
    """Frames Wireshark marks malformed or with an expert message of severity error."""
    return fields(
        pcap,
        ["frame.number", "_ws.col.Protocol", "_ws.col.Info", "_ws.expert.message"],
        display_filter="_ws.malformed || _ws.expert.severity == error",
        prefs=prefs,
    )


def assert_clean(
    pcap: Path,
    *,
    expect_frames: int | None = None,
    min_frames: int = 1,
    prefs: Sequence[str] = PREFS,
    strict_only_from: str | None = None,
) -> None:
    """Fail if any frame is malformed or has an expert error, or if fewer than ``min_frames``
    were read (an empty capture would make the check vacuous); optionally check the count.

    Then the strict oracle (:mod:`tests.strict_asn1`) decodes every TCAP message of the file
    with pycrate's full ASN.1 definitions and re-encodes it to the same octets; a frame tshark
    dissects as TCAP that the oracle did not check fails the test too, so nothing is skipped
    unseen. ``strict_only_from`` (``"ip:port"``) limits the strict decode to the frames that
    end sent: for captures that carry deliberately malformed peer input.
    """
    bad = problems(pcap, prefs=prefs)
    assert not bad, f"tshark flags frames in {pcap}: {bad}"
    rows = fields(pcap, ["frame.number", "frame.protocols"], prefs=prefs)
    n = len(rows)
    assert n >= min_frames, f"tshark read {n} frames from {pcap}, expected at least {min_frames}"
    if expect_frames is not None:
        assert n == expect_frames, f"tshark read {n} frames, expected {expect_frames}"
    pcf = PointCodeFormat.CHINA if any("Chinese" in p for p in prefs) else PointCodeFormat.ITU
    report = strict_asn1.assert_strict(pcap, pcf=pcf, only_from=strict_only_from)
    tcap_in_tshark = {int(r[0]) for r in rows if "tcap" in r[1].split(":")}
    unseen = sorted(tcap_in_tshark - report.tcap_frames - report.excluded_frames)
    assert not unseen, (
        f"the strict oracle did not check frames {unseen} of {pcap}, which tshark decodes as "
        f"TCAP (not checked: {dict(report.not_checked)})"
    )


def write_pcap(messages: Iterable[bytes], path: Path | None = None) -> Path:
    """Write M3UA messages (one per frame) into an SCTP-framed pcap and return its path."""
    if path is None:
        fd, name = tempfile.mkstemp(suffix=".pcap", prefix="mcn-tshark-")
        path = Path(name)
        import os

        os.close(fd)
    w = SctpPcapWriter.open(str(path))
    t = time.time()
    for i, m in enumerate(messages):
        w.write(m, ts=t + i * 0.001)
    w.close()
    return path
