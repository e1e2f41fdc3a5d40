"""Provisioning values and rules: what every channel's request is checked against (CLI, OSS,
IVR, SMS, web, operator).

ARCHITECTURE §2 "one service layer for every channel" and "``service/`` decides; it never does
I/O": this module holds the pure part - the constants, errors (``InvalidInput`` names the
field), the frozen values the provisioning functions return, and one validation function per
rule. The functions that change or read the database (each validates with the functions here,
does its change and writes the audit row in one transaction) are
:mod:`scp.flows.provisioning`. Numbers are normalised by ``scp.service.msisdn.normalise_msisdn``;
PINs follow ``scp.service.pin``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from scp.service import pin as pins
from scp.service.msisdn import is_digits, normalise_msisdn

SERVICES = ("missed-call", "busy", "delivery-receipt", "voicemail", "forwarding")
LANGUAGES = ("zh", "en")
NOTIFY_MODES = ("sms", "digest", "none")
VOICEMAIL_NOTIFY = ("sms", "none")  # how a new voice message is told: 短信 / 不通知
STATUSES = ("active", "suspended", "barred")
CHANNELS = ("cli", "oss", "ivr", "sms", "web", "operator", "system", "api")
CALL_CATEGORIES = ("on-net", "local", "national", "hmt", "international")
SMS_STATUSES = ("queued", "sending", "submitted", "delivered", "failed", "expired")


# --------------------------------------------------------------------------------------------
# Errors and values
# --------------------------------------------------------------------------------------------


class ProvisioningError(Exception):
    """A provisioning request could not be carried out."""


class InvalidInput(ProvisioningError):
    """A value is malformed; ``field`` names it (CLI exit 2)."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


class NotFound(ProvisioningError):
    """The entity does not exist."""


class Conflict(ProvisioningError):
    """The entity already exists or the change contradicts the stored state; ``field`` names
    the value at fault when one is (a duplicate IMSI)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a change and through which channel (audit log)."""

    channel: str
    name: str

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise InvalidInput("channel", f"must be one of {', '.join(CHANNELS)}")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One service of a subscriber with its validity dates (end exclusive, None: open)."""

    service: str
    start_date: dt.date
    end_date: dt.date | None

    def active_on(self, day: dt.date) -> bool:
        """True if the service is in force on ``day``."""
        return self.start_date <= day and (self.end_date is None or day < self.end_date)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A subscriber as provisioned (the PIN hash itself never leaves the state layer)."""

    msisdn: str
    imsi: str | None
    status: str
    language: str
    user_group: str
    notify_mode: str
    forward_to: str | None
    pin_set: bool
    pin_failed_attempts: int
    pin_locked: bool
    subscriptions: tuple[Subscription, ...] = ()
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    voicemail_notify: str = "sms"

    def active_services(self, day: dt.date) -> tuple[str, ...]:
        """Services in force on ``day``."""
        return tuple(s.service for s in self.subscriptions if s.active_on(day))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO strings)."""
        out: dict[str, Any] = _jsonable(asdict(self))
        return out


@dataclass(frozen=True, slots=True)
class BlacklistEntry:
    """Calls from ``number`` (or numbers starting with it, kind prefix) to ``owner`` are ignored."""

    owner: str
    number: str
    kind: str


@dataclass(frozen=True, slots=True)
class AdRule:
    """Advertising text appended to notifications when the rule matches."""

    id: int
    text: str
    window_start: dt.time
    window_end: dt.time | None  # None: end of day
    caller_prefixes: tuple[str, ...]
    user_groups: tuple[str, ...]
    priority: int
    valid_from: dt.datetime
    valid_until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Rate:
    """A tariff line: call category and number prefix to prices."""

    id: int
    call_category: str
    prefix: str
    per_minute: Decimal
    per_sms: Decimal
    per_use: Decimal
    monthly_fee: Decimal
    valid_from: dt.date


@dataclass(frozen=True, slots=True)
class PinCheck:
    """Outcome of a PIN verification: ok, wrong, locked or no-pin; attempts left before lock."""

    outcome: str
    attempts_left: int = field(default=0)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dt.date | dt.time):  # datetime is a date
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    return v


def to_json(v: Any) -> Any:
    """Any of this module's values (or lists of them, or database rows) as JSON-ready data."""
    if hasattr(v, "__dataclass_fields__"):
        return _jsonable(asdict(v))
    if isinstance(v, list | tuple):
        return [to_json(x) for x in v]
    if not isinstance(v, dict) and callable(getattr(v, "items", None)):
        return _jsonable(dict(v))  # a database row: a mapping that is not a dict
    return _jsonable(v)


