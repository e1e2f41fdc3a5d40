"""API clients' bearer tokens (RFC 6750) and scopes: the rules, no I/O.

A token is ``mcn_`` + 43 URL-safe characters (32 random octets from the OS's CSPRNG); it is
shown once, when made, and only its SHA-256 digest is stored. A salted slow hash (scrypt, as
for PINs: :mod:`scp.service.pin`) protects secrets a person chooses, which a search of likely
values could find from the digest; 256 random bits leave nothing to search, so the digest is
as safe, lets a request find its client by an index lookup, and costs microseconds instead of
the ~30 ms of CPU scrypt would add to every API call. Comparison happens inside PostgreSQL's
unique index on the digest, so no secret is compared in Python.

Scopes (what a client may do; every route names the scopes that grant it):

=================  ==========================================================================
``provisioning``   subscribers, services, blacklists, PINs, groups, ads, bulk loads (BOSS/CRM)
``media``          the media server: callers' menu choices, voicemail deposit, play, delete
``billing``        CDRs and tariffs
``read``           every read of subscribers, calls, voice message lists, import jobs
=================  ==========================================================================
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from scp.service.provisioning import InvalidInput

__all__ = ["SCOPES", "TOKEN_PREFIX", "digest", "new_token", "valid_client_name", "valid_scopes"]

SCOPES = ("provisioning", "media", "billing", "read")
TOKEN_PREFIX = "mcn_"
_HINT = len(TOKEN_PREFIX) + 6
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def new_token() -> tuple[str, bytes, str]:
    """A fresh token: (the token, its digest to store, a hint to list it by)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, digest(token), token[:_HINT]


def digest(token: str) -> bytes:
    """SHA-256 of the token as presented (what the database holds)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def valid_client_name(name: str) -> str:
    """1-64 of letters, digits, '_', '.', '-' (the audit log's actor for this client)."""
    if not (1 <= len(name) <= 64) or not set(name) <= _NAME_CHARS:
        raise InvalidInput("name", f"{name!r} must be 1-64 of A-Z a-z 0-9 _ . -")
    return name


def valid_scopes(raw: Iterable[str]) -> tuple[str, ...]:
    """Distinct known scopes, in :data:`SCOPES` order; at least one."""
    got = {s.strip() for s in raw if s.strip()}
    unknown = sorted(got - set(SCOPES))
    if unknown:
        raise InvalidInput("scope", f"unknown {', '.join(unknown)}: one of {', '.join(SCOPES)}")
    if not got:
        raise InvalidInput("scope", f"at least one of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in got)
