"""SCCP connectionless messages and SCCP management (SCMG) as bytes <-> frozen dataclasses.

Follows ITU-T Q.713 (03/2001):

* §2 message layout: message type code, fixed mandatory part, one-octet pointers to the
  mandatory variable part (two-octet pointers in LUDT/LUDTS) and the pointer to the optional
  part; §4 message formats: UDT (§4.18), UDTS (§4.19), XUDT (§4.18/Table 19), XUDTS
  (Table 20), LUDT (Table 21), LUDTS (Table 22).
* §3.4 called/calling party address: address indicator (national-use bit, routing indicator,
  global title indicator, SSN and PC indicators), signalling point code (14-bit ITU in two
  octets; or China's 24-bit national point code in three, YDN 038-1997, with
  ``PointCodeFormat.CHINA``), SSN and the
  global title in formats GTI 1..4 (§3.4.2.3) with BCD digits, odd/even from the encoding
  scheme or the odd/even indicator, filler 0000 after an odd last digit.
* §3.6 protocol class (class 0/1, "return message on error" option), §3.12 return cause,
  §3.17 segmentation, §3.18 hop counter, §3.19 importance, §3.20 end of optional parameters.
* §5 SCCP management messages (SSA, SSP, SST, SOR, SOG, SSC): format identifier, affected SSN,
  affected PC (two or three octets, as in addresses), subsystem multiplicity indicator,
  congestion level (SSC).

Every function taking or giving a point code has a ``pcf`` argument (ITU by default).

Hand-written with ``bytes`` indexing because it is on the hot path of every message; address
encode/decode results are memoised because a node sees the same few addresses over and over.
Every failure is a :class:`~scp.codecs.errors.DecodeError` (``layer="sccp"``) with the byte
offset into the buffer, or an :class:`~scp.codecs.errors.EncodeError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scp.codecs.errors import DecodeError, EncodeError
from scp.primitives import GlobalTitle, PointCodeFormat, RoutingIndicator, SccpAddress

__all__ = [
    "MessageType",
    "ParameterName",
    "ScmgFormat",
    "Segmentation",
    "Udt",
    "Udts",
    "Xudt",
    "Xudts",
    "Ludt",
    "Ludts",
    "SccpMessage",
    "Scmg",
    "decode",
    "encode",
    "decode_address",
    "encode_address",
    "decode_scmg",
    "encode_scmg",
    "salvage_return_info",
    "SCMG_SSN",
]

LAYER = "sccp"


class MessageType(enum.IntEnum):
    """SCCP message type codes of the connectionless messages (Q.713 §2.1, Table 1)."""

    UDT = 0x09
    UDTS = 0x0A
    XUDT = 0x11
    XUDTS = 0x12
    LUDT = 0x13
    LUDTS = 0x14


class ParameterName(enum.IntEnum):
    """Optional parameter name codes (Q.713 §3, Table 2) used by XUDT/XUDTS/LUDT/LUDTS."""

    END_OF_OPTIONAL_PARAMETERS = 0x00
    SEGMENTATION = 0x10
    IMPORTANCE = 0x12


class ScmgFormat(enum.IntEnum):
    """SCMG format identifiers (Q.713 §5.1.2.1, Table 23), ITU messages only."""

    SSA = 0x01  # subsystem-allowed
    SSP = 0x02  # subsystem-prohibited
    SST = 0x03  # subsystem-status-test
    SOR = 0x04  # subsystem-out-of-service-request
    SOG = 0x05  # subsystem-out-of-service-grant
    SSC = 0x06  # SCCP/subsystem-congested


SCMG_SSN = 1
"""SSN of SCCP management itself (Q.713 §3.4.2.2)."""

# Message handling bits 8-5 of the protocol class for classes 0 and 1 (Q.713 §3.6):
# 0000 "no special options", 1000 "return message on error".
_RETURN_ON_ERROR = 0x80

# GT digits are BCD with the first digit in the low nibble (Q.713 §3.4.2.3.1): swapping the
# nibbles of every octet turns the field into text that bytes.hex()/fromhex() read directly.
_NIBBLE_SWAP = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segmentation:
    """Segmentation parameter (Q.713 §3.17): first flag, class, remaining count, local ref."""

    first: bool
    protocol_class: int  # bit C: the class the user asked for the whole message (0 or 1)
    remaining: int  # remaining segments, 0..15
    local_reference: int  # segmentation local reference, 24 bits


@dataclass(frozen=True, slots=True)
class Udt:
    """UDT unitdata (Q.713 §4.18): class 0/1 user data of up to 255 octets."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    protocol_class: int = 0
    return_option: bool = False


