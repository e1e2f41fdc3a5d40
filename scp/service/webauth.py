"""Web logins: operator accounts, session tokens, one-time codes and throttling - the rules.

The pure part of the portal's and the console's authentication (ARCHITECTURE §2: ``service/``
decides, no I/O, no clock: callers pass ``now``):

* Operator passwords are stored as salted scrypt hashes (RFC 7914) in the PIN's format
  (:mod:`scp.service.pin`), at a higher cost (N=2^15: a password is checked once per login).
* A session is a random 256-bit token in an HttpOnly cookie; the database keeps only its
  SHA-256 (:func:`token_hash`), so the table alone opens nothing. Each session has its own
  CSRF token, compared in constant time. It expires after ``idle`` without a request and in any
  case ``lifetime`` after it began (OWASP Session Management: idle and absolute timeouts).
* A one-time code is 6 random digits, kept as a keyed hash, good for :data:`CODE_TRIES` tries
  within its lifetime.
* Throttling counts failures per key (the number, the client address, the operator name) in a
  sliding window: :func:`throttled`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from scp.service import pin as pins
from scp.service.provisioning import InvalidInput

__all__ = [
    "ROLES",
    "CODE_TRIES",
    "OPERATOR_PARAMS",
    "Operator",
    "SessionInfo",
    "code_hash",
    "same_secret",
    "hash_password",
    "new_code",
    "new_token",
    "session_expiry",
    "throttled",
    "token_hash",
    "valid_operator_name",
    "valid_password",
    "valid_role",
    "verify_password",
]

ROLES = ("agent", "supervisor")
CODE_TRIES = 5
MIN_PASSWORD, MAX_PASSWORD = 8, 128
OPERATOR_PARAMS = pins.ScryptParams(15, 8, 1)


@dataclass(frozen=True, slots=True)
class Operator:
    """A staff account of the operator console (the hash never leaves the state layer)."""

    name: str
    role: str
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session as a request sees it."""

    token_hash: str
    kind: str  # anonymous | subscriber | operator
    subject: str | None  # MSISDN or operator name
    csrf: str
    via: str | None = None  # pin | code | password: how it logged in
    role: str | None = None  # an operator's role, as stored now (not when they logged in)


def valid_operator_name(name: str) -> str:
    """1-32 of A-Z a-z 0-9 _ . - (InvalidInput naming ``name`` otherwise)."""
    if not (1 <= len(name) <= 32) or not all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in name
    ):
        raise InvalidInput("name", f"{name!r} must be 1-32 of A-Z a-z 0-9 _ . -")
    return name


def valid_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput("role", f"{role!r} is not one of {', '.join(ROLES)}")
    return role


def valid_password(password: str) -> str:
    """8-128 characters, not only blanks."""
    if not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD) or not password.strip():
        raise InvalidInput("password", f"must be {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return password


def hash_password(password: str) -> str:
    """Salted scrypt hash of a valid password."""
    return pins.hash_secret(valid_password(password), OPERATOR_PARAMS)


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored`` (constant-time)."""
    if not (0 < len(password) <= MAX_PASSWORD):
        return False
    return pins.verify_secret(password, stored)


def new_token() -> str:
    """A fresh session (or CSRF) token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def same_secret(expected: str, given: str | None) -> bool:
    """``given`` equals ``expected`` (a CSRF token, a code's hash), compared in constant time."""
    return bool(given) and hmac.compare_digest(
        expected.encode(), (given or "").encode("utf-8", "replace")
    )


def session_expiry(
    now: dt.datetime, created_at: dt.datetime, *, idle: dt.timedelta, lifetime: dt.timedelta
) -> dt.datetime:
    """When a session seen at ``now`` ends: ``idle`` from now, never beyond its lifetime."""
    return min(now + idle, created_at + lifetime)


def new_code() -> str:
    """A one-time code: 6 random digits."""
    return f"{secrets.randbelow(10**6):06d}"


def code_hash(msisdn: str, code: str) -> str:
    """A one-time code as stored: keyed by the number, so equal codes differ per number."""
    return hmac.new(msisdn.encode(), code.strip().encode("utf-8", "replace"), "sha256").hexdigest()


def throttled(failures: int, limit: int) -> bool:
    """True when ``failures`` within the window have reached ``limit`` (0: no limit)."""
    return limit > 0 and failures >= limit
