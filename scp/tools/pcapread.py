"""Read SIGTRAN captures (pcap / pcapng) into M3UA messages and MTP-TRANSFER primitives for replay.

Network engineers replay captures from the live network against the SCP (``mcn-scp replay``).
This module turns a capture file into the messages the stack consumes: every M3UA message
(RFC 4666 §3, any class) and, for user traffic, the MTP3 routing label and user data as an
:class:`~scp.primitives.MtpTransfer`, whether the MSU travelled in M3UA DATA, in M2PA User
Data or in M2UA DATA. Anything unreadable becomes a :class:`CaptureWarning`; nothing raises.

Specs followed, layer by layer:

* File formats: classic pcap (draft-ietf-opsawg-pcap §4-5) and pcapng (draft-ietf-opsawg-pcapng
  §4), read with scapy's raw readers; link types from the tcpdump LINKTYPE registry: NULL/LOOP
  (0, 108), Ethernet with IEEE 802.1Q/802.1ad tags (1), raw IP (101, 12, 14), IPv4 (228),
  IPv6 (229), Linux cooked SLL (113) and SLL2 (276).
* IPv4 (RFC 791 §3.1, fragment reassembly §3.2) and IPv6 (RFC 8200 §4 extension headers, §4.5
  fragment header and reassembly).
* SCTP (RFC 9260): common header §3.1, DATA chunk §3.3.1, fragmentation and reassembly of user
  messages §6.9 (B/E flags, consecutive TSNs), duplicate TSNs §6.2 (a retransmission is dropped
  per association); I-DATA chunk (RFC 8260 §2.1: Message Identifier + Fragment Sequence Number).
  Payload protocol identifiers (IANA): 2 = M2UA, 3 = M3UA, 5 = M2PA; PPID 0 falls back to the
  registered ports 2904 / 2905 / 3565.
* TCP (RFC 9293 §3.4: sequence numbers): each direction reassembled in sequence order, then split
  into M3UA messages by the common header's Message Length (RFC 4666 §3.1). A TCP stream counts as
  M3UA when a port is 2905 or when its data starts like an M3UA common header.
* M3UA (RFC 4666): common header §3.1, DATA §3.3.1 with Protocol Data (tag 0x0210); the MSU
  parameters of the pre-RFC drafts (draft-ietf-sigtran-m3ua-06: Protocol Data 1 / 2, tags 2 / 3)
  are read too, as Wireshark does with its "Internet Draft version 6" preference.
* M2PA (RFC 4165): common header §2.1, User Data §2.3.2 (BSN, FSN, priority octet, MTP3 MSU).
* M2UA (RFC 3331): common header §3.1, DATA §3.3.1.1 with Protocol Data 1 (0x0300) or the TTC
  Protocol Data 2 (0x0301, priority octet first).
* MTP3 MSU (Q.704 §2.2 routing label, §14.2 service information octet): ITU 14-bit DPC / OPC and
  4-bit SLS, SI and NI from the SIO; with ``PointCodeFormat.CHINA`` the national routing label
  of GF 001-9001 (24-bit DPC, then 24-bit OPC, least significant octet first, then an octet
  whose low 4 bits are the SLS), as Wireshark reads it with ``mtp3.standard`` "Chinese ITU".

Frame numbers count every record of the file from 1, as Wireshark does; a message reassembled
from several frames (SCTP fragments, TCP segments, IP fragments) carries the number and time of
the frame that completed it, as Wireshark shows it.
"""

from __future__ import annotations

import io
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scp.primitives import MtpTransfer, PointCodeFormat

__all__ = [
    "CaptureDecoder",
    "CaptureWarning",
    "CapturedMessage",
    "count_messages",
    "read_capture",
]


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    """One M3UA message or MTP3 MSU read from a capture, with where and when it was seen."""

    frame: int
    ts: float
    src: str
    dst: str
    transport: str
    carrier: str
    m3ua: bytes | None
    mtp3: MtpTransfer | None


@dataclass(frozen=True, slots=True)
class CaptureWarning:
    """Something in the capture could not be read; ``frame`` 0 means the whole file."""

    frame: int
    reason: str


Output = CapturedMessage | CaptureWarning

# ---------------------------------------------------------------------------------------------
# Constants from the specs and registries named in the module docstring
# ---------------------------------------------------------------------------------------------

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# DLT_RAW is 12 on most systems and 14 on OpenBSD; some writers store the DLT instead of 101.
_RAW_IP_LINKTYPES = frozenset({LINKTYPE_RAW, 12, 14})

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8, 0x9100})  # 802.1Q, 802.1ad, pre-standard QinQ

IPPROTO_TCP = 6
IPPROTO_SCTP = 132

SCTP_DATA = 0
SCTP_IDATA = 64
_FLAG_E = 0x01
_FLAG_B = 0x02
_FLAG_U = 0x04

PPID_M2UA = 2
PPID_M3UA = 3
PPID_M2PA = 5
_CARRIER_BY_PPID = {PPID_M2UA: "m2ua", PPID_M3UA: "m3ua", PPID_M2PA: "m2pa"}
_CARRIER_BY_PORT = {2904: "m2ua", 2905: "m3ua", 3565: "m2pa"}
M3UA_PORT = 2905

M3UA_CLASS_TRANSFER = 1
M3UA_TYPE_DATA = 1
M3UA_TAG_PROTOCOL_DATA = 0x0210
M3UA_DRAFT_TAG_PROTOCOL_DATA_1 = 0x0002
M3UA_DRAFT_TAG_PROTOCOL_DATA_2 = 0x0003
# Message classes RFC 4666 §3.1.2 defines (MGMT, transfer, SSNM, ASPSM, ASPTM, RKM).
_M3UA_CLASSES = frozenset({0, 1, 2, 3, 4, 9})

