"""scp.codecs.ber, the one set of BER helpers: identifier octets and BOOLEAN (X.690 §8.1.2, §8.2).

The reader, INTEGER, OBJECT IDENTIFIER and length forms are also proved in
tests/unit/test_tcap_codec.py; the fast path's use of them in tests/unit/test_codecs_fastpath*.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scp.codecs.ber import (
    BerError,
    class_and_number,
    decode_boolean,
    identifier,
    identifier_octets,
    is_constructed,
    read_tlv,
    tlv,
)

# (class, constructed, number) -> identifier octets, as X.690 §8.1.2 writes them
IDENTIFIERS = [
    ("SEQUENCE", (0, True, 16), "30"),
    ("[APPLICATION 2] constructed (TCAP Begin)", (1, True, 2), "62"),
    ("[0] primitive", (2, False, 0), "80"),
    ("[30] constructed, the last low-form number", (2, True, 30), "be"),
    ("[31] primitive, the first high-form number", (2, False, 31), "9f 1f"),
    ("[56] primitive (InitialDP calledPartyBCDNumber)", (2, False, 56), "9f 38"),
    ("[127] primitive", (2, False, 127), "9f 7f"),
    ("[128] constructed, two subsequent octets", (2, True, 128), "bf 81 00"),
    ("[PRIVATE 16383]", (3, False, 16383), "df ff 7f"),
]


@pytest.mark.parametrize("name,fields,octets", IDENTIFIERS, ids=[i[0] for i in IDENTIFIERS])
def test_identifier_octets_both_ways(name: str, fields: tuple[int, bool, int], octets: str) -> None:
    cls, constructed, number = fields
    ident = identifier(cls, constructed, number)
    assert identifier_octets(ident) == bytes.fromhex(octets)
    assert class_and_number(ident) == (cls, number)
    assert is_constructed(ident) is constructed
    wire = tlv(ident, b"\x01")
    assert wire == bytes.fromhex(octets) + b"\x01\x01"
    assert read_tlv(wire, 0, len(wire)) == (ident, len(wire) - 1, len(wire), len(wire))


@given(
    st.integers(0, 3),
    st.booleans(),
    st.integers(0, (1 << 28) - 1),
    st.binary(max_size=300),
)
def test_identifier_round_trip(cls: int, constructed: bool, number: int, value: bytes) -> None:
    ident = identifier(cls, constructed, number)
    assert class_and_number(ident) == (cls, number)
    wire = tlv(ident, value)
    tag, vs, ve, nxt = read_tlv(wire, 0, len(wire))
    assert (tag, wire[vs:ve], nxt) == (ident, value, len(wire))


def test_decode_boolean() -> None:
    assert decode_boolean(b"\x01\x00\xff", 1, 2) is False
    assert decode_boolean(b"\x01\x00\xff", 2, 3) is True
    assert decode_boolean(b"\x01", 0, 1) is True  # any non-zero octet is TRUE (§8.2.2)
    for vs, ve in ((0, 0), (0, 2)):
        with pytest.raises(BerError):
            decode_boolean(b"\xff\xff", vs, ve)
