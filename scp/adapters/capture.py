"""Write M3UA traffic as an SCTP-framed pcap that Wireshark decodes down to CAP/INAP/MAP.

Each M3UA message becomes one IPv4 or IPv6 packet (linktype 101, raw IP) carrying an SCTP common
header (RFC 9260 §3.1) and one DATA chunk (§3.3.1) with payload protocol identifier 3 (M3UA,
RFC 4666 §1.4.7); a message too large for one packet is split into fragments (B/E flags) as SCTP
would, so Wireshark reassembles it. The CRC32c checksum is computed for real so Wireshark's
optional checksum validation passes. The file is flushed after every packet so ``tshark`` can
read it while we write.

The TCP transport carries the same M3UA bytes; the capture still frames them as SCTP because
that is how Wireshark recognises M3UA without port preferences.
"""

from __future__ import annotations

import ipaddress
import os
import stat
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
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


MAX_FRAGMENT = 60000  # user data per DATA chunk: keeps every packet under the 16-bit IP length


def _ip_header(src: str, dst: str, payload_len: int, ip_id: int) -> bytes:
    """An IPv4 or IPv6 header for an SCTP payload (protocol 132) between two addresses."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 6 or d.version == 6:
        s6 = s if s.version == 6 else ipaddress.IPv6Address(f"::ffff:{s}")
        d6 = d if d.version == 6 else ipaddress.IPv6Address(f"::ffff:{d}")
        return struct.pack("!IHBB16s16s", 0x60000000, payload_len, 132, 64, s6.packed, d6.packed)
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ip_id, 0, 64, 132, 0, s.packed, d.packed
    )
    return hdr[:10] + struct.pack("!H", _ip_checksum(hdr)) + hdr[12:]


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
        """A new capture at ``path``, readable by its owner only (mode 0600): the traffic holds
        subscribers' numbers and the PIN digits callers key in (PromptAndCollect results). An
        existing regular file is truncated and narrowed to 0600 too."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, 0o600)
            return cls(os.fdopen(fd, "wb"))
        except BaseException:
            os.close(fd)
            raise

    def write(
        self,
        m3ua: bytes,
        *,
        ts: float,
        src: tuple[str, int] = ("127.0.0.1", 2905),
        dst: tuple[str, int] = ("127.0.0.2", 2905),
        stream: int | None = None,
        ppid: int = PPID_M3UA,
    ) -> None:
        """Write one M3UA message sent from ``src`` to ``dst`` at time ``ts`` (epoch seconds).

        ``stream`` defaults as RFC 4666 §1.4.7 places messages: DATA on stream 1, everything
        else (management, ASP maintenance) on stream 0.
        """
        if stream is None:
            stream = 1 if m3ua[2:4] == b"\x01\x01" else 0
        key = (src[0], src[1], dst[0], dst[1])
        skey = (*key, stream)
        ssn = self._ssn.get(skey, 0)
        self._ssn[skey] = (ssn + 1) & 0xFFFF
        pieces = [m3ua[i : i + MAX_FRAGMENT] for i in range(0, len(m3ua), MAX_FRAGMENT)] or [b""]
        for n, piece in enumerate(pieces):
            flags = (0x02 if n == 0 else 0) | (0x01 if n == len(pieces) - 1 else 0)
            tsn = self._tsn.get(key, 1)
            self._tsn[key] = tsn + 1
            pad = (-len(piece)) % 4
            chunk = (
                struct.pack("!BBHIHHI", 0, flags, 16 + len(piece), tsn, stream, ssn, ppid)
                + piece
                + b"\x00" * pad
            )
            sctp = struct.pack("!HHII", src[1], dst[1], 0x1, 0) + chunk
            sctp = sctp[:8] + struct.pack("<I", crc32c(sctp)) + sctp[12:]
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            packet = _ip_header(src[0], dst[0], len(sctp), self._ip_id) + sctp
            sec = int(ts)
            usec = int(round((ts - sec) * 1_000_000))
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            self._f.write(struct.pack("<IIII", sec, usec, len(packet), len(packet)) + packet)
        self._f.flush()

    def close(self) -> None:
        self._f.close()