# --------------------------------------------------------------------------------------------
# Validation helpers (one place per rule)
# --------------------------------------------------------------------------------------------


def valid_msisdn(raw: str, field_name: str = "msisdn") -> str:
    """Normalised E.164 MSISDN or InvalidInput naming ``field_name``."""
    n = normalise_msisdn(raw or "")
    if n is None:
        raise InvalidInput(field_name, f"{raw!r} is not an E.164 or national (0...) number")
    return n


def valid_choice(value: str, allowed: Sequence[str], field_name: str) -> str:
    """``value`` if it is one of ``allowed``, else InvalidInput naming ``field_name``."""
    if value not in allowed:
        raise InvalidInput(field_name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def valid_services(raw: Iterable[str], field_name: str = "services") -> tuple[str, ...]:
    """Distinct known service names in the given order."""
    out: list[str] = []
    for s in raw:
        s = s.strip()
        if not s:
            continue
        valid_choice(s, SERVICES, field_name)
        if s not in out:
            out.append(s)
    return tuple(out)


def valid_group(g: str, field_name: str = "group") -> str:
    """A user group label: 1-32 characters of letters, digits, '_', '.', '-'."""
    if not (1 <= len(g) <= 32) or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in g):
        raise InvalidInput(field_name, f"{g!r} must be 1-32 of A-Z a-z 0-9 _ . -")
    return g


def valid_imsi(raw: str | None, field_name: str = "imsi") -> str | None:
    """IMSI digits (E.212: 6-15) or None for empty."""
    if raw is None or raw == "":
        return None
    if not is_digits(raw, 6, 15):
        raise InvalidInput(field_name, f"{raw!r} must be 6-15 digits")
    return raw


def valid_pin(raw: str, field_name: str = "pin") -> str:
    """A PIN string per ``scp.service.pin`` rules."""
    problem = pins.pin_problem(raw)
    if problem:
        raise InvalidInput(field_name, problem)
    return raw


def valid_money(raw: str | Decimal | float | int, field_name: str) -> Decimal:
    try:
        d = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidInput(field_name, f"{raw!r} is not a number") from None
    if not d.is_finite() or d < 0 or d >= Decimal("1e8"):
        raise InvalidInput(field_name, f"{raw!r} must be >= 0 and < 100000000")
    return d


class _Unset:
    pass


UNSET: Any = _Unset()
"""The default of an attribute a change leaves alone (``None`` clears some attributes)."""


def valid_blacklist_number(number: str, prefix: bool) -> str:
    """A blacklist entry's number: 1-15 digits for a prefix, else a normalised MSISDN."""
    if prefix:
        n = number.strip().lstrip("+")
        if not is_digits(n, 1, 15):
            raise InvalidInput("number", f"{number!r}: a prefix is 1-15 digits")
        return n
    return valid_msisdn(number, "number")


def valid_ad(
    text: str,
    *,
    caller_prefixes: Sequence[str] = (),
    user_groups: Sequence[str] = (),
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
) -> None:
    """Check an advertising rule's fields (InvalidInput naming the first bad one)."""
    if not (1 <= len(text) <= 160):
        raise InvalidInput("text", "must be 1-160 characters")
    for p in caller_prefixes:
        if not is_digits(p, 1, 15):
            raise InvalidInput("caller_prefixes", f"{p!r} must be 1-15 digits")
    for g in user_groups:
        valid_group(g, "user_groups")
    if valid_from and valid_until and valid_until <= valid_from:
        raise InvalidInput("valid_until", "must be after valid_from")


def valid_rate(
    call_category: str,
    prefix: str,
    per_minute: Any = 0,
    per_sms: Any = 0,
    per_use: Any = 0,
    monthly_fee: Any = 0,
    valid_from: dt.date | str | None = None,
    *,
    today: dt.date,
) -> tuple[Any, ...]:
    """Validated rate fields as a tuple in column order (without id); a line without
    ``valid_from`` is valid from the caller's ``today``."""
    valid_choice(call_category, CALL_CATEGORIES, "call_category")
    if prefix and not is_digits(prefix, 1, 15):
        raise InvalidInput("prefix", f"{prefix!r} must be up to 15 digits")
    vf: dt.date | None
    if isinstance(valid_from, str) and valid_from:
        try:
            vf = dt.date.fromisoformat(valid_from)
        except ValueError:
            raise InvalidInput("valid_from", f"{valid_from!r} is not YYYY-MM-DD") from None
    else:
        vf = valid_from or None
    return (
        call_category,
        prefix or "",
        valid_money(per_minute, "per_minute"),
        valid_money(per_sms, "per_sms"),
        valid_money(per_use, "per_use"),
        valid_money(monthly_fee, "monthly_fee"),
        vf or today,
    )
