"""Subscriber PINs: 6-10 digits, stored only as a salted scrypt hash (RFC 7914).

Format: ``scrypt$<log2 N>$<r>$<p>$<salt, b64>$<key, b64>`` so the cost can change without a
migration. ``INTERACTIVE`` (N=2^14, r=8: 16 MiB, ~27 ms here) is used for PINs set one at a
time; ``BULK`` (N=2^10: 1 MiB, ~1.5 ms) for PINs arriving in an OSS bulk load, where the full
cost would make a million rows take hours. A bulk hash is upgraded to ``INTERACTIVE`` on the
first successful verification (``needs_rehash``). Either way a 6-digit PIN cannot resist an
offline search of the whole space for long; the real defence is the lock after
``MAX_FAILED_ATTEMPTS`` and keeping the database private. Comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

MIN_LEN, MAX_LEN = 6, 10
MAX_FAILED_ATTEMPTS = 3
_SALT_LEN = 16
_KEY_LEN = 32


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters (RFC 7914 §2): N = 2**log2_n, block size r, parallelism p."""

    log2_n: int
    r: int
    p: int


INTERACTIVE = ScryptParams(14, 8, 1)
BULK = ScryptParams(10, 8, 1)


def pin_problem(pin: str) -> str | None:
    """Why ``pin`` is not acceptable, or None."""
    if not (MIN_LEN <= len(pin) <= MAX_LEN) or not pin.isascii() or not pin.isdigit():
        return f"must be {MIN_LEN}-{MAX_LEN} digits"
    return None


def _derive(secret: str, salt: bytes, prm: ScryptParams) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"),
        salt=salt,
        n=1 << prm.log2_n,
        r=prm.r,
        p=prm.p,
        maxmem=256 * 1024 * 1024,
        dklen=_KEY_LEN,
    )


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii").rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))


def hash_secret(secret: str, params: ScryptParams = INTERACTIVE) -> str:
    """Salted scrypt hash of any secret (a PIN, an operator's password), in the format above."""
    salt = os.urandom(_SALT_LEN)
    key = _derive(secret, salt, params)
    return f"scrypt${params.log2_n}${params.r}${params.p}${_b64(salt)}${_b64(key)}"


def verify_secret(secret: str, stored: str) -> bool:
    """True if ``secret`` matches ``stored`` (constant-time); a malformed hash never matches."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    prm, salt, key = parsed
    return hmac.compare_digest(_derive(secret, salt, prm), key)


def hash_pin(pin: str, params: ScryptParams = INTERACTIVE) -> str:
    """Salted hash of a valid PIN (raises ValueError for an invalid one)."""
    problem = pin_problem(pin)
    if problem:
        raise ValueError(f"pin {problem}")
    return hash_secret(pin, params)


def _parse(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        prm = ScryptParams(int(parts[1]), int(parts[2]), int(parts[3]))
        return prm, _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None


def verify_pin(pin: str, stored: str) -> bool:
    """True if ``pin`` matches ``stored``; malformed input or hash simply does not match."""
    if pin_problem(pin):
        return False
    return verify_secret(pin, stored)


def needs_rehash(stored: str, params: ScryptParams = INTERACTIVE) -> bool:
    """True if ``stored`` was made with cheaper parameters than ``params`` (e.g. bulk load)."""
    parsed = _parse(stored)
    return parsed is None or parsed[0] != params