@dataclass(frozen=True, slots=True)
class Udts:
    """UDTS unitdata service (Q.713 §4.19): a UDT returned with ``return_cause``."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    return_cause: int


@dataclass(frozen=True, slots=True)
class Xudt:
    """XUDT extended unitdata (Q.713 §4.20): UDT plus hop counter, segmentation, importance."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    protocol_class: int = 0
    return_option: bool = False
    hop_counter: int = 15
    segmentation: Segmentation | None = None
    importance: int | None = None


@dataclass(frozen=True, slots=True)
class Xudts:
    """XUDTS extended unitdata service (Q.713 §4.21): an XUDT returned with ``return_cause``."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    return_cause: int
    hop_counter: int = 15
    segmentation: Segmentation | None = None
    importance: int | None = None


@dataclass(frozen=True, slots=True)
class Ludt:
    """LUDT long unitdata (Q.713 §4.22): XUDT with two-octet pointers and long data."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    protocol_class: int = 0
    return_option: bool = False
    hop_counter: int = 15
    segmentation: Segmentation | None = None
    importance: int | None = None


@dataclass(frozen=True, slots=True)
class Ludts:
    """LUDTS long unitdata service (Q.713 §4.23): a LUDT returned with ``return_cause``."""

    called: SccpAddress
    calling: SccpAddress
    data: bytes
    return_cause: int
    hop_counter: int = 15
    segmentation: Segmentation | None = None
    importance: int | None = None


SccpMessage = Udt | Udts | Xudt | Xudts | Ludt | Ludts


@dataclass(frozen=True, slots=True)
class Scmg:
    """An SCCP management message (Q.713 §5.3) carried as UDT data between SSN 1 and SSN 1."""

    format_id: int
    affected_ssn: int
    affected_pc: int
    smi: int = 0  # subsystem multiplicity indicator (Q.713 §5.2.4), bits 2-1
    congestion_level: int | None = None  # SSC only (Q.713 §5.2.5), 1..8


# ---------------------------------------------------------------------------------------------
# Addresses (Q.713 §3.4)
# ---------------------------------------------------------------------------------------------

ITU = PointCodeFormat.ITU
# one pair per format, picked with ``is``: an Enum's hash is computed in Python, per call
_ITU_DECODE: dict[bytes, SccpAddress] = {}
_ITU_ENCODE: dict[SccpAddress, bytes] = {}
_CHINA_DECODE: dict[bytes, SccpAddress] = {}
_CHINA_ENCODE: dict[SccpAddress, bytes] = {}
_CACHE_MAX = 4096


def _digits_from(buf: bytes, odd: bool) -> str:
    text = buf.translate(_NIBBLE_SWAP).hex()
    # The high nibble of the last octet is a filler when the count is odd (§3.4.2.3.1).
    return text[:-1] if odd and text else text


def decode_address(value: bytes, base: int = 0, pcf: PointCodeFormat = ITU) -> SccpAddress:
    """Decode the value of a called/calling party address (its length octet excluded).

    ``base`` is the offset of ``value`` in the whole message, for error offsets.
    """
    cache = _ITU_DECODE if pcf is ITU else _CHINA_DECODE
    cached = cache.get(value)
    if cached is not None:
        return cached
    addr = _decode_address(value, base, pcf)
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[bytes(value)] = addr
    return addr


