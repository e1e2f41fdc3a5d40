"""SMS text encoding for SMPP: GSM 7-bit or UCS-2, concatenation, segment counting.

Specs:
- 3GPP TS 23.038 §6.2.1 (GSM 7-bit default alphabet), §6.2.1.1 (default alphabet extension
  table, reached with ESC 0x1B), §6.1.2.1.1 (septet packing), §5 (data coding scheme:
  0x00 default alphabet, 0x08 UCS-2).
- 3GPP TS 23.040 §9.2.3.24 (TP-User Data Header), §9.2.3.24.1 (IE 0x00: concatenated short
  messages, 8-bit reference number), §9.2.3.16 (TP-UDL: 140 octets of user data per message).
- SMPP 3.4 §5.2.19 (esm_class: 0x40 UDHI), §5.2.19 (data_coding), §5.2.21 (short_message).

What goes on the SMPP wire: with data_coding 0 the short_message carries *unpacked* septets,
one per octet; the SMSC packs them into TP-UD (SMPP 3.4 §5.2.19 leaves the packing to the MC and
every SMSC we know expects it so). :func:`pack_septets` is here for TP-UD and for budgeting.

Segment budget (what the handset receives, 140 octets of TP-UD per message):
- GSM 7-bit: 160 septets alone; with the 6-octet concatenation UDH (48 bits = 7 septets with
  fill) 153 septets per segment. Extension characters cost two septets and an ESC pair is never
  split across segments.
- UCS-2: 70 characters alone, 67 per segment (134 octets + 6 UDH); a surrogate pair (a
  character outside the BMP) costs two units and is never split.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scp.codecs.errors import DecodeError, EncodeError

__all__ = [
    "DataCoding",
    "ESM_CLASS_UDHI",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "ConcatInfo",
    "DecodedMessage",
    "EncodedSms",
    "SmsSegment",
    "choose_coding",
    "concat_udh",
    "decode_short_message",
    "encode_sms",
    "gsm7_decode",
    "gsm7_encode",
    "is_gsm7",
    "pack_septets",
    "parse_udh",
    "segment_count",
    "unpack_septets",
]

_LAYER = "sms"

ESM_CLASS_UDHI = 0x40
"""SMPP 3.4 §5.2.12 esm_class bit 6: short_message starts with a User Data Header."""

ESC = 0x1B
"""23.038 §6.2.1: escape to the extension table."""

# 23.038 §6.2.1, code points 0x00-0x7F in order; 0x1B (ESC) is a placeholder never encoded
# from text.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(GSM7_BASIC) == 128

# 23.038 §6.2.1.1: characters reached with ESC + code.
GSM7_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_BASIC_ENC: dict[str, int] = {c: i for i, c in enumerate(GSM7_BASIC) if i != ESC}
_EXT_DEC: dict[int, str] = {v: k for k, v in GSM7_EXTENSION.items()}
# str.translate table: each GSM character -> its septet(s) as code points 0-127; every other
# ASCII code point -> U+FFFF so one isascii() check finds what is not representable.
_NOT_GSM = "\uffff"
_TRANSLATE: dict[int, str] = {i: _NOT_GSM for i in range(128)}
_TRANSLATE.update({ord(c): chr(i) for c, i in _BASIC_ENC.items()})
_TRANSLATE.update({ord(c): "\x1b" + chr(i) for c, i in GSM7_EXTENSION.items()})

# TP-UD limits (23.040 §9.2.3.16) with and without the 6-octet concatenation UDH.
GSM7_SINGLE = 160
GSM7_PER_SEGMENT = 153
UCS2_SINGLE = 70  # UTF-16 code units
UCS2_PER_SEGMENT = 67
MAX_SEGMENTS = 255  # 23.040 §9.2.3.24.1: "Maximum number of short messages" is one octet

IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08


class DataCoding(enum.IntEnum):
    """SMPP 3.4 §5.2.19 data_coding values this SCP sends (23.038 §4 DCS, general group)."""

    GSM7 = 0x00  # SMSC default alphabet = GSM 03.38 default alphabet
    IA5 = 0x01
    LATIN1 = 0x03
    UCS2 = 0x08


@dataclass(frozen=True)
class SmsSegment:
    """One submit_sm worth of message: the short_message octets and the flags they need."""

    data_coding: DataCoding
    esm_class: int
    short_message: bytes  # UDH (if any) followed by the encoded text
    text: str  # the part of the text this segment carries


@dataclass(frozen=True)
class EncodedSms:
    """A text split into the segments the SMSC must receive, in order."""

    data_coding: DataCoding
    segments: tuple[SmsSegment, ...]
    concat_ref: int | None  # None for a single-segment message


@dataclass(frozen=True)
class ConcatInfo:
    """23.040 §9.2.3.24.1 / .8: reference, total parts and this part's number (1-based)."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True)
class DecodedMessage:
    """A received short_message: its text, the raw UDH and concatenation info if present."""

    text: str
    udh: bytes
    concat: ConcatInfo | None


# ---------------------------------------------------------------------------------------------
# GSM 7-bit default alphabet


