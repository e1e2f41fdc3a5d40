"""Frames for the codec tests: wrap a component in TCAP/SCCP/M3UA, pull components from pcaps.

Wrapping (for the Wireshark oracle): TCAP Begin/Continue/End (Q.773 §4.2) with an optional
AARQ dialogue portion carrying the application context, in an SCCP UDT (Q.713 §4.10) routed on
SSN, in an M3UA DATA message (RFC 4666 §3.3.1, Protocol Data tag 0x0210) with Routing Context 1;
the SCCP and M3UA framing comes from tests/helpers.py.

Extraction (for the third-party captures): SCTP DATA chunks carrying M3UA (PPID 3), M2UA (2)
or M2PA (5) down to SCCP UDT/XUDT (segments reassembled by local reference), then the TCAP
components, each as (kind, opcode, parameter TLV, application context).

Not a test module: the CAP, INAP, MAP, fast-path and strict-oracle tests import it.
"""

from __future__ import annotations

import struct
from pathlib import Path

from scp.codecs.ber import read_tlv
from tests.helpers import m3ua_data, sccp_udt

PCAPS = Path("/work/shared/pcaps/real")


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(ln))) + ln + value


def ber_int(v: int) -> bytes:
    return v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)


def oid(arcs: tuple[int, ...]) -> bytes:
    out = bytearray([arcs[0] * 40 + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def invoke(invoke_id: int, opcode: int, parameter: bytes | None) -> bytes:
    return tlv(
        0xA1, tlv(0x02, ber_int(invoke_id)) + tlv(0x02, ber_int(opcode)) + (parameter or b"")
    )


def result_last(invoke_id: int, opcode: int, parameter: bytes | None) -> bytes:
    inner = tlv(0x02, ber_int(invoke_id))
    if parameter is not None:
        inner += tlv(0x30, tlv(0x02, ber_int(opcode)) + parameter)
    return tlv(0xA2, inner)


def return_error(invoke_id: int, errcode: int, parameter: bytes | None) -> bytes:
    return tlv(
        0xA3, tlv(0x02, ber_int(invoke_id)) + tlv(0x02, ber_int(errcode)) + (parameter or b"")
    )


def tcap(
    components: list[bytes],
    ac: tuple[int, ...] | None,
    kind: str = "begin",
    otid: int = 0x01020304,
    dtid: int = 0x0A0B0C0D,
) -> bytes:
    body = b""
    if kind in ("begin", "continue"):
        body += tlv(0x48, otid.to_bytes(4, "big"))
    if kind in ("continue", "end"):
        body += tlv(0x49, dtid.to_bytes(4, "big"))
    if ac is not None:
        if kind == "begin":
            apdu = tlv(0x60, tlv(0x80, b"\x07\x80") + tlv(0xA1, tlv(0x06, oid(ac))))
        else:  # AARE accepted
            apdu = tlv(
                0x61,
                tlv(0x80, b"\x07\x80")
                + tlv(0xA1, tlv(0x06, oid(ac)))
                + tlv(0xA2, tlv(0x02, b"\x00"))
                + tlv(0xA3, tlv(0xA1, tlv(0x02, b"\x00"))),
            )
        ext = tlv(0x28, tlv(0x06, oid((0, 0, 17, 773, 1, 1, 1))) + tlv(0xA0, apdu))
        body += tlv(0x6B, ext)
    body += tlv(0x6C, b"".join(components))
    tag = {"begin": 0x62, "continue": 0x65, "end": 0x64}[kind]
    return tlv(tag, body)


def wrap(
    components: list[bytes],
    ac: tuple[int, ...] | None,
    called_ssn: int,
    calling_ssn: int,
    kind: str = "begin",
) -> bytes:
    udt = sccp_udt(tcap(components, ac, kind), called_ssn=called_ssn, calling_ssn=calling_ssn)
    return m3ua_data(udt, rc=1)


# ---------------------------------------------------------------------------------------------
# Extraction from captures
# ---------------------------------------------------------------------------------------------


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, TLV start, value start, value end) of each child TLV in buf[start:end]."""
    out = []
    i = start
    while i < end:
        if buf[i] == 0 and i + 1 < end and buf[i + 1] == 0:
            break
        t, s, e, nxt = read_tlv(buf, i, len(buf))
        out.append((t, i, s, e))
        i = nxt
    return out


def _decode_oid(b: bytes) -> tuple[int, ...]:
    arcs = [b[0] // 40, b[0] % 40]
    v = 0
    for x in b[1:]:
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            arcs.append(v)
            v = 0
    return tuple(arcs)


def tcap_components(msg: bytes) -> list[tuple[str, int, bytes | None, tuple[int, ...] | None]]:
    """(kind, opcode/errcode, parameter TLV, AC) for each component of one TCAP message."""
    _t, s, e, _n = read_tlv(msg, 0, len(msg))
    ac = None
    comps: list[tuple[str, int, bytes | None, tuple[int, ...] | None]] = []
    for ct, _ts, cs, ce in _children(msg, s, e):
        if ct == 0x6B:
            raw = msg[cs:ce]
            i = raw.find(b"\xa1")
            while i >= 0:
                if i + 4 < len(raw) and raw[i + 2] == 0x06:
                    ac = _decode_oid(raw[i + 4 : i + 4 + raw[i + 3]])
                    break
                i = raw.find(b"\xa1", i + 1)
        elif ct == 0x6C:
            for kt, _ks, vs, ve in _children(msg, cs, ce):
                parts = _children(msg, vs, ve)
                if kt in (0xA1, 0xA3):
                    idx = 2 if len(parts) > 2 and parts[1][0] == 0x80 else 1
                    _c, _cts, c0, c1 = parts[idx]
                    code = int.from_bytes(msg[c0:c1], "big", signed=True)
                    param = msg[parts[idx + 1][1] : ve] if len(parts) > idx + 1 else None
                    comps.append(("invoke" if kt == 0xA1 else "error", code, param, ac))
                elif kt in (0xA2, 0xA7) and len(parts) > 1:
                    _st, _sts, s0, s1 = parts[1]
                    inner = _children(msg, s0, s1)
                    code = int.from_bytes(msg[inner[0][2] : inner[0][3]], "big", signed=True)
                    param = msg[inner[1][1] : s1] if len(inner) > 1 else None
                    comps.append(("result", code, param, ac))
    return comps


def _sccp_payload(sccp: bytes) -> tuple[int, bytes, bytes | None] | None:
    """(message type, data, segmentation param) of a UDT/XUDT; None for others."""
    mt = sccp[0]
    if mt == 0x09:
        p3 = 4 + sccp[4]
        return mt, sccp[p3 + 1 : p3 + 1 + sccp[p3]], None
    if mt == 0x11:
        p3 = 5 + sccp[5]
        data = sccp[p3 + 1 : p3 + 1 + sccp[p3]]
        seg = None
        if sccp[6]:
            i = 6 + sccp[6]
            while i < len(sccp) and sccp[i] != 0:
                tag, ln = sccp[i], sccp[i + 1]
                if tag == 0x10:
                    seg = sccp[i + 2 : i + 2 + ln]
                i += 2 + ln
        return mt, data, seg
    return None


def sccp_from_pcap(path: Path) -> list[bytes]:
    from scapy.layers.sctp import SCTPChunkData
    from scapy.utils import rdpcap

    out: list[bytes] = []
    for pkt in rdpcap(str(path)):
        chunk = pkt.getlayer(SCTPChunkData)
        while chunk is not None:
            data = bytes(chunk.data)
            ppid = chunk.proto_id
            sccp = None
            if ppid == 3 and len(data) > 8 and data[2] == 1 and data[3] == 1:
                i = 8
                while i + 4 <= len(data):
                    tag, ln = struct.unpack("!HH", data[i : i + 4])
                    if tag == 0x0210:
                        sccp = data[i + 4 + 12 : i + ln] if data[i + 4 + 8] == 3 else None
                    i += ln + ((-ln) % 4)
            elif ppid == 2 and len(data) > 8 and data[2] == 6 and data[3] == 1:
                i = 8
                while i + 4 <= len(data):
                    tag, ln = struct.unpack("!HH", data[i : i + 4])
                    if tag == 0x0300 and (data[i + 4] & 0x0F) == 3:
                        sccp = data[i + 4 + 5 : i + ln]
                    i += ln + ((-ln) % 4)
            elif ppid == 5 and len(data) > 17 and data[2] == 11 and data[3] == 1:
                msu = data[16:]
                if len(msu) > 6 and (msu[1] & 0x0F) == 3:
                    sccp = msu[6:]
            if sccp:
                out.append(sccp)
            nxt = chunk.payload
            chunk = nxt.getlayer(SCTPChunkData) if nxt else None
    return out


def components_from_pcap(path: Path) -> list[tuple[str, int, bytes | None, tuple[int, ...] | None]]:
    comps = []
    pending: dict[bytes, bytes] = {}
    for sccp in sccp_from_pcap(path):
        got = _sccp_payload(sccp)
        if got is None:
            continue
        _mt, data, seg = got
        if seg is not None:
            ref = seg[1:4]
            pending[ref] = pending.get(ref, b"") + data
            if seg[0] & 0x0F:
                continue
            data = pending.pop(ref)
        if not data or data[0] not in (0x62, 0x65, 0x64, 0x61):
            continue
        comps.extend(tcap_components(data))
    return comps
