"""MSISDN normalisation for provisioning input: national forms to E.164 international digits.

The rule lives here only (ITU-T E.164 §6; China numbering: country code 86, trunk prefix 0,
mobile NSN 11 digits starting with 1). Accepted inputs, after removing spaces and '-':
``+CCNSN`` or ``00CCNSN`` (international), ``0NSN`` (national with trunk prefix),
an 11-digit number starting with 1 (national mobile, dialled without trunk prefix),
otherwise digits already in international form. The result has 7-15 digits, no leading 0.
The configurable normaliser for signalling numbers is ``scp.codecs.numbers``.
"""

from __future__ import annotations

COUNTRY_CODE = "86"
TRUNK_PREFIX = "0"
INTERNATIONAL_PREFIX = "00"


def normalise_msisdn(raw: str) -> str | None:
    """E.164 digits for ``raw``, or None if it is not a number we accept."""
    s = raw.strip().replace(" ", "").replace("-", "")
    if s.startswith("+"):
        s = s[1:]
    elif s.startswith(INTERNATIONAL_PREFIX):
        s = s[len(INTERNATIONAL_PREFIX) :]
    elif s.startswith(TRUNK_PREFIX):
        s = COUNTRY_CODE + s[len(TRUNK_PREFIX) :]
    elif len(s) == 11 and s[:1] == "1":
        s = COUNTRY_CODE + s
    if not (7 <= len(s) <= 15) or not s.isascii() or not s.isdigit() or s[0] == "0":
        return None
    return s


def is_digits(s: str, min_len: int = 1, max_len: int = 15) -> bool:
    """ASCII digits only, length within bounds (IMSI, prefixes)."""
    return min_len <= len(s) <= max_len and s.isascii() and s.isdigit()
