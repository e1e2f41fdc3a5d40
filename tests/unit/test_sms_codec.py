"""scp.codecs.sms: GSM 03.38 / UCS-2 choice, segmentation, UDH; golden cases both ways + fuzz.

Specs: 3GPP TS 23.038 §6.2.1, §6.2.1.1, §6.1.2.1.1; 3GPP TS 23.040 §9.2.3.24.1; SMPP 3.4 §5.2.19.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    ConcatInfo,
    DataCoding,
    choose_coding,
    concat_udh,
    decode_short_message,
    encode_sms,
    gsm7_decode,
    gsm7_encode,
    is_gsm7,
    pack_septets,
    parse_udh,
    segment_count,
    unpack_septets,
)

CHINESE = "您好,用户13800138000于11月25日18时呼叫您2次,请回电!"


@dataclass(frozen=True)
class Golden:
    name: str
    text: str
    coding: DataCoding
    short_message: str  # hex of the single segment's short_message


GOLDEN = [
    # plain ASCII letters are their own septets
    Golden("gsm7-ascii", "Hi 5", DataCoding.GSM7, "48692035"),
    # @ is 0x00, £ 0x01, $ 0x02, ¥ 0x03, è 0x04 (23.038 §6.2.1 first column)
    Golden("gsm7-column0", "@£$¥è", DataCoding.GSM7, "0001020304"),
    # Greek capitals Δ 0x10, Φ 0x12, Ω 0x15; ¡ 0x40, ¿ 0x60, à 0x7F
    Golden("gsm7-greek", "ΔΦΩ¡¿à", DataCoding.GSM7, "10121540607f"),
    # extension table: ESC 0x1B then € 0x65, [ 0x3C, ] 0x3E, { 0x28, } 0x29, ^ 0x14
    Golden("gsm7-extension", "€[]{}^", DataCoding.GSM7, "1b651b3c1b3e1b281b291b14"),
    # ~ 0x3D, | 0x40, backslash 0x2F, form feed 0x0A
    Golden("gsm7-extension-2", "~|\\\f", DataCoding.GSM7, "1b3d1b401b2f1b0a"),
    # CR LF are 0x0D 0x0A in the basic table
    Golden("gsm7-crlf", "a\r\nb", DataCoding.GSM7, "610d0a62"),
    # Chinese: UCS-2 big endian, one code unit each
    Golden("ucs2-chinese", "您好", DataCoding.UCS2, "60a8597d"),
    # a character outside the BMP is a surrogate pair (2 units)
    Golden("ucs2-surrogate", "😀a", DataCoding.UCS2, "d83dde000061"),
    # one non-GSM character (ç lower case is not in the default table) forces UCS-2
    Golden("ucs2-forced", "ça", DataCoding.UCS2, "00e70061"),
]


@pytest.mark.parametrize("g", GOLDEN, ids=lambda g: g.name)
def test_golden_encode(g: Golden) -> None:
    e = encode_sms(g.text)
    assert e.data_coding is g.coding
    assert len(e.segments) == 1 and e.concat_ref is None
    assert e.segments[0].esm_class == 0
    assert e.segments[0].short_message.hex() == g.short_message


@pytest.mark.parametrize("g", GOLDEN, ids=lambda g: g.name)
def test_golden_decode(g: Golden) -> None:
    d = decode_short_message(bytes.fromhex(g.short_message), g.coding)
    assert d.text == g.text and d.udh == b"" and d.concat is None


def test_basic_table_is_23038() -> None:
    assert len(GSM7_BASIC) == 128
    assert GSM7_BASIC[0x00] == "@" and GSM7_BASIC[0x1B] == "\x1b" and GSM7_BASIC[0x7F] == "à"
    assert GSM7_BASIC[0x24] == "¤" and GSM7_BASIC[0x5F] == "§"
    assert set(GSM7_EXTENSION) == set("\f^{}\\[~]|€")


def test_packing_hellohello() -> None:
    # 23.038 §6.1.2.1.1 worked example: "hellohello" packs to 9 octets
    septets = gsm7_encode("hellohello")
    packed = pack_septets(septets)
    assert packed.hex() == "e8329bfd4697d9ec37"
    assert unpack_septets(packed, 10) == septets


def test_packing_with_udh_fill() -> None:
    # after a 6-octet UDH, 1 fill bit aligns the text to a septet boundary (23.040 §9.2.3.24)
    septets = gsm7_encode("Hi")
    assert unpack_septets(pack_septets(septets, fill_bits=1), 2, fill_bits=1) == septets


def test_udh_bytes() -> None:
    # UDHL 05, IEI 00 (concat 8-bit ref), IEDL 03, ref 0x2A, total 3, seq 2
    assert concat_udh(0x2A, 3, 2) == bytes.fromhex("0500032a0302")
    udh, concat, off = parse_udh(bytes.fromhex("0500032a03024142"))
    assert udh.hex() == "0500032a0302" and concat == ConcatInfo(0x2A, 3, 2) and off == 6
    # 16-bit reference IE 0x08 (23.040 §9.2.3.24.8) is understood on receipt
    _, c16, _ = parse_udh(bytes.fromhex("06080412340201"))
    assert c16 == ConcatInfo(0x1234, 2, 1)
    with pytest.raises(EncodeError):
        concat_udh(1, 2, 3)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("您" * 70, 1),
        ("您" * 71, 2),
        ("您" * 134, 2),
        ("您" * 135, 3),
        ("😀" * 35, 1),  # 70 code units
        ("😀" * 36, 2),
    ],
)
def test_segment_count(text: str, segments: int) -> None:
    assert segment_count(text) == segments
    assert len(encode_sms(text).segments) == segments


def test_concatenation_gsm7() -> None:
    text = "x" * 152 + "€" + "y" * 10  # the ESC pair would straddle 153: it moves to part 2
    e = encode_sms(text, concat_ref=0x1FF)  # the reference is one octet
    assert e.concat_ref == 0xFF
    assert [s.short_message[:6].hex() for s in e.segments] == ["050003ff0201", "050003ff0202"]
    assert all(s.esm_class == 0x40 for s in e.segments)
    assert len(e.segments[0].short_message) == 6 + 152
    assert e.segments[1].short_message[6:8] == b"\x1b\x65"
    assert "".join(s.text for s in e.segments) == text
    joined = "".join(decode_short_message(s.short_message, 0, 0x40).text for s in e.segments)
    assert joined == text


def test_concatenation_ucs2_chinese() -> None:
    text = CHINESE * 4
    e = encode_sms(text, concat_ref=7)
    assert e.data_coding is DataCoding.UCS2
    assert [len(s.text) for s in e.segments] == [67, 67, len(text) - 134]
    for i, s in enumerate(e.segments, start=1):
        assert s.short_message[:6] == bytes((5, 0, 3, 7, 3, i))
        assert len(s.short_message) <= 6 + 134
        d = decode_short_message(s.short_message, 8, 0x40)
        assert d.text == s.text and d.concat == ConcatInfo(7, 3, i)


def test_surrogate_pair_never_split() -> None:
    text = "a" * 66 + "😀" + "b" * 4  # 72 units: two segments, the pair at 67/68
    e = encode_sms(text)
    assert [s.text for s in e.segments] == ["a" * 66, "😀bbbb"]


def test_choice() -> None:
    assert choose_coding("Hello €") is DataCoding.GSM7
    assert choose_coding(CHINESE) is DataCoding.UCS2
    assert is_gsm7("ÄÖÑÜ§") and not is_gsm7("ç")
    with pytest.raises(EncodeError):
        gsm7_encode("ç")


def test_decode_other_codings_and_errors() -> None:
    assert decode_short_message(b"abc", 1).text == "abc"
    assert decode_short_message("é".encode("latin-1"), 3).text == "é"
    assert gsm7_decode(b"\x1b\x41") == "A"  # unknown extension code: the basic character
    assert gsm7_decode(b"a\x1b") == "a"  # trailing ESC dropped
    with pytest.raises(DecodeError) as e:
        decode_short_message(b"\x00\x80", 0)
    assert e.value.offset == 1
    with pytest.raises(DecodeError):
        decode_short_message(b"\x00\x41\x00", 8)
    with pytest.raises(DecodeError):
        decode_short_message(b"\x09\x00\x03", 0, 0x40)  # UDHL past the end
    with pytest.raises(EncodeError):
        encode_sms("x" * 153 * 256)


def test_fuzz_roundtrip_and_decoder() -> None:
    """10,000 random texts round-trip; 10,000 random/mutated short_messages never raise
    anything but DecodeError."""
    rng = random.Random(20261125)
    alphabet = GSM7_BASIC.replace("\x1b", "") + "".join(GSM7_EXTENSION) + "您好用户ç😀é"
    for _ in range(10_000):
        n = rng.choice((rng.randint(0, 20), rng.randint(100, 400)))
        text = "".join(rng.choice(alphabet) for _ in range(n))
        e = encode_sms(text, concat_ref=rng.randint(0, 255))
        assert len(e.segments) == segment_count(text)
        parts = [
            decode_short_message(s.short_message, s.data_coding, s.esm_class) for s in e.segments
        ]
        assert "".join(p.text for p in parts) == text
        limit = 160 if e.data_coding is DataCoding.GSM7 else 140
        assert all(len(s.short_message) <= limit for s in e.segments)
    seeds = [
        encode_sms(CHINESE * 3).segments[1].short_message,
        encode_sms("x" * 200).segments[0].short_message,
    ]
    for _ in range(10_000):
        if rng.random() < 0.5:
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
        else:
            m = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                m[rng.randrange(len(m))] = rng.getrandbits(8)
            data = bytes(m[: rng.randint(0, len(m))])
        try:
            decode_short_message(data, rng.choice((0, 1, 3, 8, 0xF0, 0x18)), rng.choice((0, 0x40)))
        except DecodeError:
            pass
