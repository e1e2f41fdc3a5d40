"""Number and field codecs carried as OCTET STRINGs inside CAP / INAP / MAP arguments.

These are the inner formats the ASN.1 leaves opaque:

* ISUP numbers (ITU-T Q.763): called party number §3.9, calling party number §3.10, generic
  number §3.26, redirecting number §3.44 and original called number §3.39 (the last two share
  one layout). Address signals are BCD, 0xB (code 11) and 0xC (code 12) included; digits are
  kept as a hex-digit string ("0"-"9", "A"-"F") so no nibble is lost.
* Generic digits (Q.763 §3.24): what PromptAndCollectUserInformation returns and what
  CorrelationID carries, BCD (even/odd) or IA5.
* Cause (ITU-T Q.850 §2.1): coding standard, location, cause value, optional recommendation
  octet and diagnostics.
* TBCD strings (3GPP TS 29.002 §17.7.8): IMSI, and AddressString / ISDN-AddressString with the
  extension / nature of address / numbering plan octet in front.
* CAMEL TimeAndTimezone (3GPP TS 29.078 §5.1, DateAndTime layout of TS 23.040 §9.2.3.11):
  TBCD YYYYMMDDhhmmss then a time zone in signed quarter hours.
* Chinese numbering normalisation (ITU-T E.164 country code 86, trunk prefix 0, short codes)
  driven by a small prefix rule table, see :class:`NumberingPlan`.

Every ``decode`` raises :class:`~scp.codecs.errors.DecodeError` (layer ``"number"``) on bad
input; every ``encode`` raises :class:`~scp.codecs.errors.EncodeError` on a value that cannot be
put on the wire.
"""

from __future__ import annotations

import datetime as _dt
import enum
from dataclasses import dataclass, field

from scp.codecs.errors import DecodeError, EncodeError

__all__ = [
    "NatureOfAddress",
    "NumberingPlanIndicator",
    "CalledPartyNumber",
    "CallingPartyNumber",
    "GenericNumber",
    "RedirectingNumber",
    "OriginalCalledNumber",
    "GenericDigits",
    "Cause",
    "AddressString",
    "TimeAndTimezone",
    "decode_tbcd",
    "encode_tbcd",
    "decode_bcd",
    "encode_bcd",
    "PrefixRule",
    "NumberingPlan",
    "CHINA",
]

_LAYER = "number"
_HEX = "0123456789ABCDEF"
# TBCD filler and the "*#abc" signals of TS 29.002 §17.7.8 (TBCD-STRING).
_TBCD = "0123456789*#abc"
_TBCD_INDEX = {c: i for i, c in enumerate(_TBCD)}
_HEX_INDEX = {c: i for i, c in enumerate(_HEX)} | {c: i for i, c in enumerate("abcdef", 10)}


class NatureOfAddress(enum.IntEnum):
    """Nature of address indicator of the ISUP number parameters (Q.763 §3.9 b)."""

    SUBSCRIBER = 1
    UNKNOWN = 2
    NATIONAL = 3
    INTERNATIONAL = 4
    NETWORK_SPECIFIC = 5


class NumberingPlanIndicator(enum.IntEnum):
    """Numbering plan indicator (Q.763 §3.9 d)."""

    ISDN = 1  # E.164
    DATA = 3  # X.121
    TELEX = 4  # F.69
    PRIVATE = 5


# ---------------------------------------------------------------------------------------------
# BCD / TBCD helpers
# ---------------------------------------------------------------------------------------------


def encode_bcd(digits: str) -> bytes:
    """Address signals, first digit in the low nibble (Q.763 §3.9 g); odd length is padded 0."""
    try:
        nib = [_HEX_INDEX[c] for c in digits]
    except KeyError as exc:
        raise EncodeError(_LAYER, f"not an address signal: {exc.args[0]!r}") from None
    if len(nib) & 1:
        nib.append(0)
    return bytes(nib[i] | (nib[i + 1] << 4) for i in range(0, len(nib), 2))


# Octet -> its two address signals, low nibble first (decoding is on every call's hot path).
_BCD_PAIRS = tuple(_HEX[b & 0x0F] + _HEX[b >> 4] for b in range(256))


def decode_bcd(data: bytes, odd: bool) -> str:
    """Inverse of :func:`encode_bcd`: ``odd`` drops the filler nibble of the last octet."""
    out = "".join(map(_BCD_PAIRS.__getitem__, data))
    return out[:-1] if odd and out else out


