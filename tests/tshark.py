"""Wireshark as an independent oracle: every frame the SCP emits in a test is read back here.

Tests write what the stack sent with :class:`scp.capture.SctpPcapWriter` and call
:func:`assert_clean`, which fails if tshark flags any frame malformed or with an expert error,
and :func:`fields` to compare what Wireshark decoded with what we meant to send.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from scp.capture import SctpPcapWriter

# SSNs as this SCP uses them (ARCHITECTURE §3): CAP 146, MAP 147 (gsmSCF) and 8, INAP 241.
PREFS: tuple[str, ...] = (
    "-o", "camel.tcap.ssn:146",
    "-o", "gsm_map.tcap.ssn:6-9,145,147-150",
    "-o", "inap.ssn:106,241",
)


def tshark_path() -> str:
    path = shutil.which("tshark")
    if path is None:
        raise RuntimeError("tshark is not installed: `make test` installs it (apt-get install tshark)")
    return path


def _run(pcap: Path, args: Sequence[str], prefs: Sequence[str]) -> str:
    cmd = [tshark_path(), "-n", "-r", str(pcap), *prefs, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError(f"tshark failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def fields(pcap: Path, names: Sequence[str], *, display_filter: str | None = None,
           prefs: Sequence[str] = PREFS) -> list[list[str]]:
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


def assert_clean(pcap: Path, *, expect_frames: int | None = None, min_frames: int = 1,
                 prefs: Sequence[str] = PREFS) -> None:
    """Fail if any frame is malformed or has an expert error, or if fewer than ``min_frames``
    were read (an empty capture would make the check vacuous); optionally check the count."""
    bad = problems(pcap, prefs=prefs)
    assert not bad, f"tshark flags frames in {pcap}: {bad}"
    n = len(fields(pcap, ["frame.number"], prefs=prefs))
    assert n >= min_frames, f"tshark read {n} frames from {pcap}, expected at least {min_frames}"
    if expect_frames is not None:
        assert n == expect_frames, f"tshark read {n} frames, expected {expect_frames}"


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
