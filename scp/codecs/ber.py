"""The BER helpers (ITU-T X.690 §8) of every codec in ``scp.codecs``: one reader, one writer.

The TCAP codec (Q.773) decodes every message of every call, so it walks the TLVs itself with
these helpers instead of building pycrate objects; the CAMEL octet strings coded by hand
(``cap.py``), the operation codecs' framing checks (``opcodec.py``), the INAP pruning decoder
(``asn``) and the BER fast path (``fastber.py``, ``fast_cap.py``) use the same ones. They work
on ``bytes`` with explicit ``pos``/``end`` bounds, never copy the buffer, and raise
:class:`BerError` (a :class:`~scp.codecs.errors.DecodeError`) with the offset where the
encoding broke; a codec that reads for a layer re-raises it under that layer's name.

Decoding accepts what X.690 allows a sender to choose: long-form definite lengths (§8.1.3.5,
up to 4 length octets here), the indefinite form on constructed encodings (§8.1.3.6) and
high tag numbers (§8.1.2.4). Encoding always emits the definite, shortest form (the DER
choice, §10.1), which every receiver accepts.

A tag is carried as the integer value of its identifier octets, e.g. ``0x62`` for
``[APPLICATION 2]`` constructed or ``0x9F38`` for ``[56]`` primitive: compare with literals.
"""

from __future__ import annotations

from scp.codecs.errors import DecodeError

__all__ = [
    "BerError",
    "read_tlv",
    "children",
    "decode_integer",
    "encode_integer",
    "decode_boolean",
    "decode_oid",
    "encode_oid",
    "encode_length",
    "tlv",
    "identifier",
    "identifier_octets",
    "class_and_number",
    "is_constructed",
]

MAX_DEPTH = 24
"""Deepest nesting of indefinite-length encodings we follow: bounds the work a hostile frame
can cause (each level recurses once)."""


class BerError(DecodeError):
    """A BER encoding error at ``offset``; ``layer`` is the codec that was reading."""

    def __init__(self, offset: int, reason: str, layer: str = "ber") -> None:
        super().__init__(layer, offset, reason)


def identifier(cls: int, constructed: bool, number: int) -> int:
    """The identifier octets of a tag (X.690 §8.1.2, shortest form) as one int, as read here.

    ``cls`` is the class (0 universal, 1 application, 2 context-specific, 3 private).
    """
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 31:
        return first | number
    out = [number & 0x7F]
    number >>= 7
    while number:
        out.append(0x80 | (number & 0x7F))
        number >>= 7
    ident = first | 0x1F
    for b in reversed(out):
        ident = (ident << 8) | b
    return ident


def identifier_octets(tag: int) -> bytes:
    """The identifier octets ``tag`` (an int as :func:`read_tlv` gives it) as bytes."""
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def class_and_number(tag: int) -> tuple[int, int]:
    """(class, tag number) of the identifier octets ``tag`` (X.690 §8.1.2)."""
    octets = identifier_octets(tag)
    number = octets[0] & 0x1F
    if number == 0x1F:
        number = 0
        for b in octets[1:]:
            number = (number << 7) | (b & 0x7F)
    return octets[0] >> 6, number


def is_constructed(tag: int) -> bool:
    """Whether the identifier octets ``tag`` have the constructed bit (X.690 §8.1.2.5) set."""
    while tag > 0xFF:
        tag >>= 8
    return bool(tag & 0x20)


def read_tlv(buf: bytes, pos: int, end: int, depth: int = 0) -> tuple[int, int, int, int]:
    """Read one TLV in ``buf[pos:end]``: ``(tag, value_start, value_end, next_pos)``.

    For the indefinite form ``value_end`` is the position of the end-of-contents octets and
    ``next_pos`` is just after them.
    """
    if pos >= end:
        raise BerError(pos, "missing tag")
    first = tag = buf[pos]
    p = pos + 1
    if first & 0x1F == 0x1F:  # high tag number form (X.690 §8.1.2.4)
        while True:
            if p >= end:
                raise BerError(p, "truncated tag")
            b = buf[p]
            tag = (tag << 8) | b
            p += 1
            if not b & 0x80:
                break
            if p - pos > 4:
                raise BerError(pos, "tag number too large")
    if p >= end:
        raise BerError(p, "missing length")
    n = buf[p]
    p += 1
    if n < 0x80:
        ve = p + n
        if ve > end:
            raise BerError(p - 1, f"length {n} overruns the enclosing {end - p} bytes")
        return tag, p, ve, ve
    if n == 0x80:
        # Indefinite form: only for constructed encodings (X.690 §8.1.3.2 a).
        if not first & 0x20:
            raise BerError(p - 1, "indefinite length on a primitive encoding")
        if depth >= MAX_DEPTH:
            raise BerError(p - 1, "indefinite lengths nested too deep")
        q = p
        while True:
            if q + 1 < end and buf[q] == 0 and buf[q + 1] == 0:
                return tag, p, q, q + 2
            q = read_tlv(buf, q, end, depth + 1)[3]
    k = n & 0x7F
    if k > 4 or n == 0xFF:
        raise BerError(p - 1, f"unsupported length of {k} octets")
    if p + k > end:
        raise BerError(p, "truncated length")
    length = int.from_bytes(buf[p : p + k], "big")
    p += k
    ve = p + length
    if ve > end:
        raise BerError(p - k - 1, f"length {length} overruns the enclosing {end - p} bytes")
    return tag, p, ve, ve


