"""Golden tests for scp.codecs.numbers: Q.763 numbers, TBCD, generic digits, Q.850, time, plans."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from scp.codecs.errors import DecodeError, EncodeError
from scp.codecs.numbers import (
    CHINA,
    AddressString,
    CalledPartyNumber,
    CallingPartyNumber,
    Cause,
    GenericDigits,
    GenericNumber,
    NumberKind,
    OriginalCalledNumber,
    RedirectingNumber,
    TimeAndTimezone,
    decode_tbcd,
    encode_tbcd,
)

# (name, value, wire bytes) — each checked both ways.
GOLDEN = [
    (
        "called international odd",
        CalledPartyNumber("8613912345678", nai=4),
        # 84: odd, NAI 4 international | 10: INN 0, NPI 1 E.164 | BCD 86 13 91 23 45 67 8(filler 0)
        bytes.fromhex("84 10 68 31 19 32 54 76 08"),
    ),
    (
        "called national even, INN not allowed, with B and C signals",
        CalledPartyNumber("01BC", nai=3, inn=1),
        # 03: even, NAI 3 national | 90: INN 1, NPI 1 | 10 CB
        bytes.fromhex("03 90 10 cb"),
    ),
    (
        "calling restricted, user provided verified",
        CallingPartyNumber("13700000001", nai=3, presentation=1, screening=1),
        # 83: odd, national | 15: NI 0, NPI 1, APRI 01 restricted, screening 01 | digits
        bytes.fromhex("83 15 31 07 00 00 00 01"),
    ),
    (
        "generic number, additional calling party",
        GenericNumber("8613800", nqi=6, nai=4),
        # 06: NQI additional calling | 84 odd intl | 13 NPI 1 net provided | 68 31 08 00
        bytes.fromhex("06 84 13 68 31 08 00"),
    ),
    (
        "redirecting number presentation restricted",
        RedirectingNumber("861390000", nai=4, presentation=1),
        # 84 | 14: NPI 1, APRI 1 | 68 31 09 00 00
        bytes.fromhex("84 14 68 31 09 00 00"),
    ),
    (
        "original called number",
        OriginalCalledNumber("1390000", nai=3),
        bytes.fromhex("83 10 31 09 00 00"),
    ),
    (
        "generic digits BCD odd (PACUI answer '1')",
        GenericDigits("1"),
        # 20: encoding 1 BCD odd, type 0 | 01
        bytes.fromhex("20 01"),
    ),
    (
        "generic digits BCD even correlation id",
        GenericDigits("1234", type_of_digits=0),
        bytes.fromhex("00 21 43"),
    ),
    (
        "generic digits IA5",
        GenericDigits("12#", ia5=True),
        # 40: encoding 2 IA5 | '1' '2' '#'
        bytes.fromhex("40 31 32 23"),
    ),
    (
        "cause 17 user busy, location user",
        Cause(17),
        # 80: ext, ITU-T, location 0 | 91: ext, value 17
        bytes.fromhex("80 91"),
    ),
    (
        "cause 20 subscriber absent, public network remote user, with recommendation",
        Cause(20, location=4, recommendation=0, diagnostics=b"\x01"),
        # 04: ext 0 (octet 3a follows), location 4 | 80: rec 0 | 94 | diagnostic 01
        bytes.fromhex("04 80 94 01"),
    ),
    (
        "ISDN-AddressString international E.164",
        AddressString("8613800000"),
        # 91: ext, NAI international, NP ISDN | TBCD 68 31 08 00 00
        bytes.fromhex("91 68 31 08 00 00"),
    ),
    (
        "AddressString odd with filler",
        AddressString("861380000", nai=1, npi=1),
        bytes.fromhex("91 68 31 08 00 f0"),
    ),
    (
        "TimeAndTimezone 2026-11-25 18:05:09 +08:00",
        TimeAndTimezone(dt.datetime(2026, 11, 25, 18, 5, 9), 32),
        # 02 62 11 52 81 50 90 | tz 32 quarters: tens 3 low nibble, units 2 high nibble -> 23
        bytes.fromhex("02 62 11 52 81 50 90 23"),
    ),
    (
        "TimeAndTimezone negative offset -03:30",
        TimeAndTimezone(dt.datetime(2003, 9, 20, 11, 22, 33), -14),
        bytes.fromhex("02 30 90 02 11 22 33 49"),
    ),
]


@pytest.mark.parametrize("name,value,wire", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_both_ways(name: str, value: object, wire: bytes) -> None:
    assert value.encode() == wire  # type: ignore[attr-defined]
    assert type(value).decode(wire) == value  # type: ignore[attr-defined]


def test_tbcd_imsi_and_specials() -> None:
    assert encode_tbcd("460001234567890") == bytes.fromhex("64 00 10 32 54 76 98 f0")
    assert decode_tbcd(bytes.fromhex("64 00 10 32 54 76 98 f0")) == "460001234567890"
    assert decode_tbcd(encode_tbcd("*#abc1")) == "*#abc1"
    with pytest.raises(DecodeError):
        decode_tbcd(bytes.fromhex("f1 21"))  # filler before the end
    with pytest.raises(EncodeError):
        encode_tbcd("12x")


def test_decode_errors_are_typed() -> None:
    for cls, bad in [
        (CalledPartyNumber, b"\x84"),
        (Cause, b"\x80"),
        (Cause, b"\x04\x80"),
        (GenericNumber, b"\x06\x84"),
        (GenericDigits, b""),
        (GenericDigits, b"\x60\x01"),
        (GenericDigits, b"\x40\xff"),
        (TimeAndTimezone, b"\x02" * 7),
        (TimeAndTimezone, bytes.fromhex("02 62 31 52 81 50 90 23")),
        (AddressString, b""),
    ]:
        with pytest.raises(DecodeError) as ei:
            cls.decode(bad)
        assert ei.value.layer == "number"


def test_encode_range_checks() -> None:
    with pytest.raises(EncodeError):
        CalledPartyNumber("1", nai=200).encode()
    with pytest.raises(EncodeError):
        Cause(200).encode()
    with pytest.raises(EncodeError):
        GenericDigits("中", ia5=True).encode()


PLAN_CASES = [
    # (digits, nai, e164) — China: CC 86, trunk 0, mobiles without trunk prefix.
    ("13912345678", 3, "8613912345678"),  # national mobile
    ("13912345678", 2, "8613912345678"),  # unknown NAI mobile
    ("01062345678", 2, "861062345678"),  # Beijing fixed with trunk prefix
    ("1062345678", 3, "861062345678"),  # national NSN without trunk prefix
    ("02087654321", 3, "862087654321"),  # Guangzhou
    ("8613912345678", 4, "8613912345678"),  # already international
    ("8613912345678", 2, "8613912345678"),  # unknown NAI but carries CC + valid NSN
    ("008613912345678", 2, "8613912345678"),  # international prefix dialled
    ("0014155550100", 2, "14155550100"),  # foreign via 00
    ("110", 2, "110"),  # emergency short code stays
    ("10086", 3, "10086"),  # carrier hotline
    ("12599", 2, "12599"),  # SP short code
    ("95588", 2, "95588"),  # bank service number
]


@pytest.mark.parametrize("digits,nai,e164", PLAN_CASES, ids=[c[0] + f"/{c[1]}" for c in PLAN_CASES])
def test_china_to_e164(digits: str, nai: int, e164: str) -> None:
    assert CHINA.to_e164(digits, nai) == e164


def test_china_to_national_and_kind() -> None:
    assert CHINA.to_national("8613912345678") == "13912345678"
    assert CHINA.to_national("+862087654321") == "02087654321"
    assert CHINA.to_national("14155550100") == "0014155550100"
    assert CHINA.to_national("10086") == "10086"
    assert CHINA.kind("10086") is NumberKind.SHORT
    assert CHINA.kind("13912345678") is NumberKind.E164
    assert CHINA.kind("110", 4) is NumberKind.E164


def test_fuzz_number_decoders() -> None:
    rng = random.Random(1234)
    classes = [
        CalledPartyNumber,
        CallingPartyNumber,
        GenericNumber,
        RedirectingNumber,
        GenericDigits,
        Cause,
        AddressString,
        TimeAndTimezone,
    ]
    n = 0
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
        for cls in classes:
            n += 1
            try:
                v = cls.decode(data)  # type: ignore[attr-defined]
            except DecodeError:
                continue
            # Whatever decodes must re-encode and decode to the same value.
            assert cls.decode(v.encode()) == v  # type: ignore[attr-defined]
        try:
            decode_tbcd(data)
        except DecodeError:
            pass
    assert n >= 10_000