def is_gsm7(text: str) -> bool:
    """True if every character is in the default alphabet or its extension table."""
    return text.translate(_TRANSLATE).isascii()


def _gsm7_fast(text: str) -> bytes | None:
    """Unpacked septets of ``text`` in one C pass; None if a character is not GSM 7-bit."""
    septets = text.translate(_TRANSLATE)
    return septets.encode("latin-1") if septets.isascii() else None


def _gsm7_units(text: str) -> list[bytes] | None:
    """Per character, its septets (1 or ESC+code); None if a character is not representable."""
    out: list[bytes] = []
    for c in text:
        code = _BASIC_ENC.get(c)
        if code is not None:
            out.append(bytes((code,)))
            continue
        ext = GSM7_EXTENSION.get(c)
        if ext is None:
            return None
        out.append(bytes((ESC, ext)))
    return out


def gsm7_encode(text: str) -> bytes:
    """Unpacked septets (one per octet) for ``text``; EncodeError if it is not GSM 7-bit."""
    septets = _gsm7_fast(text)
    if septets is None:
        bad = next(c for c in text if c not in _BASIC_ENC and c not in GSM7_EXTENSION)
        raise EncodeError(_LAYER, f"character {bad!r} (U+{ord(bad):04X}) is not in GSM 03.38")
    return septets


def gsm7_decode(septets: bytes) -> str:
    """Text of unpacked septets. An ESC followed by a code outside the extension table shows
    the basic character (23.038 §6.2.1.1 note 1); a trailing ESC is dropped."""
    out: list[str] = []
    i = 0
    n = len(septets)
    while i < n:
        s = septets[i]
        if s > 0x7F:
            raise DecodeError(_LAYER, i, f"octet 0x{s:02X} is not a GSM 7-bit septet")
        if s == ESC:
            if i + 1 >= n:
                break
            nxt = septets[i + 1]
            if nxt > 0x7F:
                raise DecodeError(_LAYER, i + 1, f"octet 0x{nxt:02X} is not a GSM 7-bit septet")
            ext = _EXT_DEC.get(nxt)
            out.append(ext if ext is not None else (" " if nxt == ESC else GSM7_BASIC[nxt]))
            i += 2
            continue
        out.append(GSM7_BASIC[s])
        i += 1
    return "".join(out)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """23.038 §6.1.2.1.1: pack septets LSB first; ``fill_bits`` zero bits come first (the UDH
    padding of 23.040 §9.2.3.24 so the text starts on a septet boundary)."""
    acc = 0
    nbits = fill_bits
    out = bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> bytes:
    """Inverse of :func:`pack_septets`: ``count`` septets after ``fill_bits`` bits."""
    if fill_bits + 7 * count > 8 * len(data):
        raise DecodeError(_LAYER, len(data), f"{count} septets do not fit in {len(data)} octets")
    value = int.from_bytes(data, "little") >> fill_bits
    return bytes((value >> (7 * i)) & 0x7F for i in range(count))


# ---------------------------------------------------------------------------------------------
# Choice, segmentation, UDH


def choose_coding(text: str) -> DataCoding:
    """GSM 7-bit when every character fits the default alphabet (cheapest), else UCS-2."""
    return DataCoding.GSM7 if is_gsm7(text) else DataCoding.UCS2


def concat_udh(ref: int, total: int, seq: int) -> bytes:
    """23.040 §9.2.3.24.1: UDHL=5, IEI 0x00, IEDL 3, reference, total, sequence (1-based)."""
    if not (0 <= ref <= 0xFF and 1 <= total <= MAX_SEGMENTS and 1 <= seq <= total):
        raise EncodeError(_LAYER, f"bad concatenation ref={ref} total={total} seq={seq}")
    return bytes((0x05, IEI_CONCAT_8BIT, 0x03, ref, total, seq))


def _split(units: list[bytes], single: int, per_segment: int) -> list[list[bytes]]:
    """Group indivisible units (a character's code) into segments of at most N unit-octets."""
    if sum(len(u) for u in units) <= single:
        return [units]
    parts: list[list[bytes]] = [[]]
    used = 0
    for u in units:
        if used + len(u) > per_segment:
            parts.append([])
            used = 0
        parts[-1].append(u)
        used += len(u)
    return parts


def _ucs2_units(text: str) -> list[bytes]:
    """Per character, its UTF-16BE code units (a non-BMP character is one surrogate pair)."""
    return [c.encode("utf-16-be") for c in text]


def _split_text(text: str) -> tuple[DataCoding, list[list[bytes]], list[str]]:
    units = _gsm7_units(text)
    if units is not None:
        coding = DataCoding.GSM7
        groups = _split(units, GSM7_SINGLE, GSM7_PER_SEGMENT)
    else:
        coding = DataCoding.UCS2
        # count in octets: 2 per code unit
        groups = _split(_ucs2_units(text), 2 * UCS2_SINGLE, 2 * UCS2_PER_SEGMENT)
    # the text of each group, by walking the characters in step with the units
    texts: list[str] = []
    pos = 0
    for g in groups:
        texts.append(text[pos : pos + len(g)])
        pos += len(g)
    return coding, groups, texts


