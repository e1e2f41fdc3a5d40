"""Rating: call category by prefix rules and overrides, tariff choice, charges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from scp.service.rating import RateTable, RatingRules, Tariff, call_category, started_minutes

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
