"""Parity of the self-service channels: every channel's declaration agrees with the one table
(scp.service.parity), whatever the IVR offers the web and the console offer too, and every
declaration names something that exists: a route of the real application, an element of the
page's templates, a command and option of the real ``mcn-scp``.

The page a console anchor points into is also rendered for real, with nothing in its lists,
in tests/integration/test_web_portal.py (``test_every_declared_page_and_anchor_is_served``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click
import pytest
from starlette.routing import Match

from scp import cli
from scp.config import parse_config
from scp.service import parity
from scp.service.selfcare import MENU_FUNCTIONS
from scp.service.smscmd import VERB_FUNCTIONS
from scp.web import console, portal
from scp.web.app import create_app
from scp.web.context import WebContext
from scp.web.ui.pages import UI_DIR

README = Path(__file__).resolve().parents[2] / "README.md"

DECLARED = {
    "ivr": set(MENU_FUNCTIONS.values()),
    "sms": {f for fs in VERB_FUNCTIONS.values() for f in fs},
    "web": set(portal.OFFERS),
    "operator": set(console.OFFERS),
    "cli": set(cli.OFFERS),
}

# the real application's routes (nothing is served: no request touches the database)
APP = create_app(
    WebContext(cfg=parse_config(""), pool=None, wall_now=lambda: dt.datetime.now(dt.UTC))
)


def get_route(path: str) -> str | None:
    """The path pattern of the application's GET route answering ``path``, or None."""
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    for route in APP.routes:
        if route.matches(scope)[0] is Match.FULL:
            return str(getattr(route, "path", ""))
    return None


def template_ids(template: Path) -> set[str]:
    """The literal element ids of a template and of the macros it imports."""
    text = template.read_text(encoding="utf-8")
    for imported in re.findall(r'{%\s*from\s+"([^"]+)"\s+import', text):
        for d in (template.parent, UI_DIR / "templates"):
            if (d / imported).exists():
                text += (d / imported).read_text(encoding="utf-8")
                break
    return set(re.findall(r'\bid="([A-Za-z0-9_-]+)"', text))


SUBSCRIBER_PAGE = template_ids(console.TEMPLATES / "subscriber.html")


def web_declaration_holds(url: str) -> bool:
    """The declared page is a GET route; a console subscriber-page anchor is an element of
    that page's template."""
    path, _, anchor = url.partition("#")
    pattern = get_route(path.replace("{msisdn}", "8613800138000"))
    if pattern is None:
        return False
    if anchor:
        return pattern == "/console/subscribers/{msisdn}" and anchor in SUBSCRIBER_PAGE
    return True


def cli_declaration_holds(line: str) -> bool:
    """Each word a subcommand of the one before ("a|b": each of them), each "--x" an option of
    the last command: resolved in the real ``mcn-scp`` command tree."""
    cmd: click.Command = cli.main
    ctx = click.Context(cli.main)
    for word in line.split():
        if word.startswith("--"):
            if not any(word in p.opts for p in cmd.params):
                return False
            continue
        if not isinstance(cmd, click.Group):
            return False
        found = [cmd.get_command(ctx, w) for w in word.split("|")]
        if any(c is None for c in found):
            return False
        nxt = found[0]
        assert nxt is not None
        cmd = nxt
    return True


@pytest.mark.parametrize("channel", parity.CHANNELS)
def test_each_channel_offers_what_the_table_says(channel: str) -> None:
    assert DECLARED[channel] == set(parity.offered_by(channel))


def test_the_web_and_the_console_offer_whatever_the_ivr_offers() -> None:
    assert parity.parity_gaps() == []
    assert DECLARED["ivr"] <= DECLARED["web"] and DECLARED["ivr"] <= DECLARED["operator"]


@pytest.mark.parametrize("part", [portal, console], ids=["web", "operator"])
def test_each_declared_page_is_a_route_of_the_application(part: object) -> None:
    offers: dict[str, str] = getattr(part, "OFFERS")  # noqa: B009 - the parametrised module
    assert {k: v for k, v in offers.items() if not web_declaration_holds(v)} == {}


def test_each_declared_cli_command_exists() -> None:
    assert {k: v for k, v in cli.OFFERS.items() if not cli_declaration_holds(v)} == {}


def test_a_false_declaration_is_caught() -> None:
    """The checks above can fail: what does not exist is found out."""
    assert not web_declaration_holds("/no-such-page")
    assert not web_declaration_holds("/console/subscribers/{msisdn}#no-such-section")
    assert not web_declaration_holds("/missed#set-pin")  # an anchor of another page
    assert not cli_declaration_holds("pin change")
    assert not cli_declaration_holds("pin set|change")
    assert not cli_declaration_holds("missed-calls list --caller")
    assert web_declaration_holds("/console/subscribers/{msisdn}#set-pin")
    assert cli_declaration_holds("missed-calls list --callee")


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