def encode_tbcd(digits: str) -> bytes:
    """TBCD-STRING (TS 29.002 §17.7.8): odd length is completed with the 0xF filler."""
    try:
        nib = [_TBCD_INDEX[c] for c in digits]
    except KeyError as exc:
        raise EncodeError(_LAYER, f"not a TBCD digit: {exc.args[0]!r}") from None
    if len(nib) & 1:
        nib.append(0x0F)
    return bytes(nib[i] | (nib[i + 1] << 4) for i in range(0, len(nib), 2))


_TBCD_PAIRS = tuple(
    (_TBCD[b & 0x0F] if b & 0x0F != 0x0F else "\x00")
    + (_TBCD[b >> 4] if b >> 4 != 0x0F else "\x00")
    for b in range(256)
)


def decode_tbcd(data: bytes) -> str:
    """Inverse of :func:`encode_tbcd`; a 0xF nibble (filler) may only end the string."""
    out = "".join(map(_TBCD_PAIRS.__getitem__, data))
    i = out.find("\x00")
    if i < 0:
        return out
    if i < len(out) - 2 or (i == len(out) - 2 and out[-1] != "\x00"):
        raise DecodeError(_LAYER, i // 2, "TBCD filler before the last digit")
    return out[:i]


# ---------------------------------------------------------------------------------------------
# ISUP numbers (Q.763)
# ---------------------------------------------------------------------------------------------


def _need(data: bytes, n: int, what: str) -> None:
    if len(data) < n:
        raise DecodeError(_LAYER, len(data), f"{what}: {len(data)} octets, need at least {n}")


def _check(value: int, bits: int, what: str) -> None:
    if not 0 <= value < (1 << bits):
        raise EncodeError(_LAYER, f"{what}={value} does not fit in {bits} bits")


@dataclass(frozen=True, slots=True)
class CalledPartyNumber:
    """Q.763 §3.9 called party number (also destinationRoutingAddress, IPRoutingAddress)."""

    digits: str
    nai: int = NatureOfAddress.INTERNATIONAL
    npi: int = NumberingPlanIndicator.ISDN
    inn: int = 0  # internal network number indicator: 0 routing to INN allowed, 1 not allowed

    def encode(self) -> bytes:
        _check(self.nai, 7, "nai")
        _check(self.npi, 3, "npi")
        _check(self.inn, 1, "inn")
        odd = len(self.digits) & 1
        return bytes(((odd << 7) | self.nai, (self.inn << 7) | (self.npi << 4))) + encode_bcd(
            self.digits
        )

    @classmethod
    def decode(cls, data: bytes) -> CalledPartyNumber:
        if len(data) < 2:
            _need(data, 2, "called party number")
        o1, o2 = data[0], data[1]
        digits = "".join(map(_BCD_PAIRS.__getitem__, data[2:]))
        if o1 & 0x80 and digits:
            digits = digits[:-1]
        return cls(digits, o1 & 0x7F, (o2 >> 4) & 0x07, o2 >> 7)


@dataclass(frozen=True, slots=True)
class CallingPartyNumber:
    """Q.763 §3.10 calling party number (also location number, §3.30, same layout)."""

    digits: str
    nai: int = NatureOfAddress.INTERNATIONAL
    npi: int = NumberingPlanIndicator.ISDN
    ni: int = 0  # number incomplete indicator
    presentation: int = 0  # APRI: 0 allowed, 1 restricted, 2 address not available
    screening: int = 3  # 1 user provided verified and passed, 3 network provided

    def encode(self) -> bytes:
        _check(self.nai, 7, "nai")
        _check(self.npi, 3, "npi")
        _check(self.ni, 1, "ni")
        _check(self.presentation, 2, "presentation")
        _check(self.screening, 2, "screening")
        odd = len(self.digits) & 1
        o2 = (self.ni << 7) | (self.npi << 4) | (self.presentation << 2) | self.screening
        return bytes(((odd << 7) | self.nai, o2)) + encode_bcd(self.digits)

    @classmethod
    def decode(cls, data: bytes) -> CallingPartyNumber:
        if len(data) < 2:
            _need(data, 2, "calling party number")
        o1, o2 = data[0], data[1]
        digits = "".join(map(_BCD_PAIRS.__getitem__, data[2:]))
        if o1 & 0x80 and digits:
            digits = digits[:-1]
        return cls(digits, o1 & 0x7F, (o2 >> 4) & 0x07, o2 >> 7, (o2 >> 2) & 0x03, o2 & 0x03)


@dataclass(frozen=True, slots=True)
class GenericNumber:
    """Q.763 §3.26 generic number: a number qualifier then a calling-party-number layout."""

    digits: str
    nqi: int = 6  # number qualifier: 6 additional calling party number
    nai: int = NatureOfAddress.INTERNATIONAL
    npi: int = NumberingPlanIndicator.ISDN
    ni: int = 0
    presentation: int = 0
    screening: int = 3

    def encode(self) -> bytes:
        _check(self.nqi, 8, "nqi")
        inner = CallingPartyNumber(
            self.digits, self.nai, self.npi, self.ni, self.presentation, self.screening
        ).encode()
        return bytes((self.nqi,)) + inner

    @classmethod
    def decode(cls, data: bytes) -> GenericNumber:
        _need(data, 3, "generic number")
        c = CallingPartyNumber.decode(data[1:])
        return cls(c.digits, data[0], c.nai, c.npi, c.ni, c.presentation, c.screening)


@dataclass(frozen=True, slots=True)
class RedirectingNumber:
    """Q.763 §3.44 redirecting number; §3.39 original called number has the same layout."""

    digits: str
    nai: int = NatureOfAddress.INTERNATIONAL
    npi: int = NumberingPlanIndicator.ISDN
    presentation: int = 0

    def encode(self) -> bytes:
        _check(self.nai, 7, "nai")
        _check(self.npi, 3, "npi")
        _check(self.presentation, 2, "presentation")
        odd = len(self.digits) & 1
        return bytes(((odd << 7) | self.nai, (self.npi << 4) | (self.presentation << 2))) + (
            encode_bcd(self.digits)
        )

    @classmethod
    def decode(cls, data: bytes) -> RedirectingNumber:
        if len(data) < 2:
            _need(data, 2, "redirecting number")
        o1, o2 = data[0], data[1]
        digits = "".join(map(_BCD_PAIRS.__getitem__, data[2:]))
        if o1 & 0x80 and digits:
            digits = digits[:-1]
        return cls(digits, o1 & 0x7F, (o2 >> 4) & 0x07, (o2 >> 2) & 0x03)


OriginalCalledNumber = RedirectingNumber
"""Q.763 §3.39: identical layout to the redirecting number."""


# ---------------------------------------------------------------------------------------------
# Generic digits (Q.763 §3.24)
# ---------------------------------------------------------------------------------------------


class DigitsEncoding(enum.IntEnum):
    """Encoding scheme of generic digits (Q.763 §3.24)."""

    BCD_EVEN = 0
    BCD_ODD = 1
    IA5 = 2
    BINARY = 3


@dataclass(frozen=True, slots=True)
class GenericDigits:
    """Q.763 §3.24 generic digits: PACUI digitsResponse, CorrelationID, ...

    ``digits`` is text: hex digit signals for BCD, the characters for IA5, hex for binary.
    ``ia5`` picks the IA5 scheme on encode; BCD even/odd follows from the length.
    """

    digits: str
    type_of_digits: int = 0  # 0 account code, 1 authorisation code, ... (Q.763 table 3.24)
    ia5: bool = False

    def encode(self) -> bytes:
        _check(self.type_of_digits, 5, "type_of_digits")
        if self.ia5:
            try:
                body = self.digits.encode("ascii")
            except UnicodeEncodeError:
                raise EncodeError(_LAYER, "IA5 digits must be ASCII") from None
            scheme = DigitsEncoding.IA5
        else:
            body = encode_bcd(self.digits)
            scheme = DigitsEncoding.BCD_ODD if len(self.digits) & 1 else DigitsEncoding.BCD_EVEN
        return bytes(((scheme << 5) | self.type_of_digits,)) + body

    @classmethod
    def decode(cls, data: bytes) -> GenericDigits:
        _need(data, 1, "generic digits")
        scheme, tod = data[0] >> 5, data[0] & 0x1F
        if scheme in (DigitsEncoding.BCD_EVEN, DigitsEncoding.BCD_ODD):
            return cls(decode_bcd(data[1:], scheme == DigitsEncoding.BCD_ODD), tod)
        if scheme == DigitsEncoding.IA5:
            if any(b > 0x7F for b in data[1:]):
                raise DecodeError(_LAYER, 1, "IA5 generic digits with the 8th bit set")
            return cls(data[1:].decode("ascii"), tod, ia5=True)
        raise DecodeError(_LAYER, 0, f"generic digits encoding scheme {scheme} not supported")


# ---------------------------------------------------------------------------------------------
# Cause (Q.850 §2.1)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cause:
    """Q.850 cause: ``value`` (e.g. 17 user busy, 20 subscriber absent), location, standard."""

    value: int
    location: int = 0  # 0 user, 1 private local, 2 public local, 3 transit, 4 public remote...
    coding_standard: int = 0  # 0 ITU-T
    recommendation: int | None = None  # octet 3a, present only when ext bit of octet 3 is 0
    diagnostics: bytes = b""

    def encode(self) -> bytes:
        _check(self.value, 7, "cause value")
        _check(self.location, 4, "location")
        _check(self.coding_standard, 2, "coding_standard")
        o3 = (self.coding_standard << 5) | self.location
        out = bytearray()
        if self.recommendation is None:
            out.append(0x80 | o3)
        else:
            _check(self.recommendation, 7, "recommendation")
            out += bytes((o3, 0x80 | self.recommendation))
        out.append(0x80 | self.value)
        return bytes(out) + self.diagnostics

    @classmethod
    def decode(cls, data: bytes) -> Cause:
        _need(data, 2, "cause")
        rec: int | None = None
        i = 1
        if not data[0] & 0x80:
            _need(data, 3, "cause with recommendation")
            rec = data[1] & 0x7F
            i = 2
        return cls(
            value=data[i] & 0x7F,
            location=data[0] & 0x0F,
            coding_standard=(data[0] >> 5) & 0x03,
            recommendation=rec,
            diagnostics=bytes(data[i + 1 :]),
        )


# ---------------------------------------------------------------------------------------------
# AddressString (TS 29.002 §17.7.8)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddressString:
    """MAP AddressString / ISDN-AddressString; also CAP CalledPartyBCDNumber (TS 24.008 §10.5.4.7).

    ``nai`` is the 3-bit nature of address (1 international, 2 national, 4 subscriber...), ``npi``
    the numbering plan (1 ISDN/E.164, 6 land mobile/E.212...).
    """

    digits: str
    nai: int = 1
    npi: int = 1

    def encode(self) -> bytes:
        _check(self.nai, 3, "nai")
        _check(self.npi, 4, "npi")
        return bytes((0x80 | (self.nai << 4) | self.npi,)) + encode_tbcd(self.digits)

    @classmethod
    def decode(cls, data: bytes) -> AddressString:
        if not data:
            _need(data, 1, "address string")
        o1 = data[0]
        return cls(decode_tbcd(data[1:]), (o1 >> 4) & 0x07, o1 & 0x0F)


# ---------------------------------------------------------------------------------------------
# TimeAndTimezone (TS 29.078 §5.1)
# ---------------------------------------------------------------------------------------------


# Octet with two swapped BCD digits -> its value 0..99, or -1 if a nibble is not a digit.
_SWAPPED = tuple(
    (b & 0x0F) * 10 + (b >> 4) if b & 0x0F < 10 and b >> 4 < 10 else -1 for b in range(256)
)


@dataclass(frozen=True, slots=True)
class TimeAndTimezone:
    """CAMEL TimeAndTimezone: local time and the offset from UTC in quarter hours."""

    local_time: _dt.datetime
    tz_quarter_hours: int = 0

    def encode(self) -> bytes:
        t = self.local_time
        if not -79 <= self.tz_quarter_hours <= 79:
            raise EncodeError(_LAYER, f"time zone {self.tz_quarter_hours} quarter hours")
        digits = f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"
        tz = abs(self.tz_quarter_hours)
        # TS 23.040 §9.2.3.11: tens in the low nibble with bit 3 as the sign, units in the high.
        tz_octet = ((tz % 10) << 4) | (tz // 10) | (0x08 if self.tz_quarter_hours < 0 else 0)
        return encode_bcd(digits) + bytes((tz_octet,))

    @classmethod
    def decode(cls, data: bytes) -> TimeAndTimezone:
        if len(data) != 8:
            raise DecodeError(_LAYER, 0, f"TimeAndTimezone is 8 octets, got {len(data)}")
        vals = [_SWAPPED[b] for b in data[:7]]
        if -1 in vals:
            i = vals.index(-1)
            raise DecodeError(_LAYER, i, f"not a BCD digit pair: 0x{data[i]:02x}")
        year = vals[0] * 100 + vals[1]
        tzb = data[7]
        tens, units = tzb & 0x07, tzb >> 4
        if units > 9:
            raise DecodeError(_LAYER, 7, f"time zone octet 0x{tzb:02x}")
        tz = tens * 10 + units
        try:
            t = _dt.datetime(year, vals[2], vals[3], vals[4], vals[5], vals[6])
        except ValueError as exc:
            raise DecodeError(_LAYER, 0, f"TimeAndTimezone: {exc}") from None
        return cls(t, -tz if tzb & 0x08 else tz)


# ---------------------------------------------------------------------------------------------
# Numbering plan normalisation (E.164; China: CC 86, trunk prefix 0)
# ---------------------------------------------------------------------------------------------


class NumberKind(enum.Enum):
    """What a dialled string is, after the prefix rules."""

    E164 = "e164"
    SHORT = "short"  # service/short code: never prefixed with a country code


@dataclass(frozen=True, slots=True)
class PrefixRule:
    """A national significant number class: ``prefix`` and the lengths it may have.

    ``short`` marks service codes (110, 10086, 12599, 95xxx...): kept as dialled.
    ``trunk`` says whether the national (dialled) form carries the trunk prefix: mobile numbers
    in China are dialled without it, fixed-line numbers with it.
    """

    prefix: str
    lengths: tuple[int, ...]
    short: bool = False
    trunk: bool = True


@dataclass(frozen=True, slots=True)
class NumberingPlan:
    """Prefix rules to move between the national and the E.164 form of a number.

    ``to_e164(digits, nai)`` returns international digits without "+" (short codes unchanged);
    ``to_national(e164)`` returns what a national subscriber dials (trunk prefix where the rule
    says so, international prefix for foreign numbers).
    """

    country_code: str
    trunk_prefix: str = "0"
    international_prefix: str = "00"
    rules: tuple[PrefixRule, ...] = field(default_factory=tuple)

    def _rule(self, nsn: str) -> PrefixRule | None:
        best: PrefixRule | None = None
        for r in self.rules:
            if nsn.startswith(r.prefix) and len(nsn) in r.lengths:
                if best is None or len(r.prefix) > len(best.prefix):
                    best = r
        return best

    def kind(self, digits: str, nai: int = NatureOfAddress.UNKNOWN) -> NumberKind:
        """Whether ``digits`` (as received with ``nai``) is a short code or an E.164 number."""
        if nai == NatureOfAddress.INTERNATIONAL:
            return NumberKind.E164
        r = self._rule(digits)
        return NumberKind.SHORT if r is not None and r.short else NumberKind.E164

    def to_e164(self, digits: str, nai: int = NatureOfAddress.UNKNOWN) -> str:
        d = digits.lstrip("+")
        if nai == NatureOfAddress.INTERNATIONAL:
            return d
        if d.startswith(self.international_prefix):
            return d[len(self.international_prefix) :]
        if nai in (NatureOfAddress.NATIONAL, NatureOfAddress.UNKNOWN, NatureOfAddress.SUBSCRIBER):
            r = self._rule(d)
            if r is not None and r.short:
                return d
            if self.trunk_prefix and d.startswith(self.trunk_prefix):
                return self.country_code + d[len(self.trunk_prefix) :]
            if r is not None:
                return self.country_code + d
            # Unknown NAI and already carrying the country code with a valid NSN behind it.
            if nai == NatureOfAddress.UNKNOWN and d.startswith(self.country_code):
                if self._rule(d[len(self.country_code) :]) is not None:
                    return d
            if nai == NatureOfAddress.NATIONAL:
                return self.country_code + d
        return d

    def to_national(self, e164: str) -> str:
        d = e164.lstrip("+")
        if not d.startswith(self.country_code):
            r = self._rule(d)
            if r is not None and r.short:
                return d
            return self.international_prefix + d
        nsn = d[len(self.country_code) :]
        r = self._rule(nsn)
        if r is not None and not r.trunk:
            return nsn
        return self.trunk_prefix + nsn


CHINA = NumberingPlan(
    country_code="86",
    trunk_prefix="0",
    international_prefix="00",
    rules=(
        # Mobile: 1[3-9]x xxxx xxxx, dialled without the trunk prefix.
        *(PrefixRule(f"1{d}", (11,), trunk=False) for d in "3456789"),
        # Emergency and operator short codes (110, 119, 120, 122), carrier hotlines
        # (10086, 10010, 10000), SP codes (1259x, 106xx...) and 95xxx / 96xxx service numbers.
        PrefixRule("1", (3, 5, 6, 7, 8), short=True),
        PrefixRule("95", (5, 6), short=True),
        PrefixRule("96", (5, 6), short=True),
        # Fixed line: 2-digit area codes 10, 2x (8-digit subscriber), 3-digit others (7-8 digits).
        PrefixRule("10", (10,)),
        PrefixRule("2", (10,)),
        *(PrefixRule(str(d), (10, 11)) for d in range(3, 10)),
    ),
)
"""The Chinese numbering plan (MIIT): mobiles 1[3-9] 11 digits, fixed lines with area codes."""
