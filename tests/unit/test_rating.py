"""Rating: call category by prefix rules and overrides, tariff choice, charges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from scp.service.rating import (
    PairTariff,
    RateTable,
    RatingRules,
    Tariff,
    call_category,
    started_minutes,
)

# Fixed times only: the same on any day and in any time zone (tests/dates.py).
pytestmark = pytest.mark.usefixtures("any_day")

RULES = RatingRules(country_code="86", local_prefixes=("8610", "86139"))
DAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    "number,category",
    [
        ("861088887777", "local"),  # Beijing fixed line, our area
        ("8613912345678", "local"),  # configured local mobile segment
        ("862188887777", "national"),  # Shanghai: national long distance
        ("8613812345678", "national"),
        ("85291234567", "hmt"),  # Hong Kong
        ("85366123456", "hmt"),  # Macau
        ("886912345678", "hmt"),  # Taiwan
        ("14155550100", "international"),
        ("447911123456", "international"),
    ],
)
def test_category_by_prefix(number: str, category: str) -> None:
    assert call_category(number, RULES) == category


def test_overrides_exact_then_longest_prefix() -> None:
    assert call_category("862188887777", RULES, {"862188887777": "local"}) == "local"
    assert call_category("862188887777", RULES, None, {"8621": "local", "862188": "hmt"}) == "hmt"


def test_tariff_longest_prefix_latest_valid() -> None:
    t = RateTable(
        RULES,
        (
            Tariff("national", "", Decimal("0.30"), valid_from=dt.date(2020, 1, 1)),
            Tariff("national", "8621", Decimal("0.25"), valid_from=dt.date(2020, 1, 1)),
            Tariff("national", "8621", Decimal("0.20"), valid_from=dt.date(2026, 1, 1)),
            Tariff("national", "8621", Decimal("0.01"), valid_from=dt.date(2027, 1, 1)),
        ),
    )
    r = t.rate_call("862188887777", 61, DAY)
    assert (r.call_category, r.charge, r.tariff_prefix) == ("national", Decimal("0.40"), "8621")
    assert t.rate_call("862088887777", 60, DAY).charge == Decimal("0.30")
    assert t.rate_call("14155550100", 60, DAY).charge == Decimal(0)  # no international tariff


@pytest.mark.parametrize("secs,minutes", [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (3600, 60)])
def test_started_minutes(secs: int, minutes: int) -> None:
    assert started_minutes(secs) == minutes


# -- on-net and the pair of numbers ------------------------------------------------------------

ON_NET = RatingRules(
    country_code="86", local_prefixes=("8610",), on_net_prefixes=("86138", "86139", "861088")
)


@pytest.mark.parametrize(
    "number,category",
    [
        ("8613812345678", "on-net"),  # the operator's mobile range
        ("861088887777", "on-net"),  # its fixed range inside the local area: on-net wins
        ("861066667777", "local"),  # another operator's line in the area
        ("8613012345678", "national"),  # another operator's mobile
        ("85291234567", "hmt"),
        ("14155550100", "international"),
    ],
)
def test_on_net_is_the_operators_own_ranges(number: str, category: str) -> None:
    assert call_category(number, ON_NET) == category
    # an override still names the category first
    assert call_category(number, ON_NET, {number: "international"}) == "international"


PAIRS = RateTable(
    ON_NET,
    (
        Tariff("on-net", "", Decimal("0.05")),
        Tariff("national", "", Decimal("0.30")),
        Tariff("local", "", Decimal("0.10")),
    ),
    pairs=(
        # Beijing subscribers forwarding to Tianjin are rated as local (a regional tariff)
        PairTariff("8610", "8622", "local", Decimal("0.12")),
        # ... and a cheaper one for a Beijing exchange to one Tianjin exchange
        PairTariff("861088", "862266", None, Decimal("0.08"), Decimal("0.02")),
        # any subscriber to a premium range: by the rules' category, priced per use
        PairTariff("", "86400", None, Decimal("0"), Decimal("1.00")),
        PairTariff("8610", "8622", "local", Decimal("0.01"), valid_from=dt.date(2027, 1, 1)),
    ),
)


@pytest.mark.parametrize(
    "origin,destination,secs,category,charge,used",
    [
        ("861012345678", "862212345678", 61, "local", Decimal("0.24"), "8610>8622"),
        # the more specific pair wins; its category is the destination's by the rules
        ("861088887777", "862266661111", 61, "national", Decimal("0.18"), "861088>862266"),
        ("8613812345678", "864001234567", 600, "national", Decimal("1.00"), ">86400"),
        # no pair for this origin: the category table rates it
        ("862112345678", "862212345678", 61, "national", Decimal("0.60"), ""),
        ("861012345678", "8613912345678", 30, "on-net", Decimal("0.05"), ""),
        # no origin known: by the category table too
        (None, "862212345678", 61, "national", Decimal("0.60"), ""),
    ],
)
def test_rated_by_the_pair_then_by_category(
    origin: str | None, destination: str, secs: int, category: str, charge: Decimal, used: str
) -> None:
    r = PAIRS.rate_call(destination, secs, DAY, origin=origin)
    assert (r.call_category, r.charge) == (category, charge)
    if used:
        assert r.tariff_prefix == used


def test_pair_validity_by_day() -> None:
    later = dt.date(2027, 3, 1)
    assert PAIRS.rate_call("862212345678", 60, later, origin="861012345678").charge == Decimal(
        "0.01"
    )
    assert PAIRS.pair("861012345678", "862212345678", DAY) == PAIRS.pairs[0]
