"""Write M3UA traffic as an SCTP-framed pcap that Wireshark decodes down to CAP/INAP/MAP.

Each M3UA message becomes one IPv4 packet (linktype 101, raw IP) carrying an SCTP common header
(RFC 9260 §3.1) and one DATA chunk (§3.3.1) with payload protocol identifier 3 (M3UA, RFC 4666
§1.4.7). The CRC32c checksum is computed for real so Wireshark's optional checksum validation
passes. The file is flushed after every packet so ``tshark`` can read it while we write.

The TCP transport carries the same M3UA bytes; the capture still frames them as SCTP because
that is how Wireshark recognises M3UA without port preferences.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

LINKTYPE_RAW = 101
PPID_M3UA = 3

_CRC32C_TABLE: list[int] = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli) as SCTP uses it (RFC 9260 Appendix B)."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: str, dst: str) -> tuple[bytes, bytes]:
    return bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split("."))


class SctpPcapWriter:
    """Append M3UA messages to a pcap as SCTP DATA chunks between two IPv4 endpoints."""

    def __init__(self, fileobj: BinaryIO, *, snaplen: int = 65535) -> None:
        self._f = fileobj
        self._tsn: dict[tuple[str, int, str, int], int] = {}
        self._ssn: dict[tuple[str, int, str, int, int], int] = {}
        self._ip_id = 0
        fileobj.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))
        fileobj.flush()

    @classmethod
    def open(cls, path: str) -> SctpPcapWriter:
        return cls(open(path, "wb"))  # noqa: SIM115 - closed by close()

    def write(
        self,
        m3ua: bytes,
        *,
        ts: float,
        src: tuple[str, int] = ("127.0.0.1", 2905),
        dst: tuple[str, int] = ("127.0.0.2", 2905),
        stream: int = 1,
        ppid: int = PPID_M3UA,
    ) -> None:
        """Write one M3UA message sent from ``src`` to ``dst`` at time ``ts`` (epoch seconds)."""
        key = (src[0], src[1], dst[0], dst[1])
        tsn = self._tsn.get(key, 1)
        self._tsn[key] = tsn + 1
        skey = (*key, stream)
        ssn = self._ssn.get(skey, 0)
        self._ssn[skey] = (ssn + 1) & 0xFFFF
        pad = (-len(m3ua)) % 4
        chunk = (
            struct.pack("!BBHIHHI", 0, 0x03, 16 + len(m3ua), tsn, stream, ssn, ppid)
            + m3ua
            + b"\x00" * pad
        )
        common = struct.pack("!HHII", src[1], dst[1], 0x1, 0)
        sctp = common + chunk
        sctp = sctp[:8] + struct.pack("<I", crc32c(sctp)) + sctp[12:]
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        s, d = _ipv4(src[0], dst[0])
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(sctp), self._ip_id, 0, 64, 132, 0, s, d)
        hdr = hdr[:10] + struct.pack("!H", _ip_checksum(hdr)) + hdr[12:]
        packet = hdr + sctp
        sec = int(ts)
        usec = int(round((ts - sec) * 1_000_000))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        self._f.write(struct.pack("<IIII", sec, usec, len(packet), len(packet)) + packet)
        self._f.flush()

    def close(self) -> None:
        self._f.close()