M2PA_CLASS = 11
M2PA_TYPE_USER_DATA = 1
M2UA_CLASS_MAUP = 6
M2UA_TYPE_DATA = 1
M2UA_TAG_PROTOCOL_DATA_1 = 0x0300
M2UA_TAG_PROTOCOL_DATA_2 = 0x0301

# Bounds that keep a hostile or damaged capture from exhausting memory.
_MAX_RECORD = 262_144  # scapy's own per-record read bound (4 * 64 KiB)
_TSN_WINDOW = 4096  # TSNs remembered per association direction for duplicate detection
_MAX_SCTP_FRAGMENTS = 4096  # pending fragments per association direction
_MAX_IP_REASSEMBLIES = 256
_MAX_TCP_PENDING = 1 << 18  # out-of-order bytes held per TCP direction before declaring a gap
_MAX_M3UA_LENGTH = 1 << 20  # larger Message Length over TCP means the stream is out of sync
_TCP_SNIFF_SEGMENTS = 16  # segments inspected before a non-2905 stream is deemed not M3UA

_SERIAL = 0xFFFFFFFF
_HALF = 0x80000000

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_SCTP_COMMON = struct.Struct("!HHI")
_SCTP_DATA_HDR = struct.Struct("!IHHI")  # TSN, stream id, SSN, PPID
_SCTP_IDATA_HDR = struct.Struct("!IHxxII")  # TSN, stream id, MID, PPID or FSN
_TCP_HDR = struct.Struct("!HHII")
_COMMON_HDR = struct.Struct("!BBBBI")  # M3UA / M2PA / M2UA common header
_TLV = struct.Struct("!HH")
_M3UA_PD = struct.Struct("!IIBBBB")
_LINK_NAMES = {140: "MTP2", 141: "MTP3", 139: "MTP2 with pseudo-header"}


def _looks_like_m3ua(data: bytes | bytearray, off: int = 0) -> bool:
    """True if ``data[off:]`` starts like an M3UA common header (RFC 4666 §3.1)."""
    if len(data) - off < 8:
        return False
    ver, reserved, cls, _typ, length = _COMMON_HDR.unpack_from(data, off)
    return (
        ver == 1
        and reserved == 0
        and cls in _M3UA_CLASSES
        and 8 <= length <= _MAX_M3UA_LENGTH
        and length % 4 == 0
    )


class _TcpStream:
    """One direction of a TCP connection: reassembly state and the M3UA framing buffer."""

    __slots__ = ("next_seq", "pending", "pending_bytes", "buf", "mode", "sync", "sniffed", "frame")

    def __init__(self, next_seq: int | None, mode: int, frame: int) -> None:
        self.next_seq = next_seq
        self.pending: dict[int, bytes] = {}
        self.pending_bytes = 0
        self.buf = bytearray()
        self.mode = mode  # 0 undecided, 1 M3UA, 2 not M3UA
        self.sync = True  # buf starts at an M3UA message boundary
        self.sniffed = 0
        self.frame = frame


_TCP_UNDECIDED, _TCP_M3UA, _TCP_OTHER = 0, 1, 2