def _decode_address(v: bytes, base: int, pcf: PointCodeFormat = ITU) -> SccpAddress:
    n = len(v)
    if n == 0:
        raise DecodeError(LAYER, base, "empty party address")
    ai = v[0]
    # Bit 8 is reserved for national use; ITU networks send 0 and a receiver ignores it.
    ri = RoutingIndicator.SSN if ai & 0x40 else RoutingIndicator.GT
    gti = (ai >> 2) & 0x0F
    pos = 1
    pc: int | None = None
    ssn: int | None = None
    if ai & 0x01:
        if pcf is ITU:
            if pos + 2 > n:
                raise DecodeError(LAYER, base + pos, "address too short for its point code")
            pc = (v[pos] | (v[pos + 1] << 8)) & 0x3FFF
            pos += 2
        else:
            if pos + 3 > n:
                raise DecodeError(LAYER, base + pos, "address too short for its point code")
            pc = v[pos] | (v[pos + 1] << 8) | (v[pos + 2] << 16)
            pos += 3
    if ai & 0x02:
        if pos >= n:
            raise DecodeError(LAYER, base + pos, "address too short for its SSN")
        ssn = v[pos]
        pos += 1
    gt: GlobalTitle | None = None
    if gti == 0:
        pass
    elif gti == 1:
        if pos >= n:
            raise DecodeError(LAYER, base + pos, "GTI 1 without nature of address")
        b = v[pos]
        gt = GlobalTitle(digits=_digits_from(v[pos + 1 :], bool(b & 0x80)), gti=1, nai=b & 0x7F)
    elif gti == 2:
        if pos >= n:
            raise DecodeError(LAYER, base + pos, "GTI 2 without translation type")
        # GTI 2 has no odd/even indicator: the translation type implies it, so every nibble
        # is read as a digit.
        gt = GlobalTitle(digits=_digits_from(v[pos + 1 :], False), gti=2, tt=v[pos])
    elif gti == 3 or gti == 4:
        need = 2 if gti == 3 else 3
        if pos + need > n:
            raise DecodeError(LAYER, base + pos, f"GTI {gti} header truncated")
        tt = v[pos]
        np_es = v[pos + 1]
        es = np_es & 0x0F
        if es != 1 and es != 2:
            # Only BCD (1 odd, 2 even) is defined for digits (§3.4.2.3.3).
            raise DecodeError(LAYER, base + pos + 1, f"unsupported GT encoding scheme {es}")
        nai = (v[pos + 2] & 0x7F) if gti == 4 else 4
        gt = GlobalTitle(
            digits=_digits_from(v[pos + need :], es == 1), gti=gti, tt=tt, np=np_es >> 4, nai=nai
        )
    else:
        raise DecodeError(LAYER, base, f"global title indicator {gti} not defined for ITU")
    return SccpAddress(ri=ri, pc=pc, ssn=ssn, gt=gt)


def _bcd(digits: str) -> tuple[bytes, bool]:
    odd = len(digits) & 1
    try:
        raw = bytes.fromhex(digits + "0" if odd else digits)
    except ValueError:
        raise EncodeError(LAYER, f"GT digits {digits!r} are not BCD") from None
    return raw.translate(_NIBBLE_SWAP), bool(odd)


def encode_address(a: SccpAddress, pcf: PointCodeFormat = ITU) -> bytes:
    """Encode a called/calling party address value (without its length octet)."""
    cache = _ITU_ENCODE if pcf is ITU else _CHINA_ENCODE
    cached = cache.get(a)
    if cached is not None:
        return cached
    raw = _encode_address(a, pcf)
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[a] = raw
    return raw


def _pc_octets(pc: int, pcf: PointCodeFormat) -> bytes:
    if not 0 <= pc <= pcf.max_pc:
        raise EncodeError(
            LAYER, f"point code {pc} does not fit the {pcf.value} format (0..{pcf.max_pc})"
        )
    return pc.to_bytes(pcf.octets, "little")


