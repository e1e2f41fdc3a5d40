"""Rating: call category of a destination and the charge of a call, fee or SMS.

Pure: the executor (``scp.flows.calls``) loads the tariff lines (table ``rate``, migration 0001),
the per-number overrides (table ``rate_override``, migration 0010) and the number-pair tariffs
(table ``rate_pair``, migration 0220) into a :class:`RateTable` and asks it. Categories are
those of the brief and the Chinese tariff (MIIT): ``on-net`` (网内: a number of the operator's
own, ``[rating] on_net_prefixes``), ``local`` (same charging area), ``national`` (国内长途,
national long distance), ``hmt`` (港澳台: Hong Kong +852, Macau +853, Taiwan +886) and
``international``. Numbers are E.164 international digits (ITU-T E.164 §6). The category rules,
in order:

1. a per-number override (exact number, else the longest override prefix) names the category;
2. a destination in one of the operator's number ranges is ``on-net``;
3. a destination under an HMT country code is ``hmt``;
4. a destination outside our country code is ``international``;
5. a destination under one of the configured local prefixes is ``local``, else ``national``.

A call is rated by the pair of numbers first, as the brief says (根据号码与转接号码): the paying
subscriber's number (the forwarding subscriber, or the caller dialling another number from the
menu) and the destination. The pair tariff whose origin prefix and destination prefix both
match, the most specific first (longest origin + destination prefix together, then the longer
destination prefix, then the latest ``valid_from`` not after the call's day), gives the price
and, if it names one, the category. Without a matching pair the category table rates it: the
line of the destination's category whose prefix is the longest prefix of the destination
(``''`` matches all), latest ``valid_from`` not after the call's day. A call is charged
``per_use`` plus ``per_minute`` for every started minute (CAMEL reports durations in 100 ms
units, TS 29.078 §7.6 TimeIfNoTariffSwitch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

CATEGORIES = ("on-net", "local", "national", "hmt", "international")
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RatingRules:
    """Prefix rules of the call category (``[rating]`` of the configuration)."""

    country_code: str = "86"
    local_prefixes: tuple[str, ...] = ()
    hmt_prefixes: tuple[str, ...] = ("852", "853", "886")
    on_net_prefixes: tuple[str, ...] = ()  # the operator's own number ranges


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
class PairTariff:
    """A tariff by the pair of numbers (a row of ``rate_pair``): from a range of the paying
    subscriber's numbers to a range of destinations; ``call_category`` None: by the rules."""

    origin_prefix: str
    destination_prefix: str
    call_category: str | None = None
    per_minute: Decimal = ZERO
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
    if _longest(rules.on_net_prefixes, destination) is not None:
        return "on-net"
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
    pairs: tuple[PairTariff, ...] = ()

    def pair(self, origin: str, destination: str, day: dt.date) -> PairTariff | None:
        """The most specific pair tariff for ``origin`` -> ``destination`` on ``day``."""
        best: PairTariff | None = None
        best_key: tuple[int, int, dt.date] | None = None
        for t in self.pairs:
            if t.valid_from > day:
                continue
            if not (
                origin.startswith(t.origin_prefix) and destination.startswith(t.destination_prefix)
            ):
                continue
            o, d = len(t.origin_prefix), len(t.destination_prefix)
            key = (o + d, d, t.valid_from)
            if best_key is None or key > best_key:
                best, best_key = t, key
        return best

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

    def rate_call(
        self, destination: str, duration_s: int, day: dt.date, origin: str | None = None
    ) -> Rated:
        """Charge of a call of ``duration_s`` seconds from ``origin`` (the paying subscriber's
        number; None: unknown) to ``destination`` on ``day``."""
        pair = self.pair(origin, destination, day) if origin else None
        if pair is not None:
            cat = pair.call_category or self.category(destination)
            charge = pair.per_use + pair.per_minute * started_minutes(duration_s)
            return Rated(cat, charge, f"{pair.origin_prefix}>{pair.destination_prefix}")
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