def segment_count(text: str) -> int:
    """How many SMS the handset receives for ``text`` (what an ad budget is charged in)."""
    if not text:
        return 1
    septets = _gsm7_fast(text)
    if septets is not None and len(septets) <= GSM7_SINGLE:
        return 1
    if septets is None and len(text.encode("utf-16-be")) <= 2 * UCS2_SINGLE:
        return 1
    return len(_split_text(text)[1])


def encode_sms(text: str, *, concat_ref: int = 0) -> EncodedSms:
    """Encode ``text`` into SMPP segments: GSM 7-bit if possible else UCS-2; more than one
    segment carries the 8-bit-reference concatenation UDH with ``concat_ref`` (0-255) and sets
    esm_class UDHI. Keep ``concat_ref`` stable across retries of one SMS (derive it from the
    outbox row), so a resent segment is recognised by the handset as the same part."""
    # the common case, one segment, without splitting into per-character units
    septets = _gsm7_fast(text)
    if septets is not None and len(septets) <= GSM7_SINGLE:
        return EncodedSms(DataCoding.GSM7, (SmsSegment(DataCoding.GSM7, 0, septets, text),), None)
    if septets is None:
        ucs2 = text.encode("utf-16-be")
        if len(ucs2) <= 2 * UCS2_SINGLE:
            return EncodedSms(DataCoding.UCS2, (SmsSegment(DataCoding.UCS2, 0, ucs2, text),), None)
    coding, groups, texts = _split_text(text)
    total = len(groups)
    if total > MAX_SEGMENTS:
        raise EncodeError(_LAYER, f"text needs {total} segments, more than {MAX_SEGMENTS}")
    ref = concat_ref & 0xFF
    segments: list[SmsSegment] = []
    for seq, (g, t) in enumerate(zip(groups, texts, strict=True), start=1):
        body = b"".join(g)
        if total == 1:
            segments.append(SmsSegment(coding, 0x00, body, t))
        else:
            segments.append(
                SmsSegment(coding, ESM_CLASS_UDHI, concat_udh(ref, total, seq) + body, t)
            )
    return EncodedSms(coding, tuple(segments), ref if total > 1 else None)


# ---------------------------------------------------------------------------------------------
# Decoding what the SMSC delivers (deliver_sm: MO and receipts)


def parse_udh(short_message: bytes) -> tuple[bytes, ConcatInfo | None, int]:
    """Split off the UDH (23.040 §9.2.3.24): returns (udh incl. UDHL, concat info, body offset)."""
    if not short_message:
        raise DecodeError(_LAYER, 0, "UDHI set but short_message is empty")
    udhl = short_message[0]
    end = 1 + udhl
    if end > len(short_message):
        raise DecodeError(
            _LAYER, 0, f"UDHL {udhl} exceeds short_message length {len(short_message)}"
        )
    concat: ConcatInfo | None = None
    i = 1
    while i < end:
        if i + 2 > end:
            raise DecodeError(_LAYER, i, "truncated information element header")
        iei, iedl = short_message[i], short_message[i + 1]
        if i + 2 + iedl > end:
            raise DecodeError(_LAYER, i + 1, f"IEDL {iedl} runs past the UDH")
        data = short_message[i + 2 : i + 2 + iedl]
        if iei == IEI_CONCAT_8BIT and iedl == 3:
            concat = ConcatInfo(data[0], data[1], data[2])
        elif iei == IEI_CONCAT_16BIT and iedl == 4:
            concat = ConcatInfo(int.from_bytes(data[:2], "big"), data[2], data[3])
        i += 2 + iedl
    return short_message[:end], concat, end


def decode_short_message(
    short_message: bytes, data_coding: int, esm_class: int = 0
) -> DecodedMessage:
    """Text of a received short_message by data_coding (SMPP 3.4 §5.2.19): 0 GSM 7-bit
    (unpacked), 1 IA5/ASCII, 3 Latin-1, 8 UCS-2; other 8-bit codings are read as Latin-1.
    DecodeError if the octets do not fit the coding."""
    udh = b""
    concat: ConcatInfo | None = None
    body = short_message
    if esm_class & ESM_CLASS_UDHI:
        udh, concat, off = parse_udh(short_message)
        body = short_message[off:]
    base = len(udh)
    dc = data_coding
    # 23.038 §4: the general data coding group (00xx) carries the alphabet in bits 3-2;
    # SMPP's flat values 0,1,3,8 are what SMSCs send.
    if dc == DataCoding.GSM7 or (dc & 0xF0 == 0xF0 and not dc & 0x04):
        try:
            text = gsm7_decode(body)
        except DecodeError as e:
            raise DecodeError(_LAYER, base + e.offset, e.reason) from None
    elif dc == DataCoding.UCS2 or (dc & 0xC0 == 0 and dc & 0x0C == 0x08):
        if len(body) % 2:
            raise DecodeError(_LAYER, base + len(body) - 1, "UCS-2 text with an odd octet count")
        text = body.decode("utf-16-be", errors="replace")
    elif dc == DataCoding.IA5:
        text = body.decode("ascii", errors="replace")
    else:
        text = body.decode("latin-1")
    return DecodedMessage(text, udh, concat)