def _encode_address(a: SccpAddress, pcf: PointCodeFormat = ITU) -> bytes:
    ai = 0x40 if a.ri == RoutingIndicator.SSN else 0x00
    out = bytearray(1)
    if a.pc is not None:
        ai |= 0x01
        out += _pc_octets(a.pc, pcf)
    if a.ssn is not None:
        if not 0 <= a.ssn <= 255:
            raise EncodeError(LAYER, f"SSN {a.ssn} out of range")
        ai |= 0x02
        out.append(a.ssn)
    gt = a.gt
    if gt is not None:
        g = gt.gti
        if not 1 <= g <= 4:
            raise EncodeError(LAYER, f"global title indicator {g} not supported")
        if not (0 <= gt.tt <= 255 and 0 <= gt.np <= 15 and 0 <= gt.nai <= 127):
            raise EncodeError(LAYER, f"global title field out of range: {gt}")
        ai |= g << 2
        digits, odd = _bcd(gt.digits)
        if g == 1:
            out.append((0x80 if odd else 0) | gt.nai)
        elif g == 2:
            out.append(gt.tt)
        elif g == 3:
            out += bytes((gt.tt, (gt.np << 4) | (1 if odd else 2)))
        else:
            out += bytes((gt.tt, (gt.np << 4) | (1 if odd else 2), gt.nai))
        out += digits
    out[0] = ai
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def _part(data: bytes, ptr_pos: int, name: str) -> tuple[int, int]:
    """Follow the one-octet pointer at ``ptr_pos``: (start, end) of the variable part's value."""
    n = len(data)
    p = data[ptr_pos]
    if p == 0:
        raise DecodeError(LAYER, ptr_pos, f"pointer to {name} is zero")
    at = ptr_pos + p
    if at >= n:
        raise DecodeError(LAYER, ptr_pos, f"pointer to {name} beyond the message")
    end = at + 1 + data[at]
    if end > n:
        raise DecodeError(LAYER, at, f"{name} runs past the end of the message")
    return at + 1, end


def _part16(data: bytes, ptr_pos: int, name: str, len_octets: int) -> tuple[int, int]:
    """Follow a two-octet LUDT/LUDTS pointer (least significant octet first, §2.3).

    The distance counts from the pointer's second octet, as Wireshark and pycrate read it.
    """
    n = len(data)
    p = data[ptr_pos] | (data[ptr_pos + 1] << 8)
    if p == 0:
        raise DecodeError(LAYER, ptr_pos, f"pointer to {name} is zero")
    at = ptr_pos + 1 + p
    if at + len_octets > n:
        raise DecodeError(LAYER, ptr_pos, f"pointer to {name} beyond the message")
    length = data[at] if len_octets == 1 else data[at] | (data[at + 1] << 8)
    end = at + len_octets + length
    if end > n:
        raise DecodeError(LAYER, at, f"{name} runs past the end of the message")
    return at + len_octets, end


def _optional(data: bytes, at: int) -> tuple[Segmentation | None, int | None]:
    """Read the optional part from ``at``: segmentation and importance; unknown ones skipped."""
    n = len(data)
    seg: Segmentation | None = None
    importance: int | None = None
    while at < n:
        name = data[at]
        if name == ParameterName.END_OF_OPTIONAL_PARAMETERS:
            break
        if at + 2 > n:
            raise DecodeError(LAYER, at, "optional parameter without length")
        length = data[at + 1]
        start = at + 2
        end = start + length
        if end > n:
            raise DecodeError(LAYER, at, f"optional parameter 0x{name:02x} truncated")
        if name == ParameterName.SEGMENTATION:
            if length != 4:
                raise DecodeError(LAYER, at, "segmentation parameter length is not 4")
            b = data[start]
            seg = Segmentation(
                first=bool(b & 0x80),
                protocol_class=(b >> 6) & 1,
                remaining=b & 0x0F,
                local_reference=data[start + 1] | (data[start + 2] << 8) | (data[start + 3] << 16),
            )
        elif name == ParameterName.IMPORTANCE:
            if length != 1:
                raise DecodeError(LAYER, at, "importance parameter length is not 1")
            importance = data[start] & 0x07
        # Other parameters are not defined for these messages: ignored (Q.714 §1.10.1).
        at = end
    return seg, importance


