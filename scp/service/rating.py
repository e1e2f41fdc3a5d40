"""Rating: call category of a destination and the charge of a call, fee or SMS.

Pure: the executor (``scp.flows.calls``) loads the tariff lines (table ``rate``, migration 0001)
and the per-number overrides (table ``rate_override``, migration 0010) into a
:class:`RateTable` and asks it. Categories are those of the Chinese tariff (MIIT): ``local``
(same charging area), ``national`` (国内长途, national long distance), ``hmt`` (港澳台: Hong
Kong +852, Macau +853, Taiwan +886) and ``international``. Numbers are E.164 international
digits (ITU-T E.164 §6). The rules, in order:

1. a per-number override (exact number, else the longest override prefix) names the category;
2. a destination under an HMT country code is ``hmt``;
3. a destination outside our country code is ``international``;
4. a destination under one of the configured local prefixes is ``local``, else ``national``.

The tariff line is the one of that category whose prefix is the longest prefix of the
destination (``''`` matches all), latest ``valid_from`` not after the call's day. A call is
charged ``per_use`` plus ``per_minute`` for every started minute (CAMEL reports durations in
100 ms units, TS 29.078 §7.6 TimeIfNoTariffSwitch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

CATEGORIES = ("local", "national", "hmt", "international")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RatingRules:
    """Prefix rules of the call category (``[rating]`` of the configuration)."""

    country_code: str = "86"
    local_prefixes: tuple[str, ...] = ()
    hmt_prefixes: tuple[str, ...] = ("852", "853", "886")


@dataclass(frozen=True, slots=True)
class Tariff:
    """One tariff line (a row of ``rate``)."""

    call_category: str
    prefix: str
    per_minute: Decimal = ZERO
    per_sms: Decimal = ZERO
    per_use: Decimal = ZERO
    valid_from: dt.date = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Rated:
    """The outcome of rating: category, tariff prefix used and the charge."""

    call_category: str
    charge: Decimal
    tariff_prefix: str | None = None


def _longest(prefixes: Iterable[str], number: str) -> str | None:
    best: str | None = None
    for p in prefixes:
        if number.startswith(p) and (best is None or len(p) > len(best)):
            best = p
    return best


def call_category(
    destination: str,
    rules: RatingRules,
    overrides: Mapping[str, str] | None = None,
    prefix_overrides: Mapping[str, str] | None = None,
) -> str:
    """The call category of ``destination`` (E.164 digits) by the rules of the module doc."""
    if overrides and destination in overrides:
        return overrides[destination]
    if prefix_overrides:
        p = _longest(prefix_overrides, destination)
        if p is not None:
            return prefix_overrides[p]
    if _longest(rules.hmt_prefixes, destination) is not None:
        return "hmt"
    if not destination.startswith(rules.country_code):
        return "international"
    if _longest(rules.local_prefixes, destination) is not None:
        return "local"
    return "national"


def started_minutes(duration_s: int) -> int:
    """Minutes charged for ``duration_s`` seconds: every started minute counts."""
    return max(0, (duration_s + 59) // 60)


@dataclass(frozen=True, slots=True)
class RateTable:
    """Tariff lines and overrides as loaded, plus the category rules; answers rating questions."""

    rules: RatingRules = field(default_factory=RatingRules)
    tariffs: tuple[Tariff, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)  # exact number -> category
    prefix_overrides: Mapping[str, str] = field(default_factory=dict)

    def tariff(self, category: str, destination: str, day: dt.date) -> Tariff | None:
        """The tariff line for ``destination`` in ``category`` in force on ``day``."""
        best: Tariff | None = None
        for t in self.tariffs:
            if t.call_category != category or t.valid_from > day:
                continue
            if not destination.startswith(t.prefix):
                continue
            if best is None or (len(t.prefix), t.valid_from) > (len(best.prefix), best.valid_from):
                best = t
        return best

    def category(self, destination: str) -> str:
        """Call category of ``destination``."""
        return call_category(destination, self.rules, self.overrides, self.prefix_overrides)

    def rate_call(self, destination: str, duration_s: int, day: dt.date) -> Rated:
        """Charge of a call of ``duration_s`` seconds to ``destination`` on ``day``."""
        cat = self.category(destination)
        t = self.tariff(cat, destination, day)
        if t is None:
            return Rated(cat, ZERO)
        return Rated(cat, t.per_use + t.per_minute * started_minutes(duration_s), t.prefix)

    def rate_use(self, destination: str, day: dt.date) -> Rated:
        """Per-use fee of a service used toward ``destination`` (no duration)."""
        cat = self.category(destination)
        t = self.tariff(cat, destination, day)
        return Rated(cat, t.per_use if t else ZERO, t.prefix if t else None)
