"""The SCTP-framed pcap writer behind `--capture` and every tshark check of the tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scp.adapters.capture import SctpPcapWriter, crc32c
from tests import tshark

ASPUP = bytes.fromhex("0100030100000008")


def test_crc32c_known_vector() -> None:
    # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c(bytes(32)) == 0x8A9136AA


def test_ipv4_ipv6_and_an_oversize_message_all_decode(tmp_path: Path) -> None:
    # A DATA message near the 64 KiB framing limit: split into SCTP fragments, reassembled by
    # Wireshark; IPv6 endpoints (listen = "[::1]:2905") framed as IPv6.
    big_payload = bytes(65000)
    big = (
        bytes.fromhex("01000101")
        + (8 + 8 + 16 + len(big_payload)).to_bytes(4, "big")
        + bytes.fromhex("0006000800000001")
        + (0x0210).to_bytes(2, "big")
        + (16 + len(big_payload)).to_bytes(2, "big")
        + bytes.fromhex("00000064000000c803020005")
        + big_payload
    )
    path = tmp_path / "c.pcap"
    w = SctpPcapWriter.open(str(path))
    w.write(ASPUP, ts=1.0)
    w.write(ASPUP, ts=1.5, src=("::1", 40000), dst=("::1", 2905))
    w.write(big, ts=2.0)
    w.close()
    tshark.assert_clean(path, expect_frames=4)  # 1 + 1 + 2 fragments
    rows = tshark.fields(path, ["ipv6.src", "m3ua.protocol_data_opc"], display_filter="m3ua")
    assert [r for r in rows if r[0] == "::1"]
    assert any(r[1] == "100" for r in rows)  # the reassembled DATA


def test_capture_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    # the capture holds subscribers' numbers and the PIN digits callers key in: mode 0600
    # whatever the umask, and an existing world-readable file is narrowed when reused
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.pcap"
        SctpPcapWriter.open(str(fresh)).close()
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
        reused = tmp_path / "reused.pcap"
        reused.write_bytes(b"old")
        reused.chmod(0o644)
        w = SctpPcapWriter.open(str(reused))
        w.write(ASPUP, ts=1.0)
        w.close()
        assert stat.S_IMODE(reused.stat().st_mode) == 0o600
        assert not reused.read_bytes().endswith(b"old")  # truncated, not appended to
        tshark.assert_clean(reused, expect_frames=1)
    finally:
        os.umask(old)