def _protocol_class(data: bytes, pos: int) -> tuple[int, bool]:
    b = data[pos]
    cls = b & 0x0F
    if cls > 1:
        raise DecodeError(LAYER, pos, f"protocol class {cls} in a connectionless message")
    return cls, bool(b & _RETURN_ON_ERROR)


def decode(data: bytes, pcf: PointCodeFormat = ITU) -> SccpMessage:
    """Decode one connectionless SCCP message (UDT, UDTS, XUDT, XUDTS, LUDT, LUDTS).

    Bytes after the last part (e.g. link padding) are ignored.
    """
    if type(data) is not bytes:
        data = bytes(data)
    n = len(data)
    if n == 0:
        raise DecodeError(LAYER, 0, "empty message")
    t = data[0]
    try:
        if t == 0x09 or t == 0x0A:  # UDT / UDTS
            if n < 5:
                raise DecodeError(LAYER, n, "message shorter than its fixed part and pointers")
            s1, e1 = _part(data, 2, "called party address")
            s2, e2 = _part(data, 3, "calling party address")
            s3, e3 = _part(data, 4, "data")
            called = decode_address(data[s1:e1], s1, pcf)
            calling = decode_address(data[s2:e2], s2, pcf)
            if t == 0x09:
                cls, ret = _protocol_class(data, 1)
                return Udt(called, calling, data[s3:e3], cls, ret)
            return Udts(called, calling, data[s3:e3], data[1])
        if t == 0x11 or t == 0x12:  # XUDT / XUDTS
            if n < 7:
                raise DecodeError(LAYER, n, "message shorter than its fixed part and pointers")
            s1, e1 = _part(data, 3, "called party address")
            s2, e2 = _part(data, 4, "calling party address")
            s3, e3 = _part(data, 5, "data")
            seg: Segmentation | None = None
            imp: int | None = None
            if data[6]:
                opt_at = 6 + data[6]
                if opt_at >= n:
                    raise DecodeError(LAYER, 6, "pointer to optional part beyond the message")
                seg, imp = _optional(data, opt_at)
            called = decode_address(data[s1:e1], s1, pcf)
            calling = decode_address(data[s2:e2], s2, pcf)
            hop = data[2] & 0x0F
            if t == 0x11:
                cls, ret = _protocol_class(data, 1)
                return Xudt(called, calling, data[s3:e3], cls, ret, hop, seg, imp)
            return Xudts(called, calling, data[s3:e3], data[1], hop, seg, imp)
        if t == 0x13 or t == 0x14:  # LUDT / LUDTS
            if n < 11:
                raise DecodeError(LAYER, n, "message shorter than its fixed part and pointers")
            s1, e1 = _part16(data, 3, "called party address", 1)
            s2, e2 = _part16(data, 5, "calling party address", 1)
            s3, e3 = _part16(data, 7, "long data", 2)
            seg = imp = None
            p4 = data[9] | (data[10] << 8)
            if p4:
                if 10 + p4 >= n:
                    raise DecodeError(LAYER, 9, "pointer to optional part beyond the message")
                seg, imp = _optional(data, 10 + p4)
            called = decode_address(data[s1:e1], s1, pcf)
            calling = decode_address(data[s2:e2], s2, pcf)
            hop = data[2] & 0x0F
            if t == 0x13:
                cls, ret = _protocol_class(data, 1)
                return Ludt(called, calling, data[s3:e3], cls, ret, hop, seg, imp)
            return Ludts(called, calling, data[s3:e3], data[1], hop, seg, imp)
    except IndexError:  # a guard missed a short buffer: still a typed error
        raise DecodeError(LAYER, n, "message truncated") from None
    raise DecodeError(LAYER, 0, f"message type 0x{t:02x} is not a connectionless message")