class CaptureDecoder:
    """Turn captured frames into M3UA messages and MSUs, keeping IP/SCTP/TCP reassembly state.

    Sans-I/O: :meth:`decode_frame` takes one frame's bytes and returns what it completed;
    :meth:`finish` reports what was left incomplete at the end of the capture. ``pcf`` is the
    network's point code format, for MTP3 routing labels (M2PA, M2UA); M3UA carries its own.
    """

    def __init__(self, pcf: PointCodeFormat = PointCodeFormat.ITU) -> None:
        self.pcf = pcf
        self._out: list[Output] = []
        self._frame = 0
        self._ts = 0.0
        self._unknown_links: set[int] = set()
        self._tsn_seen: dict[tuple[int, int, int], dict[int, int]] = {}
        self._frags: dict[
            tuple[int, int, int], dict[int, tuple[int, int, int, int, bytes, int]]
        ] = {}
        self._ifrags: dict[tuple[Any, ...], dict[int, tuple[int, bytes]]] = {}
        self._ifrag_ppid: dict[tuple[Any, ...], int] = {}
        self._ifrag_frame: dict[tuple[Any, ...], int] = {}
        self._ipfrags: dict[tuple[Any, ...], list[Any]] = {}
        self._tcp: dict[tuple[bytes, int, bytes, int], _TcpStream] = {}
        self._names: dict[tuple[bytes, int], str] = {}

    # -- entry points ----------------------------------------------------------------------

    def decode_frame(self, frame: int, ts: float, linktype: int, data: bytes) -> list[Output]:
        """Decode one captured frame; return the messages and warnings it produced."""
        self._frame = frame
        self._ts = ts
        out: list[Output] = []
        self._out = out
        try:
            self._link(linktype, data)
        except Exception as exc:  # noqa: BLE001 - last line of defence: a capture never raises
            out.append(CaptureWarning(frame, f"internal error: {type(exc).__name__}: {exc}"))
        return out

    def finish(self) -> list[Output]:
        """Flush what the capture left waiting: held TCP data, then warnings for the rest."""
        out: list[Output] = []
        try:
            self._finish(out)
        except Exception as exc:  # noqa: BLE001 - last line of defence, as in decode_frame
            out.append(CaptureWarning(self._frame, f"internal error: {type(exc).__name__}: {exc}"))
        self._frags.clear()
        self._ifrags.clear()
        self._ifrag_ppid.clear()
        self._ifrag_frame.clear()
        self._ipfrags.clear()
        self._tcp.clear()
        return out

    def _finish(self, out: list[Output]) -> None:
        for frags in self._frags.values():
            if frags:
                first = min(f[5] for f in frags.values())
                out.append(
                    CaptureWarning(
                        first,
                        f"SCTP: capture ends inside a fragmented user message "
                        f"({len(frags)} fragment(s) never completed)",
                    )
                )
        for key, ifr in self._ifrags.items():
            if ifr:
                out.append(
                    CaptureWarning(
                        self._ifrag_frame.get(key, 0),
                        f"SCTP I-DATA: capture ends inside a fragmented user message "
                        f"({len(ifr)} fragment(s) never completed)",
                    )
                )
        for entry in self._ipfrags.values():
            out.append(CaptureWarning(entry[2], "IP: capture ends before all fragments arrived"))
        for key, st in self._tcp.items():
            if st.mode != _TCP_M3UA:
                continue
            if st.pending:
                # Deliver what came after a gap the capture never filled, rather than lose it.
                self._frame = st.frame
                self._out = out
                self._tcp_skip_gap(st, key)
            if st.sync and st.buf:
                out.append(
                    CaptureWarning(
                        st.frame,
                        f"M3UA over TCP: capture ends inside a message "
                        f"({len(st.buf)} byte(s) of it seen)",
                    )
                )

    # -- helpers -----------------------------------------------------------------------------

    def _warn(self, reason: str) -> None:
        self._out.append(CaptureWarning(self._frame, reason))

    def _name(self, addr: bytes, port: int) -> str:
        key = (addr, port)
        name = self._names.get(key)
        if name is None:
            if len(addr) == 4:
                name = f"{socket.inet_ntoa(addr)}:{port}"
            else:
                name = f"[{socket.inet_ntop(socket.AF_INET6, addr)}]:{port}"
            if len(self._names) < 65536:
                self._names[key] = name
        return name

    # -- link layer --------------------------------------------------------------------------

    def _link(self, linktype: int, d: bytes) -> None:
        if linktype == LINKTYPE_ETHERNET:
            if len(d) < 14:
                self._warn(f"Ethernet: frame of {len(d)} bytes is shorter than its header")
                return
            self._ethertype((d[12] << 8) | d[13], d, 14)
        elif linktype in _RAW_IP_LINKTYPES:
            self._raw_ip(d, 0)
        elif linktype == LINKTYPE_LINUX_SLL:
            if len(d) < 16:
                self._warn(f"Linux SLL: frame of {len(d)} bytes is shorter than its header")
                return
            self._ethertype((d[14] << 8) | d[15], d, 16)
        elif linktype == LINKTYPE_LINUX_SLL2:
            if len(d) < 20:
                self._warn(f"Linux SLL2: frame of {len(d)} bytes is shorter than its header")
                return
            self._ethertype((d[0] << 8) | d[1], d, 20)
        elif linktype == LINKTYPE_IPV4:
            self._ipv4(d, 0)
        elif linktype == LINKTYPE_IPV6:
            self._ipv6(d, 0)
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            if len(d) < 4:
                self._warn(f"loopback: frame of {len(d)} bytes is shorter than its header")
                return
            # The address family is in the capturing host's byte order for NULL, network order
            # for LOOP; the IP version nibble settles it either way.
            self._raw_ip(d, 4)
        elif linktype not in self._unknown_links:
            self._unknown_links.add(linktype)
            what = _LINK_NAMES.get(linktype)
            label = f" ({what}, no SIGTRAN transport)" if what else ""
            self._warn(
                f"unsupported link type {linktype}{label}: frames of this link type are skipped"
            )

    def _ethertype(self, etype: int, d: bytes, off: int) -> None:
        while etype in _VLAN_ETHERTYPES:
            if len(d) < off + 4:
                self._warn("VLAN: tag truncated")
                return
            etype = (d[off + 2] << 8) | d[off + 3]
            off += 4
        if etype == ETHERTYPE_IPV4:
            self._ipv4(d, off)
        elif etype == ETHERTYPE_IPV6:
            self._ipv6(d, off)
        # Anything else (ARP, LLC, MPLS, ...) cannot carry our traffic in a replayable form.

    def _raw_ip(self, d: bytes, off: int) -> None:
        if len(d) <= off:
            self._warn("raw IP: empty packet")
            return
        version = d[off] >> 4
        if version == 4:
            self._ipv4(d, off)
        elif version == 6:
            self._ipv6(d, off)
        else:
            self._warn(f"raw IP: version {version} is neither 4 nor 6")

    # -- network layer -------------------------------------------------------------------------

    def _ipv4(self, d: bytes, off: int) -> None:
        n = len(d)
        if n - off < 20:
            self._warn(f"IPv4: header truncated ({n - off} of 20 bytes)")
            return
        vihl = d[off]
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20:
            self._warn(f"IPv4: bad version/header length 0x{vihl:02x}")
            return
        proto = d[off + 9]
        if proto != IPPROTO_SCTP and proto != IPPROTO_TCP:
            return
        total = (d[off + 2] << 8) | d[off + 3]
        # Total length 0 appears in captures of segmentation-offloaded packets: use what is there.
        end = off + total if total else n
        if end > n:
            self._warn(f"IPv4: packet truncated ({n - off} of {total} bytes captured)")
            return
        if total and total < ihl:
            self._warn(f"IPv4: total length {total} shorter than header length {ihl}")
            return
        if n - off < ihl:
            self._warn("IPv4: options truncated")
            return
        src = d[off + 12 : off + 16]
        dst = d[off + 16 : off + 20]
        frag = (d[off + 6] << 8) | d[off + 7]
        payload = d[off + ihl : end]
        if frag & 0x3FFF:  # MF set or a non-zero fragment offset
            ident = (d[off + 4] << 8) | d[off + 5]
            whole = self._ip_fragment(
                (4, src, dst, ident, proto), (frag & 0x1FFF) * 8, bool(frag & 0x2000), payload
            )
            if whole is None:
                return
            payload = whole
        self._transport(proto, src, dst, payload)

    def _ipv6(self, d: bytes, off: int) -> None:
        n = len(d)
        if n - off < 40:
            self._warn(f"IPv6: header truncated ({n - off} of 40 bytes)")
            return
        if d[off] >> 4 != 6:
            self._warn(f"IPv6: version {d[off] >> 4}")
            return
        plen = (d[off + 4] << 8) | d[off + 5]
        nh = d[off + 6]
        src = d[off + 8 : off + 24]
        dst = d[off + 24 : off + 40]
        end = off + 40 + plen if plen else n  # 0: jumbogram or offload capture
        if end > n:
            if nh in (IPPROTO_SCTP, IPPROTO_TCP, 0, 43, 44, 60):
                self._warn(f"IPv6: packet truncated ({n - off - 40} of {plen} payload bytes)")
            return
        self._ipv6_payload(nh, src, dst, d[off + 40 : end])

    def _ipv6_payload(self, nh: int, src: bytes, dst: bytes, p: bytes) -> None:
        off = 0
        n = len(p)
        for _ in range(16):  # bound the extension-header chain
            if nh == IPPROTO_SCTP or nh == IPPROTO_TCP:
                self._transport(nh, src, dst, p[off:])
                return
            if nh in (0, 43, 60, 51):  # hop-by-hop, routing, destination options, AH
                if n - off < 2:
                    self._warn("IPv6: extension header truncated")
                    return
                hlen = (p[off + 1] + 2) * 4 if nh == 51 else (p[off + 1] + 1) * 8
                nh = p[off]
                off += hlen
                if off > n:
                    self._warn("IPv6: extension header truncated")
                    return
            elif nh == 44:  # fragment header, RFC 8200 §4.5
                if n - off < 8:
                    self._warn("IPv6: fragment header truncated")
                    return
                inner = p[off]
                fo = (p[off + 2] << 8) | p[off + 3]
                ident = _U32.unpack_from(p, off + 4)[0]
                whole = self._ip_fragment(
                    (6, src, dst, ident), (fo >> 3) * 8, bool(fo & 1), p[off + 8 :]
                )
                if whole is None:
                    return
                self._ipv6_payload(inner, src, dst, whole)
                return
            else:
                return  # ESP, no next header, UDP, ...: nothing for us
        self._warn("IPv6: too many extension headers")

    def _ip_fragment(
        self, key: tuple[Any, ...], foff: int, more: bool, data: bytes
    ) -> bytes | None:
        """Collect one IPv4/IPv6 fragment; return the whole payload once every piece is in."""
        entry = self._ipfrags.get(key)
        if entry is None:
            if len(self._ipfrags) >= _MAX_IP_REASSEMBLIES:
                old_key = next(iter(self._ipfrags))
                old = self._ipfrags.pop(old_key)
                self._warn(f"IP: reassembly table full, fragments from frame {old[2]} dropped")
            entry = [{}, None, self._frame]  # pieces by offset, total length, first frame
            self._ipfrags[key] = entry
        pieces: dict[int, bytes] = entry[0]
        if foff + len(data) > 65535:
            del self._ipfrags[key]
            self._warn(f"IP: fragment at offset {foff} runs past 65535 bytes")
            return None
        pieces[foff] = data
        if not more:
            entry[1] = foff + len(data)
        total = entry[1]
        if total is None:
            return None
        pos = 0
        for o in sorted(pieces):
            if o > pos:
                return None
            pos = max(pos, o + len(pieces[o]))
        if pos < total:
            return None
        del self._ipfrags[key]
        buf = bytearray(total)
        for o in sorted(pieces):
            piece = pieces[o][: max(0, total - o)]
            buf[o : o + len(piece)] = piece
        return bytes(buf)

    # -- transport layer ----------------------------------------------------------------------

    def _transport(self, proto: int, src: bytes, dst: bytes, seg: bytes) -> None:
        if proto == IPPROTO_SCTP:
            self._sctp(src, dst, seg)
        else:
            self._tcp_segment(src, dst, seg)

    def _sctp(self, src: bytes, dst: bytes, seg: bytes) -> None:
        n = len(seg)
        if n < 12:
            self._warn(f"SCTP: common header truncated ({n} of 12 bytes)")
            return
        sport, dport, vtag = _SCTP_COMMON.unpack_from(seg, 0)
        off = 12
        while n - off >= 4:
            ctype = seg[off]
            clen = (seg[off + 2] << 8) | seg[off + 3]
            if clen < 4:
                self._warn(f"SCTP: chunk length {clen} at offset {off} is below 4")
                return
            end = off + clen
            if end > n:
                self._warn(f"SCTP: chunk type {ctype} truncated ({n - off} of {clen} bytes)")
                return
            if ctype == SCTP_DATA:
                self._sctp_data(src, dst, sport, dport, vtag, seg, off, end)
            elif ctype == SCTP_IDATA:
                self._sctp_idata(src, dst, sport, dport, vtag, seg, off, end)
            off = end + (-clen & 3)

    def _carrier(self, ppid: int, sport: int, dport: int) -> str | None:
        carrier = _CARRIER_BY_PPID.get(ppid)
        if carrier is None and ppid == 0:
            carrier = _CARRIER_BY_PORT.get(dport) or _CARRIER_BY_PORT.get(sport)
        return carrier

    def _is_duplicate(self, akey: tuple[int, int, int], tsn: int, payload: bytes) -> bool:
        """RFC 9260 §6.2: a TSN seen before on this association is a retransmission.

        The payload is compared too: captures rebuilt from MTP traces (text2pcap) reuse TSN 0
        for every message, and those are distinct messages, not retransmissions.
        """
        seen = self._tsn_seen.get(akey)
        if seen is None:
            seen = self._tsn_seen[akey] = {}
        h = hash(payload)
        if seen.get(tsn) == h:
            return True
        seen[tsn] = h
        if len(seen) > _TSN_WINDOW:
            del seen[next(iter(seen))]
        return False

    def _sctp_data(
        self,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        vtag: int,
        seg: bytes,
        off: int,
        end: int,
    ) -> None:
        if end - off <= 16:
            self._warn(f"SCTP: DATA chunk of length {end - off} carries no user data")
            return
        flags = seg[off + 1]
        tsn, sid, ssn, ppid = _SCTP_DATA_HDR.unpack_from(seg, off + 4)
        carrier = self._carrier(ppid, sport, dport)
        if carrier is None:
            return
        payload = seg[off + 16 : end]
        akey = (sport, dport, vtag)
        if self._is_duplicate(akey, tsn, payload):
            return
        if flags & 3 != 3:
            whole = self._sctp_reassemble(akey, tsn, flags, sid, ssn, ppid, payload)
            if whole is None:
                return
            payload = whole
        self._user_message(carrier, src, dst, sport, dport, payload)

    def _sctp_reassemble(
        self,
        akey: tuple[int, int, int],
        tsn: int,
        flags: int,
        sid: int,
        ssn: int,
        ppid: int,
        payload: bytes,
    ) -> bytes | None:
        """RFC 9260 §6.9: fragments of one user message have consecutive TSNs, B first, E last."""
        frags = self._frags.get(akey)
        if frags is None:
            frags = self._frags[akey] = {}
        if len(frags) >= _MAX_SCTP_FRAGMENTS:
            self._warn(f"SCTP: {len(frags)} fragments pending on one association, dropped")
            frags.clear()
        frags[tsn] = (flags, sid, ssn, ppid, payload, self._frame)
        first = tsn
        cur = frags[first]
        while not cur[0] & _FLAG_B:
            first = (first - 1) & _SERIAL
            nxt = frags.get(first)
            if nxt is None or nxt[0] & _FLAG_E:
                return None
            cur = nxt
        last = tsn
        cur = frags[last]
        while not cur[0] & _FLAG_E:
            last = (last + 1) & _SERIAL
            nxt = frags.get(last)
            if nxt is None or nxt[0] & _FLAG_B:
                return None
            cur = nxt
        parts = []
        t = first
        ordered = not flags & _FLAG_U
        while True:
            f = frags.pop(t)
            if f[1] != sid or (ordered and f[2] != ssn):
                self._warn(f"SCTP: fragments TSN {first}..{last} mix streams or SSNs, dropped")
                for t2 in range(0, (last - t) & _SERIAL):
                    frags.pop((t + 1 + t2) & _SERIAL, None)
                return None
            parts.append(f[4])
            if t == last:
                break
            t = (t + 1) & _SERIAL
        return b"".join(parts)

    def _sctp_idata(
        self,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        vtag: int,
        seg: bytes,
        off: int,
        end: int,
    ) -> None:
        if end - off <= 20:
            self._warn(f"SCTP: I-DATA chunk of length {end - off} carries no user data")
            return
        flags = seg[off + 1]
        tsn, sid, mid, ppid_fsn = _SCTP_IDATA_HDR.unpack_from(seg, off + 4)
        payload = seg[off + 20 : end]
        akey = (sport, dport, vtag)
        if flags & 3 == 3:
            carrier = self._carrier(ppid_fsn, sport, dport)
            if carrier is None or self._is_duplicate(akey, tsn, payload):
                return
            self._user_message(carrier, src, dst, sport, dport, payload)
            return
        # RFC 8260 §2.1: only the first fragment carries the PPID; the others carry the FSN, so
        # fragments are held whatever their protocol until the first one says which it is.
        if self._is_duplicate(akey, tsn, payload):
            return
        key = (akey, sid, flags & _FLAG_U, mid)
        pieces = self._ifrags.get(key)
        if pieces is None:
            if len(self._ifrags) >= _MAX_SCTP_FRAGMENTS:
                self._warn("SCTP I-DATA: reassembly table full, oldest message dropped")
                old = next(iter(self._ifrags))
                del self._ifrags[old]
                self._ifrag_ppid.pop(old, None)
                self._ifrag_frame.pop(old, None)
            pieces = self._ifrags[key] = {}
            self._ifrag_frame[key] = self._frame
        if len(pieces) >= _MAX_SCTP_FRAGMENTS:
            self._warn("SCTP I-DATA: too many fragments for one message, dropped")
            self._drop_ifrag(key)
            return
        if flags & _FLAG_B:
            fsn = 0
            self._ifrag_ppid[key] = ppid_fsn
        else:
            fsn = ppid_fsn
        pieces[fsn] = (flags, payload)
        ppid = self._ifrag_ppid.get(key)
        if ppid is None:
            return
        last = next((f for f, (fl, _) in pieces.items() if fl & _FLAG_E), None)
        if last is None or len(pieces) != last + 1:
            return
        if any(f not in pieces for f in range(last + 1)):
            return
        whole = b"".join(pieces[f][1] for f in range(last + 1))
        self._drop_ifrag(key)
        carrier = self._carrier(ppid, sport, dport)
        if carrier is not None:
            self._user_message(carrier, src, dst, sport, dport, whole)

    def _drop_ifrag(self, key: tuple[Any, ...]) -> None:
        self._ifrags.pop(key, None)
        self._ifrag_ppid.pop(key, None)
        self._ifrag_frame.pop(key, None)

    def _tcp_segment(self, src: bytes, dst: bytes, seg: bytes) -> None:
        n = len(seg)
        if n < 20:
            self._warn(f"TCP: header truncated ({n} of 20 bytes)")
            return
        sport, dport, seq, _ack = _TCP_HDR.unpack_from(seg, 0)
        doff = (seg[12] >> 4) * 4
        flags = seg[13]
        if doff < 20 or doff > n:
            self._warn(f"TCP: data offset {doff} outside the {n}-byte segment")
            return
        key = (src, sport, dst, dport)
        if flags & 0x04:  # RST: the connection is gone
            self._tcp.pop(key, None)
            return
        st = self._tcp.get(key)
        payload = seg[doff:]
        if flags & 0x02:  # SYN consumes one sequence number; data follows it
            mode = _TCP_M3UA if M3UA_PORT in (sport, dport) else _TCP_UNDECIDED
            st = _TcpStream((seq + 1) & _SERIAL, mode, self._frame)
            self._tcp[key] = st
            seq = (seq + 1) & _SERIAL
        if not payload:
            if flags & 0x01 and st is not None and not st.pending:
                self._tcp_close(key, st)
            return
        if st is None:
            mode = _TCP_M3UA if M3UA_PORT in (sport, dport) else _TCP_UNDECIDED
            st = _TcpStream(seq, mode, self._frame)
            st.sync = False  # joined mid-stream: wait for a segment that starts a message
            self._tcp[key] = st
        if st.mode == _TCP_OTHER:
            return
        if st.mode == _TCP_UNDECIDED:
            if not _looks_like_m3ua(payload):
                st.sniffed += 1
                if st.sniffed >= _TCP_SNIFF_SEGMENTS:
                    st.mode = _TCP_OTHER
                return
            st.mode = _TCP_M3UA
            st.next_seq = seq
            st.sync = True
        st.frame = self._frame
        ep = (src, sport, dst, dport)
        if st.next_seq is None:
            st.next_seq = seq
        delta = (seq - st.next_seq) & _SERIAL
        if delta >= _HALF:  # starts before what we already have: retransmission or overlap
            back = _SERIAL + 1 - delta
            if back >= len(payload):
                return
            payload = payload[back:]
            delta = 0
        if delta == 0:
            self._tcp_in_order(st, payload, ep)
            self._tcp_drain(st, ep)
            if flags & 0x01 and not st.pending:
                self._tcp_close(key, st)
            return
        old = st.pending.get(seq)
        if old is None or len(old) < len(payload):
            st.pending[seq] = payload
            st.pending_bytes += len(payload) - (len(old) if old else 0)
        if st.pending_bytes > _MAX_TCP_PENDING:
            self._tcp_skip_gap(st, ep)

    def _tcp_skip_gap(self, st: _TcpStream, ep: tuple[bytes, int, bytes, int]) -> None:
        """Give up on missing bytes: jump to the held data and resynchronise on a header."""
        assert st.next_seq is not None
        while st.pending:
            lost = min((s - st.next_seq) & _SERIAL for s in st.pending)
            self._warn(
                f"TCP: {lost} byte(s) missing from the stream {self._name(ep[0], ep[1])} -> "
                f"{self._name(ep[2], ep[3])}; resynchronising on the next M3UA header"
            )
            st.next_seq = (st.next_seq + lost) & _SERIAL
            st.buf.clear()
            st.sync = False
            self._tcp_drain(st, ep)

    def _tcp_drain(self, st: _TcpStream, ep: tuple[bytes, int, bytes, int]) -> None:
        progressed = True
        while st.pending and progressed:
            progressed = False
            for s in list(st.pending):
                assert st.next_seq is not None
                delta = (s - st.next_seq) & _SERIAL
                if delta == 0 or delta >= _HALF:
                    data = st.pending.pop(s)
                    st.pending_bytes -= len(data)
                    back = 0 if delta == 0 else _SERIAL + 1 - delta
                    if back < len(data):
                        self._tcp_in_order(st, data[back:], ep)
                    progressed = True

    def _tcp_close(self, key: tuple[bytes, int, bytes, int], st: _TcpStream) -> None:
        if st.mode == _TCP_M3UA and st.sync and st.buf:
            self._warn(
                f"M3UA over TCP: connection closed inside a message "
                f"({len(st.buf)} byte(s) of it seen)"
            )
        del self._tcp[key]

    def _tcp_in_order(self, st: _TcpStream, data: bytes, ep: tuple[bytes, int, bytes, int]) -> None:
        assert st.next_seq is not None
        st.next_seq = (st.next_seq + len(data)) & _SERIAL
        if not st.sync:
            if not _looks_like_m3ua(data):
                return
            st.sync = True
            st.buf.clear()
        buf = st.buf
        buf += data
        off = 0
        n = len(buf)
        while n - off >= 8:
            ver, _res, _cls, _typ, length = _COMMON_HDR.unpack_from(buf, off)
            if ver != 1 or length < 8 or length > _MAX_M3UA_LENGTH:
                self._warn(
                    f"M3UA over TCP: bad common header (version {ver}, length {length}); "
                    "resynchronising on the next segment that starts a message"
                )
                st.sync = False
                buf.clear()
                return
            if n - off < length:
                break
            msg = bytes(buf[off : off + length])
            off += length
            self._m3ua_message(msg, ep[0], ep[1], ep[2], ep[3], "tcp")
        if off:
            del buf[:off]

    # -- SIGTRAN adaptation layers -------------------------------------------------------------

    def _user_message(
        self, carrier: str, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes
    ) -> None:
        if carrier == "m3ua":
            self._m3ua_user_message(payload, src, sport, dst, dport)
        elif carrier == "m2pa":
            self._m2pa(payload, src, sport, dst, dport)
        else:
            self._m2ua(payload, src, sport, dst, dport)

    def _m3ua_user_message(self, p: bytes, src: bytes, sport: int, dst: bytes, dport: int) -> None:
        """One SCTP user message: one M3UA message (RFC 4666 §1.4.7), several tolerated."""
        off = 0
        n = len(p)
        while off < n:
            if n - off < 8:
                self._warn(f"M3UA: {n - off} byte(s) too short for a common header")
                return
            ver, _res, _cls, _typ, length = _COMMON_HDR.unpack_from(p, off)
            if ver != 1:
                self._warn(f"M3UA: version {ver} (only release 1 exists)")
                return
            if length < 8 or length > n - off:
                self._warn(f"M3UA: message length {length} with {n - off} byte(s) present")
                return
            msg = p if length == n else p[off : off + length]
            off += length
            self._m3ua_message(msg, src, sport, dst, dport, "sctp")

    def _m3ua_message(
        self, msg: bytes, src: bytes, sport: int, dst: bytes, dport: int, transport: str
    ) -> None:
        mtp3 = None
        if msg[2] == M3UA_CLASS_TRANSFER and msg[3] == M3UA_TYPE_DATA:
            mtp3 = self._m3ua_protocol_data(msg)
        self._out.append(
            CapturedMessage(
                self._frame,
                self._ts,
                self._name(src, sport),
                self._name(dst, dport),
                transport,
                "m3ua",
                msg,
                mtp3,
            )
        )

    def _m3ua_protocol_data(self, msg: bytes) -> MtpTransfer | None:
        """RFC 4666 §3.3.1: the Protocol Data parameter holds the routing label and user data."""
        off = 8
        n = len(msg)
        while n - off >= 4:
            tag, plen = _TLV.unpack_from(msg, off)
            if plen < 4 or off + plen > n:
                self._warn(
                    f"M3UA DATA: parameter 0x{tag:04x} length {plen} with {n - off} byte(s) left"
                )
                return None
            if tag == M3UA_DRAFT_TAG_PROTOCOL_DATA_1 or tag == M3UA_DRAFT_TAG_PROTOCOL_DATA_2:
                # Pre-RFC drafts (draft-ietf-sigtran-m3ua-06 and near) carried the whole MSU,
                # SIO and routing label included; tags 2 and 3 are unassigned in RFC 4666.
                msu = msg[off + 4 : off + plen]
                if tag == M3UA_DRAFT_TAG_PROTOCOL_DATA_2:  # a priority octet precedes the MSU
                    return self._decode_msu(msu[1:], msu[0] >> 6 if msu else 0, "M3UA draft")
                return self._decode_msu(msu, None, "M3UA draft")
            if tag == M3UA_TAG_PROTOCOL_DATA:
                if plen < 16:
                    self._warn(f"M3UA DATA: Protocol Data of length {plen} is below 16")
                    return None
                opc, dpc, si, ni, mp, sls = _M3UA_PD.unpack_from(msg, off + 4)
                return MtpTransfer(
                    opc=opc, dpc=dpc, si=si, ni=ni, mp=mp, sls=sls, data=msg[off + 16 : off + plen]
                )
            off += (plen + 3) & ~3
        self._warn("M3UA DATA: no Protocol Data parameter (0x0210)")
        return None

    def _decode_msu(self, msu: bytes, mp: int | None, layer: str) -> MtpTransfer | None:
        """Q.704 §14.2 SIO and §2.2 ITU routing label: DPC 14 bits, OPC 14 bits, SLS 4 bits."""
        if self.pcf is not PointCodeFormat.ITU:
            return self._decode_msu_china(msu, mp, layer)
        if len(msu) < 5:
            self._warn(f"{layer}: MSU of {len(msu)} byte(s) is shorter than SIO + routing label")
            return None
        sio = msu[0]
        label = msu[1] | (msu[2] << 8) | (msu[3] << 16) | (msu[4] << 24)
        return MtpTransfer(
            opc=(label >> 14) & 0x3FFF,
            dpc=label & 0x3FFF,
            si=sio & 0x0F,
            ni=sio >> 6,
            # The SIO's two spare bits carry the message priority where national MTP uses them.
            mp=(sio >> 4) & 0x03 if mp is None else mp,
            sls=label >> 28,
            data=msu[5:],
        )

    def _decode_msu_china(self, msu: bytes, mp: int | None, layer: str) -> MtpTransfer | None:
        """SIO and GF 001-9001's 7-octet routing label: DPC 24 bits, OPC 24 bits, SLS 4 bits."""
        if len(msu) < 8:
            self._warn(f"{layer}: MSU of {len(msu)} byte(s) is shorter than SIO + routing label")
            return None
        sio = msu[0]
        return MtpTransfer(
            opc=int.from_bytes(msu[4:7], "little"),
            dpc=int.from_bytes(msu[1:4], "little"),
            si=sio & 0x0F,
            ni=sio >> 6,
            mp=(sio >> 4) & 0x03 if mp is None else mp,
            sls=msu[7] & 0x0F,
            data=msu[8:],
        )

    def _msu(
        self,
        msu: bytes,
        mp: int | None,
        carrier: str,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
    ) -> None:
        mtp3 = self._decode_msu(msu, mp, carrier.upper())
        if mtp3 is None:
            return
        self._out.append(
            CapturedMessage(
                self._frame,
                self._ts,
                self._name(src, sport),
                self._name(dst, dport),
                "sctp",
                carrier,
                None,
                mtp3,
            )
        )

    def _m2pa(self, p: bytes, src: bytes, sport: int, dst: bytes, dport: int) -> None:
        n = len(p)
        if n < 16:
            self._warn(f"M2PA: message of {n} byte(s) is shorter than its headers")
            return
        ver, _spare, cls, typ, length = _COMMON_HDR.unpack_from(p, 0)
        if ver != 1 or cls != M2PA_CLASS:
            self._warn(f"M2PA: version {ver} class {cls} is not M2PA release 1")
            return
        if length < 16 or length > n:
            self._warn(f"M2PA: message length {length} with {n} byte(s) present")
            return
        if typ != M2PA_TYPE_USER_DATA:
            return  # Link Status: link management, nothing to replay
        if length == 16:
            return  # User Data without data only acknowledges (RFC 4165 §2.3.2)
        # RFC 4165 §2.3.2: a priority octet (PRI in the 2 high bits) precedes the MTP3 MSU.
        self._msu(p[17:length], p[16] >> 6, "m2pa", src, sport, dst, dport)

    def _m2ua(self, p: bytes, src: bytes, sport: int, dst: bytes, dport: int) -> None:
        n = len(p)
        if n < 8:
            self._warn(f"M2UA: message of {n} byte(s) is shorter than its header")
            return
        ver, _spare, cls, typ, length = _COMMON_HDR.unpack_from(p, 0)
        if ver != 1:
            self._warn(f"M2UA: version {ver} (only release 1 exists)")
            return
        if length < 8 or length > n:
            self._warn(f"M2UA: message length {length} with {n} byte(s) present")
            return
        if cls != M2UA_CLASS_MAUP or typ != M2UA_TYPE_DATA:
            return  # link state, management, ASP messages: nothing to replay
        off = 8
        while length - off >= 4:
            tag, plen = _TLV.unpack_from(p, off)
            if plen < 4 or off + plen > length:
                self._warn(
                    f"M2UA DATA: parameter 0x{tag:04x} length {plen} "
                    f"with {length - off} byte(s) left"
                )
                return
            if tag == M2UA_TAG_PROTOCOL_DATA_1:
                self._msu(p[off + 4 : off + plen], None, "m2ua", src, sport, dst, dport)
                return
            if tag == M2UA_TAG_PROTOCOL_DATA_2:
                if plen < 5:
                    self._warn("M2UA DATA: empty Protocol Data 2")
                    return
                # TTC variant: a priority octet (high 2 bits) precedes the MSU.
                self._msu(p[off + 5 : off + plen], p[off + 4] >> 6, "m2ua", src, sport, dst, dport)
                return
            off += (plen + 3) & ~3
        self._warn("M2UA DATA: no Protocol Data parameter (0x0300 / 0x0301)")


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