def children(buf: bytes, pos: int, end: int) -> list[tuple[int, int, int, int]]:
    """Every TLV in ``buf[pos:end]`` in order, as :func:`read_tlv` tuples ``(tag, vs, ve, start)``.

    The fourth item is the TLV's own start, so ``buf[start:next]`` is the whole TLV.
    """
    out = []
    while pos < end:
        tag, vs, ve, nxt = read_tlv(buf, pos, end)
        out.append((tag, vs, ve, pos))
        pos = nxt
    return out


def decode_integer(buf: bytes, vs: int, ve: int) -> int:
    """A two's complement INTEGER value (X.690 §8.3) in ``buf[vs:ve]``."""
    if ve <= vs:
        raise BerError(vs, "empty INTEGER")
    if ve - vs == 1:
        b = buf[vs]
        return b - 256 if b & 0x80 else b
    if ve - vs > 8:
        raise BerError(vs, "INTEGER longer than 8 octets")
    return int.from_bytes(buf[vs:ve], "big", signed=True)


def decode_boolean(buf: bytes, vs: int, ve: int) -> bool:
    """A BOOLEAN value (X.690 §8.2: one octet, zero is FALSE) in ``buf[vs:ve]``."""
    if ve - vs != 1:
        raise BerError(vs, "BOOLEAN is one octet")
    return buf[vs] != 0


_SMALL_INT = [bytes((i,)) for i in range(128)]


def encode_integer(value: int) -> bytes:
    """The contents octets of an INTEGER, shortest form (X.690 §8.3.2)."""
    if 0 <= value < 128:
        return _SMALL_INT[value]
    n = (value + (value < 0)).bit_length() // 8 + 1
    return value.to_bytes(n, "big", signed=True)


_OID_DECODED: dict[bytes, tuple[int, ...]] = {}
_OID_ENCODED: dict[tuple[int, ...], bytes] = {}
_OID_CACHE_MAX = 4096  # application contexts repeat: a tiny cache saves most of the work


def decode_oid(buf: bytes, vs: int, ve: int) -> tuple[int, ...]:
    """The arcs of an OBJECT IDENTIFIER (X.690 §8.19) in ``buf[vs:ve]``."""
    raw = buf[vs:ve]
    cached = _OID_DECODED.get(raw)
    if cached is not None:
        return cached
    if not raw:
        raise BerError(vs, "empty OBJECT IDENTIFIER")
    if raw[-1] & 0x80:
        raise BerError(ve - 1, "OBJECT IDENTIFIER ends inside a subidentifier")
    arcs: list[int] = []
    value = 0
    start = True
    for i, b in enumerate(raw):
        if start and b == 0x80:
            raise BerError(vs + i, "OBJECT IDENTIFIER subidentifier with leading 0x80")
        value = (value << 7) | (b & 0x7F)
        start = not b & 0x80
        if start:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    result = head + tuple(arcs[1:])
    if len(_OID_DECODED) >= _OID_CACHE_MAX:
        _OID_DECODED.clear()
    _OID_DECODED[raw] = result
    return result


def encode_oid(arcs: tuple[int, ...]) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER with ``arcs`` (X.690 §8.19)."""
    cached = _OID_ENCODED.get(arcs)
    if cached is not None:
        return cached
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or min(arcs) < 0:
        raise ValueError(f"not an OBJECT IDENTIFIER: {arcs!r}")
    out = bytearray()
    for sub in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        chunk = [sub & 0x7F]
        sub >>= 7
        while sub:
            chunk.append(0x80 | (sub & 0x7F))
            sub >>= 7
        out += bytes(reversed(chunk))
    result = bytes(out)
    if len(_OID_ENCODED) >= _OID_CACHE_MAX:
        _OID_ENCODED.clear()
    _OID_ENCODED[arcs] = result
    return result


_SHORT_LEN = [bytes((i,)) for i in range(128)]


def encode_length(n: int) -> bytes:
    """Definite length octets, shortest form (X.690 §8.1.3.3-5, §10.1)."""
    if n < 0x80:
        return _SHORT_LEN[n]
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    k = (n.bit_length() + 7) // 8
    return bytes((0x80 | k,)) + n.to_bytes(k, "big")


def tlv(tag: int, value: bytes) -> bytes:
    """One TLV with identifier octets ``tag`` (an int as in :func:`read_tlv`) and ``value``."""
    n = len(value)
    if tag < 0x100:
        if n < 0x80:
            return bytes((tag, n)) + value
        return bytes((tag,)) + encode_length(n) + value
    return identifier_octets(tag) + encode_length(n) + value