def salvage_return_info(
    data: bytes, pcf: PointCodeFormat = ITU
) -> tuple[int, SccpAddress, SccpAddress | None, bytes] | None:
    """For a UDT/XUDT/LUDT that failed to decode: what the return procedure needs, if readable.

    Returns (message type, calling address, called address or None, user data or b"") when
    the protocol class asks for a return on error and the calling address decodes; None
    otherwise (Q.714 §4.2: without the calling address nothing can be returned).
    """
    try:
        if len(data) < 5:
            return None
        t = data[0]
        if t not in (0x09, 0x11, 0x13) or not data[1] & _RETURN_ON_ERROR:
            return None
        if t == 0x09:
            ptrs = (2, 3, 4)
        elif t == 0x11:
            ptrs = (3, 4, 5)
        else:
            ptrs = (3, 5, 7)

        def part(i: int, name: str) -> tuple[int, int]:
            if t == 0x13:
                return _part16(data, ptrs[i], name, 2 if i == 2 else 1)
            return _part(data, ptrs[i], name)

        s2, e2 = part(1, "calling party address")
        calling = _decode_address(data[s2:e2], s2, pcf)
        called: SccpAddress | None
        try:
            s1, e1 = part(0, "called party address")
            called = _decode_address(data[s1:e1], s1, pcf)
        except (DecodeError, IndexError):
            called = None
        try:
            s3, e3 = part(2, "data")
            user = bytes(data[s3:e3])
        except (DecodeError, IndexError):
            user = b""
        return t, calling, called, user
    except (DecodeError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def _optional_part(seg: Segmentation | None, importance: int | None) -> bytes:
    out = bytearray()
    if seg is not None:
        if not (0 <= seg.remaining <= 15 and 0 <= seg.local_reference <= 0xFFFFFF):
            raise EncodeError(LAYER, f"segmentation out of range: {seg}")
        b = (0x80 if seg.first else 0) | ((seg.protocol_class & 1) << 6) | seg.remaining
        r = seg.local_reference
        out += bytes((0x10, 4, b, r & 0xFF, (r >> 8) & 0xFF, r >> 16))
    if importance is not None:
        if not 0 <= importance <= 7:
            raise EncodeError(LAYER, f"importance {importance} out of range")
        out += bytes((0x12, 1, importance))
    if out:
        out.append(0x00)  # end of optional parameters (§3.20)
    return bytes(out)


def _class_octet(protocol_class: int, return_option: bool) -> int:
    if protocol_class not in (0, 1):
        raise EncodeError(LAYER, f"protocol class {protocol_class} is not connectionless")
    return protocol_class | (_RETURN_ON_ERROR if return_option else 0)


def _check_len(value: bytes, what: str, limit: int = 255) -> int:
    n = len(value)
    if n > limit:
        raise EncodeError(LAYER, f"{what} of {n} octets does not fit its length indicator")
    return n


def _short(t: int, fixed: bytes, cd: bytes, cg: bytes, ud: bytes, opt: bytes | None) -> bytes:
    """Layout with one-octet pointers: UDT/UDTS (opt None) and XUDT/XUDTS (opt bytes)."""
    lcd = _check_len(cd, "called party address")
    lcg = _check_len(cg, "calling party address")
    lud = _check_len(ud, "data")
    nptr = 3 if opt is None else 4
    # Each pointer counts from its own octet to the length octet of its part (§2.3).
    # Each pointer is one octet further on than the previous one, and its part is after all
    # the earlier parts (each part = length octet + value).
    ptrs = [nptr, nptr + lcd, nptr + lcd + lcg]
    if opt is not None:
        ptrs.append(nptr + lcd + lcg + lud if opt else 0)
    if max(ptrs) > 255:
        raise EncodeError(LAYER, "message too long for one-octet pointers")
    return b"".join(
        (
            bytes((t, *fixed, *ptrs, lcd)),
            cd,
            bytes((lcg,)),
            cg,
            bytes((lud,)),
            ud,
            opt or b"",
        )
    )


def _long(t: int, fixed: bytes, cd: bytes, cg: bytes, ud: bytes, opt: bytes) -> bytes:
    """LUDT/LUDTS layout: two-octet pointers, two-octet long data length (§2.3, §3.16)."""
    lcd = _check_len(cd, "called party address")
    lcg = _check_len(cg, "calling party address")
    lud = _check_len(ud, "long data", 3952)
    # Pointers are two octets apart, each counts from its second octet, and the data length
    # indicator is two octets long.
    p1 = 7
    p2 = 6 + lcd
    p3 = 5 + lcd + lcg
    p4 = 5 + lcd + lcg + lud if opt else 0
    head = bytes((t, *fixed))
    for p in (p1, p2, p3, p4):
        head += bytes((p & 0xFF, p >> 8))
    return b"".join(
        (head, bytes((lcd,)), cd, bytes((lcg,)), cg, bytes((lud & 0xFF, lud >> 8)), ud, opt)
    )


def _hop(h: int) -> int:
    if not 0 <= h <= 15:
        raise EncodeError(LAYER, f"hop counter {h} out of range")
    return h


def encode(msg: SccpMessage, pcf: PointCodeFormat = ITU) -> bytes:
    """Encode one connectionless SCCP message."""
    t = type(msg)
    cd = encode_address(msg.called, pcf)
    cg = encode_address(msg.calling, pcf)
    if t is Udt:
        assert isinstance(msg, Udt)
        fixed = bytes((_class_octet(msg.protocol_class, msg.return_option),))
        return _short(0x09, fixed, cd, cg, msg.data, None)
    if t is Udts:
        assert isinstance(msg, Udts)
        return _short(0x0A, bytes((msg.return_cause & 0xFF,)), cd, cg, msg.data, None)
    if t is Xudt or t is Ludt:
        assert isinstance(msg, (Xudt, Ludt))
        cls = _class_octet(msg.protocol_class, msg.return_option)
        fixed = bytes((cls, _hop(msg.hop_counter)))
        opt = _optional_part(msg.segmentation, msg.importance)
        if t is Xudt:
            return _short(0x11, fixed, cd, cg, msg.data, opt)
        return _long(0x13, fixed, cd, cg, msg.data, opt)
    if t is Xudts or t is Ludts:
        assert isinstance(msg, (Xudts, Ludts))
        fixed = bytes((msg.return_cause & 0xFF, _hop(msg.hop_counter)))
        opt = _optional_part(msg.segmentation, msg.importance)
        if t is Xudts:
            return _short(0x12, fixed, cd, cg, msg.data, opt)
        return _long(0x14, fixed, cd, cg, msg.data, opt)
    raise EncodeError(LAYER, f"not an SCCP message: {type(msg).__name__}")


# ---------------------------------------------------------------------------------------------
# SCCP management (Q.713 §5)
# ---------------------------------------------------------------------------------------------


def decode_scmg(data: bytes, pcf: PointCodeFormat = ITU) -> Scmg:
    """Decode an SCMG message (the data of a UDT/XUDT between SSN 1 and SSN 1)."""
    n = len(data)
    k = pcf.octets
    if n < 3 + k:
        raise DecodeError(LAYER, n, f"SCMG message shorter than {3 + k} octets")
    fmt = data[0]
    if not 1 <= fmt <= 6:
        raise DecodeError(LAYER, 0, f"SCMG format identifier 0x{fmt:02x} unknown")
    congestion: int | None = None
    if fmt == ScmgFormat.SSC:
        if n < 4 + k:
            raise DecodeError(LAYER, n, "SSC without congestion level")
        congestion = data[3 + k] & 0x0F
    return Scmg(
        format_id=fmt,
        affected_ssn=data[1],
        affected_pc=int.from_bytes(data[2 : 2 + k], "little") & pcf.max_pc,
        smi=data[2 + k] & 0x03,
        congestion_level=congestion,
    )


def encode_scmg(m: Scmg, pcf: PointCodeFormat = ITU) -> bytes:
    """Encode an SCMG message."""
    if not (
        1 <= m.format_id <= 6 and 0 <= m.affected_ssn <= 255 and 0 <= m.affected_pc <= pcf.max_pc
    ):
        raise EncodeError(LAYER, f"SCMG field out of range: {m}")
    out = bytes((m.format_id, m.affected_ssn, *_pc_octets(m.affected_pc, pcf), m.smi & 3))
    if m.format_id == ScmgFormat.SSC:
        out += bytes(((m.congestion_level or 0) & 0x0F,))
    return out
