"""Parity of the self-service channels: every channel's declaration agrees with the one table
(scp.service.parity), and whatever the IVR offers, the web and the console offer too."""

from __future__ import annotations

from pathlib import Path

import pytest

from scp.service import parity
from scp.service.selfcare import MENU_FUNCTIONS
from scp.service.smscmd import VERB_FUNCTIONS
from scp.web import console, portal

README = Path(__file__).resolve().parents[2] / "README.md"

DECLARED = {
    "ivr": set(MENU_FUNCTIONS.values()),
    "sms": {f for fs in VERB_FUNCTIONS.values() for f in fs},
    "web": set(portal.OFFERS),
    "operator": set(console.OFFERS),
    "cli": {k for k, f in parity.FUNCTIONS.items() if f.cli},
}


@pytest.mark.parametrize("channel", parity.CHANNELS)
def test_each_channel_offers_what_the_table_says(channel: str) -> None:
    assert DECLARED[channel] == set(parity.offered_by(channel))


def test_the_web_and_the_console_offer_whatever_the_ivr_offers() -> None:
    assert parity.parity_gaps() == []
    assert DECLARED["ivr"] <= DECLARED["web"] and DECLARED["ivr"] <= DECLARED["operator"]


def test_a_gap_is_found() -> None:
    table = dict(parity.FUNCTIONS)
    parity.FUNCTIONS["x"] = parity.Function("x", frozenset({"ivr", "web"}))
    try:
        assert parity.parity_gaps() == ["x: offered by the IVR, not by operator"]
    finally:
        parity.FUNCTIONS.clear()
        parity.FUNCTIONS.update(table)


def test_the_readme_shows_the_matrix() -> None:
    assert parity.matrix_markdown() in README.read_text(encoding="utf-8")