def _pcapng_tail_problem(f: Any, pos: int, size: int, endian: str) -> str | None:
    """Walk the pcapng blocks after the last packet; say what is wrong if they do not end cleanly."""
    fmt = struct.Struct(endian + "II")
    while pos < size:
        f.seek(pos)
        hdr = f.read(8)
        if len(hdr) < 8:
            return f"file ends with {size - pos} byte(s) of an incomplete pcapng block"
        _btype, blen = fmt.unpack(hdr)
        if blen < 12 or blen % 4 or pos + blen > size:
            return (
                f"pcapng block at byte {pos} has length {blen} with {size - pos} "
                "byte(s) left: truncated or corrupt"
            )
        pos += blen
    return None


def read_capture(
    path: str | os.PathLike[str], pcf: PointCodeFormat = PointCodeFormat.ITU
) -> Iterator[CapturedMessage | CaptureWarning]:
    """Yield every M3UA message / MSU in a pcap or pcapng file, and a warning for each problem.

    Files may be gzip-compressed. A file that is not a capture at all gives one
    ``CaptureWarning(0, ...)`` and nothing else.
    """
    try:
        # Imported here: scapy takes a while to load and only replay needs it.
        from scapy.utils import RawPcapNgReader, RawPcapReader

        # The metaclass picks pcap or pcapng by magic number.
        reader = RawPcapReader(os.fspath(path))
    except Exception as exc:  # noqa: BLE001 - scapy raises several types for unreadable files
        yield CaptureWarning(0, f"not a readable pcap/pcapng file: {exc}")
        return
    decoder = CaptureDecoder(pcf)
    pcapng = isinstance(reader, RawPcapNgReader)
    raw_file = isinstance(reader.f, io.BufferedReader)  # False for gzip: no size to check
    size = os.fstat(reader.f.fileno()).st_size if raw_file else 0
    nano = getattr(reader, "nano", False)
    classic_linktype = getattr(reader, "linktype", -1)
    frame = 0
    end_pos = reader.f.tell() if raw_file else 0
    read_packet = reader._read_packet  # public iteration cuts records at 64 KiB
    decode = decoder.decode_frame
    try:
        while True:
            try:
                data, meta_ = read_packet(_MAX_RECORD)
                meta: Any = meta_  # PacketMetadata of pcap or pcapng: different fields
            except EOFError:
                break
            except Exception as exc:  # noqa: BLE001 - scapy parses untrusted bytes here
                yield CaptureWarning(frame + 1, f"unreadable record: {type(exc).__name__}: {exc}")
                break
            frame += 1
            if pcapng:
                linktype = meta.linktype
                ts = (
                    ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
                    if meta.tshigh is not None
                    else 0.0
                )
            else:
                linktype = classic_linktype
                ts = meta.sec + meta.usec / (1_000_000_000 if nano else 1_000_000)
                if len(data) < meta.caplen:
                    # The file itself ends (or is corrupt) inside this record: say so once
                    # rather than once per layer that finds its bytes missing.
                    yield CaptureWarning(
                        frame,
                        f"record truncated: {len(data)} of "
                        f"{meta.caplen} captured bytes in the file",
                    )
                    if raw_file:
                        end_pos = reader.f.tell()
                    continue
            if raw_file:
                end_pos = reader.f.tell()
            yield from decode(frame, ts, linktype, data)
        if raw_file and end_pos < size:
            if pcapng:
                problem = _pcapng_tail_problem(reader.f, end_pos, size, reader.endian)
            else:
                problem = f"file ends with {size - end_pos} byte(s) of an incomplete record header"
            if problem:
                yield CaptureWarning(frame + 1, problem)
        yield from decoder.finish()
    finally:
        reader.close()


def count_messages(path: str | os.PathLike[str]) -> int:
    """Number of :class:`CapturedMessage` in a capture: the unit of the replay benchmark."""
    n = 0
    for item in read_capture(path):
        if type(item) is CapturedMessage:
            n += 1
    return n
